"""A database outage is not the model's attempt, and a failed `gate` leaves no job behind (issue 13, items 9-10)."""
from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest
from gate_world import World
from test_host_database import ROOT, cli
from test_worker import daemon_environment, insert_candidate, jobs_of, promoted_root, start_daemon, wait_decided, wait_until, \
    write_model  # noqa: F401 (start_daemon is a fixture)

pytestmark = pytest.mark.slow


def terminate_gate_connections(conn) -> int:
    """Cut the gates' own connections (not the lease keepers', not the daemon's control connection)."""
    rows = conn.execute("SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'model-eval-gate' "
                        "AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


@pytest.fixture
def world(settings, conn, tmp_path):
    return World(settings, conn, tmp_path, n=200)


def test_a_failing_cli_gate_releases_its_job_and_prints_one_line(world, conn, settings):
    promoted_root(world)
    world.model("refused-store", strength=0.9, parent="root")
    # Storing any new evaluation fails: an error of the database, not an outage.
    conn.execute("ALTER TABLE eval_results ADD CONSTRAINT meg_test_no_new_rows CHECK (n_examples < 0) NOT VALID")
    done = cli(settings, "gate", "refused-store")
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    line = next(l for l in lines if l.startswith("error: gate of refused-store failed"))
    assert "released back to the queue" in line and "CheckViolation" in line and "hint:" in line
    (job,) = jobs_of(conn, "refused-store")
    assert job["status"] == "queued" and job["worker_id"] is None and job["lease_until"] is None
    assert job["attempt"] == 1 and "CheckViolation" in job["error"]  # a real failure counts


def test_a_cli_gate_cut_off_from_the_database_releases_its_job_uncounted_and_keeps_the_evaluation(
        world, conn, settings, tmp_path):
    promoted_root(world)
    write_model(settings, "cut-off", strength=0.9, sleep=3.0)
    world.model("cut-off", strength=None, parent="root")
    env = daemon_environment(settings, "cli", tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "model_eval_gate.cli", "gate", "cut-off"], env=env,
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: any(j["status"] == "running" for j in jobs_of(conn, "cut-off")), timeout=30,
               what="the CLI's claim")
    time.sleep(1.0)  # eval.py is running now, with no transaction open
    assert terminate_gate_connections(conn) >= 1
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    assert "released back to the queue" in err and "hint:" in err
    (job,) = jobs_of(conn, "cut-off")
    assert job["status"] == "queued" and job["attempt"] == 0, job  # the outage was not the model's attempt
    # The finished evaluation was stored through a fresh connection: the next gate does not run eval.py again.
    assert conn.execute("SELECT count(*) AS n FROM eval_results WHERE artifact_id = 'cut-off'").fetchone()["n"] == 1
    again = cli(settings, "gate", "cut-off", "--json")
    assert again.returncode == 0, again.stderr
    rows = jobs_of(conn, "cut-off")
    assert rows[-1]["status"] == "done" and rows[-1]["attempt"] == 1
    assert rows[-1]["result"]["evaluations"]["candidate"]["cached"] is True


def test_a_daemon_cut_off_mid_gate_keeps_the_finished_evaluation_and_does_not_count_the_attempt(
        world, conn, settings, start_daemon):
    promoted_root(world)
    daemon = start_daemon("outage")
    write_model(settings, "outage", strength=0.9, sleep=2.5)
    insert_candidate(conn, "outage", benchmark_id=world.benchmark.id, parent="root")
    daemon.wait_for("evaluation_started", candidate_id="outage", model="candidate")
    time.sleep(0.8)
    assert terminate_gate_connections(conn) >= 1
    job = wait_decided(conn, "outage", timeout=60, daemons=[daemon])
    assert job["attempt"] == 1, job  # the handed-back attempt was not counted
    assert job["result"]["evaluations"]["candidate"]["cached"] is True  # eval.py ran once
    assert daemon.matching("database_unavailable", candidate_id="outage")
    assert not daemon.matching("retry_scheduled", candidate_id="outage")
