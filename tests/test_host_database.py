"""Deploying into the platform's existing database (issue 13), on a SQLite-era host schema with data.

The yardstick throughout is the exact stored text of every host row, in the
host's own columns (host_fixture.host_rows): what the gate never rewrites.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from benchmark_factory import make_benchmark, write_eval_py
from host_fixture import HOST_TABLES, checksum, create_sqlite_era_host, host_columns, host_rows

from model_eval_gate import db, migrate
from model_eval_gate.catalog import backfill, register_model_in
from model_eval_gate.config import Settings
from model_eval_gate.evaluate import model_dir
from model_eval_gate.store import host_contract

ROOT = Path(__file__).resolve().parents[1]


def cli(settings, *args, env=None):
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")},
                   "PYTHONPATH": str(ROOT / "daemon"), "MODEL_EVAL_GATE_DSN": settings.dsn,
                   "MODEL_EVAL_GATE_ARTIFACT_ROOT": str(settings.resolved_artifact_root),
                   "MODEL_EVAL_GATE_HOME": str(settings.home), "MODEL_EVAL_GATE_N_RESAMPLES": "1000",
                   **(env or {})}
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=environment, text=True,
                          capture_output=True, timeout=180, cwd=str(ROOT))


def connect(dsn):
    return psycopg.connect(dsn, autocommit=True, row_factory=psycopg.rows.dict_row)


def gate_tables(dsn) -> set[str]:
    with connect(dsn) as conn:
        return {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                if r["tablename"] not in HOST_TABLES}


@pytest.fixture
def host(empty_dsn, tmp_path):
    """A SQLite-era host database, before any migration: (dsn, settings, host columns, host rows)."""
    create_sqlite_era_host(empty_dsn)
    with connect(empty_dsn) as conn:
        columns = host_columns(conn)
        rows = host_rows(conn, columns)
    settings = Settings(dsn=empty_dsn, home=tmp_path / "home", artifact_root=tmp_path / "artifacts",
                        n_resamples=1000)
    return empty_dsn, settings, columns, rows


def non_model_rows(rows, model_ids):
    return {table: {k: v for k, v in found.items() if not (table == "artifacts" and k in model_ids)}
            for table, found in rows.items()}


# ------------------------------------------------------------ the check --

def test_the_check_accepts_the_sqlite_era_host_reads_only_and_lists_what_migrate_adds(host):
    dsn, settings, columns, before = host
    done = cli(settings, "migrate", "--check")
    assert done.returncode == 0, done.stderr
    assert "compatible" in done.stdout
    assert "column benchmarks.manifest jsonb (nullable)" in done.stdout
    assert "column artifacts.lineage_id text (nullable)" in done.stdout
    assert "Traceback" not in done.stderr
    with connect(dsn) as conn:
        assert host_rows(conn, columns) == before
        assert host_columns(conn) == columns
    assert gate_tables(dsn) == set(), "the check created something"


def test_an_incompatible_host_is_refused_with_every_problem_in_one_message_and_nothing_changes(empty_dsn, tmp_path):
    with connect(empty_dsn) as conn:
        conn.execute("""
            CREATE TABLE artifacts (id text PRIMARY KEY, artifact_type text NOT NULL, title text,
                                    metadata bytea, created_by text, created_at text, parent_version_id text,
                                    is_latest boolean DEFAULT true);
            CREATE TABLE tickets (id integer PRIMARY KEY, ticket_type text NOT NULL, artifact_id text,
                                  assignee text, title text NOT NULL, body text, status text, created_at text,
                                  sla_class text NOT NULL);
            CREATE TABLE benchmarks (id text, title text, task text NOT NULL, primary_metric text NOT NULL,
                                     created_at text);
            CREATE TABLE world_model_improvements (id text PRIMARY KEY, event_type text NOT NULL,
                                                   target_artifact_id text NOT NULL, source_artifact_id text,
                                                   magnitude text, detection_metadata text, created_at text);
            INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) VALUES
                ('m1', 'model', 'root', NULL, true), ('m2', 'model', 'child', 'm1', true),
                ('m3', 'model', 'grandchild', 'm2', false), ('d1', 'dataset', 'data', NULL, true);
            INSERT INTO world_model_improvements (id, event_type, target_artifact_id) VALUES
                ('w1', 'model_version_promoted', 'm1'), ('w2', 'model_version_promoted', 'm1');
        """)
        columns = host_columns(conn)
        before = host_rows(conn, columns)
    report = migrate.check(empty_dsn)
    found = {(p.table, p.column) for p in report.problems}
    assert {("artifacts", "metadata"), ("artifacts", "is_latest"), ("tickets", "id"), ("tickets", "sla_class"),
            ("benchmarks", "id"), ("world_model_improvements", "target_artifact_id")} <= found, report.refusal()
    lineage = next(p for p in report.problems if p.table == "artifacts" and "lineage m1" in p.found)
    assert "m1, m2" in lineage.found  # the conflicting rows are named
    metadata = next(p for p in report.problems if p.column == "metadata")
    assert metadata.found == "bytea" and "JSON" in metadata.needed and "ALTER TABLE artifacts" in metadata.fix

    settings = Settings(dsn=empty_dsn, home=tmp_path / "home")
    for args in (("migrate", "--check"), ("migrate",)):
        done = cli(settings, *args)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        for table, column in found:
            assert f"{table}.{column}" in done.stderr or f"{table}: " in done.stderr
        assert "nothing was changed" in done.stderr
    with pytest.raises(migrate.HostSchemaIncompatible):
        migrate.migrate(empty_dsn)
    with connect(empty_dsn) as conn:
        assert host_rows(conn, columns) == before
        assert host_columns(conn) == columns
    assert gate_tables(empty_dsn) == set()


# ------------------------------------------------------- the whole path --

def _register(conn, artifact_id, *, parent, benchmark_id, strength, settings):
    write_eval_py(model_dir(settings, artifact_id), task="binary", strength=strength)
    payload = {"artifact_id": artifact_id, "title": artifact_id, "parent_version_id": parent,
               "trained_by": "agent-test", "created_by": "pipeline", "benchmark_id": benchmark_id,
               "metadata": {"model_family": "logistic_regression", "framework": "python", "parameter_count": 1000,
                            "training_data": "cohort", "evaluation_dataset": "bench", "evaluation_metrics": {}}}
    with conn.transaction():
        register_model_in(conn, payload)


def test_the_whole_path_on_the_sqlite_era_host_leaves_every_host_row_as_it_was(host, tmp_path):
    dsn, settings, columns, before = host
    with connect(dsn) as conn:
        legacy_texts = {r["id"]: r["metadata"] for r in conn.execute(
            "SELECT id, metadata FROM artifacts WHERE artifact_type = 'model'")}
    model_ids = set(legacy_texts)
    assert len(model_ids) == 8 and len(before["artifacts"]) == 308
    untouchable = non_model_rows(before, model_ids)

    def assert_host_rows_intact(step: str, *, models_too: bool):
        with connect(dsn) as conn:
            now = host_rows(conn, columns)
        pre_existing = {t: {k: v for k, v in rows.items() if k in before[t]} for t, rows in now.items()}
        expected = before if models_too else untouchable
        got = pre_existing if models_too else non_model_rows(pre_existing, model_ids)
        assert got == expected, f"host rows changed by {step}"
        assert checksum(got) == checksum(expected)

    # migrate: additive only, no host row rewritten (not even the models').
    assert migrate.migrate(dsn)
    assert_host_rows_intact("migrate", models_too=True)
    with connect(dsn) as conn:
        lineages = {r["id"]: r["lineage_id"] for r in conn.execute("SELECT id, lineage_id FROM artifacts")}
        assert all(lineages[m] == m for m in model_ids)
        assert {v for k, v in lineages.items() if k not in model_ids} == {None}  # non-models never written
        types = {r["column_name"]: r["data_type"] for r in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'artifacts'")}
        assert types["metadata"] == "text" and types["created_at"] == "text"  # no host column retyped

    # backfill: the model rows (only) are adopted; their exact legacy text is kept.
    outcome = backfill(settings=settings, report_path=tmp_path / "report.md")
    assert sorted(outcome.adopted) == sorted(model_ids)
    assert_host_rows_intact("backfill", models_too=False)
    with connect(dsn) as conn:
        kept = {r["artifact_id"]: r["legacy_metadata_text"] for r in conn.execute(
            "SELECT artifact_id, legacy_metadata_text FROM model_backfill_log")}
    assert kept == legacy_texts  # byte for byte, CRLFs and spacing included

    # benchmark add, then gates: better, worse, no-op, through the CLI.
    bench_dir = make_benchmark(tmp_path / "benchmarks", task="binary", n=200)
    done = cli(settings, "benchmark", "add", str(bench_dir))
    assert done.returncode == 0, done.stderr
    with connect(dsn) as conn:
        benchmark_id = conn.execute("SELECT id FROM benchmarks WHERE manifest IS NOT NULL").fetchone()["id"]
    with db.connect(settings, autocommit=True) as conn:
        _register(conn, "host-root", parent=None, benchmark_id=benchmark_id, strength=0.5, settings=settings)
    outcomes = {}
    for name, parent, strength in (("host-root", None, 0.5), ("host-better", "host-root", 0.95),
                                   ("host-worse", "host-better", 0.2), ("host-same", "host-better", 0.95)):
        if name != "host-root":
            with db.connect(settings, autocommit=True) as conn:
                _register(conn, name, parent=parent, benchmark_id=benchmark_id, strength=strength, settings=settings)
        done = cli(settings, "gate", name, "--json")
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode in (0, 3), done.stderr
        outcomes[name] = done.stdout
    with connect(dsn) as conn:
        states = {r["artifact_id"]: r["promotion_state"] for r in conn.execute(
            "SELECT artifact_id, promotion_state FROM model_versions WHERE artifact_id LIKE 'host-%'")}
        assert states == {"host-root": "superseded", "host-better": "promoted", "host-worse": "rejected",
                          "host-same": "rejected"}, outcomes
        same = conn.execute("SELECT result FROM gate_jobs WHERE artifact_id = 'host-same'").fetchone()["result"]
        assert same["bootstrap_skipped"] is True  # the exact no-op check
        # The gate's rows in host tables got ids the host's way: text, no default there.
        tickets = [r["id"] for r in conn.execute("SELECT id FROM tickets WHERE ticket_type = 'candidate-rejected'")]
        events = [r["id"] for r in conn.execute(
            "SELECT id FROM world_model_improvements WHERE event_type = 'model_version_promoted'")]
        assert len(tickets) == 2 and all(t.startswith("tickets:") for t in tickets)
        assert len(events) == 2 and all(e.startswith("world_model_improvements:") for e in events)
        stamp = conn.execute("SELECT created_at FROM tickets WHERE id = %s", (tickets[0],)).fetchone()["created_at"]
        assert stamp and stamp[:4].isdigit()
    assert_host_rows_intact("the gates", models_too=False)

    # The daemon: a candidate inserted with plain SQL, the way a pipeline does.
    from test_worker import DaemonStarter, insert_candidate, wait_decided

    starter = DaemonStarter(settings, tmp_path)
    try:
        daemon = starter("host-d1")
        write_eval_py(model_dir(settings, "host-piped"), task="binary", strength=0.99)
        with db.connect(settings, autocommit=True) as conn:
            insert_candidate(conn, "host-piped", benchmark_id=benchmark_id, parent="host-better")
            job = wait_decided(conn, "host-piped", daemons=[daemon], timeout=60)
        assert job["outcome"] in ("promote", "reject") and job["attempt"] == 1, job  # a verdict, first try
    finally:
        starter.kill_all()
    assert_host_rows_intact("the daemon", models_too=False)

    # The way back: everything of ours goes, every host row and column stays as it was.
    reverted = migrate.downgrade(dsn, 0)
    assert [m.version for m in reverted] == sorted((m.version for m in migrate.discover()), reverse=True)
    assert gate_tables(dsn) == {"model_eval_gate_migrations"}
    with connect(dsn) as conn:
        assert host_columns(conn) == columns
        functions = conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'model_eval_gate%%'").fetchall()
        assert functions == []
        triggers = conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").fetchall()
        assert triggers == []
    assert_host_rows_intact("down to 0", models_too=True)


# --------------------------------------------------------- the way back --

def test_down_to_0_drops_only_the_host_tables_the_gate_created(empty_dsn):
    with connect(empty_dsn) as conn:
        conn.execute("CREATE TABLE artifacts (id text PRIMARY KEY, artifact_type text NOT NULL, title text, "
                     "metadata jsonb, created_by text, created_at timestamptz DEFAULT now(), mine int)")
        conn.execute("INSERT INTO artifacts (id, artifact_type, title, mine) VALUES ('x', 'dataset', 'x', 1)")
    migrate.migrate(empty_dsn)
    with connect(empty_dsn) as conn:
        recorded = {(r["kind"], r["object_name"]) for r in conn.execute(
            "SELECT kind, object_name FROM model_eval_gate_host_objects")}
    assert ("table", "tickets") in recorded and ("table", "artifacts") not in recorded
    assert ("column", "lineage_id") in recorded and ("column", "mine") not in recorded
    migrate.downgrade(empty_dsn, 0)
    with connect(empty_dsn) as conn:
        tables = {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables == {"artifacts", "model_eval_gate_migrations"}
        cols = [r["column_name"] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'artifacts' ORDER BY ordinal_position")]
        assert cols == ["id", "artifact_type", "title", "metadata", "created_by", "created_at", "mine"]
        assert conn.execute("SELECT id, mine FROM artifacts").fetchall() == [{"id": "x", "mine": 1}]


# ------------------------------------------------------- host publishing --

def test_the_hosts_way_of_publishing_a_version_keeps_working(conn):
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest) VALUES ('v1', 'model', 'v1', 1)")
    # The host's order: insert the new latest first, then retire the old, in one transaction.
    with conn.transaction():
        conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                     "VALUES ('v2', 'model', 'v2', 'v1', 1)")
        conn.execute("UPDATE artifacts SET is_latest = 0 WHERE id = 'v1'")
    # Two latest at commit are refused, naming both.
    with pytest.raises(psycopg.errors.UniqueViolation, match="v2, v3"):
        conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                     "VALUES ('v3', 'model', 'v3', 'v2', 1)")


# --------------------------------------------------------- no pgvector --

@pytest.fixture
def unprivileged_dsn(pg_admin_dsn):
    """A database owned by a role that may not create extensions (as on a managed host)."""
    import uuid

    name = f"meg_test_owner_{uuid.uuid4().hex[:10]}"
    role = f"meg_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    admin = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=name)
    yield psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=name, user=role), admin, role
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_without_pgvector_the_gate_runs_and_says_what_a_superuser_must_run(unprivileged_dsn, tmp_path):
    dsn, admin_dsn, role = unprivileged_dsn
    migrate.migrate(dsn)
    with connect(dsn) as conn:
        feature = conn.execute("SELECT enabled, detail FROM model_eval_gate_features").fetchone()
        assert feature["enabled"] is False
        assert "CREATE EXTENSION vector" in feature["detail"] and role in feature["detail"]
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone() is None
    settings = Settings(dsn=dsn, home=tmp_path / "home", artifact_root=tmp_path / "artifacts", n_resamples=1000)
    bench_dir = make_benchmark(tmp_path / "benchmarks", task="binary", n=200)
    assert cli(settings, "benchmark", "add", str(bench_dir)).returncode == 0
    with connect(dsn) as conn:
        benchmark_id = conn.execute("SELECT id FROM benchmarks").fetchone()["id"]
    with db.connect(settings, autocommit=True) as conn:
        _register(conn, "p-root", parent=None, benchmark_id=benchmark_id, strength=0.6, settings=settings)
        assert cli(settings, "gate", "p-root").returncode == 0
        _register(conn, "p-same", parent="p-root", benchmark_id=benchmark_id, strength=0.6, settings=settings)
    done = cli(settings, "gate", "p-same", "--json")
    assert done.returncode == 0, done.stderr
    with connect(dsn) as conn:
        result = conn.execute("SELECT result FROM gate_jobs WHERE artifact_id = 'p-same'").fetchone()["result"]
    assert result["outcome"] == "reject" and result["bootstrap_skipped"] is True
    assert [d["artifact_id"] for d in result["duplicates"]] == ["p-root"]  # found exactly, without fingerprints
    similar = cli(settings, "similar", "p-same")
    assert similar.returncode == 2 and "Traceback" not in similar.stderr
    assert "fingerprints, which are disabled" in similar.stderr and "CREATE EXTENSION vector" in similar.stderr

    # A superuser installs pgvector in a schema of its own; migrate finds it there.
    with connect(admin_dsn) as conn:
        conn.execute("CREATE SCHEMA vectors")
        conn.execute("CREATE EXTENSION vector SCHEMA vectors")
        conn.execute(f'GRANT USAGE ON SCHEMA vectors TO "{role}"')
    migrate.migrate(dsn)
    with connect(dsn) as conn:
        column = conn.execute("SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute "
                              "WHERE attrelid = 'eval_results'::regclass AND attname = 'fingerprint'").fetchone()
        assert column["t"] == "vectors.vector(256)"
    similar = cli(settings, "similar", "p-same")
    assert similar.returncode == 2 and "not on this role's search_path" in similar.stderr
    assert f'ALTER ROLE {role} SET search_path' in similar.stderr
    with connect(admin_dsn) as conn:
        conn.execute(f'ALTER ROLE "{role}" SET search_path = "$user", public, vectors')
    similar = cli(settings, "similar", "p-same")
    assert similar.returncode == 0, similar.stderr
    assert "p-root" in similar.stdout


# ------------------------------------------------------ verdict history --

def test_verdict_history_outlives_the_deleted_artifact(settings, conn, tmp_path):
    from gate_world import World

    from model_eval_gate.gate import run_eval_gate

    world = World(settings, conn, tmp_path, n=200)
    world.model("h-root", strength=0.6)
    assert run_eval_gate("h-root", settings=settings)["outcome"] == "promote"
    world.model("h-worse", strength=0.1, parent="h-root")
    assert run_eval_gate("h-worse", settings=settings)["outcome"] == "reject"
    # The host deletes the rejected model (a plain DELETE: no foreign key of ours stops or follows it).
    conn.execute("DELETE FROM artifacts WHERE id = 'h-worse'")
    jobs = conn.execute("SELECT outcome, result->>'reason_code' AS code FROM gate_jobs "
                        "WHERE artifact_id = 'h-worse'").fetchall()
    assert [j["outcome"] for j in jobs] == ["reject"] and jobs[0]["code"]
    assert conn.execute("SELECT count(*) AS n FROM eval_results WHERE artifact_id = 'h-worse'").fetchone()["n"] == 1
    cascades = conn.execute("""SELECT conrelid::regclass::text AS t FROM pg_constraint
                                WHERE contype = 'f' AND confrelid = 'artifacts'::regclass AND confdeltype = 'c'""")
    assert {r["t"] for r in cascades} == {"model_versions"}  # the companion row only, no history


def test_existing_model_chains_get_their_lineage_parents_first_in_short_batches(empty_dsn):
    with connect(empty_dsn) as conn:
        conn.execute("CREATE TABLE artifacts (id text PRIMARY KEY, artifact_type text NOT NULL, title text, "
                     "metadata text, created_by text, created_at text, parent_version_id text, is_latest int)")
        # Inserted children first, so that no batch order by accident puts the root first.
        conn.execute("""INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) VALUES
            ('m4', 'model', 'm4', 'm3', 1), ('m3', 'model', 'm3', 'm2', 0), ('m2', 'model', 'm2', 'm1', 0),
            ('m1', 'model', 'm1', NULL, 0), ('n2', 'model', 'n2', 'd1', 1), ('d1', 'dataset', 'd1', NULL, 1),
            ('orphan', 'model', 'o', 'gone', 1)""")
    with connect(empty_dsn) as conn:
        migrate.migrate(empty_dsn)
        lineage = {r["id"]: r["lineage_id"] for r in conn.execute("SELECT id, lineage_id FROM artifacts")}
    assert lineage == {"m1": "m1", "m2": "m1", "m3": "m1", "m4": "m1", "n2": "d1", "d1": None, "orphan": "gone"}
