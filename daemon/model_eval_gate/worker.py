"""The daemon: LISTEN, claim, lease, sweep, shutdown, sd_notify.

`model-eval-gate run` runs one Daemon: a control loop on the main thread and
`workers` worker threads, each with its own autocommit connection.

The control loop holds one connection (application_name
model-eval-gate-daemon). It LISTENs on model_eval_gate (not in poll-only
mode) and turns each notification payload, an artifact id, into a durable gate
request; sweeps every sweep_seconds (expired leases back to the queue, then
wakes the workers, which also catches jobs whose notification was missed);
proves the connection alive with a round trip every keepalive_seconds; pings
the systemd watchdog; and re-establishes a lost connection with tenacity
(exponential backoff with jitter), followed by a catch-up sweep, because
notifications sent while it was away are gone.

A worker claims the oldest runnable job with claim_next_job (one short UPDATE
... FOR UPDATE SKIP LOCKED) and runs gate.run_claimed_job, which heartbeats the
lease and applies the verdict fenced on (job, worker, attempt). No transaction
is open while eval.py runs. A crashing eval.py is a verdict (error), not a
failure, so it is never retried. An exception is: the job goes back to the
queue after an exponential backoff with the attempt counted, and fails with
the error recorded once max_attempts are spent. A lost lease drops the job;
the sweep has already given it to someone else.

SIGTERM or SIGINT: stop claiming, give running gates shutdown_grace_seconds,
then cancel their sandboxes and hand their jobs back to the queue without
counting the attempt. Exit status 0. A second signal ends the grace period.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential_jitter,
)

from . import db
from .config import ConfigError, Settings, check_sandbox_uids
from .evaluation.model_dirs import is_safe_artifact_id
from .gate import ClaimedJob, GateCancelled, GateRefused, run_claimed_job
from .lifecycle import LeaseLost, NotApplicable
from .logging import get_logger
from .metrics import DaemonMetrics, MetricsUnavailable
from .sdnotify import SystemdNotifier
from .sandbox.workdirs import remove_leftovers, work_root

CONTROL_APPLICATION = "model-eval-gate-daemon"
WORKER_APPLICATION = "model-eval-gate-worker"
PROBE_APPLICATION = "model-eval-gate-listen-probe"

# LISTEN is proven, not assumed: after every LISTEN the daemon sends a NOTIFY
# with this prefix from a second connection and waits this long for it. A
# transaction pooler (PgBouncer pool_mode = transaction) accepts LISTEN and
# then drops the notifications; the daemon then polls (every SWEEP_SECONDS)
# and says so. Every daemon ignores every daemon's probes.
LISTEN_PROBE_PREFIX = "model-eval-gate:listen-probe:"
LISTEN_PROBE_SECONDS = 3.0

# The longest the control loop waits before it looks at signals again.
CONTROL_TICK_SECONDS = 0.5
# A statement on the control connection that takes longer than
# max(this, keepalive_seconds) means the connection is dead (half-open).
MIN_CONTROL_DEADLINE_SECONDS = 2.0
RECONNECT_MAX_WAIT_SECONDS = 30.0
RETRY_MAX_DELAY_SECONDS = 3600.0
# After the grace period: how long cancelled gates get to hand their jobs back.
CANCEL_WAIT_SECONDS = 15.0
# At most this many notifications are read before they are acted upon.
NOTIFY_BATCH = 10_000

# A connection-level failure: reconnect and carry on. Anything else raised by
# a statement is that statement's problem.
CONNECTION_ERRORS = (*db.TRANSIENT_ERRORS, psycopg.InterfaceError)
CLAIMED_COLUMNS = frozenset({"id", "artifact_id", "reason", "requested_by", "attempt", "max_attempts", "parent_id"})


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _refusal(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = (diag.message_primary or str(exc)).removeprefix("model_eval_gate: ")
    return f"{message} ({diag.message_hint})" if diag.message_hint else message


class _Wakeup:
    """Wakes idle workers. The generation count makes a wake that lands between
    a worker's empty claim and its wait count, instead of being slept through."""

    def __init__(self):
        self._condition = threading.Condition()
        self._generation = 0

    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wake(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen, timeout)


def announced_job(payload: str) -> int | None:
    """The job id when payload is model_eval_gate_request's own announcement ({"job": id, ...}), else None.

    Anything else (a bare artifact id from a person or a script) is a request
    of its own: it is never mistaken for a late copy of an announcement.
    """
    text = payload.strip()
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    job = parsed.get("job") if isinstance(parsed, dict) else None
    return job if isinstance(job, int) and not isinstance(job, bool) else None


