"""Through a real PgBouncer in transaction mode (Debian's 1.18, as the issue found it).

The daemon runs with MODEL_EVAL_GATE_POOLER=transaction: no server-side
prepared statements, a LISTEN that is probed and found not to work (the
daemon falls back to polling and says so), and `migrate` refused with a hint.
"""
from __future__ import annotations

import psycopg
import pytest
from pgbouncer_fixture import start_pgbouncer
from test_worker import insert_candidate, promoted_root, start_daemon, wait_decided, write_model  # noqa: F401 (fixture)
from invariants import assert_lineage_invariants

from model_eval_gate import db
from model_eval_gate.config import Settings

pytestmark = pytest.mark.slow

POOLED = {"POOLER": "transaction"}


@pytest.fixture(scope="module")
def pgbouncer(pg_admin_dsn):
    bouncer = start_pgbouncer(pg_admin_dsn, pool_mode="transaction", pool_size=4)
    yield bouncer
    bouncer.stop()


@pytest.fixture
def pooled_settings(settings, pgbouncer):
    return settings.with_(dsn=pgbouncer.dsn(settings.dsn), pooler="transaction")


def test_connections_behind_a_pooler_prepare_nothing(settings, pooled_settings):
    with db.connect(pooled_settings, autocommit=True) as conn:
        assert conn.prepare_threshold is None
        for _ in range(20):  # far past psycopg's default threshold of 5
            db.fetch_one(conn, "round_trip")
        assert conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"] == 0
    with db.connect(settings, autocommit=True) as direct:
        assert direct.prepare_threshold == 5


def test_the_daemon_through_pgbouncer_in_transaction_mode_polls_and_gates_everything(
        settings, pooled_settings, conn, tmp_path, start_daemon, pgbouncer):
    from gate_world import World

    world = World(settings, conn, tmp_path, n=200)
    promoted_root(world)
    daemon = start_daemon("pooled", workers=2, settings=pooled_settings, env=POOLED)
    warning = daemon.wait_for("listen_unavailable", timeout=30)
    assert "polling every 1 s" in warning["consequence"]
    assert daemon.wait_for("ready")["listening"] is False

    names = [f"pooled-{i}" for i in range(6)]
    for index, name in enumerate(names):
        write_model(settings, name, strength=0.3 + 0.1 * index)
        insert_candidate(conn, name, benchmark_id=world.benchmark.id, parent="root")
    for name in names:
        job = wait_decided(conn, name, timeout=90, daemons=[daemon])
        assert job["outcome"] in ("promote", "reject") and job["attempt"] == 1, job
    # A re-gate through the durable request still reaches a polling daemon.
    rejected = next(r["artifact_id"] for r in conn.execute(
        "SELECT artifact_id FROM model_versions WHERE promotion_state = 'rejected' ORDER BY artifact_id"))
    conn.execute("SELECT model_eval_gate_request(%s, 'pooled regate')", (rejected,))
    wait_decided(conn, rejected, jobs=2, timeout=60, daemons=[daemon])
    assert daemon.proc.poll() is None, daemon.tail()
    errors = [e for e in daemon.events() if e.get("level") == "error"]
    assert not errors, errors
    assert "DuplicatePreparedStatement" not in daemon.log_path.read_text()
    assert_lineage_invariants(conn)


def test_a_direct_daemon_proves_its_listen(settings, conn, tmp_path, start_daemon):
    daemon = start_daemon("direct")
    assert daemon.wait_for("ready")["listening"] is True
    assert not daemon.matching("listen_unavailable")


