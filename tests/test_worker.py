"""The daemon as operators run it: real `model-eval-gate run` processes, a real
PostgreSQL, real bubblewrap, candidates inserted with plain SQL the way a
training pipeline would. Timings are shortened through the environment
(3 s leases, 1 s heartbeats and sweeps) so each scenario takes seconds.

The helpers at the top (DaemonProcess, start_daemon, insert_candidate, ...)
are shared with test_worker_recovery.py and test_worker_sdnotify.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import structlog
from benchmark_factory import example_ids_for, signal_predictions, write_eval_py, write_predictions_csv
from gate_world import World
from invariants import assert_lineage_invariants

from model_eval_gate import cli
from model_eval_gate.evaluate import model_dir
from model_eval_gate.gate import run_eval_gate

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

FAST_TIMINGS = {
    "LEASE_SECONDS": "3",
    "HEARTBEAT_SECONDS": "1",
    "SWEEP_SECONDS": "1",
    "KEEPALIVE_SECONDS": "1",
    "N_RESAMPLES": "1000",
    "RETRY_BASE_SECONDS": "0.3",
    "SHUTDOWN_GRACE_SECONDS": "5",
}


# ------------------------------------------------------------------ helpers --

def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition", on_timeout=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(interval)


class DaemonProcess:
    """One `python -m model_eval_gate.cli run` process and its JSON log lines."""

    def __init__(self, name: str, proc: subprocess.Popen, log_path: Path):
        self.name, self.proc, self.log_path = name, proc, log_path

    def events(self) -> list[dict]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line being written right now
        return found

    def matching(self, event: str, **fields) -> list[dict]:
        return [e for e in self.events() if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        header = f"--- last {lines} log lines of daemon {self.name} (exit {self.proc.poll()}) ---"
        return "\n".join([header, *text[-lines:]])

    def wait_for(self, event: str, *, timeout: float = 30, **fields) -> dict:
        def seen():
            found = self.matching(event, **fields)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon {self.name} exited before logging {event} {fields}\n{self.tail()}")
            return None

        return wait_until(seen, timeout=timeout, what=f"{event} {fields} from daemon {self.name}", on_timeout=self.tail)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon {self.name} did not exit within {timeout} s\n{self.tail()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def daemon_environment(settings, name: str, tmp_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODEL_EVAL_GATE_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env["PYTHONPATH"] = str(ROOT / "daemon")
    env["TMPDIR"] = str(tmp_dir)  # the evaluations' work directories, where teardown can find them
    prefixed = {
        "DSN": settings.dsn, "HOME": str(settings.home), "ARTIFACT_ROOT": str(settings.resolved_artifact_root),
        "WORKER_ID": name, **FAST_TIMINGS, **(extra or {}),
    }
    env.update({f"MODEL_EVAL_GATE_{k}": v for k, v in prefixed.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))})
    env.update({k: v for k, v in (extra or {}).items() if k.startswith(("NOTIFY_", "WATCHDOG_"))})
    return env


def release_leaked_mounts(root: Path) -> None:
    """Unmount what daemons killed mid-evaluation left under root: as root, the
    sandbox's /out is a tmpfs that only the (dead) daemon would have unmounted.
    Under systemd the service's private mount namespace takes such mounts along."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", point], check=False)


class DaemonStarter:
    """Starts daemons for one test and kills whatever is left at teardown."""

    def __init__(self, settings, log_dir: Path):
        self.settings, self.log_dir = settings, log_dir
        self.tmp_dir = log_dir / "daemon-tmp"
        self.tmp_dir.mkdir(exist_ok=True)
        self.started: list[DaemonProcess] = []

    def __call__(self, name: str = "d1", *, workers: int = 1, env: dict[str, str] | None = None,
                 settings=None, ready: bool = True) -> DaemonProcess:
        settings = settings or self.settings
        log_path = self.log_dir / f"daemon-{name}-{len(self.started)}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "model_eval_gate.cli", "run", "--workers", str(workers)],
                env=daemon_environment(settings, name, self.tmp_dir, env), cwd=str(ROOT),
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        daemon = DaemonProcess(name, proc, log_path)
        self.started.append(daemon)
        if ready:
            daemon.wait_for("ready", timeout=30)
        return daemon

    def kill_all(self) -> None:
        for daemon in self.started:
            daemon.kill()
        release_leaked_mounts(self.tmp_dir)