def announced_artifact(payload: str) -> str:
    """The artifact a notification is about: the announced job's, or the bare payload."""
    if announced_job(payload) is not None:
        artifact_id = json.loads(payload).get("artifact_id")
        if isinstance(artifact_id, str):
            return artifact_id
    return payload.strip()


class _NotifyTimes:
    """When the control loop received a NOTIFY for each artifact: the start of a
    claimed job's timeline (gate.run_claimed_job), so that pickup latency can be
    split into delivery and claim. Only recent receipts are kept."""

    KEEP_SECONDS = 60.0
    KEEP_AT_MOST = 1000  # a flood of distinct payloads must not grow the daemon's memory

    def __init__(self):
        self._lock = threading.Lock()
        self._received: dict[str, float] = {}  # in order of receipt

    def note(self, artifact_ids, received_at: float) -> None:
        with self._lock:
            for artifact_id in artifact_ids:
                self._received.setdefault(artifact_id, received_at)
            if len(self._received) > self.KEEP_AT_MOST:
                oldest = received_at - self.KEEP_SECONDS
                recent = [(a, t) for a, t in self._received.items() if t >= oldest]
                self._received = dict(recent[-self.KEEP_AT_MOST:])

    def take(self, artifact_id: str) -> float | None:
        with self._lock:
            received_at = self._received.pop(artifact_id, None)
        if received_at is None or time.time() - received_at > self.KEEP_SECONDS:
            return None
        return received_at


@dataclass
class _RunningGate:
    job: ClaimedJob
    cancel: threading.Event
    started: float
    timeline: dict[str, float]  # wall-clock marks so far (see gate.run_claimed_job)


class _WorkerSlot:
    """One worker thread's identity, its connection for claims and settlements, and its gates' connection.

    The gate connection is kept from one gate to the next: opening one (and
    registering pgvector's types on it) cost a fast gate about 8 ms, most of
    its set-up (benchmarks/bench_gate_overhead.py, docs/performance.md).
    """

    def __init__(self, worker_id: str, index: int = 0):
        self.worker_id = worker_id
        # Each slot runs its sandboxes as its own uid (the configured one for
        # the first slot, the uids just below it for the others): RLIMIT_NPROC
        # counts per uid, so a fork bomb in one model cannot starve another
        # model's evaluation into a spurious error verdict.
        self.uid_offset = index
        self.conn: psycopg.Connection | None = None
        self.gate_conn: psycopg.Connection | None = None

    def close(self) -> None:
        for conn in (self.conn, self.gate_conn):
            if conn is not None:
                conn.close()
        self.conn = self.gate_conn = None


def check_daemon_settings(settings: Settings) -> None:
    """Refuse timings the loops cannot work with (zero would spin, a lease must outlast a heartbeat)."""
    for name in ("sweep_seconds", "keepalive_seconds", "lease_seconds", "heartbeat_seconds"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"MODEL_EVAL_GATE_{name.upper()} must be greater than 0")
    if settings.heartbeat_seconds >= settings.lease_seconds:
        raise ConfigError("MODEL_EVAL_GATE_HEARTBEAT_SECONDS must be shorter than MODEL_EVAL_GATE_LEASE_SECONDS")
    if settings.workers < 1 or settings.max_attempts < 1:
        raise ConfigError("MODEL_EVAL_GATE_WORKERS and MODEL_EVAL_GATE_MAX_ATTEMPTS must be at least 1")
    check_sandbox_uids(settings)


