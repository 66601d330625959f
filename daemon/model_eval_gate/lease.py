"""Keeps a claimed job's lease alive while its evaluation runs.

The heartbeat runs on its own connection in a thread: the evaluation holds
no transaction open, and a heartbeat that finds the lease gone (the sweep
reclaimed it after a stall) sets `lost`, which cancels the sandbox run so the
stale worker stops spending CPU on a result its fence would discard anyway.
"""
from __future__ import annotations

import threading

from . import db
from .config import Settings
from .logging import get_logger
from .lifecycle import Fence


class LeaseKeeper:
    def __init__(self, settings: Settings, fence: Fence, log=None):
        self.settings = settings
        self.fence = fence
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{fence.job_id}", daemon=True)
        self._log = log or get_logger(__name__, job_id=fence.job_id)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.heartbeat_seconds + 5)

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                if conn is None or conn.closed:
                    conn = db.connect(self.settings, autocommit=True, application_name="model-eval-gate-lease")
                renewed = db.fetch_one(conn, "heartbeat_job", {
                    "job_id": self.fence.job_id, "worker_id": self.fence.worker_id,
                    "attempt": self.fence.attempt, "lease_seconds": self.settings.lease_seconds,
                })
            except Exception as exc:  # a missed beat is survivable until the lease runs out
                self._log.warning("heartbeat_failed", error=str(exc))
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if renewed is None:
                self._log.warning("lease_lost", attempt=self.fence.attempt)
                self.lost.set()
                break
        if conn is not None:
            conn.close()