@pytest.fixture
def start_daemon(settings, tmp_path):
    starter = DaemonStarter(settings, tmp_path)
    try:
        yield starter
    finally:
        starter.kill_all()


def write_model(settings, artifact_id: str, *, strength: float = 1.0, sleep: float = 0.0) -> Path:
    """A model directory with the factory's eval.py, optionally sleeping first (a slow evaluation)."""
    directory = model_dir(settings, artifact_id)
    write_eval_py(directory, task="binary", strength=strength)
    if sleep:
        eval_py = directory / "eval.py"
        eval_py.write_text(f"import time\ntime.sleep({sleep})\n" + eval_py.read_text())
    return directory


def insert_candidate(conn, artifact_id: str, *, benchmark_id: str, parent: str | None = None) -> None:
    """What a training pipeline does without our Python API: two plain INSERTs in one transaction."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest, lifecycle_state, "
            "created_by, metadata) VALUES (%s, 'model', %s, %s, 0, 'candidate', 'pipeline', '{}'::jsonb)",
            (artifact_id, f"model {artifact_id}", parent))
        conn.execute(
            "INSERT INTO model_versions (artifact_id, benchmark_id, trained_by, promotion_state) "
            "VALUES (%s, %s, 'agent-pipeline', 'candidate')", (artifact_id, benchmark_id))


def jobs_of(conn, artifact_id: str) -> list[dict]:
    return conn.execute("SELECT * FROM gate_jobs WHERE artifact_id = %s ORDER BY id", (artifact_id,)).fetchall()


def wait_decided(conn, artifact_id: str, *, jobs: int = 1, timeout: float = 40, daemons=()) -> dict:
    """Wait until the artifact has `jobs` jobs and the last one is done; return it."""
    def done():
        rows = jobs_of(conn, artifact_id)
        return rows[-1] if len(rows) >= jobs and rows[-1]["status"] == "done" else None

    def explain():
        return "jobs: " + json.dumps(jobs_of(conn, artifact_id), default=str) + "\n" + \
            "\n".join(d.tail(30) for d in daemons)

    return wait_until(done, timeout=timeout, interval=0.05, what=f"a decision on {artifact_id}", on_timeout=explain)


def promotion_state(conn, artifact_id: str) -> str:
    return conn.execute("SELECT promotion_state FROM model_versions WHERE artifact_id = %s",
                        (artifact_id,)).fetchone()["promotion_state"]


def slow_down(settings, artifact_id: str, seconds: float) -> None:
    """Make the model's eval.py sleep first (its content changes, so the evaluation cache misses)."""
    path = model_dir(settings, artifact_id) / "eval.py"
    path.write_text(f"import time\ntime.sleep({seconds})\n" + path.read_text())


def notify(dsn: str, payload: str, times: int = 1) -> None:
    """Bare NOTIFYs from a session of their own, each in its own transaction (none folded by PostgreSQL)."""
    with psycopg.connect(dsn, autocommit=True) as sender:
        for _ in range(times):
            sender.execute(psycopg.sql.SQL("NOTIFY model_eval_gate, {}").format(psycopg.sql.Literal(payload)))


@pytest.fixture
def world(settings, conn, tmp_path):
    return World(settings, conn, tmp_path, n=200)


def promoted_root(world: World, artifact_id: str = "root", strength: float = 0.5) -> str:
    """A lineage head, gated in-process before any daemon starts."""
    world.model(artifact_id, strength=strength)
    assert run_eval_gate(artifact_id, settings=world.settings)["outcome"] == "promote"
    return artifact_id


