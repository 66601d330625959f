"""The daemon's Prometheus metrics: a real `model-eval-gate run` with
MODEL_EVAL_GATE_METRICS_PORT set, scraped over HTTP and parsed with
prometheus_client's own parser; every figure is held to the database."""
from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_worker import (
    DaemonStarter,
    insert_candidate,
    jobs_of,
    notify,
    promoted_root,
    wait_decided,
    wait_until,
    write_model,
)

from model_eval_gate.decision import REASON_OUTCOMES
from model_eval_gate.evaluate import model_dir
from model_eval_gate.metrics import GATE_PHASES, DaemonMetrics


def parse(text: str) -> dict[str, dict]:
    """{family name: {"type": ..., "samples": {(sample name, sorted labels): value}}}"""
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {
            "type": family.type, "help": family.documentation,
            "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples},
        }
    return families


def value(families, family: str, sample: str | None = None, **labels) -> float:
    return families[family]["samples"][(sample or family, tuple(sorted(labels.items())))]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


pytestmark = pytest.mark.slow


def daemon_counter(daemon, name: str) -> float:
    """A counter of a running daemon started with METRICS_PORT=0 (test_worker_recovery uses it too)."""
    port = daemon.wait_for("metrics_listening")["port"]
    return value(parse(scrape(port)), f"model_eval_gate_{name}", f"model_eval_gate_{name}_total")


@pytest.fixture
def start_daemon(settings, tmp_path):
    starter = DaemonStarter(settings, tmp_path)
    try:
        yield starter
    finally:
        starter.kill_all()


@pytest.fixture
def world(settings, conn, tmp_path):
    from gate_world import World

    return World(settings, conn, tmp_path, n=200)


def test_a_daemon_exports_what_it_did_and_the_queue_as_the_database_has_it(world, conn, dsn, start_daemon):
    promoted_root(world)  # gated in-process: not this daemon's verdict
    # Every store of the flaky candidate's evaluation raises: a retry, then a failure.
    conn.execute("""
        CREATE FUNCTION refuse_flaky() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'disk quota exceeded (simulated)'; END $$;
        CREATE TRIGGER refuse_flaky BEFORE INSERT ON eval_results
            FOR EACH ROW WHEN (NEW.artifact_id = 'flaky') EXECUTE FUNCTION refuse_flaky();
    """)
    daemon = start_daemon("d1", env={"METRICS_PORT": "0", "MAX_ATTEMPTS": "2"})
    listening = daemon.wait_for("metrics_listening")
    assert listening["address"] == "127.0.0.1" and listening["port"] > 0
    port = listening["port"]

    write_model(world.settings, "better", strength=0.95)
    insert_candidate(conn, "better", benchmark_id=world.benchmark.id, parent="root")
    write_model(world.settings, "crashing")
    (model_dir(world.settings, "crashing") / "eval.py").write_text("raise SystemExit('weights not found')\n")
    insert_candidate(conn, "crashing", benchmark_id=world.benchmark.id, parent="root")
    write_model(world.settings, "flaky", strength=0.95)
    insert_candidate(conn, "flaky", benchmark_id=world.benchmark.id, parent="root")
    wait_decided(conn, "better", daemons=[daemon])
    wait_decided(conn, "crashing", daemons=[daemon])
    wait_until(lambda: jobs_of(conn, "flaky")[0]["status"] == "failed", timeout=30, what="the flaky job to fail",
               on_timeout=daemon.tail)
    # Five bare NOTIFYs for a promoted version: refused (once per batch the
    # daemon reads them in), the copies within a batch absorbed.
    notify(dsn, "root", times=5)
    daemon.wait_for("notify_refused", candidate_id="root")

    def counter(families, name: str) -> float:
        return value(families, f"model_eval_gate_{name}", f"model_eval_gate_{name}_total")

    # The three INSERTs notified too, each absorbed by the job its own trigger had queued.
    # A batch is counted as received before its refusals are: wait until all 8 are accounted for.
    def settled():
        f = parse(scrape(port))
        done = counter(f, "notifications_absorbed") + counter(f, "notifications_refused")
        return f if counter(f, "notifications_received") >= 8 and done >= counter(f, "notifications_received") else None

    families = wait_until(settled, timeout=10, what="the daemon to act on all 8 notifications")
    # Names and types by the conventions.
    for name, family in families.items():
        assert name.startswith("model_eval_gate_"), name
        assert family["help"], name
        if family["type"] == "counter":
            assert all(sample.endswith(("_total", "_created")) for sample, _ in family["samples"]), name
        if "duration" in name or name.endswith("_age_seconds"):
            assert name.endswith("_seconds"), name

    # Verdicts: every pair the policy can produce is a series, at 0 unless it happened.
    jobs = conn.execute("SELECT outcome, result->>'reason_code' AS reason_code FROM gate_jobs "
                        "WHERE status = 'done' AND worker_id LIKE 'd1/%'").fetchall()
    assert sorted((j["outcome"], j["reason_code"]) for j in jobs) == [
        ("error", "sandbox_failure"), ("promote", "improved")]
    for reason_code, outcome in REASON_OUTCOMES.items():
        expected = sum(1 for j in jobs if (j["outcome"], j["reason_code"]) == (str(outcome), str(reason_code)))
        assert value(families, "model_eval_gate_verdicts", "model_eval_gate_verdicts_total",
                     outcome=str(outcome), reason_code=str(reason_code)) == expected

    assert value(families, "model_eval_gate_job_retries", "model_eval_gate_job_retries_total") == 1
    assert value(families, "model_eval_gate_job_failures", "model_eval_gate_job_failures_total") == 1
    assert value(families, "model_eval_gate_lease_losses", "model_eval_gate_lease_losses_total") == 0
    assert value(families, "model_eval_gate_reconnects", "model_eval_gate_reconnects_total") == 0
    # None of the 8 asked for a job that did not exist already.
    assert counter(families, "notifications_received") == 8
    assert 1 <= counter(families, "notifications_refused") <= 5
    assert counter(families, "notifications_absorbed") + counter(families, "notifications_refused") == 8

    # Durations: one gate observation per applied verdict, phases as the results timed them.
    assert value(families, "model_eval_gate_gate_duration_seconds", "model_eval_gate_gate_duration_seconds_count",
                 outcome="promote") == 1
    assert value(families, "model_eval_gate_gate_duration_seconds", "model_eval_gate_gate_duration_seconds_count",
                 outcome="error") == 1
    results = [r["result"] for r in conn.execute(
        "SELECT result FROM gate_jobs WHERE status = 'done' AND worker_id LIKE 'd1/%'").fetchall()]
    for phase in GATE_PHASES:
        count = value(families, "model_eval_gate_gate_phase_duration_seconds",
                      "model_eval_gate_gate_phase_duration_seconds_count", phase=phase)
        if phase == "apply":  # timed after the stored result was written: every applied gate has it
            assert count == len(results)
            continue
        timed = [r["timings"][phase] for r in results if phase in r["timings"]]
        assert count == len(timed), phase
        assert value(families, "model_eval_gate_gate_phase_duration_seconds",
                     "model_eval_gate_gate_phase_duration_seconds_sum", phase=phase) == pytest.approx(sum(timed))
    # "better" ran in the sandbox, its parent came from the cache.
    assert value(families, "model_eval_gate_evaluation_duration_seconds",
                 "model_eval_gate_evaluation_duration_seconds_count", model="candidate", cache="miss") == 1
    assert value(families, "model_eval_gate_evaluation_duration_seconds",
                 "model_eval_gate_evaluation_duration_seconds_count", model="parent", cache="hit") == 1

    # The queue as the database has it now.
    assert value(families, "model_eval_gate_database_up") == 1
    assert value(families, "model_eval_gate_queue_depth") == 0
    assert value(families, "model_eval_gate_running_jobs") == 0
    assert value(families, "model_eval_gate_failed_jobs") == 1
    assert value(families, "model_eval_gate_connected_daemons") == 1
    assert value(families, "model_eval_gate_workers") == 1
    assert value(families, "model_eval_gate_busy_workers") == 0


