"""The least-privilege roles (sql/roles.sql, `model-eval-gate roles`) over real connections as real login roles."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from benchmark_factory import write_eval_py
from gate_world import World
from test_gate_cli import cli
from test_worker import start_daemon, wait_decided  # noqa: F401 (start_daemon is a fixture)

from model_eval_gate import run_eval_gate
from model_eval_gate.benchmark import record_benchmark
from model_eval_gate.evaluate import model_dir
from model_eval_gate.store.operator import rebenchmark
from model_eval_gate.store.roles import ROLES, apply_roles

DENIED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def logins(settings, conn):
    apply_roles(conn)
    suffix = uuid.uuid4().hex[:8]
    names = {"pipeline": f"meg_pipeline_{suffix}", "rival": f"meg_rival_{suffix}",
             "daemon": f"meg_daemon_{suffix}", "operator": f"meg_operator_{suffix}"}
    groups = {"pipeline": ROLES[0], "rival": ROLES[0], "daemon": ROLES[1], "operator": ROLES[2]}
    for who, name in names.items():
        conn.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {groups[who]}')
    dsns = {who: psycopg.conninfo.make_conninfo(settings.dsn, user=name) for who, name in names.items()}
    connections = {who: psycopg.connect(dsn, autocommit=True) for who, dsn in dsns.items()}
    yield names, dsns, connections
    for connection in connections.values():
        connection.close()
    for name in names.values():
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _denied(connection, statement, params=()):
    with pytest.raises(DENIED):
        connection.execute(statement, params)


def test_each_role_can_do_its_job_and_nothing_more(settings, conn, tmp_path, logins):
    names, dsns, c = logins
    world = World(settings, conn, tmp_path, n=60)
    bench = world.benchmark.id
    for artifact_id, strength in (("r-root", 0.4), ("r-next", 0.95)):
        write_eval_py(model_dir(settings, artifact_id), strength=strength)

    # The pipeline: plain INSERTs register a candidate, which queues its gate.
    pipeline = c["pipeline"]
    pipeline.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest, lifecycle_state, created_by) "
                     "VALUES ('r-root', 'model', 'root', 0, 'candidate', 'somebody else')")
    pipeline.execute("INSERT INTO model_versions (artifact_id, benchmark_id) VALUES ('r-root', %s)", (bench,))
    row = conn.execute("SELECT a.created_by, j.status FROM artifacts a JOIN gate_jobs j ON j.artifact_id = a.id "
                       "WHERE a.id = 'r-root'").fetchone()
    assert (row["created_by"], row["status"]) == (names["pipeline"], "queued")  # under its own name, always

    for statement, params in [
        ("SELECT * FROM artifacts", ()),
        ("SELECT * FROM eval_results", ()),
        ("INSERT INTO benchmarks (id, task, primary_metric) VALUES ('mine', 'binary', 'auroc')", ()),
        ("INSERT INTO eval_results (artifact_id, benchmark_id, split_hash, model_hash, predictions, prediction_shape, "
         "n_examples, sandboxed) VALUES ('r-root', %s, 'x', 'y', '\\x00', '{1}', 1, true)", (bench,)),
        ("INSERT INTO gate_jobs (artifact_id) VALUES ('r-root')", ()),
        ("INSERT INTO world_model_improvements (event_type, target_artifact_id) VALUES ('model_version_promoted', "
         "'r-root')", ()),
        ("UPDATE model_versions SET promotion_state = 'promoted' WHERE artifact_id = 'r-root'", ()),
        ("UPDATE artifacts SET is_latest = 1 WHERE id = 'r-root'", ()),
        ("DELETE FROM model_versions WHERE artifact_id = 'r-root'", ()),
        ("INSERT INTO operator_actions (action, actor, reason) VALUES ('rebenchmark', 'me', 'x')", ()),
        ("INSERT INTO universal_artifacts (artifact_id, artifact_type, title, lifecycle_state) "
         "VALUES ('r-root', 'model', 'root', 'active')", ()),
        ("INSERT INTO artifacts (id, artifact_type, title, is_latest, lifecycle_state) "
         "VALUES ('r-head', 'model', 't', 1, 'active')", ()),
    ]:
        _denied(pipeline, statement, params)
    pipeline.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest, lifecycle_state) "
                     "VALUES ('r-self', 'model', 't', 0, 'candidate')")
    _denied(pipeline, "INSERT INTO model_versions (artifact_id, promotion_state) VALUES ('r-self', 'promoted')")
    # Another author can neither attach a version to this author's artifact nor request its gates.
    _denied(c["rival"], "INSERT INTO model_versions (artifact_id) VALUES ('r-self')")
    _denied(c["rival"], "SELECT model_eval_gate_request('r-root')")

    # The daemon gates it, over its own connection, with nothing but its grants.
    daemon_settings = settings.with_(dsn=dsns["daemon"])
    assert run_eval_gate("r-root", settings=daemon_settings)["outcome"] == "promote"
    pipeline.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest, lifecycle_state) "
                     "VALUES ('r-next', 'model', 'next', 'r-root', 0, 'candidate')")
    pipeline.execute("INSERT INTO model_versions (artifact_id) VALUES ('r-next')")
    assert run_eval_gate("r-next", settings=daemon_settings)["outcome"] == "promote"
    daemon = c["daemon"]
    for statement in ("INSERT INTO benchmarks (id, task, primary_metric) VALUES ('d', 'binary', 'auroc')",
                      "DELETE FROM artifacts WHERE id = 'r-self'", "UPDATE artifacts SET title = 'x'",
                      "INSERT INTO operator_actions (action, actor, reason) VALUES ('rebenchmark', 'me', 'x')",
                      "INSERT INTO lineage_benchmarks (lineage_id, benchmark_id, action_id) VALUES ('r-root', 'd', 1)",
                      "CREATE TABLE daemon_was_here (x int)"):
        _denied(daemon, statement)

    # The pipeline reads its own verdicts, and only its own.
    mine = pipeline.execute("SELECT artifact_id, promotion_state, reason_code FROM model_eval_gate_author_verdicts() "
                            "ORDER BY artifact_id").fetchall()
    assert [(r[0], r[1]) for r in mine] == [("r-next", "promoted"), ("r-root", "superseded")]
    assert c["rival"].execute("SELECT count(*) FROM model_eval_gate_author_verdicts()").fetchone()[0] == 0
    # What an author may learn of its queries (holdout accounting): its own
    # rows of author_releases, and nothing of the tables beneath it.
    released = pipeline.execute("SELECT artifact_id, outcome, reason_code FROM author_releases "
                                "ORDER BY artifact_id").fetchall()
    assert [tuple(r) for r in released] == [("r-next", "promote", "improved"), ("r-root", "promote", "root_version")]
    assert c["rival"].execute("SELECT count(*) FROM author_releases").fetchone()[0] == 0
    assert c["operator"].execute("SELECT count(*) FROM author_releases").fetchone()[0] == 2  # not an author: all
    for table in ("holdout_queries", "holdout_splits", "holdout_attempts", "gate_jobs", "model_pins"):
        _denied(pipeline, f"SELECT * FROM {table}")
    _denied(daemon, "DELETE FROM holdout_queries")

    # The operator does the rest: benchmarks, re-benchmarking, reading everything.
    operator = c["operator"]
    operator.row_factory = psycopg.rows.dict_row
    record_benchmark(operator, world.benchmark)
    rebenchmark(operator, "r-root", bench, actor="Dr. Ada Lovelace", reason="role test")
    assert operator.execute("SELECT count(*) AS n FROM eval_results").fetchone()["n"] >= 2
    _denied(operator, "CREATE TABLE operator_was_here (x int)")


def test_the_daemon_process_runs_with_nothing_but_its_role(settings, conn, tmp_path, logins, start_daemon):
    """`model-eval-gate run` as model_eval_gate_daemon: start-up checks, LISTEN, claims, gates and applies."""
    names, dsns, c = logins
    world = World(settings, conn, tmp_path, n=60)
    for artifact_id, strength in (("d-root", 0.4), ("d-next", 0.95)):
        write_eval_py(model_dir(settings, artifact_id), strength=strength)
    daemon = start_daemon("d1", settings=settings.with_(dsn=dsns["daemon"]))
    pipeline = c["pipeline"]
    pipeline.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest, lifecycle_state) "
                     "VALUES ('d-root', 'model', 'root', 0, 'candidate')")
    pipeline.execute("INSERT INTO model_versions (artifact_id, benchmark_id) VALUES ('d-root', %s)",
                     (world.benchmark.id,))
    assert wait_decided(conn, "d-root", daemons=[daemon])["outcome"] == "promote"
    pipeline.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest, lifecycle_state) "
                     "VALUES ('d-next', 'model', 'next', 'd-root', 0, 'candidate')")
    pipeline.execute("INSERT INTO model_versions (artifact_id) VALUES ('d-next')")
    job = wait_decided(conn, "d-next", daemons=[daemon])
    assert (job["outcome"], job["attempt"]) == ("promote", 1), daemon.tail()
    errors = [e for e in daemon.events() if e.get("level") in ("error", "critical")]
    assert not errors, errors
    assert conn.execute("SELECT count(*) AS n FROM holdout_queries WHERE artifact_id LIKE 'd-%%' "
                        "AND answered_at IS NOT NULL").fetchone()["n"] == 2


def test_the_roles_command_prints_and_applies_the_sql(settings, conn):
    printed = cli(settings, "roles")
    assert printed.returncode == 0 and "CREATE ROLE" in printed.stdout and "model_eval_gate_daemon" in printed.stdout
    applied = cli(settings, "roles", "--apply")
    assert applied.returncode == 0, applied.stderr
    granted = conn.execute("SELECT privilege_type FROM information_schema.role_table_grants "
                           "WHERE grantee = 'model_eval_gate_pipeline' AND table_name = 'model_versions'").fetchall()
    assert [g["privilege_type"] for g in granted] == ["INSERT"]
