"""sd_notify on a real datagram socket: the notifier alone, then a real daemon."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid

import pytest
from gate_world import World
from invariants import assert_lineage_invariants
from test_worker import DaemonStarter, insert_candidate, promoted_root, wait_decided, wait_until, write_model

from model_eval_gate.sdnotify import NotifySocketError, SystemdNotifier


class DatagramCollector:
    """A bound AF_UNIX datagram socket standing in for systemd, collecting messages in a thread."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[str]:
        return [line for _, message in self.messages for line in message.split("\n")]

    def first(self, predicate) -> int | None:
        """Index (in arrival order) of the first message with a line matching predicate."""
        for index, (_, message) in enumerate(self.messages):
            if any(predicate(line) for line in message.split("\n")):
                return index
        return None

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def abstract_name():
    return f"meg-test-{uuid.uuid4().hex}"


def test_the_notifier_speaks_to_a_path_socket(tmp_path):
    path = tmp_path / "notify.sock"
    collector = DatagramCollector(str(path))
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": str(path)})
        assert notifier.enabled and notifier.watchdog_interval is None
        assert notifier.ready("idle, 0 of 1 workers busy")
        assert notifier.status("gating m1\nand more")  # a newline cannot split a STATUS line
        assert notifier.watchdog() and notifier.stopping()
        wait_until(lambda: len(collector.messages) == 4, timeout=5, what="four datagrams")
        assert [m for _, m in collector.messages] == [
            "READY=1\nSTATUS=idle, 0 of 1 workers busy", "STATUS=gating m1 and more", "WATCHDOG=1", "STOPPING=1"]
    finally:
        collector.close()


def test_the_notifier_speaks_to_an_abstract_socket(abstract_name):
    collector = DatagramCollector(b"\0" + abstract_name.encode())
    try:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + abstract_name})
        assert notifier.ready()
        wait_until(lambda: collector.messages, timeout=5, what="a datagram")
        assert collector.messages[0][1] == "READY=1"
    finally:
        collector.close()


def test_the_notifier_outside_systemd_and_its_errors(tmp_path):
    outside = SystemdNotifier({})
    assert not outside.enabled and not outside.ready() and outside.watchdog_interval is None
    ours = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier(ours).watchdog_interval == 1.5
    assert SystemdNotifier({**ours, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert SystemdNotifier({**ours, "WATCHDOG_USEC": "soon"}).watchdog_interval is None
    with pytest.raises(NotifySocketError, match="neither an absolute path"):
        SystemdNotifier({"NOTIFY_SOCKET": "relative/notify.sock"})
    with pytest.raises(NotifySocketError, match="names no abstract socket"):
        SystemdNotifier({"NOTIFY_SOCKET": "@"})
    # Nobody listening: reported as not sent, never raised.
    assert SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "absent.sock")}).ready() is False


def test_the_daemon_sends_ready_status_watchdog_and_stopping(settings, conn, tmp_path, abstract_name):
    collector = DatagramCollector(b"\0" + abstract_name.encode())
    starter = DaemonStarter(settings, tmp_path)
    try:
        world = World(settings, conn, tmp_path, n=200)
        promoted_root(world)
        daemon = starter("d1", workers=2, env={"NOTIFY_SOCKET": "@" + abstract_name, "WATCHDOG_USEC": "1000000"})
        assert daemon.matching("daemon_starting")[0]["watchdog_interval_seconds"] == 0.5
        ready = wait_until(lambda: collector.first(lambda line: line == "READY=1") is not None,
                           timeout=10, what="READY=1")
        assert ready
        assert "STATUS=idle, 0 of 2 workers busy" in collector.lines()

        write_model(settings, "observed", strength=0.95, sleep=1.0)
        insert_candidate(conn, "observed", benchmark_id=world.benchmark.id, parent="root")
        wait_until(lambda: any(line.startswith("STATUS=gating observed (job ") and line.endswith("1 of 2 workers busy")
                               for line in collector.lines()), timeout=20, what="STATUS=gating observed")
        wait_decided(conn, "observed", daemons=[daemon])
        wait_until(lambda: [line for line in collector.lines() if line.startswith("STATUS=")][-1]
                   == "STATUS=idle, 0 of 2 workers busy", timeout=10, what="STATUS back to idle")

        pings = [at for at, message in collector.messages if message == "WATCHDOG=1"]
        assert len(pings) >= 3
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) < 1.0, gaps  # every half period; systemd would act after a whole one

        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit(timeout=30) == 0
        wait_until(lambda: collector.first(lambda line: line == "STOPPING=1") is not None,
                   timeout=5, what="STOPPING=1")
        stopping = collector.first(lambda line: line == "STOPPING=1")
        assert collector.first(lambda line: line == "READY=1") < stopping
        assert "STATUS=stopping: 0 gate(s) still running" in collector.messages[stopping][1]
        assert_lineage_invariants(conn)
    finally:
        starter.kill_all()
        collector.close()
