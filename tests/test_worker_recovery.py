"""The daemon survives what production does to it: kill -9 mid-evaluation,
terminated connections, a PostgreSQL restart, a half-open connection. In each
case no candidate is lost and none is decided twice."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from gate_world import World
from invariants import assert_lineage_invariants
from test_metrics import daemon_counter
from test_worker import (
    DaemonStarter,
    insert_candidate,
    jobs_of,
    promoted_root,
    wait_decided,
    wait_until,
    write_model,
)

from model_eval_gate import db, embedded, migrate
from model_eval_gate.config import Settings
from model_eval_gate.worker import CONTROL_APPLICATION

pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings, conn, tmp_path):
    return World(settings, conn, tmp_path, n=200)


@pytest.fixture
def start_daemon(settings, tmp_path):
    starter = DaemonStarter(settings, tmp_path)
    try:
        yield starter
    finally:
        starter.kill_all()


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass  # exited while we looked
    return found


def promotion_events(conn, artifact_id: str) -> int:
    return conn.execute("SELECT count(*) AS n FROM world_model_improvements WHERE target_artifact_id = %s",
                        (artifact_id,)).fetchone()["n"]


def test_kill_9_during_an_evaluation_the_job_is_reclaimed_after_its_lease_and_decided_once(
        world, conn, start_daemon):
    promoted_root(world)
    first = start_daemon("d1")
    directory = write_model(world.settings, "victim", strength=0.95, sleep=2)
    insert_candidate(conn, "victim", benchmark_id=world.benchmark.id, parent="root")
    first.wait_for("evaluation_started", candidate_id="victim", model="candidate")
    wait_until(lambda: processes_mentioning(str(directory)), timeout=10, what="the sandbox of the victim")

    first.proc.kill()
    first.proc.wait(timeout=10)
    # bwrap --die-with-parent: the sandbox goes with the daemon.
    wait_until(lambda: not processes_mentioning(str(directory)), timeout=10, what="the orphaned sandbox to die")
    held = jobs_of(conn, "victim")[0]
    assert (held["status"], held["worker_id"], held["attempt"]) == ("running", "d1/w1", 1)

    second = start_daemon("d2")
    job = wait_decided(conn, "victim", timeout=40, daemons=[second])
    assert (job["attempt"], job["worker_id"], job["outcome"]) == (2, "d2/w1", "promote")
    expired = second.wait_for("lease_expired", candidate_id="victim")
    assert (expired["job_id"], expired["attempt"], expired["job_status"]) == (job["id"], 1, "queued")
    assert len(jobs_of(conn, "victim")) == 1
    assert promotion_events(conn, "victim") == 1
    history = conn.execute("SELECT count(*) AS n FROM artifact_lifecycle_history WHERE artifact_id = 'root' "
                           "AND to_state = 'superseded'").fetchone()["n"]
    assert history == 1
    assert_lineage_invariants(conn)


def test_a_daemon_that_stalls_past_its_lease_writes_nothing_when_it_wakes(world, conn, start_daemon):
    promoted_root(world)
    stalled = start_daemon("d1", env={"METRICS_PORT": "0"})
    write_model(world.settings, "contested", strength=0.95, sleep=1.0)
    insert_candidate(conn, "contested", benchmark_id=world.benchmark.id, parent="root")
    stalled.wait_for("evaluation_started", candidate_id="contested", model="candidate")
    stalled.signal(signal.SIGSTOP)  # a long GC pause, a frozen VM: no heartbeats, no crash
    try:
        successor = start_daemon("d2", env={"METRICS_PORT": "0"})
        job = wait_decided(conn, "contested", timeout=40, daemons=[successor])
        assert (job["attempt"], job["worker_id"]) == (2, "d2/w1")
        decided = conn.execute("SELECT promotion_notes, superseded_by FROM artifacts a JOIN model_versions mv "
                               "ON mv.artifact_id = a.id WHERE a.id = 'contested'").fetchone()
    finally:
        stalled.signal(signal.SIGCONT)
    # Awake again, the stale worker finishes its evaluation, finds its lease
    # gone, and its fenced apply writes nothing.
    lost = stalled.wait_for("lease_lost", candidate_id="contested", timeout=30)
    assert lost["attempt"] == 1
    time.sleep(1)
    assert not stalled.matching("applied", candidate_id="contested")
    after = jobs_of(conn, "contested")
    assert len(after) == 1 and (after[0]["status"], after[0]["attempt"], after[0]["worker_id"]) == ("done", 2, "d2/w1")
    assert conn.execute("SELECT promotion_notes, superseded_by FROM artifacts a JOIN model_versions mv "
                        "ON mv.artifact_id = a.id WHERE a.id = 'contested'").fetchone() == decided
    assert promotion_events(conn, "contested") == 1
    assert stalled.proc.poll() is None  # and it carries on serving
    # The metrics say so: the stale daemon lost a lease, the successor's sweep took it back.
    assert daemon_counter(stalled, "lease_losses") == 1
    assert daemon_counter(successor, "expired_leases_requeued") + daemon_counter(stalled, "expired_leases_requeued") >= 1
    assert_lineage_invariants(conn)


def test_terminated_connections_are_reestablished_and_no_candidate_is_lost(world, conn, start_daemon):
    promoted_root(world)
    daemon = start_daemon("d1", env={"METRICS_PORT": "0"})
    write_model(world.settings, "during", strength=0.95, sleep=1.5)
    insert_candidate(conn, "during", benchmark_id=world.benchmark.id, parent="root")
    daemon.wait_for("evaluation_started", candidate_id="during", model="candidate")

    terminated = conn.execute(
        "SELECT pg_terminate_backend(pid) AS ok, application_name FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'model-eval-gate%' "
        "AND pid <> pg_backend_pid()").fetchall()
    # The control, claim and gate connections (the lease keeper's opens at its first beat).
    assert {t["application_name"] for t in terminated} >= {"model-eval-gate-daemon", "model-eval-gate-worker",
                                                            "model-eval-gate"}
    assert all(t["ok"] for t in terminated)
    # Its notification may well arrive while the daemon is reconnecting: the
    # catch-up sweep must find it.
    write_model(world.settings, "meanwhile", strength=0.9)
    insert_candidate(conn, "meanwhile", benchmark_id=world.benchmark.id, parent="root")

    for artifact_id in ("during", "meanwhile"):
        wait_decided(conn, artifact_id, timeout=40, daemons=[daemon])
        assert len(jobs_of(conn, artifact_id)) == 1
    daemon.wait_for("connection_lost", connection="control")
    daemon.wait_for("reconnected")
    # "during" lost its gate's connection mid-run: retried, never decided twice.
    assert jobs_of(conn, "during")[0]["attempt"] in (1, 2)
    winners = [a for a in ("during", "meanwhile") if promotion_events(conn, a)]
    assert winners and all(promotion_events(conn, a) == 1 for a in winners)
    assert daemon.proc.poll() is None
    assert daemon_counter(daemon, "reconnects") == len(daemon.matching("reconnected")) >= 1
    assert_lineage_invariants(conn)


# ------------------------------------------------- a server of our own -------

@pytest.fixture(scope="module")
def private_server():
    """A PostgreSQL these tests may restart and stop processes of, whatever
    MODEL_EVAL_GATE_TEST_DSN says: they always run."""
    home = Path(tempfile.mkdtemp(prefix="meg-worker-pg-", dir="/tmp"))
    home.chmod(0o755)  # pgserver runs PostgreSQL as its own user when we are root
    try:
        server = embedded.ensure_server(home)
        admin = server.dsn("postgres")
        with psycopg.connect(admin, autocommit=True) as admin_conn:
            for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
                admin_conn.execute(f"ALTER SYSTEM SET {setting}")
            admin_conn.execute("SELECT pg_reload_conf()")
        yield home, admin
    finally:
        embedded.stop_server(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def private_settings(private_server, tmp_path):
    home, admin = private_server
    name = f"meg_worker_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as admin_conn:
        admin_conn.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
    migrate.migrate(dsn)
    return Settings(dsn=dsn, home=tmp_path / "home", artifact_root=tmp_path / "artifacts")


def fresh_connection(settings):
    return wait_until(lambda: _try_connect(settings), timeout=30, interval=0.2, what="the server to accept connections")


def _try_connect(settings):
    try:
        return db.connect(settings, autocommit=True)
    except psycopg.OperationalError:
        return None


def test_a_postgresql_restart_under_a_running_daemon_loses_no_candidate(private_server, private_settings, tmp_path):
    home, _ = private_server
    settings = private_settings
    starter = DaemonStarter(settings, tmp_path)
    conn = db.connect(settings, autocommit=True)
    try:
        world = World(settings, conn, tmp_path, n=200)
        promoted_root(world)
        daemon = starter("d1")
        write_model(settings, "before", strength=0.95, sleep=1.5)
        insert_candidate(conn, "before", benchmark_id=world.benchmark.id, parent="root")
        daemon.wait_for("evaluation_started", candidate_id="before", model="candidate")

        embedded.restart_server(home)
        conn.close()
        conn = fresh_connection(settings)
        write_model(settings, "after", strength=0.9)
        insert_candidate(conn, "after", benchmark_id=world.benchmark.id, parent="root")

        for artifact_id in ("before", "after"):
            wait_decided(conn, artifact_id, timeout=60, daemons=[daemon])
            assert len(jobs_of(conn, artifact_id)) == 1
        daemon.wait_for("connection_lost", connection="control")
        reconnected = daemon.wait_for("reconnected")
        print(f"control connection back after {reconnected['down_seconds']} s")
        assert daemon.proc.poll() is None
        assert_lineage_invariants(conn)
    finally:
        starter.kill_all()
        conn.close()


def test_a_half_open_control_connection_is_detected_by_the_round_trip(private_settings, tmp_path):
    settings = private_settings
    starter = DaemonStarter(settings, tmp_path)
    conn = db.connect(settings, autocommit=True)
    stopped: list[int] = []
    try:
        world = World(settings, conn, tmp_path, n=200)
        promoted_root(world)
        daemon = starter("d1")
        # A frozen backend answers nothing and closes nothing: to the daemon it
        # is exactly a connection whose other end vanished without a FIN.
        pid = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = %s", (CONTROL_APPLICATION,)).fetchone()["pid"]
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        frozen = time.monotonic()
        daemon.wait_for("control_connection_unresponsive", timeout=20)
        daemon.wait_for("reconnected", timeout=20)
        print(f"half-open connection replaced after {time.monotonic() - frozen:.1f} s")

        write_model(settings, "heard", strength=0.95)
        insert_candidate(conn, "heard", benchmark_id=world.benchmark.id, parent="root")
        assert wait_decided(conn, "heard", daemons=[daemon])["outcome"] == "promote"
        assert_lineage_invariants(conn)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        starter.kill_all()
        conn.close()
