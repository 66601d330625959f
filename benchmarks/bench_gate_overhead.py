"""What does the gate itself cost, from a candidate's INSERT to its applied verdict?  Prints figures.

    PYTHONPATH=daemon python benchmarks/bench_gate_overhead.py [--candidates 60] [--examples 1000]

Starts a real daemon (`python -m model_eval_gate.cli run --workers 1`, real
PostgreSQL, real bubblewrap) on a scratch database (see scratch_database.py),
gates a root version in-process so that the parent's evaluation is cached,
then inserts candidates one at a time with plain SQL, as a training pipeline
would, each waiting for the previous verdict.  Every candidate's eval.py is
trivial (it copies a predictions file it ships), so what is measured is the
gate: notification, claim, sandbox, evaluation bookkeeping, the paired
bootstrap (default 1000 resamples over --examples examples, three binary
metrics) and the fenced apply.

The split comes from the timeline each job records (gate.run_claimed_job:
wall-clock marks from the daemon's notification receipt to the apply's
commit), set against this script's own clock at the INSERT's commit (one host,
one clock).  Phases:

  notification  INSERT committed -> NOTIFY received by the daemon's control loop
  claim         NOTIFY received -> claim committed by a worker
  pickup        INSERT committed -> claim committed (the two above)
  gate setup    claim -> candidate evaluation starts (gate connection, lease keeper, resolve)
  sandbox       run_eval_py of the candidate: bubblewrap, interpreter start, the trivial eval.py
  evaluation    the rest of both evaluations: model hash, reading predictions, the cache
                write and fingerprint, the parent from the cache
  statistics    the paired bootstrap of every metric
  decide+apply  the policy, then the fenced apply transaction until its commit
  total         INSERT committed -> verdict applied (committed)

A bare `python -c pass` is timed in the same run, so the sandbox's own
start-up cost can be read off (sandbox minus bare interpreter).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_database import scratch_database, server_description  # noqa: E402

from model_eval_gate.benchmark import load_benchmark, record_benchmark  # noqa: E402
from model_eval_gate.config import Settings  # noqa: E402
from model_eval_gate import db  # noqa: E402
from model_eval_gate.gate import run_eval_gate  # noqa: E402
from model_eval_gate.logging import configure_logging  # noqa: E402

BENCHMARK_ID = "bench-gate-overhead"
WARM_UP = 3
PICKUP_TARGET_MS = 5.0
# A trivial eval.py: the predictions were computed ahead of time. (Not shutil:
# importing it pulls in bz2 and lzma, about 15 ms, which is not the gate's cost.)
EVAL_PY = ("import sys\n"
           "with open('predictions.csv', 'rb') as source, open(sys.argv[-1] + '/predictions.csv', 'wb') as copy:\n"
           "    copy.write(source.read())\n")


def write_benchmark(directory: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    (directory / "inputs").mkdir(parents=True)
    ids = [f"ex{i:06d}" for i in range(n)]
    features = rng.standard_normal((n, 2))
    labels = (1.5 * features[:, 0] - features[:, 1] + 0.5 * rng.standard_normal(n) > 0).astype(int)
    (directory / "inputs" / "features.csv").write_text(
        "example_id,x0,x1\n" + "".join(f"{i},{a:.6f},{b:.6f}\n" for i, (a, b) in zip(ids, features)))
    (directory / "labels.csv").write_text("example_id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels)))
    (directory / "benchmark.json").write_text(json.dumps({
        "id": BENCHMARK_ID, "task": "binary", "primary_metric": "auroc",
        "metrics": ["auroc", "log_loss", "accuracy"], "labels": "labels.csv"}, indent=2))
    return features


def write_model(root: Path, artifact_id: str, features: np.ndarray, strength: float, seed: int) -> None:
    directory = root / "models" / artifact_id
    directory.mkdir(parents=True)
    noise = np.random.default_rng(seed).standard_normal(len(features))
    logits = strength * (1.5 * features[:, 0] - features[:, 1]) + noise
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    (directory / "predictions.csv").write_text(
        "example_id,prediction\n" + "".join(f"ex{i:06d},{p:.6f}\n" for i, p in enumerate(probabilities)))
    (directory / "eval.py").write_text(EVAL_PY)
    for path in (directory, directory / "predictions.csv", directory / "eval.py"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def insert_candidate(conn: psycopg.Connection, artifact_id: str, parent: str | None) -> float:
    """What a training pipeline does: two INSERTs in one transaction. Returns the time of the commit."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest, lifecycle_state, "
            "created_by, metadata) VALUES (%s, 'model', %s, %s, 0, 'candidate', 'pipeline', '{}'::jsonb)",
            (artifact_id, artifact_id, parent))
        conn.execute("INSERT INTO model_versions (artifact_id, benchmark_id, trained_by, promotion_state) "
                     "VALUES (%s, %s, 'agent-bench', 'candidate')", (artifact_id, BENCHMARK_ID))
    return time.time()