def test_migrate_through_a_transaction_pooler_is_refused_with_a_hint(settings, pooled_settings):
    from test_host_database import cli

    pooled_env = {"MODEL_EVAL_GATE_POOLER": "transaction"}
    done = cli(pooled_settings, "migrate", env=pooled_env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "refusing to migrate through a transaction pooler" in line
    assert "MODEL_EVAL_GATE_POOLER=none" in line
    # The check only reads: it works through the pooler.
    assert cli(pooled_settings, "migrate", "--check", env=pooled_env).returncode == 0
    assert cli(pooled_settings, "migrate", "--down-to", "0", "--yes", env=pooled_env).returncode == 1


def test_a_pooler_nobody_configured_is_found_and_migrate_refuses_it(settings, pgbouncer, conn, start_daemon):
    """MODEL_EVAL_GATE_POOLER left at none: the start-up pid gives the pooler away."""
    from test_host_database import cli

    unconfigured = settings.with_(dsn=pgbouncer.dsn(settings.dsn), pooler="none")
    with db.connect(unconfigured, autocommit=True) as pooled:
        assert db.behind_a_pooler(pooled)
        assert pooled.prepare_threshold is None
        for _ in range(20):
            db.fetch_one(pooled, "round_trip")
        assert pooled.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"] == 0
    with db.connect(settings, autocommit=False) as direct:
        assert not db.behind_a_pooler(direct)
        assert direct.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    before = conn.execute("SELECT count(*) AS n FROM model_eval_gate_migrations").fetchone()["n"]
    env = {"MODEL_EVAL_GATE_POOLER": "none"}
    for args in (("migrate",), ("migrate", "--down-to", "0", "--yes")):
        done = cli(unconfigured, *args, env=env)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        line = done.stderr.strip().splitlines()[-1]
        assert "a connection pooler answers this connection" in line and "MODEL_EVAL_GATE_POOLER=none" in line
        assert "MODEL_EVAL_GATE_POOLER=session" in line
    assert conn.execute("SELECT count(*) AS n FROM model_eval_gate_migrations").fetchone()["n"] == before
    assert cli(unconfigured, "migrate", "--check", env=env).returncode == 0

    daemon = start_daemon("unconfigured", workers=1, settings=unconfigured, env={"POOLER": "none"})
    assert "MODEL_EVAL_GATE_POOLER=transaction" in daemon.wait_for("pooler_detected")["hint"]
    assert daemon.wait_for("ready")["listening"] is False


def test_the_listen_probe_runs_again_after_each_reconnect(settings, pg_admin_dsn, conn, tmp_path, start_daemon):
    """A session pooler switched to transaction mode under a running daemon: its next session probes and polls."""
    from gate_world import World

    bouncer = start_pgbouncer(pg_admin_dsn, pool_mode="session", pool_size=6)
    try:
        world = World(settings, conn, tmp_path, n=200)
        promoted_root(world)
        session_settings = settings.with_(dsn=bouncer.dsn(settings.dsn), pooler="session")
        daemon = start_daemon("switched", workers=1, settings=session_settings, env={"POOLER": "session"})
        assert daemon.wait_for("ready")["listening"] is True
        assert len(daemon.matching("listen_proven")) == 1

        bouncer.reload(pool_mode="transaction")
        # Cut every server session of the test database: the daemon's
        # connections through the pooler end, and it opens new ones.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        reconnected = daemon.wait_for("reconnected", timeout=60)
        assert reconnected["listening"] is False
        assert "polling every" in daemon.wait_for("listen_unavailable")["consequence"]
        assert len(daemon.matching("listen_proven")) == 1

        # Polling, it still gates what is registered now.
        write_model(settings, "after-switch", strength=0.9)
        insert_candidate(conn, "after-switch", benchmark_id=world.benchmark.id, parent="root")
        job = wait_decided(conn, "after-switch", timeout=90, daemons=[daemon])
        assert job["outcome"] == "promote", job
        assert daemon.proc.poll() is None, daemon.tail()
    finally:
        bouncer.stop()


def test_a_reply_that_is_not_the_statements_closes_the_connection(settings, monkeypatch):
    """What PgBouncer 1.18 once did here: a query that returns rows answered with "SET"."""
    monkeypatch.setitem(db._all_queries(), "round_trip", "SET application_name = 'someone else'")
    with db.connect(settings, autocommit=True) as conn:
        with pytest.raises(db.RepliesOutOfStep, match="got the reply 'SET'") as caught:
            db.fetch_one(conn, "round_trip")
        assert conn.closed
        assert db.is_connection_loss(caught.value)  # retried on a new connection, never the model's attempt
