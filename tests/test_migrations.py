"""Migrations: ordered, checksummed, locked, reversible on a scratch database."""
from __future__ import annotations

import shutil
import threading

import psycopg
import pytest

from model_eval_gate import migrate


def _tables(dsn) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}


def test_every_migration_has_a_documented_down_file():
    for migration in migrate.discover():
        assert migration.down_path.exists(), migration.down_path
        assert migration.down_path.read_text().lstrip().startswith("--"), "down files explain themselves"


def test_up_is_idempotent_and_down_then_up_restores_the_schema(empty_dsn):
    applied = migrate.migrate(empty_dsn)
    assert [m.version for m in applied] == [m.version for m in migrate.discover()]
    assert migrate.migrate(empty_dsn) == []  # re-running is a no-op
    full = _tables(empty_dsn)
    assert {"artifacts", "model_versions", "gate_jobs", "eval_results"} <= full

    reverted = migrate.downgrade(empty_dsn, 0)
    assert [m.version for m in reverted] == sorted((m.version for m in applied), reverse=True)
    assert _tables(empty_dsn) == {"model_eval_gate_migrations"}

    migrate.migrate(empty_dsn)
    assert _tables(empty_dsn) == full


def test_status_lists_applied_and_pending(empty_dsn):
    migrations = migrate.discover()
    migrate.migrate(empty_dsn, migrations[:2])
    with psycopg.connect(empty_dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        states = [s.state for s in migrate.status(conn, migrations)]
    assert states == ["applied", "applied"] + ["pending"] * (len(migrations) - 2)


def test_an_edited_applied_migration_is_refused(empty_dsn, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(migrate.discover()[0].path.parent, directory)
    migrate.migrate(empty_dsn, migrate.discover(directory))
    edited = directory / "0002_model_versions.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(migrate.MigrationError, match="0002_model_versions.sql changed after it was applied"):
        migrate.migrate(empty_dsn, migrate.discover(directory))


def test_a_failing_migration_rolls_back_whole(empty_dsn, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(migrate.discover()[0].path.parent, directory)
    (directory / "0999_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    with pytest.raises(migrate.MigrationError, match="0999_broken.sql failed and was rolled back"):
        migrate.migrate(empty_dsn, migrate.discover(directory))
    assert "half_done" not in _tables(empty_dsn)
    assert "model_versions" in _tables(empty_dsn)  # the good ones before it stay applied


def test_concurrent_migrators_apply_each_migration_once(empty_dsn):
    results, errors = [], []

    def run():
        try:
            results.append(migrate.migrate(empty_dsn))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migrate.discover())]
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM model_eval_gate_migrations").fetchone()[0] == len(migrate.discover())


def test_host_tables_that_already_exist_are_kept_and_extended(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        # A host's pre-versioning artifacts table with data in it.
        conn.execute("CREATE TABLE artifacts (id text PRIMARY KEY, artifact_type text NOT NULL, "
                     "title text NOT NULL DEFAULT '', metadata jsonb NOT NULL DEFAULT '{}', "
                     "created_by text, created_at timestamptz NOT NULL DEFAULT now(), host_column int)")
        conn.execute("INSERT INTO artifacts (id, artifact_type, title, host_column) VALUES "
                     "('a1', 'model', 'old', 7), ('d1', 'dataset', 'data', 8)")
    migrate.migrate(empty_dsn)
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute("SELECT id, host_column, version_number, is_latest, lineage_id "
                            "FROM artifacts ORDER BY id").fetchall()
    # Model rows get their lineage; the host's other rows are never written.
    assert rows == [("a1", 7, 1, 1, "a1"), ("d1", 8, 1, 1, None)]
