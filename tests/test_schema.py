"""The live schema matches the WS1 specification, and the database guards lineages itself."""
from __future__ import annotations

import psycopg
import pytest

# Every column of WS1's model_versions: name -> (PostgreSQL type, nullable, default contains)
MODEL_VERSIONS_COLUMNS = {
    "artifact_id": ("text", False, None),
    "is_external": ("integer", False, "0"),
    "external_source_url": ("text", True, None),
    "external_source_version": ("text", True, None),
    "base_model_id": ("text", True, None),
    "code_repo_url": ("text", True, None),
    "code_commit_sha": ("text", True, None),
    "code_entrypoint": ("text", True, None),
    "training_started_at": ("timestamp with time zone", True, None),
    "training_completed_at": ("timestamp with time zone", True, None),
    "trained_by": ("text", True, None),
    "gpu_allocation_id": ("text", True, None),
    "training_params_json": ("jsonb", True, None),
    "eval_metrics_json": ("jsonb", True, None),
    "eval_dataset_artifact_id": ("text", True, None),
    "benchmark_id": ("text", True, None),
    "promotion_state": ("text", False, "'candidate'"),
    "promotion_notes": ("text", True, None),
    "created_at": ("timestamp with time zone", False, "now()"),
}


def test_model_versions_has_exactly_the_spec_columns(conn):
    rows = conn.execute("""SELECT column_name, data_type, is_nullable, column_default
                             FROM information_schema.columns
                            WHERE table_name = 'model_versions'""").fetchall()
    live = {r["column_name"]: r for r in rows}
    assert set(live) == set(MODEL_VERSIONS_COLUMNS)
    for name, (data_type, nullable, default) in MODEL_VERSIONS_COLUMNS.items():
        assert live[name]["data_type"] == data_type, name
        assert (live[name]["is_nullable"] == "YES") == nullable, name
        if default is not None:
            assert default in (live[name]["column_default"] or ""), name


def test_model_versions_constraints(conn):
    rows = conn.execute("""SELECT conname, contype, pg_get_constraintdef(oid) AS def
                             FROM pg_constraint WHERE conrelid = 'model_versions'::regclass""").fetchall()
    defs = [r["def"] for r in rows]
    assert "PRIMARY KEY (artifact_id)" in defs
    assert "FOREIGN KEY (artifact_id) REFERENCES artifacts(id) ON DELETE CASCADE" in defs
    assert "FOREIGN KEY (base_model_id) REFERENCES artifacts(id)" in defs
    assert "FOREIGN KEY (eval_dataset_artifact_id) REFERENCES artifacts(id)" in defs
    check = next(d for d in defs if "promotion_state" in d)
    for state in ("candidate", "promoted", "rejected", "superseded"):
        assert f"'{state}'" in check
    assert any("is_external" in d and "0" in d and "1" in d for d in defs)


def test_model_versions_indexes(conn):
    rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'model_versions'").fetchall()
    defs = {r["indexname"]: r["indexdef"] for r in rows}
    assert "(base_model_id)" in defs["idx_model_versions_base"]
    assert "(trained_by)" in defs["idx_model_versions_trained_by"]
    assert "(promotion_state)" in defs["idx_model_versions_promotion"]


def test_promotion_state_vocabulary_is_enforced(conn):
    conn.execute("INSERT INTO artifacts (id, artifact_type, title) VALUES ('m', 'model', 'm')")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO model_versions (artifact_id, promotion_state) VALUES ('m', 'maybe')")


def test_host_tables_and_vector_extension_exist(conn):
    tables = {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"artifacts", "universal_artifacts", "artifact_lifecycle_history", "benchmarks",
            "world_model_improvements", "tickets", "tool_calls"} <= tables
    assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
    columns = {r["column_name"] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'artifacts'")}
    assert {"id", "artifact_type", "title", "version_number", "parent_version_id", "version_tag", "changelog",
            "is_latest", "lifecycle_state", "superseded_by", "origin_type", "origin_url", "metadata",
            "created_by", "created_at"} <= columns


def test_the_database_allows_one_latest_model_per_lineage(conn):
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest) VALUES ('root', 'model', 'r', 1)")
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                 "VALUES ('child', 'model', 'c', 'root', 0)")
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                 "VALUES ('grandchild', 'model', 'g', 'child', 0)")
    assert {r["lineage_id"] for r in conn.execute("SELECT lineage_id FROM artifacts")} == {"root"}
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("UPDATE artifacts SET is_latest = 1 WHERE id = 'grandchild'")
    # Handing over in the right order works: old head first, then the new one.
    with conn.transaction():
        conn.execute("UPDATE artifacts SET is_latest = 0 WHERE id = 'root'")
        conn.execute("UPDATE artifacts SET is_latest = 1 WHERE id = 'grandchild'")
    # Another lineage is independent, and non-model artifacts are not guarded.
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest) VALUES ('other', 'model', 'o', 1)")
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                 "VALUES ('ds2', 'dataset', 'd', 'other', 1)")


def test_reparenting_moves_the_subtree_to_the_new_lineage(conn):
    conn.execute("INSERT INTO artifacts (id, artifact_type, title) VALUES ('a', 'model', 'a'), ('b', 'model', 'b')")
    conn.execute("UPDATE artifacts SET is_latest = 0 WHERE id = 'b'")
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest) "
                 "VALUES ('b2', 'model', 'b2', 'b', 0)")
    conn.execute("UPDATE artifacts SET parent_version_id = 'a' WHERE id = 'b'")
    lineage = {r["id"]: r["lineage_id"] for r in conn.execute("SELECT id, lineage_id FROM artifacts")}
    assert lineage == {"a": "a", "b": "a", "b2": "a"}
