"""Prometheus metrics of the daemon (MODEL_EVAL_GATE_METRICS_PORT; off by default).

Two kinds of figures, told apart in every metric's help text:

- What this daemon did since it started (counters and histograms): gates and
  their phases, verdicts by outcome and reason code, retries, failures, lease
  losses, reconnects, notifications. Sum them over daemons.
- What the queue looks like now (gauges read from PostgreSQL at scrape time,
  on a connection of the exporter's own): queue depth, the oldest due job's
  wait, running and failed jobs, connected daemons. They describe the whole
  database, so every daemon reports the same values: aggregate with max(),
  never sum(). If the database does not answer, model_eval_gate_database_up
  is 0 and those gauges are left out of that scrape.

Names follow the Prometheus conventions: the model_eval_gate_ prefix, base
units (seconds), _total on counters, and label values from closed sets (the
policy's outcomes and reason codes, the gate's phases), so the number of
series stays bounded whatever the input.
"""
from __future__ import annotations

import threading
from typing import Any

import psycopg
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import db
from .decision import REASON_OUTCOMES

PREFIX = "model_eval_gate"
# What the exporter's own connection calls itself in pg_stat_activity.
METRICS_APPLICATION = "model-eval-gate-metrics"
# A scrape must answer quickly even when the database does not.
SCRAPE_STATEMENT_TIMEOUT_MS = 2000
SCRAPE_CONNECT_TIMEOUT_SECONDS = 3

# The phases gate.py times (result["timings"]); a phase a gate skipped (a
# root version has no parent to evaluate) is simply not observed.
GATE_PHASES = ("resolve", "evaluate_candidate", "evaluate_parent", "statistics", "decide", "apply")
# From a cache hit (milliseconds) to a long sandboxed evaluation (the default
# wall limit is 30 minutes).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    600.0, 1800.0)
OUTCOMES = tuple(sorted({str(outcome) for outcome in REASON_OUTCOMES.values()}))


class MetricsUnavailable(RuntimeError):
    """The metrics endpoint could not be opened (the port is taken, the address is not ours)."""


class _QueueCollector(Collector):
    """Reads the queue's state from PostgreSQL when Prometheus scrapes."""

    def __init__(self, dsn_source):
        self._dsn_source = dsn_source  # a callable: the daemon resolves its DSN only once it runs
        self._lock = threading.Lock()  # one scrape at a time on the one connection
        self._conn: psycopg.Connection | None = None

    def describe(self):
        return []  # the families depend on the database answering: not registered up front

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            dsn = self._dsn_source()
            if not dsn:
                raise psycopg.OperationalError("the daemon has not connected to its database yet")
            self._conn = psycopg.connect(
                psycopg.conninfo.make_conninfo(dsn, connect_timeout=SCRAPE_CONNECT_TIMEOUT_SECONDS),
                autocommit=True, row_factory=psycopg.rows.dict_row, application_name=METRICS_APPLICATION)
            db.execute(self._conn, "metrics_statement_timeout", {"ms": str(SCRAPE_STATEMENT_TIMEOUT_MS)})
        return self._conn

    def collect(self):
        up = GaugeMetricFamily(f"{PREFIX}_database_up",
                               "1 if the exporter could read the queue from PostgreSQL in this scrape, else 0")
        with self._lock:
            try:
                row = db.fetch_one(self._connection(), "metrics_queue")
            except psycopg.Error:
                self.close()
                up.add_metric([], 0)
                yield up
                return
        up.add_metric([], 1)
        yield up
        gauges = (
            ("queue_depth", "Queued gate jobs in the database (all daemons), due now or waiting to retry",
             row["queued"]),
            ("queue_due_jobs", "Queued gate jobs whose run_after has passed: waiting only for a free worker",
             row["due"]),
            ("queue_oldest_due_age_seconds",
             "How long the longest-waiting due job has waited for a worker (0 when none is due)",
             row["oldest_due_age_seconds"]),
            ("running_jobs", "Gate jobs running now in the database (all daemons)", row["running"]),
            ("failed_jobs", "Gate jobs that failed for good (all daemons, ever)", row["failed"]),
            ("connected_daemons", "Daemons with a control connection to the database now", row["daemons"]),
        )
        for name, help_text, value in gauges:
            family = GaugeMetricFamily(f"{PREFIX}_{name}", help_text)
            family.add_metric([], float(value or 0))
            yield family

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