class Daemon:
    """One daemon process: the control loop on the calling (main) thread, and its workers."""

    def __init__(self, settings: Settings, *, notifier: SystemdNotifier | None = None):
        check_daemon_settings(settings)
        self.settings = settings
        self.notifier = notifier or SystemdNotifier()
        self.log = get_logger("model_eval_gate.worker", daemon=settings.worker_id)
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a second signal: no more grace
        self._stop_reason: str | None = None
        self._wakeup = _Wakeup()
        self._running: dict[str, _RunningGate] = {}
        self._lock = threading.Lock()
        self._handed_back = 0
        self._pending: list[tuple[str, int]] = []  # (payload, sender pid) not yet acted upon
        self._notify_times = _NotifyTimes()
        self._threads: list[threading.Thread] = []
        self._ready = False
        self._disconnected_at: float | None = None
        self._next_watchdog = 0.0 if self.notifier.watchdog_interval else float("inf")
        self._dsn: str | None = None
        self._gate_settings = settings
        self._control_deadline = max(MIN_CONTROL_DEADLINE_SECONDS, settings.keepalive_seconds)
        self.metrics = DaemonMetrics(workers=settings.workers, busy_workers=lambda: len(self._running),
                                     dsn_source=lambda: self._dsn)
        # Whether this session listens: not in poll-only mode, nor after a failed probe.
        self._listening = False

    # ----------------------------------------------------------------- run --

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the process exit status."""
        previous = self._install_signal_handlers()
        s = self.settings
        self.log.info(
            "daemon_starting", workers=s.workers, poll_only=s.poll_only, pooler=s.pooler, lease_seconds=s.lease_seconds,
            heartbeat_seconds=s.heartbeat_seconds, sweep_seconds=s.sweep_seconds,
            keepalive_seconds=s.keepalive_seconds, max_attempts=s.max_attempts,
            shutdown_grace_seconds=s.shutdown_grace_seconds, n_resamples=s.n_resamples,
            allow_unsandboxed=s.allow_unsandboxed, artifact_root=str(s.resolved_artifact_root),
            embedded_database=not s.dsn, systemd_notify=self.notifier.enabled,
            watchdog_interval_seconds=self.notifier.watchdog_interval,
        )
        exit_code = 0
        self._remove_leftovers()
        self._log_memory_measurement()
        try:
            # The embedded server (no DSN configured) is started once, here;
            # every connection, the gates' included, then uses its address.
            self._dsn = db.resolve_dsn(s)
            self._gate_settings = s.with_(dsn=self._dsn)
            self._serve_metrics()
            self._control_loop()
        except MetricsUnavailable as exc:
            self.log.error("metrics_unavailable", error=str(exc),
                           hint="choose a free MODEL_EVAL_GATE_METRICS_PORT (or unset it to turn the metrics off)")
            exit_code = 1
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            self.log.error("schema_missing", error=_one_line(exc),
                           hint="apply the migrations first: model-eval-gate migrate")
            exit_code = 1
        except Exception as exc:
            self.log.exception("daemon_crashed", error=_one_line(exc))
            exit_code = 1
        finally:
            if exit_code:
                self._stop_reason = self._stop_reason or "error"
                self._stopping.set()
                self._hurry.set()
            self._shut_down(exit_code)
            self.metrics.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return exit_code

    def _serve_metrics(self) -> None:
        if self.settings.metrics_port is None:
            return
        try:
            port = self.metrics.serve(self.settings.metrics_port, self.settings.metrics_address)
        except OSError as exc:
            raise MetricsUnavailable(f"cannot listen on {self.settings.metrics_address}:{self.settings.metrics_port}: "
                                     f"{exc.strerror or exc}") from exc
        self.log.info("metrics_listening", address=self.settings.metrics_address, port=port,
                      url=f"http://{self.settings.metrics_address}:{port}/metrics")

    def _remove_leftovers(self) -> None:
        """What earlier evaluating processes killed mid-run left under the work root (sandbox/workdirs.py)."""
        try:
            removed = remove_leftovers(self.settings.work_dir)
        except OSError as exc:
            self.log.warning("leftovers_not_removed", error=_one_line(exc),
                             work_root=str(work_root(self.settings.work_dir)))
            return
        if removed:
            self.log.warning("leftovers_removed", directories=removed,
                             why="a process that evaluated here was killed mid-run")

    def _log_memory_measurement(self) -> None:
        """Once at start: whether each evaluation gets a cgroup of its own, or only a sampled bound."""
        from .sandbox import memory_measurement

        scope, why = memory_measurement()
        if scope == "cgroup":
            self.log.info("sandbox_memory", memory_scope=scope, detail=why)
        else:
            self.log.warning("sandbox_memory", memory_scope=scope, detail=f"no delegated cgroup: {why}",
                             consequence="each evaluation's memory (memfd and tmpfs pages included) is bounded "
                                         "by sampling its process tree every 0.1 s, not by the kernel; "
                                         "see docs/sandbox.md (cgroups)")

    def request_stop(self, reason: str) -> None:
        """What SIGTERM does; safe from a signal handler (it only sets events)."""
        if self._stopping.is_set():
            self._hurry.set()
            return
        self._stop_reason = reason
        self._stopping.set()

    def _install_signal_handlers(self) -> dict:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda n, _f: self.request_stop(signal.Signals(n).name))
        return previous

    # -------------------------------------------------------- control loop --

    def _control_loop(self) -> None:
        while not self._stopping.is_set():
            conn = self._connect(CONTROL_APPLICATION, sleep=self._sleep_alive)
            if conn is None:
                return
            try:
                self._open_session(conn)
                self._serve_session(conn)
            except CONNECTION_ERRORS as exc:
                if self._stopping.is_set():
                    return
                self._disconnected_at = time.monotonic()
                self.log.warning("connection_lost", connection="control", error=_one_line(exc))
            finally:
                conn.close()

    def _open_session(self, conn: psycopg.Connection) -> None:
        self._listening = False
        if self.settings.pooler == "none" and not self._ready and db.behind_a_pooler(conn):
            self.log.warning(
                "pooler_detected", pooler_setting=self.settings.pooler,
                consequence="a connection pooler answers the daemon's connections (their start-up pid is not the "
                            "server session's): prepared statements are off for them, and LISTEN is probed",
                hint="set MODEL_EVAL_GATE_POOLER=transaction (or session) to say so")
        if not self.settings.poll_only:
            with self._deadline(conn, "listen_gate_channel"):
                db.execute(conn, "listen_gate_channel")
            self._listening = self._listen_works(conn)
        self._act_on_notifications(conn)
        requeued = self._sweep(conn)  # catch up: notifications sent while we were away are gone
        if not self._ready:
            self._start_workers()
            self._ready = True
            self.notifier.ready(self._status_text())
            self.log.info("ready", listening=self._listening, channel="model_eval_gate",
                          requeued_expired=requeued)
        else:
            down = time.monotonic() - self._disconnected_at if self._disconnected_at else None
            self.metrics.reconnects.inc()
            self.log.info("reconnected", listening=self._listening, requeued_expired=requeued,
                          down_seconds=round(down, 3) if down is not None else None)
            self._publish_status()

    def _serve_session(self, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        next_sweep = now + self.settings.sweep_seconds
        next_round_trip = now + self.settings.keepalive_seconds
        while not self._stopping.is_set():
            self._keep_watchdog()
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(conn)
                next_sweep = time.monotonic() + self.settings.sweep_seconds
            if now >= next_round_trip:
                self._round_trip(conn)
                next_round_trip = time.monotonic() + self.settings.keepalive_seconds
            wake_at = min(next_sweep, next_round_trip, self._next_watchdog, now + CONTROL_TICK_SECONDS)
            timeout = max(0.0, wake_at - time.monotonic())
            if not self._listening:
                self._stopping.wait(timeout)
                continue
            received = [(n.payload, n.pid) for n in conn.notifies(timeout=timeout, stop_after=1)]
            if received:
                self._notify_times.note([announced_artifact(received[0][0])], time.time())
            while received and len(received) < NOTIFY_BATCH:
                more = [(n.payload, n.pid) for n in conn.notifies(timeout=0)]
                if not more:
                    break
                self._notify_times.note([announced_artifact(payload) for payload, _ in more], time.time())
                received += more
            if received:
                self.metrics.notifications_received.inc(len(received))
                self._pending.extend(received)
                self._act_on_notifications(conn)

    def _listen_works(self, conn: psycopg.Connection) -> bool:
        """Prove that notifications reach this connection: NOTIFY from a second connection, wait for it.

        From a second connection, not this one: a session's own NOTIFY comes
        back to it even through a transaction pooler (when both statements
        land on the same server connection), which would prove nothing.
        Notifications that arrive meanwhile are kept for _act_on_notifications.
        """
        import uuid

        payload = f"{LISTEN_PROBE_PREFIX}{self.settings.worker_id}:{uuid.uuid4().hex}"
        try:
            with db.connect(self._dsn, autocommit=True, application_name=PROBE_APPLICATION,
                            pooler=self.settings.pooler) as probe:
                db.execute(probe, "notify_gate_channel", {"payload": payload})
        except CONNECTION_ERRORS as exc:
            self.log.warning("listen_probe_failed", error=_one_line(exc),
                             consequence="polling this session; the next reconnect probes again")
            return False
        started = time.monotonic()
        deadline = started + LISTEN_PROBE_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            for notification in conn.notifies(timeout=left, stop_after=1):
                if notification.payload == payload:
                    self.log.info("listen_proven", seconds=round(time.monotonic() - started, 4))
                    return True
                self._pending.append((notification.payload, notification.pid))
        self.log.warning(
            "listen_unavailable", probe_seconds=LISTEN_PROBE_SECONDS, pooler=self.settings.pooler,
            sweep_seconds=self.settings.sweep_seconds,
            consequence=f"notifications do not reach this connection (a transaction pooler drops them); polling "
                        f"every {self.settings.sweep_seconds:g} s instead, and a bare NOTIFY is not seen",
            hint="point the daemon at PostgreSQL directly or through a session pooler, or set "
                 "MODEL_EVAL_GATE_POLL_ONLY=1 and a short MODEL_EVAL_GATE_SWEEP_SECONDS")
        return False

    def _act_on_notifications(self, conn: psycopg.Connection) -> None:
        """Turn received payloads into gate requests; what a lost connection interrupts is kept for the next one."""
        if not self._pending:
            return
        first_sender: dict[str, int] = {}
        probes = 0
        for payload, pid in self._pending:
            if payload.startswith(LISTEN_PROBE_PREFIX):
                probes += 1  # some daemon proving its LISTEN (perhaps this one, late)
                continue
            if announced_job(payload) is None:  # the queue's own announcements only wake the workers
                first_sender.setdefault(payload.strip(), pid)
        # Copies within one batch, and the queue's own announcements, ask for
        # nothing new (what a lost connection leaves in _pending is already
        # distinct, so none is counted twice); probes are nobody's request.
        self.metrics.notifications_absorbed.inc(len(self._pending) - probes - len(first_sender))
        todo = deque(first_sender.items())
        self._pending.clear()
        try:
            while todo:
                artifact_id, pid = todo[0]
                if artifact_id:  # an empty payload only asks the workers to look
                    self._request_from_notify(conn, artifact_id, pid)
                todo.popleft()
        finally:
            self._pending[:0] = todo
        self._wakeup.wake()

    def _request_from_notify(self, conn: psycopg.Connection, artifact_id: str, sender_pid: int) -> None:
        log = self.log.bind(candidate_id=artifact_id)
        if not is_safe_artifact_id(artifact_id):  # the database refuses it too; say why here
            log.warning("notify_refused", reason="the payload is not one safe artifact id (path component)",
                        sender_pid=sender_pid)
            return
        try:
            with self._deadline(conn, "request_gate_for_notify"):
                row = db.fetch_one(conn, "request_gate_for_notify", {
                    "artifact_id": artifact_id, "requested_by": f"notify (backend {sender_pid})",
                })
        except CONNECTION_ERRORS:
            raise
        except (psycopg.errors.CheckViolation, psycopg.errors.NoDataFound) as exc:
            self.metrics.notifications_refused.inc()
            log.warning("notify_refused", reason=_refusal(exc), sender_pid=sender_pid)
            return
        except psycopg.Error as exc:  # e.g. a payload no artifact id can be; the loop carries on
            log.error("notify_request_failed", error=_one_line(exc), sender_pid=sender_pid)
            return
        if row["absorbed_by_status"] is None:
            log.info("gate_requested", job_id=row["job_id"], via="notify", sender_pid=sender_pid)
        else:
            self.metrics.notifications_absorbed.inc()
            log.debug("notify_absorbed", job_id=row["job_id"], job_status=row["absorbed_by_status"])

    def _sweep(self, conn: psycopg.Connection) -> int:
        with self._deadline(conn, "requeue_expired_leases"):
            expired = db.fetch_all(conn, "requeue_expired_leases")
        self.metrics.leases_expired.inc(len(expired))
        for row in expired:
            self.log.warning("lease_expired", candidate_id=row["artifact_id"], job_id=row["id"],
                             attempt=row["attempt"], job_status=row["status"])
        self._wakeup.wake()
        return len(expired)

    def _round_trip(self, conn: psycopg.Connection) -> None:
        """Proof of life: while the connection only waits for notifications, a
        half-open one raises no error, so it is made to answer something."""
        with self._deadline(conn, "round_trip"):
            db.fetch_one(conn, "round_trip")

    @contextmanager
    def _deadline(self, conn: psycopg.Connection, statement: str):
        """Sever the control connection if the statement inside outlives the deadline.

        The server of a half-open connection never answers, and the kernel
        gives up on unacknowledged data only after many minutes; this turns
        that silence into the connection error the control loop recovers from.
        """
        severed = threading.Event()
        timer = threading.Timer(self._control_deadline, self._sever, (conn, severed))
        timer.daemon = True
        timer.start()
        try:
            yield
        except CONNECTION_ERRORS:
            if severed.is_set():
                self.log.warning("control_connection_unresponsive", statement=statement,
                                 deadline_seconds=self._control_deadline)
            raise
        finally:
            timer.cancel()

    @staticmethod
    def _sever(conn: psycopg.Connection, severed: threading.Event) -> None:
        # shutdown(2) on the shared socket wakes the thread blocked on it with
        # an EOF, which psycopg reports as a lost connection.
        severed.set()
        try:
            duplicate = os.dup(conn.pgconn.socket)
        except (OSError, psycopg.Error):
            return
        with socket.socket(fileno=duplicate) as sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---------------------------------------------------------- connecting --

    def _connect(self, application_name: str, *, sleep: Callable[[float], object]) -> psycopg.Connection | None:
        """Connect, retrying with exponential backoff and jitter until it works or the daemon stops."""
        def log_retry(state) -> None:
            self.log.warning("connect_failed", connection=application_name, attempt=state.attempt_number,
                             retry_in_seconds=round(state.next_action.sleep, 3),
                             error=_one_line(state.outcome.exception()))

        retrying = Retrying(
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            wait=wait_exponential_jitter(initial=0.2, max=RECONNECT_MAX_WAIT_SECONDS),
            stop=stop_when_event_set(self._stopping),
            sleep=sleep, before_sleep=log_retry, reraise=True,
        )
        try:
            return retrying(db.connect, self._dsn, autocommit=True, application_name=application_name,
                            pooler=self.settings.pooler)
        except CONNECTION_ERRORS:
            if self._stopping.is_set():
                return None
            raise

    def _sleep_alive(self, seconds: float) -> None:
        """Sleep on the main thread while keeping the watchdog fed; a stop cuts it short."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set():
            self._keep_watchdog()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._stopping.wait(min(remaining, CONTROL_TICK_SECONDS, max(0.0, self._next_watchdog - time.monotonic())))

    def _keep_watchdog(self) -> None:
        if time.monotonic() >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = time.monotonic() + self.notifier.watchdog_interval

    # ------------------------------------------------------------- workers --

    def _start_workers(self) -> None:
        for index in range(1, self.settings.workers + 1):
            slot = _WorkerSlot(f"{self.settings.worker_id}/w{index}", index - 1)
            thread = threading.Thread(target=self._worker_main, args=(slot,), name=f"gate-worker-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _worker_main(self, slot: _WorkerSlot) -> None:
        log = self.log.bind(worker=slot.worker_id)
        failures = 0
        try:
            while not self._stopping.is_set():
                seen = self._wakeup.generation()
                try:
                    row = self._claim(slot)
                except Exception as exc:  # the thread must outlive any database trouble
                    slot.close()
                    failures += 1
                    delay = self._backoff(failures, base=0.5, cap=RECONNECT_MAX_WAIT_SECONDS)
                    log.warning("claim_failed", error=_one_line(exc), retry_in_seconds=round(delay, 3))
                    self._stopping.wait(delay)
                    continue
                claimed_at = time.time()  # autocommit: the claim is committed once it returns
                failures = 0
                if row is None:
                    self._wakeup.wait(seen, timeout=self.settings.sweep_seconds)
                    continue
                self._run_job(slot, row, claimed_at)
        except Exception as exc:  # a bug in this loop: say so loudly rather than die silently
            log.exception("worker_crashed", error=_one_line(exc))
            self.request_stop("worker_crashed")
        finally:
            slot.close()

    def _claim(self, slot: _WorkerSlot) -> dict | None:
        if slot.conn is None or slot.conn.closed:
            slot.conn = self._connect(WORKER_APPLICATION, sleep=self._stopping.wait)
            if slot.conn is None:  # stopping
                return None
        if self._stopping.is_set():
            return None
        row = db.fetch_one(slot.conn, "claim_next_job", {
            "worker_id": slot.worker_id, "lease_seconds": self.settings.lease_seconds,
            "max_attempts": self.settings.max_attempts,
            "capabilities": list(self.settings.worker_capabilities),
        })
        if row is not None and not CLAIMED_COLUMNS <= row.keys():  # another statement's rows
            raise db.out_of_step(slot.conn, "claim_next_job", f"rows with the columns {sorted(row)}")
        return row

    def _run_job(self, slot: _WorkerSlot, row: dict, claimed_at: float) -> None:
        job = ClaimedJob(row["id"], row["artifact_id"], row["attempt"], slot.worker_id, row["reason"])
        timeline = {"claimed": round(claimed_at, 6)}
        notified_at = self._notify_times.take(job.artifact_id)
        if notified_at is not None:
            timeline = {"notified": round(notified_at, 6), **timeline}
        # parent_id starts as the declared parent; the gate rebinds it to the
        # version actually compared against (the lineage head).
        log = self.log.bind(candidate_id=job.artifact_id, parent_id=row["parent_id"], job_id=job.job_id,
                            worker=slot.worker_id, attempt=job.attempt)
        if self._stopping.is_set():
            self._hand_back(slot, log, job, why="claimed just as the daemon began to stop")
            return
        log.info("claimed", reason=row["reason"], requested_by=row["requested_by"], max_attempts=row["max_attempts"])
        running = _RunningGate(job, threading.Event(), time.monotonic(), timeline)
        with self._lock:
            self._running[slot.worker_id] = running
        self._publish_status()
        try:
            self._gate(slot, log, running, row["max_attempts"])
        finally:
            with self._lock:
                self._running.pop(slot.worker_id, None)
            self._publish_status()

    def _gate(self, slot: _WorkerSlot, log, running: _RunningGate, max_attempts: int) -> None:
        job = running.job
        try:
            settings = self._gate_settings.with_(sandbox_uid=self._gate_settings.sandbox_uid - slot.uid_offset)
            if slot.gate_conn is None or slot.gate_conn.closed:
                slot.gate_conn = db.connect(self._dsn, autocommit=True, pooler=self.settings.pooler)
            result = run_claimed_job(settings, job, cancel=running.cancel, log=log, timeline=running.timeline,
                                     conn=slot.gate_conn)
        except LeaseLost as exc:
            # The sweep requeued the job when the lease ran out; the fence made
            # sure nothing of ours was written.
            self.metrics.lease_losses.inc()
            log.warning("lease_lost", error=str(exc))
        except GateCancelled as exc:
            self._hand_back(slot, log, job, why=str(exc))
        except (GateRefused, NotApplicable) as exc:
            # Deterministic: the version was decided meanwhile (e.g. force-promoted).
            if self._settle(slot, log, "cancel_claimed_job", job, error=f"nothing to gate: {exc}"):
                log.warning("job_refused", reason=str(exc))
        except Exception as exc:
            if running.cancel.is_set():  # broken by the shutdown's cancellation, not by itself
                self._hand_back(slot, log, job, why=f"cancelled at shutdown ({_one_line(exc)})")
            elif db.is_connection_loss(exc):
                # A database outage is not the model's attempt: back to the
                # queue uncounted. An evaluation that finished meanwhile is
                # kept (evaluate._UNSTORED) and not run again.
                if slot.gate_conn is not None:
                    slot.gate_conn.close()
                    slot.gate_conn = None
                delay = self._backoff(1, base=self.settings.retry_base_seconds, cap=RECONNECT_MAX_WAIT_SECONDS)
                if self._settle(slot, log, "release_job", job, delay_seconds=delay, count_attempt=False,
                                error=f"database connection lost: {_one_line(exc)}"):
                    log.warning("database_unavailable", error=_one_line(exc), retry_in_seconds=round(delay, 3),
                                consequence="the job is back in the queue; the attempt is not counted")
            else:
                self._retry_or_fail(slot, log, job, max_attempts, exc)
        else:
            self.metrics.gate_finished(result, time.monotonic() - running.started)
            log.info("job_done", parent_id=result.get("compared_against"), outcome=result.get("outcome"),
                     reason_code=result.get("reason_code"), applied=result.get("applied"),
                     head_moved=result.get("head_moved"), seconds=round(time.monotonic() - running.started, 3),
                     timeline=result.get("timeline"))

    def _retry_or_fail(self, slot: _WorkerSlot, log, job: ClaimedJob, max_attempts: int, exc: Exception) -> None:
        error = _one_line(exc)
        if job.attempt >= max_attempts:
            if self._settle(slot, log, "fail_job", job, error=error):
                self.metrics.failures.inc()
                log.error("job_failed", error=error, attempts=job.attempt, exc_info=exc)
            return
        delay = self._backoff(job.attempt, base=self.settings.retry_base_seconds, cap=RETRY_MAX_DELAY_SECONDS)
        if self._settle(slot, log, "release_job", job, delay_seconds=delay, count_attempt=True, error=error):
            self.metrics.retries.inc()
            log.warning("retry_scheduled", error=error, retry_in_seconds=round(delay, 3),
                        attempts_left=max_attempts - job.attempt, exc_info=exc)

    def _hand_back(self, slot: _WorkerSlot, log, job: ClaimedJob, *, why: str) -> None:
        if self._settle(slot, log, "release_job", job, delay_seconds=0, count_attempt=False,
                        error=f"handed back: {why}"):
            with self._lock:
                self._handed_back += 1
            self.metrics.handed_back.inc()
            log.info("handed_back", why=why)

    def _settle(self, slot: _WorkerSlot, log, query: str, job: ClaimedJob, **params) -> bool:
        """Write a claimed job's fate (fenced on job, worker, attempt), through reconnects.

        When even that fails, the job stays running until its lease expires
        and any daemon's sweep requeues it; nothing is lost either way.
        """
        params = {"job_id": job.job_id, "worker_id": job.worker_id, "attempt": job.attempt, **params}
        retrying = Retrying(
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            wait=wait_exponential_jitter(initial=0.2, max=5.0),
            stop=stop_after_delay(max(5.0, min(self.settings.lease_seconds, 15.0))),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        if slot.conn is None or slot.conn.closed:
                            slot.conn = db.connect(self._dsn, autocommit=True, application_name=WORKER_APPLICATION,
                                                   pooler=self.settings.pooler)
                        row = db.fetch_one(slot.conn, query, params)
                    except CONNECTION_ERRORS:
                        slot.close()
                        raise
        except Exception as exc:
            log.error("settle_failed", query=query, error=_one_line(exc),
                      consequence="the job stays running until its lease expires; the sweep then requeues it")
            return False
        if row is None:
            log.warning("settle_refused", query=query,
                        consequence="the job is no longer held by this worker (its lease expired)")
            return False
        return True

    @staticmethod
    def _backoff(attempt: int, *, base: float, cap: float) -> float:
        """Exponential in the attempt, with jitter so that a herd of failures spreads out."""
        return min(cap, base * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0)

    # -------------------------------------------------------------- status --

    def _status_text(self) -> str:
        with self._lock:
            running = sorted(self._running.values(), key=lambda r: r.started)
        workers = self.settings.workers
        if self._stopping.is_set():
            return f"stopping: {len(running)} gate(s) still running"
        if not running:
            return f"idle, 0 of {workers} workers busy"
        shown = ", ".join(f"{r.job.artifact_id} (job {r.job.job_id})" for r in running[:3])
        more = f" and {len(running) - 3} more" if len(running) > 3 else ""
        return f"gating {shown}{more}; {len(running)} of {workers} workers busy"

    def _publish_status(self) -> None:
        self.notifier.status(self._status_text())

    # ------------------------------------------------------------ shutdown --

    def _shut_down(self, exit_code: int) -> None:
        self._wakeup.wake()  # idle workers see the stop and leave
        with self._lock:
            running = list(self._running.values())
        self.notifier.stopping(self._status_text())
        self.log.info("shutdown_started", reason=self._stop_reason, running_jobs=[r.job.job_id for r in running],
                      grace_seconds=self.settings.shutdown_grace_seconds)
        self._join_workers(time.monotonic() + self.settings.shutdown_grace_seconds, interruptible=True)
        with self._lock:
            leftover = list(self._running.values())
        if leftover:
            self.log.warning("cancelling_gates", job_ids=[r.job.job_id for r in leftover],
                             candidate_ids=[r.job.artifact_id for r in leftover])
            for gate in leftover:
                gate.cancel.set()
        self._join_workers(time.monotonic() + CANCEL_WAIT_SECONDS, interruptible=False)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            self.log.error("shutdown_incomplete", threads=alive,
                           consequence="their jobs stay running until the leases expire; the sweep then requeues them")
        self.log.info("shutdown", reason=self._stop_reason, handed_back=self._handed_back,
                      finished_in_grace=len(running) - len(leftover), exit_code=exit_code)
        self.notifier.close()

    def _join_workers(self, deadline: float, *, interruptible: bool) -> None:
        while any(t.is_alive() for t in self._threads):
            if time.monotonic() >= deadline or (interruptible and self._hurry.is_set()):
                return
            self._keep_watchdog()
            for thread in self._threads:
                thread.join(timeout=0.05)


def run_daemon(settings: Settings) -> int:
    """`model-eval-gate run`: serve until SIGTERM/SIGINT; returns the exit status
    (0 after a signal, 1 after an error it cannot wait out, 2 for bad configuration)."""
    try:
        daemon = Daemon(settings)
    except ConfigError as exc:
        get_logger("model_eval_gate.worker").error("configuration_error", error=str(exc))
        return 2
    return daemon.run()
