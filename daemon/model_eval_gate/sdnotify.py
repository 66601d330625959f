"""sd_notify(3) without libsystemd: one datagram per message to $NOTIFY_SOCKET.

Under a Type=notify unit systemd passes the path of a datagram socket in
NOTIFY_SOCKET (a leading '@' names a socket in the abstract namespace) and,
with WatchdogSec= set, the watchdog period in WATCHDOG_USEC (for the process
named by WATCHDOG_PID, if that is set). Without NOTIFY_SOCKET every call is a
no-op, so the daemon runs the same way outside systemd. A failed send is
logged once and never raised: losing a status line must not stop gating.
"""
from __future__ import annotations

import os
import socket
import threading

from .config import ConfigError
from .logging import get_logger

log = get_logger(__name__)


class NotifySocketError(ConfigError):
    """NOTIFY_SOCKET holds something that is not a usable socket address."""


def _socket_address(raw: str) -> str | bytes:
    if raw.startswith("@"):
        # Abstract namespace: the name is the rest, after a NUL byte.
        if len(raw) == 1:
            raise NotifySocketError("NOTIFY_SOCKET='@' names no abstract socket")
        return b"\0" + raw[1:].encode()
    if not raw.startswith("/"):
        raise NotifySocketError(f"NOTIFY_SOCKET={raw!r} is neither an absolute path nor an '@' abstract name")
    return raw


def _watchdog_interval(environ) -> float | None:
    """Half the watchdog period in seconds, as sd_watchdog_enabled(3) advises; None when not asked for."""
    raw = environ.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None  # the watchdog is meant for another process (e.g. our parent)
    try:
        usec = int(raw)
    except ValueError:
        log.warning("watchdog_usec_invalid", value=raw)
        return None
    return usec / 2_000_000 if usec > 0 else None


class SystemdNotifier:
    """Sends READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 when running under systemd."""

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        raw = environ.get("NOTIFY_SOCKET") or None
        self.address = _socket_address(raw) if raw else None
        self.watchdog_interval = _watchdog_interval(environ) if self.address else None
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send one message of KEY=VALUE lines; True when it was handed to the socket."""
        if self.address is None:
            return False
        message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(message, self.address)
            except OSError as exc:
                if not self._warned:
                    log.warning("sd_notify_failed", socket=os.fsdecode(self.address).replace("\0", "@"),
                                error=str(exc))
                    self._warned = True
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