# --------------------------------------------------------------- scenarios --

def test_a_candidate_inserted_with_plain_sql_is_decided_within_seconds(world, conn, start_daemon):
    daemon = start_daemon("d1")
    write_model(world.settings, "root", strength=0.5)
    insert_candidate(conn, "root", benchmark_id=world.benchmark.id)
    root_job = wait_decided(conn, "root", daemons=[daemon])
    assert (root_job["outcome"], root_job["result"]["reason_code"]) == ("promote", "root_version")

    write_model(world.settings, "child", strength=0.95)
    inserted = time.monotonic()
    insert_candidate(conn, "child", benchmark_id=world.benchmark.id, parent="root")
    job = wait_decided(conn, "child", timeout=20, daemons=[daemon])
    latency = time.monotonic() - inserted
    print(f"insert-to-verdict latency: {latency:.2f} s")

    assert (job["outcome"], job["attempt"], job["reason"]) == ("promote", 1, "registered")
    assert job["worker_id"] == "d1/w1"
    assert job["result"]["compared_against"] == "root"
    assert promotion_state(conn, "child") == "promoted" and promotion_state(conn, "root") == "superseded"
    # The whole story is in the log, with the ids bound on every line.
    claimed = daemon.wait_for("claimed", candidate_id="child")
    assert (claimed["job_id"], claimed["attempt"], claimed["worker"], claimed["parent_id"]) == \
        (job["id"], 1, "d1/w1", "root")
    for event in ("evaluation_started", "evaluation_finished", "verdict", "applied", "job_done"):
        assert daemon.matching(event, candidate_id="child", job_id=job["id"], parent_id="root",
                               worker="d1/w1", attempt=1), event
    assert daemon.matching("verdict", candidate_id="child")[0]["parent_id"] == "root"
    assert len(jobs_of(conn, "child")) == 1  # the trigger's own NOTIFY joined the job it queued
    assert_lineage_invariants(conn)