class DaemonLog:
    """Follows the daemon's JSON log file."""

    def __init__(self, path: Path):
        self.path, self._offset, self._partial = path, 0, ""

    def new_events(self) -> list[dict]:
        with open(self.path, errors="replace") as handle:
            handle.seek(self._offset)
            text = handle.read()
            self._offset = handle.tell()
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, event: str, proc: subprocess.Popen, timeout: float, **fields) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.new_events():
                if found.get("event") == event and all(found.get(k) == v for k, v in fields.items()):
                    return found
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({proc.returncode}); see {self.path}")
            time.sleep(0.002)
        raise TimeoutError(f"no {event} {fields} within {timeout} s; see {self.path}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def phases_of(timeline: dict, inserted_at: float, sandbox_seconds: float) -> dict[str, float]:
    evaluating = (timeline["candidate_evaluation_finished"] - timeline["candidate_evaluation_started"]
                  + timeline["parent_evaluation_finished"] - timeline["parent_evaluation_started"])
    return {
        "notification": timeline["notified"] - inserted_at,
        "claim": timeline["claimed"] - timeline["notified"],
        "pickup": timeline["claimed"] - inserted_at,
        "gate setup": timeline["candidate_evaluation_started"] - timeline["claimed"],
        "sandbox": sandbox_seconds,
        "evaluation": evaluating - sandbox_seconds,
        "statistics": timeline["statistics_finished"] - timeline["statistics_started"],
        "decide+apply": timeline["applied"] - timeline["statistics_finished"],
        "total": timeline["applied"] - inserted_at,
    }


def bare_interpreter_ms(runs: int) -> float:
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=60, help="candidates measured (after 3 warm-up ones)")
    parser.add_argument("--examples", type=int, default=1000, help="examples in the benchmark split")
    args = parser.parse_args()
    configure_logging("warning")  # the root version is gated in this process; its story is not the point

    work = Path(tempfile.mkdtemp(prefix="meg-bench-gate-", dir="/tmp"))
    work.chmod(0o755)  # as root the sandbox uid must reach the model directories
    daemon = None
    try:
        with scratch_database("meg-bench-gate") as dsn:
            settings = Settings(dsn=dsn, home=work / "home", artifact_root=work / "artifacts")
            (work / "artifacts" / "models").mkdir(parents=True)
            for directory in (work / "artifacts", work / "artifacts" / "models"):
                directory.chmod(0o755)
            rng = np.random.default_rng(20240610)
            features = write_benchmark(work / "benchmark", args.examples, rng)
            with db.connect(dsn, autocommit=True) as conn:
                record_benchmark(conn, load_benchmark(work / "benchmark"))
                write_model(settings.resolved_artifact_root, "root", features, strength=1.0, seed=1)
                insert_candidate(conn, "root", None)
                root = run_eval_gate("root", settings=settings)  # the parent, evaluated and cached
                if root["outcome"] != "promote":
                    raise RuntimeError(f"the root version was not promoted: {root['reason']}")

                log_path = work / "daemon.log"
                env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
                env.update({"PYTHONPATH": str(ROOT / "daemon"), "MODEL_EVAL_GATE_DSN": dsn,
                            "MODEL_EVAL_GATE_HOME": str(settings.home),
                            "MODEL_EVAL_GATE_ARTIFACT_ROOT": str(settings.resolved_artifact_root),
                            "MODEL_EVAL_GATE_WORKER_ID": "bench"})
                with open(log_path, "wb") as log_file:
                    daemon = subprocess.Popen([sys.executable, "-m", "model_eval_gate.cli", "run", "--workers", "1"],
                                              env=env, cwd=str(ROOT), stdout=log_file, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)
                log = DaemonLog(log_path)
                log.wait_for("ready", daemon, timeout=60)

                measured: list[tuple[str, float]] = []
                for index in range(WARM_UP + args.candidates):
                    artifact_id = f"candidate-{index:03d}"
                    # Weaker than the root: each is rejected and the root stays the (cached) parent.
                    write_model(settings.resolved_artifact_root, artifact_id, features, strength=0.6, seed=100 + index)
                    inserted_at = insert_candidate(conn, artifact_id, "root")
                    done = log.wait_for("job_done", daemon, timeout=60, candidate_id=artifact_id)
                    if done.get("outcome") != "reject":
                        raise RuntimeError(f"{artifact_id}: expected a rejection, got {done}")
                    if index >= WARM_UP:
                        measured.append((artifact_id, inserted_at, done["timeline"]))
                results = {r["artifact_id"]: r["result"] for r in conn.execute(
                    "SELECT artifact_id, result FROM gate_jobs WHERE status = 'done'")}
                server = server_description(dsn)
                bare_ms = bare_interpreter_ms(20)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)

    phases: dict[str, list[float]] = {}
    for artifact_id, inserted_at, timeline in measured:
        sandbox = results[artifact_id]["evaluations"]["candidate"]["timings"]["sandbox_seconds"]
        for name, seconds in phases_of(timeline, inserted_at, sandbox).items():
            phases.setdefault(name, []).append(seconds * 1000)

    n_resamples = results[measured[0][0]]["n_resamples"]
    print(f"gate overhead: {len(measured)} candidates inserted one at a time (after {WARM_UP} warm-up), "
          f"trivial eval.py, parent cached; {args.examples} examples, {n_resamples} resamples, "
          f"3 binary metrics; 1 worker; {os.cpu_count()} CPUs")
    print(server)
    print()
    print(f"{'phase':16}{'median ms':>11}{'p95 ms':>10}")
    for name, values in phases.items():
        print(f"{name:16}{statistics.median(values):11.2f}{percentile(values, 0.95):10.2f}")
    sandbox_ms = statistics.median(phases["sandbox"])
    print()
    print(f"bare `python -c pass` in the same run: {bare_ms:.2f} ms, so the sandbox's own start-up is about "
          f"{sandbox_ms - bare_ms:.2f} ms of the sandbox phase")
    pickup = statistics.median(phases["pickup"])
    print(f"pickup (INSERT commit -> claim committed) median {pickup:.2f} ms; target under {PICKUP_TARGET_MS:g} ms: "
          f"{'met' if pickup < PICKUP_TARGET_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