def test_the_queue_gauges_read_the_database_at_scrape_time(world, conn, dsn):
    promoted_root(world)
    for name in ("a", "b", "c"):
        world.model(name, strength=0.9, parent="root")  # registration queues a job
    conn.execute("UPDATE gate_jobs SET run_after = now() - interval '90 seconds' WHERE artifact_id = 'a'")
    conn.execute("UPDATE gate_jobs SET run_after = now() + interval '1 hour' WHERE artifact_id = 'c'")
    metrics = DaemonMetrics(workers=2, dsn_source=lambda: dsn)
    try:
        families = parse(generate_latest(metrics.registry).decode())
    finally:
        metrics.close()
    assert value(families, "model_eval_gate_database_up") == 1
    assert value(families, "model_eval_gate_queue_depth") == 3
    assert value(families, "model_eval_gate_queue_due_jobs") == 2
    assert 90 <= value(families, "model_eval_gate_queue_oldest_due_age_seconds") < 150
    assert value(families, "model_eval_gate_running_jobs") == 0
    assert value(families, "model_eval_gate_connected_daemons") == 0
    assert value(families, "model_eval_gate_workers") == 2


def test_a_database_that_does_not_answer_is_database_up_0_not_a_failed_scrape():
    metrics = DaemonMetrics(workers=1, dsn_source=lambda: "postgresql://nobody@127.0.0.1:1/nothing")
    try:
        families = parse(generate_latest(metrics.registry).decode())
    finally:
        metrics.close()
    assert value(families, "model_eval_gate_database_up") == 0
    assert "model_eval_gate_queue_depth" not in families
    assert value(families, "model_eval_gate_verdicts", "model_eval_gate_verdicts_total",
                 outcome="promote", reason_code="improved") == 0


def test_a_taken_metrics_port_stops_the_daemon_with_one_clear_line(world, start_daemon):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        daemon = start_daemon("d1", env={"METRICS_PORT": str(taken.getsockname()[1])}, ready=False)
        assert daemon.wait_exit(timeout=30) == 1
    error = daemon.wait_for("metrics_unavailable")
    assert "Address already in use" in error["error"] and "METRICS_PORT" in error["hint"]
    assert "Traceback" not in daemon.log_path.read_text()