def test_a_manual_notify_regates_a_rejected_candidate(world, conn, dsn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1")
    write_model(world.settings, "weak", strength=0.0)
    insert_candidate(conn, "weak", benchmark_id=world.benchmark.id, parent="root")
    assert wait_decided(conn, "weak", daemons=[daemon])["outcome"] == "reject"

    write_model(world.settings, "weak", strength=0.95)  # the author fixed the model
    notify(dsn, "weak")  # right after the verdict: a request of its own, never folded into the finished job
    job = wait_decided(conn, "weak", jobs=2, daemons=[daemon])
    assert (job["reason"], job["outcome"]) == ("notify", "promote")
    assert job["requested_by"].startswith("notify (backend ")
    assert promotion_state(conn, "weak") == "promoted"
    assert daemon.matching("gate_requested", candidate_id="weak", via="notify")

    notify(dsn, "root")  # superseded now: refused with the reason, and the daemon carries on
    refused = daemon.wait_for("notify_refused", candidate_id="root")
    assert "already superseded" in refused["reason"]
    notify(dsn, "no-such-model")
    assert "not a registered model version" in daemon.wait_for("notify_refused", candidate_id="no-such-model")["reason"]
    assert len(jobs_of(conn, "root")) == 1 and daemon.proc.poll() is None
    assert_lineage_invariants(conn)


def test_the_queues_own_notification_announces_its_job(world, conn, dsn):
    # What the trigger sends is recognisably the queue's own (worker.announced_job),
    # so it can never be confused with a person's bare NOTIFY.
    import json as json_module

    from model_eval_gate.worker import announced_artifact, announced_job

    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN model_eval_gate")
        world.model("announced", strength=0.5)
        received = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    job = jobs_of(conn, "announced")[0]
    assert json_module.loads(received[0]) == {"job": job["id"], "artifact_id": "announced"}
    assert announced_job(received[0]) == job["id"] and announced_artifact(received[0]) == "announced"
    for bare in ("announced", " announced ", "{not json", '{"job": "7"}', '{"job": true}', "[1]"):
        assert announced_job(bare) is None, bare


def test_a_late_copy_of_the_announcement_never_regates_but_a_bare_notify_always_does(world, conn, dsn,
                                                                                   start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1")
    write_model(world.settings, "late", strength=0.0)
    insert_candidate(conn, "late", benchmark_id=world.benchmark.id, parent="root")
    first = wait_decided(conn, "late", daemons=[daemon])
    assert first["outcome"] == "reject"
    # The trigger's announcement delivered after the (fast) verdict: nothing new.
    notify(dsn, json.dumps({"job": first["id"], "artifact_id": "late"}))
    time.sleep(2 * float(FAST_TIMINGS["SWEEP_SECONDS"]))
    assert len(jobs_of(conn, "late")) == 1
    # A person's bare NOTIFY at the same moment: always a request.
    notify(dsn, "late")
    second = wait_decided(conn, "late", jobs=2, daemons=[daemon])
    assert (second["reason"], second["outcome"]) == ("notify", "reject")
    assert_lineage_invariants(conn)


def test_a_thousand_duplicate_notifies_produce_one_job(world, conn, dsn, start_daemon):
    promoted_root(world)
    world.model("dup", strength=0.0, parent="root")
    assert run_eval_gate("dup", settings=world.settings)["outcome"] == "reject"
    # The re-gate outlasts the flood, so every copy reaches the daemon while its job is active.
    slow_down(world.settings, "dup", 3)
    daemon = start_daemon("d1")

    notify(dsn, "dup", times=1000)
    job = wait_decided(conn, "dup", jobs=2, daemons=[daemon])
    time.sleep(2 * float(FAST_TIMINGS["SWEEP_SECONDS"]))  # let any straggling notification be handled
    jobs = jobs_of(conn, "dup")
    assert len(jobs) == 2, jobs
    assert (job["reason"], job["outcome"]) == ("notify", "reject")
    assert len(daemon.matching("gate_requested", candidate_id="dup")) == 1
    assert len(daemon.matching("claimed", candidate_id="dup")) == 1
    assert_lineage_invariants(conn)


def test_three_daemons_and_two_hundred_candidates_each_gated_exactly_once(settings, conn, tmp_path, start_daemon):
    world = World(settings, conn, tmp_path, n=60)
    predictions = signal_predictions(world.benchmark_dir, "binary", strength=0.8)
    ids = [f"bulk-{i:03d}" for i in range(200)]
    for artifact_id in ids:
        # A trivial eval.py: copy predictions computed ahead of time. The
        # sandbox, the bootstrap and the fenced apply run for real.
        directory = model_dir(settings, artifact_id)
        write_predictions_csv(directory, example_ids_for(60), predictions)
        (directory / "eval.py").write_text(
            "import shutil, sys\nshutil.copyfile('predictions.csv', sys.argv[-1] + '/predictions.csv')\n")
    daemons = [start_daemon(f"d{i}", ready=False) for i in (1, 2, 3)]
    for daemon in daemons:
        daemon.wait_for("ready")

    started = time.monotonic()
    for artifact_id in ids:
        insert_candidate(conn, artifact_id, benchmark_id=world.benchmark.id)
    wait_until(lambda: conn.execute("SELECT count(*) AS n FROM gate_jobs WHERE status <> 'queued' "
                                    "AND status <> 'running'").fetchone()["n"] >= 200,
               timeout=150, interval=0.2, what="200 decisions",
               on_timeout=lambda: "\n".join(d.tail(20) for d in daemons))
    elapsed = time.monotonic() - started
    print(f"200 candidates over 3 daemons: {elapsed:.1f} s ({200 / elapsed:.1f} gates/s)")

    per_candidate = conn.execute(
        "SELECT artifact_id, count(*) AS jobs, count(*) FILTER (WHERE status = 'done') AS done, "
        "max(attempt) AS attempts FROM gate_jobs GROUP BY artifact_id").fetchall()
    assert len(per_candidate) == 200
    assert all((r["jobs"], r["done"], r["attempts"]) == (1, 1, 1) for r in per_candidate), \
        [r for r in per_candidate if (r["jobs"], r["done"], r["attempts"]) != (1, 1, 1)]
    states = conn.execute("SELECT promotion_state, count(*) AS n FROM model_versions "
                          "GROUP BY promotion_state").fetchall()
    assert [(s["promotion_state"], s["n"]) for s in states] == [("promoted", 200)]
    events = conn.execute("SELECT count(*) AS n FROM world_model_improvements").fetchone()["n"]
    assert events == 200
    by_daemon = conn.execute("SELECT split_part(worker_id, '/', 1) AS daemon, count(*) AS n FROM gate_jobs "
                             "GROUP BY 1 ORDER BY 1").fetchall()
    assert [d["daemon"] for d in by_daemon] == ["d1", "d2", "d3"], by_daemon  # SKIP LOCKED shared the work
    claims = sum(len(d.matching("claimed")) for d in daemons)
    assert claims == 200
    assert_lineage_invariants(conn)


def test_two_siblings_racing_one_supersedes_the_parent_and_the_other_meets_the_new_head(world, conn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1", workers=2)
    # Both evaluate against the root at the same time; whichever applies
    # first wins, and the other is re-evaluated against it.
    write_model(world.settings, "sib-a", strength=0.9, sleep=1.0)
    write_model(world.settings, "sib-b", strength=0.95, sleep=1.0)
    with conn.transaction():
        insert_candidate(conn, "sib-a", benchmark_id=world.benchmark.id, parent="root")
        insert_candidate(conn, "sib-b", benchmark_id=world.benchmark.id, parent="root")
    jobs = {a: wait_decided(conn, a, daemons=[daemon]) for a in ("sib-a", "sib-b")}

    winner = conn.execute("SELECT superseded_by FROM artifacts WHERE id = 'root'").fetchone()["superseded_by"]
    assert winner in jobs
    loser = "sib-b" if winner == "sib-a" else "sib-a"
    assert jobs[winner]["result"]["compared_against"] == "root"
    assert jobs[winner]["outcome"] == "promote"
    assert jobs[loser]["result"]["compared_against"] == winner
    assert jobs[loser]["result"]["head_moved"] is True
    assert jobs[loser]["result"]["parent_id"] == "root"
    # Each job ran once; the re-evaluation happened inside the loser's job.
    assert [len(jobs_of(conn, a)) for a in ("sib-a", "sib-b")] == [1, 1]
    assert {j["attempt"] for j in jobs.values()} == {1}
    assert promotion_state(conn, "root") == "superseded"
    assert_lineage_invariants(conn)


def test_poll_only_mode_gates_without_listen(world, conn, dsn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1", env={"POLL_ONLY": "1"})
    assert daemon.matching("daemon_starting")[0]["poll_only"] is True
    assert daemon.matching("ready")[0]["listening"] is False
    write_model(world.settings, "polled", strength=0.95)
    insert_candidate(conn, "polled", benchmark_id=world.benchmark.id, parent="root")
    assert wait_decided(conn, "polled", daemons=[daemon])["outcome"] == "promote"

    # Proof that nothing LISTENs: a bare NOTIFY re-gate goes unheard, while the
    # durable request from SQL is picked up by the next poll.
    world.model("quiet", strength=0.0, parent="polled")
    wait_decided(conn, "quiet", daemons=[daemon])
    notify(dsn, "quiet")
    time.sleep(3 * float(FAST_TIMINGS["SWEEP_SECONDS"]))
    assert len(jobs_of(conn, "quiet")) == 1 and not daemon.matching("gate_requested")
    conn.execute("SELECT model_eval_gate_request('quiet', 'from sql')")
    assert wait_decided(conn, "quiet", jobs=2, daemons=[daemon])["reason"] == "from sql"
    assert_lineage_invariants(conn)


def test_failures_crashing_eval_is_a_verdict_an_exception_is_retried_then_failed(world, conn, start_daemon):
    promoted_root(world)
    # An unexpected database error inside the gate (not the model's fault):
    # every store of this candidate's evaluation raises.
    conn.execute("""
        CREATE FUNCTION refuse_flaky() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'disk quota exceeded (simulated)'; END $$;
        CREATE TRIGGER refuse_flaky BEFORE INSERT ON eval_results
            FOR EACH ROW WHEN (NEW.artifact_id = 'flaky') EXECUTE FUNCTION refuse_flaky();
    """)
    # A queued job whose artifact stopped being a model version: nothing to gate.
    world.model("orphan", strength=0.9, parent="root")
    conn.execute("DELETE FROM model_versions WHERE artifact_id = 'orphan'")
    daemon = start_daemon("d1", env={"MAX_ATTEMPTS": "2"})
    write_model(world.settings, "crashing")
    (model_dir(world.settings, "crashing") / "eval.py").write_text("raise SystemExit('weights not found')\n")
    insert_candidate(conn, "crashing", benchmark_id=world.benchmark.id, parent="root")
    write_model(world.settings, "flaky", strength=0.95)
    insert_candidate(conn, "flaky", benchmark_id=world.benchmark.id, parent="root")

    crashed = wait_decided(conn, "crashing", daemons=[daemon])
    assert (crashed["outcome"], crashed["result"]["reason_code"], crashed["attempt"]) == ("error", "sandbox_failure", 1)
    assert len(daemon.matching("claimed", candidate_id="crashing")) == 1  # no retry loop

    def failed():
        rows = jobs_of(conn, "flaky")
        return rows[0] if rows[0]["status"] == "failed" else None

    job = wait_until(failed, timeout=30, what="the flaky job to fail", on_timeout=daemon.tail)
    assert (job["attempt"], job["max_attempts"]) == (2, 2)
    assert "disk quota exceeded (simulated)" in job["error"]
    retry = daemon.wait_for("retry_scheduled", candidate_id="flaky")
    assert retry["attempt"] == 1 and "disk quota" in retry["error"]
    assert daemon.wait_for("job_failed", candidate_id="flaky")["attempt"] == 2
    assert promotion_state(conn, "flaky") == "candidate"

    orphan = jobs_of(conn, "orphan")[0]
    assert (orphan["status"], orphan["attempt"]) == ("cancelled", 1)
    assert orphan["error"] == "nothing to gate: orphan is not a registered model version"
    assert daemon.matching("job_refused", candidate_id="orphan")

    write_model(world.settings, "after", strength=0.95)  # the daemon kept running
    insert_candidate(conn, "after", benchmark_id=world.benchmark.id, parent="root")
    assert wait_decided(conn, "after", daemons=[daemon])["outcome"] == "promote"
    assert_lineage_invariants(conn)


def test_sigterm_during_an_evaluation_hands_the_job_back_and_exits_0(world, conn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1", env={"SHUTDOWN_GRACE_SECONDS": "1"})
    write_model(world.settings, "slow", strength=0.95, sleep=60)
    insert_candidate(conn, "slow", benchmark_id=world.benchmark.id, parent="root")
    daemon.wait_for("evaluation_started", candidate_id="slow", model="candidate")

    signalled = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=30) == 0
    print(f"SIGTERM to exit: {time.monotonic() - signalled:.2f} s")
    job = jobs_of(conn, "slow")[0]
    assert (job["status"], job["attempt"], job["worker_id"], job["lease_until"]) == ("queued", 0, None, None)
    assert job["error"].startswith("handed back")
    assert promotion_state(conn, "slow") == "candidate"  # the cancelled run was not taken for a verdict
    assert daemon.matching("cancelling_gates")
    assert daemon.matching("handed_back", candidate_id="slow")
    assert daemon.matching("shutdown", handed_back=1, exit_code=0)

    # The next daemon finishes what was handed back.
    write_model(world.settings, "slow", strength=0.95)
    successor = start_daemon("d2")
    done = wait_decided(conn, "slow", daemons=[successor])
    assert (done["attempt"], done["worker_id"], done["outcome"]) == (1, "d2/w1", "promote")
    assert_lineage_invariants(conn)


def test_sigterm_lets_a_gate_finish_within_the_grace_period(world, conn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1", env={"SHUTDOWN_GRACE_SECONDS": "30"})
    write_model(world.settings, "brief", strength=0.95, sleep=1.5)
    insert_candidate(conn, "brief", benchmark_id=world.benchmark.id, parent="root")
    daemon.wait_for("evaluation_started", candidate_id="brief", model="candidate")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=30) == 0
    job = jobs_of(conn, "brief")[0]
    assert (job["status"], job["outcome"]) == ("done", "promote")
    assert daemon.matching("shutdown", handed_back=0, exit_code=0)
    assert not daemon.matching("cancelling_gates")
    assert_lineage_invariants(conn)


def test_unusable_daemon_settings_are_refused_with_exit_status_2(settings, monkeypatch):
    from model_eval_gate.worker import run_daemon

    assert run_daemon(settings.with_(sweep_seconds=0)) == 2
    assert run_daemon(settings.with_(heartbeat_seconds=5, lease_seconds=5)) == 2
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/notify.sock")
    assert run_daemon(settings) == 2


# ---------------------------------------------------------- operator commands --

def run_cli(monkeypatch, capsys, settings, *argv) -> tuple[int, str, str]:
    for key in [k for k in os.environ if k.startswith("MODEL_EVAL_GATE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", settings.dsn)
    monkeypatch.setenv("MODEL_EVAL_GATE_HOME", str(settings.home))
    monkeypatch.setenv("MODEL_EVAL_GATE_ARTIFACT_ROOT", str(settings.resolved_artifact_root))
    capsys.readouterr()  # what the test's own in-process gates logged
    logging_config = structlog.get_config()
    try:
        code = cli.main(list(argv))
    finally:
        # main() points structlog at this test's captured stderr, which closes with the test.
        structlog.configure(**logging_config)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_and_regate_commands(world, conn, monkeypatch, capsys):
    settings = world.settings
    promoted_root(world)
    world.model("better", strength=0.95, parent="root")
    better = run_eval_gate("better", settings=settings)
    world.model("worse", strength=0.0, parent="better")
    assert run_eval_gate("worse", settings=settings)["outcome"] == "reject"
    world.model("waiting", strength=0.9, parent="better")  # queued by the trigger, due now
    world.model("retrying", strength=0.9, parent="better")
    conn.execute("UPDATE gate_jobs SET run_after = now() + interval '5 minutes', attempt = 1, "
                 "error = 'OperationalError: server closed the connection' WHERE artifact_id = 'retrying'")
    world.model("busy", strength=0.9, parent="better")
    conn.execute("UPDATE gate_jobs SET status = 'running', worker_id = 'host-a:4242/w1', attempt = 1, "
                 "started_at = now() - interval '12 seconds', lease_until = now() + interval '48 seconds' "
                 "WHERE artifact_id = 'busy'")
    world.model("broken", strength=0.9, parent="better")
    conn.execute("UPDATE gate_jobs SET status = 'failed', worker_id = 'host-b:7/w2', attempt = 3, "
                 "finished_at = now(), error = 'RuntimeError: the lineage head moved 4 times' "
                 "WHERE artifact_id = 'broken'")

    code, out, err = run_cli(monkeypatch, capsys, settings, "status")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "daemons   0 connected"
    assert lines[1].startswith("queue     2 queued: 1 due now, 1 waiting to retry (next at ")
    running = out.split("running   1\n", 1)[1].split("\n\n", 1)[0]
    assert "busy" in running and "host-a:4242/w1" in running and "1/3" in running
    lease_left = int(running.splitlines()[1].split()[4].rstrip("s"))
    assert 40 <= lease_left <= 48
    failed = out.split("failed    1\n", 1)[1].split("\n\n", 1)[0]
    assert "broken" in failed and "3/3" in failed and "RuntimeError: the lineage head moved 4 times" in failed
    decisions = out.split("last 3 decisions\n", 1)[1].splitlines()
    assert decisions[0].split() == ["candidate", "compared", "against", "outcome", "reason", "primary", "delta",
                                    "[95%", "CI]", "finished"]
    by_candidate = {row.split()[0]: row for row in decisions[1:]}
    assert set(by_candidate) == {"root", "better", "worse"}
    primary = next(r for r in better["metric_table"] if r["role"] == "primary")
    interval = f"auroc {primary['delta']:+.4g} [{primary['ci_low']:+.4g}, {primary['ci_high']:+.4g}]"
    assert interval in by_candidate["better"]
    assert by_candidate["better"].split()[1:3] == ["root", "promote"]
    assert by_candidate["worse"].split()[1:3] == ["better", "reject"]
    assert by_candidate["root"].split()[1:4] == ["(root)", "promote", "root_version"]

    code, out, err = run_cli(monkeypatch, capsys, settings, "regate", "worse", "--reason", "retrained weights")
    assert code == 0, err
    job = jobs_of(conn, "worse")[-1]
    assert (job["status"], job["reason"]) == ("queued", "retrained weights")
    assert job["requested_by"].startswith("cli:")
    assert out.strip() == f"queued gate job {job['id']} for worse (reason: retrained weights)"
    assert "no model-eval-gate daemon is connected" in err

    code, out, err = run_cli(monkeypatch, capsys, settings, "regate", "worse")
    assert code == 0 and f"already has a queued gate job {job['id']}" in out
    assert len(jobs_of(conn, "worse")) == 2

    code, out, err = run_cli(monkeypatch, capsys, settings, "regate", "root")
    assert code == 2
    assert err.strip() == ("refused: root is already superseded; a decided promotion is never re-gated "
                           "(register a new candidate version instead)")
    code, out, err = run_cli(monkeypatch, capsys, settings, "regate", "better")
    assert code == 2 and "better is already promoted" in err
    code, out, err = run_cli(monkeypatch, capsys, settings, "regate", "nonexistent")
    assert code == 2 and "nonexistent is not a registered model version" in err
    assert_lineage_invariants(conn)


def test_each_worker_slot_runs_its_sandboxes_as_its_own_uid(world, conn, start_daemon):
    # RLIMIT_NPROC counts per uid: slots sharing one would share one process
    # budget, and a fork bomb in one model could fail another's evaluation.
    daemon = start_daemon("d1", workers=2)
    for artifact_id in ("uid-a", "uid-b"):
        directory = model_dir(world.settings, artifact_id)
        directory.mkdir(parents=True)
        # Both stay busy at once, then fail saying who they ran as.
        (directory / "eval.py").write_text("import os, sys, time\ntime.sleep(1.5)\nsys.exit(f'uid={os.getuid()}')\n")
        insert_candidate(conn, artifact_id, benchmark_id=world.benchmark.id)
    uids = set()
    for artifact_id in ("uid-a", "uid-b"):
        job = wait_decided(conn, artifact_id, daemons=[daemon])
        assert job["outcome"] == "error"
        uids.add(job["result"]["stderr_tail"].strip().rsplit("uid=", 1)[1])
    if os.geteuid() == 0:
        base = world.settings.sandbox_uid
        assert uids == {str(base), str(base - 1)}
    else:
        # Unprivileged (the systemd unit's mode): bubblewrap's user namespace maps the
        # daemon's own uid; switching to other uids per slot needs root.
        assert uids == {str(os.getuid())}
