"""Does the job queue stay fast as history grows, and how does it compare with a peer?  Prints figures.

    PYTHONPATH=daemon python benchmarks/bench_queue.py [--cycles 400] [--jobs 4000]

The peer is PgQueuer with asyncpg, its primary driver, installed for this
benchmark only (neither is a dependency of model-eval-gate):

    pip install pgqueuer asyncpg    # into the same environment; without them that part is skipped

(PgQueuer's psycopg driver drained fewer than 200 no-op jobs per second here,
whatever the batch; asyncpg is what PgQueuer recommends, so that is the peer.)

1. Queue scale.  Two scratch databases on one server, one holding 1,000 and
   one 1,000,000 finished jobs in gate_jobs (each loaded with one INSERT ...
   SELECT generate_series, then VACUUM ANALYZE).  The same cycle runs in both,
   alternating between them: queue one job (not timed), then claim it with
   the daemon's claim_next_job and finish it with fence_and_finish_job, the
   two statements a gate costs the queue.  Medians and 95th percentiles, and
   the large/small ratio of the cycle's median.

2. Throughput of claim-and-complete with a no-op in-process evaluation, 1 to
   4 workers (threads, one connection each, as the daemon runs them), over
   --jobs queued jobs: jobs per second until the queue is empty.  Next to it,
   in the same run and on the same server, PgQueuer draining the same number
   of no-op jobs with 1 to 4 QueueManagers (one asyncpg connection each, in
   one process and event loop, as the gate's workers are threads of one
   process), with its default dequeue batch of 10 and with a batch of 1 (one
   job per claim, as the gate claims).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_database import database_server, scratch_database, server_description  # noqa: E402

from model_eval_gate import db  # noqa: E402

HISTORY_SIZES = (1_000, 1_000_000)
RATIO_TARGET = 1.5
QUEUE_ARTIFACTS = 64  # artifacts the measured jobs cycle through (one active job per artifact)
WORKER_COUNTS = (1, 2, 3, 4)
CLAIM = {"worker_id": "bench/w1", "lease_seconds": 60, "max_attempts": 3, "capabilities": []}


def load_history(dsn: str, finished_jobs: int) -> float:
    """Artifacts, then `finished_jobs` done jobs spread over 1,000 of them; returns the seconds it took."""
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO artifacts (id, artifact_type, title) "
                     "SELECT 'history-' || g, 'model', 'history ' || g FROM generate_series(0, 999) g")
        conn.execute("INSERT INTO artifacts (id, artifact_type, title) "
                     "SELECT 'queued-' || g, 'model', 'queued ' || g FROM generate_series(0, %s) g",
                     (QUEUE_ARTIFACTS - 1,))
        conn.execute(
            "INSERT INTO gate_jobs (artifact_id, reason, status, attempt, worker_id, created_at, started_at, "
            "finished_at, outcome, result) "
            "SELECT 'history-' || (g %% 1000), 'registered', 'done', 1, 'old/w1', "
            "now() - make_interval(secs => %(n)s - g), now() - make_interval(secs => %(n)s - g), "
            "now() - make_interval(secs => %(n)s - g), 'reject', "
            "jsonb_build_object('outcome', 'reject', 'reason_code', 'ci_includes_zero', 'n_resamples', 1000) "
            "FROM generate_series(1, %(n)s) g", {"n": finished_jobs})
        conn.execute("VACUUM ANALYZE gate_jobs")
        conn.execute("VACUUM ANALYZE artifacts")
    return time.perf_counter() - start


class QueueCycle:
    """Queue a job (untimed), then time claim_next_job and fence_and_finish_job on one connection."""

    def __init__(self, dsn: str):
        self.conn = db.connect(dsn, autocommit=True)
        self.turn = 0
        self.samples: dict[str, list[float]] = {"claim": [], "finish": [], "cycle": []}

    def run_once(self) -> None:
        artifact_id = f"queued-{self.turn % QUEUE_ARTIFACTS}"
        self.turn += 1
        self.conn.execute("INSERT INTO gate_jobs (artifact_id, reason) VALUES (%s, 'bench')", (artifact_id,))
        start = time.perf_counter()
        row = db.fetch_one(self.conn, "claim_next_job", CLAIM)
        claimed = time.perf_counter()
        finished = db.fetch_one(self.conn, "fence_and_finish_job", {
            "job_id": row["id"], "worker_id": CLAIM["worker_id"], "attempt": row["attempt"], "status": "done",
            "outcome": "reject", "error": None, "result": '{"outcome": "reject"}'})
        end = time.perf_counter()
        if row["artifact_id"] != artifact_id or finished is None:
            raise RuntimeError(f"the cycle claimed {row['artifact_id']} (wanted {artifact_id}), finished={finished}")
        self.samples["claim"].append(claimed - start)
        self.samples["finish"].append(end - claimed)
        self.samples["cycle"].append(end - start)

    def close(self) -> None:
        self.conn.close()


def ms(values: list[float], q: float | None = None) -> float:
    if q is None:
        return statistics.median(values) * 1000
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


def queue_scale(admin: str, cycles: int) -> None:
    with scratch_database("meg-bench-queue-small", admin=admin) as small, \
            scratch_database("meg-bench-queue-large", admin=admin) as large:
        print(server_description(small))
        loaded = {size: load_history(dsn, size) for size, dsn in zip(HISTORY_SIZES, (small, large))}
        runs = {size: QueueCycle(dsn) for size, dsn in zip(HISTORY_SIZES, (small, large))}
        try:
            for _ in range(20):  # warm: connections, prepared statements, caches
                for run in runs.values():
                    run.run_once()
            for run in runs.values():
                run.samples = {name: [] for name in run.samples}
            for _ in range(cycles):
                for run in runs.values():
                    run.run_once()
            plans = {size: "; ".join(r["QUERY PLAN"].strip().removeprefix("-> ").split("  (")[0]
                                     for r in run.conn.execute("EXPLAIN " + db.query("claim_next_job"), CLAIM,
                                                               prepare=False).fetchall()
                                     if "Scan" in r["QUERY PLAN"]) for size, run in runs.items()}
        finally:
            for run in runs.values():
                run.close()
    print(f"\n1. queue scale: claim_next_job + fence_and_finish_job, {cycles} cycles per size, alternating")
    print(f"{'finished jobs':>14}{'load s':>8}{'claim med':>11}{'claim p95':>11}{'finish med':>12}"
          f"{'cycle med':>11}{'cycle p95':>11}   (ms)")
    for size, run in runs.items():
        s = run.samples
        print(f"{size:>14,}{loaded[size]:8.1f}{ms(s['claim']):11.3f}{ms(s['claim'], 0.95):11.3f}"
              f"{ms(s['finish']):12.3f}{ms(s['cycle']):11.3f}{ms(s['cycle'], 0.95):11.3f}")
    small_run, large_run = (runs[size] for size in HISTORY_SIZES)
    ratio = ms(large_run.samples["cycle"]) / ms(small_run.samples["cycle"])
    claim_ratio = ms(large_run.samples["claim"]) / ms(small_run.samples["claim"])
    print(f"claim plan with 1,000,000 finished jobs: {plans[HISTORY_SIZES[-1]].strip()}")
    print(f"ratio 1,000,000 / 1,000: cycle {ratio:.2f}x, claim alone {claim_ratio:.2f}x; "
          f"target under {RATIO_TARGET}: {'met' if ratio < RATIO_TARGET else 'NOT met'}")


def fill_gate_queue(dsn: str, jobs: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE gate_jobs")
        conn.execute("DELETE FROM artifacts WHERE id LIKE 'throughput-%%'")
        conn.execute("INSERT INTO artifacts (id, artifact_type, title) "
                     "SELECT 'throughput-' || g, 'model', 'throughput ' || g FROM generate_series(1, %s) g", (jobs,))
        conn.execute("INSERT INTO gate_jobs (artifact_id, reason) "
                     "SELECT 'throughput-' || g, 'bench' FROM generate_series(1, %s) g ORDER BY g", (jobs,))
        conn.execute("VACUUM ANALYZE gate_jobs")


def gate_queue_throughput(dsn: str, jobs: int, workers: int) -> float:
    """Jobs per second: `workers` threads claiming and finishing (no-op evaluation) until the queue is empty."""
    fill_gate_queue(dsn, jobs)
    connections = [db.connect(dsn, autocommit=True) for _ in range(workers)]
    done = [0] * workers
    failures: list[BaseException] = []
    start_line = threading.Barrier(workers + 1)

    def work(index: int) -> None:
        conn, claim = connections[index], {**CLAIM, "worker_id": f"bench/w{index + 1}"}
        try:
            start_line.wait()
            while (row := db.fetch_one(conn, "claim_next_job", claim)) is not None:
                pass  # the evaluation: nothing
                db.fetch_one(conn, "fence_and_finish_job", {
                    "job_id": row["id"], "worker_id": claim["worker_id"], "attempt": row["attempt"],
                    "status": "done", "outcome": "reject", "error": None, "result": '{"outcome": "reject"}'})
                done[index] += 1
        except BaseException as exc:  # reported below, after every thread has stopped
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for conn in connections:
        conn.close()
    if failures:
        raise failures[0]
    if sum(done) != jobs:
        raise RuntimeError(f"{sum(done)} of {jobs} jobs were completed")
    return jobs / elapsed


def pgqueuer_throughput(dsn: str, jobs: int, workers: int, batch_size: int) -> float:
    """Jobs per second: `workers` PgQueuer QueueManagers draining `jobs` no-op jobs."""
    from pgqueuer import AsyncpgDriver, QueueManager, Queries
    from pgqueuer.types import QueueExecutionMode

    async def run() -> float:
        admin = await asyncpg_connect(dsn)
        queries = Queries(AsyncpgDriver(admin))
        await queries.clear_queue()
        await queries.clear_queue_log()
        for start in range(0, jobs, 1000):
            count = min(1000, jobs - start)
            await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
        completed = 0
        managers, connections = [], []
        for _ in range(workers):
            connection = await asyncpg_connect(dsn)
            manager = QueueManager(Queries(AsyncpgDriver(connection)))

            @manager.entrypoint("noop")
            async def noop(job) -> None:
                nonlocal completed
                completed += 1  # the evaluation: nothing

            managers.append(manager)
            connections.append(connection)
        start = time.perf_counter()
        await asyncio.gather(*(m.run(dequeue_timeout=timedelta(seconds=1), batch_size=batch_size,
                                     mode=QueueExecutionMode.drain) for m in managers))
        elapsed = time.perf_counter() - start
        for connection in (*connections, admin):
            await connection.close()
        if completed != jobs:
            raise RuntimeError(f"PgQueuer completed {completed} of {jobs} jobs")
        return jobs / elapsed

    return asyncio.run(run())


async def asyncpg_connect(dsn: str):
    import asyncpg

    # asyncpg takes URIs only; the scratch DSN is a libpq keyword string.
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return await asyncpg.connect(host=params.get("host"), port=params.get("port"), user=params.get("user"),
                                 password=params.get("password"), database=params.get("dbname"))


def install_pgqueuer(dsn: str) -> None:
    from pgqueuer import AsyncpgDriver, Queries

    async def install() -> None:
        connection = await asyncpg_connect(dsn)
        await Queries(AsyncpgDriver(connection)).install()
        await connection.close()

    asyncio.run(install())


def throughput(admin: str, jobs: int, repeats: int) -> None:
    try:
        import asyncpg  # noqa: F401
        import pgqueuer
        peer = f"PgQueuer {pgqueuer.__version__}"
    except ImportError:
        peer = None
    print(f"\n2. throughput, claim-and-complete with a no-op evaluation, {jobs} jobs, "
          f"median of {repeats} runs (jobs per second)")
    with scratch_database("meg-bench-throughput", admin=admin) as ours, \
            scratch_database("meg-bench-pgqueuer", admin=admin, migrated=False) as theirs:
        if peer:
            install_pgqueuer(theirs)
        rows = []
        for workers in WORKER_COUNTS:
            samples: dict[str, list[float]] = {"model-eval-gate": []}
            if peer:
                samples[f"{peer}, batch 10"] = []
                samples[f"{peer}, batch 1"] = []
            for _ in range(repeats):  # interleaved, so drifting load hits all alike
                samples["model-eval-gate"].append(gate_queue_throughput(ours, jobs, workers))
                if peer:
                    samples[f"{peer}, batch 10"].append(pgqueuer_throughput(theirs, jobs, workers, 10))
                    samples[f"{peer}, batch 1"].append(pgqueuer_throughput(theirs, jobs, workers, 1))
            rows.append((workers, {name: statistics.median(v) for name, v in samples.items()}))
    names = list(rows[0][1])
    print(f"{'workers':>8}" + "".join(f"{name:>28}" for name in names))
    for workers, medians in rows:
        print(f"{workers:>8}" + "".join(f"{medians[name]:28.0f}" for name in names))
    if not peer:
        print("PgQueuer (with asyncpg) is not installed, so the peer was skipped: "
              "pip install pgqueuer asyncpg (for the benchmark only)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=400, help="measured claim+finish cycles per history size")
    parser.add_argument("--jobs", type=int, default=4000, help="jobs drained per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per configuration")
    args = parser.parse_args()
    print(f"job queue benchmark; {os.cpu_count()} CPUs")
    with database_server("meg-bench-queue") as admin:
        queue_scale(admin, args.cycles)
        throughput(admin, args.jobs, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