class DaemonMetrics:
    """One daemon's metrics, in a registry of its own (several daemons may share a process in tests)."""

    def __init__(self, *, workers: int, busy_workers=lambda: 0, dsn_source=lambda: None):
        # No *_created series: a restart already shows as counters dropping to
        # 0, and each _created doubles the series count for nothing a query uses.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge(f"{PREFIX}_workers", "Worker slots of this daemon", registry=r).set(workers)
        Gauge(f"{PREFIX}_busy_workers", "Worker slots of this daemon running a gate now",
              registry=r).set_function(busy_workers)
        self.gate_duration = Histogram(
            f"{PREFIX}_gate_duration_seconds",
            "Wall time of a gate this daemon ran, from claim to applied verdict, by outcome",
            ["outcome"], buckets=DURATION_BUCKETS, registry=r)
        self.phase_duration = Histogram(
            f"{PREFIX}_gate_phase_duration_seconds",
            "Wall time of each phase of a gate this daemon ran (resolve, evaluate_candidate, evaluate_parent, "
            "statistics, decide, apply)", ["phase"], buckets=DURATION_BUCKETS, registry=r)
        self.evaluation_duration = Histogram(
            f"{PREFIX}_evaluation_duration_seconds",
            "Wall time of one model's evaluation in a gate this daemon ran, by model (candidate or parent) "
            "and whether the evaluation cache served it (hit or miss)",
            ["model", "cache"], buckets=DURATION_BUCKETS, registry=r)
        self.verdicts = Counter(f"{PREFIX}_verdicts", "Verdicts this daemon applied, by outcome and reason code",
                                ["outcome", "reason_code"], registry=r)
        self.retries = Counter(f"{PREFIX}_job_retries",
                               "Gate jobs this daemon put back in the queue after an exception, to retry", registry=r)
        self.failures = Counter(f"{PREFIX}_job_failures",
                                "Gate jobs this daemon failed for good (exceptions on every attempt)", registry=r)
        self.lease_losses = Counter(f"{PREFIX}_lease_losses",
                                    "Gates this daemon abandoned because their lease expired or was taken over",
                                    registry=r)
        self.leases_expired = Counter(f"{PREFIX}_expired_leases_requeued",
                                      "Expired leases (of any daemon) this daemon's sweeps took back", registry=r)
        self.handed_back = Counter(f"{PREFIX}_jobs_handed_back",
                                   "Claimed jobs this daemon handed back unfinished (shutdown)", registry=r)
        self.reconnects = Counter(f"{PREFIX}_reconnects",
                                  "Times this daemon's control connection was re-established after being lost",
                                  registry=r)
        self.notifications_received = Counter(
            f"{PREFIX}_notifications_received", "NOTIFYs on the model_eval_gate channel this daemon received",
            registry=r)
        self.notifications_absorbed = Counter(
            f"{PREFIX}_notifications_absorbed",
            "Received NOTIFYs that asked for nothing new: the queue's own announcement of a job, a duplicate in "
            "the same batch, or one absorbed by the artifact's active job", registry=r)
        self.notifications_refused = Counter(
            f"{PREFIX}_notifications_refused",
            "Received NOTIFYs for an artifact that cannot be gated (unknown, or already decided)", registry=r)
        # Every (outcome, reason code) pair the policy can produce exists from
        # the start, at 0: rate() over a series that appears late misses its first increase.
        for reason_code, outcome in REASON_OUTCOMES.items():
            self.verdicts.labels(outcome=str(outcome), reason_code=str(reason_code))
        for outcome in OUTCOMES:
            self.gate_duration.labels(outcome=outcome)
        for phase in GATE_PHASES:
            self.phase_duration.labels(phase=phase)
        self._queue = _QueueCollector(dsn_source)
        r.register(self._queue)
        self._server = None
        self._thread = None

    # ------------------------------------------------------------ record --

    def gate_finished(self, result: dict[str, Any], seconds: float) -> None:
        """A gate whose verdict was applied: its duration, phases, evaluations and verdict."""
        outcome = str(result.get("outcome"))
        self.gate_duration.labels(outcome=outcome).observe(seconds)
        for phase, value in (result.get("timings") or {}).items():
            if phase in GATE_PHASES and isinstance(value, (int, float)):
                self.phase_duration.labels(phase=phase).observe(value)
        timings = result.get("timings") or {}
        for model, evaluation in (result.get("evaluations") or {}).items():
            value = timings.get(f"evaluate_{model}")
            if model in ("candidate", "parent") and isinstance(value, (int, float)):
                cache = "hit" if evaluation.get("cached") else "miss"
                self.evaluation_duration.labels(model=model, cache=cache).observe(value)
        self.verdicts.labels(outcome=outcome, reason_code=str(result.get("reason_code"))).inc()

    # ------------------------------------------------------------- serve --

    def serve(self, port: int, address: str) -> int:
        """Start the /metrics endpoint on a thread; returns the port (0 picks a free one)."""
        self._server, self._thread = start_http_server(port, addr=address, registry=self.registry)
        return self._server.server_address[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._queue.close()
