"""The WS1 backfill: the 8 legacy model artifacts adopted through the registration write path."""
from __future__ import annotations

import json
import re

import pytest

from model_eval_gate import catalog, register_model, validate_metadata
from model_eval_gate.catalog import MetadataValidationError, backfill, legacy_fixture
from invariants import assert_lineage_invariants

LEGACY = {artifact["id"]: artifact for artifact in legacy_fixture()}
ODE_TITLES = {"Amyloid Production-Clearance Model", "Microglial Activation ODE (TREM2/APOE/IL-6)"}
CELL_TYPE_CLASSIFIER = "model-14307274-a3d9-4b8e-b5c2-0e7f61d84a93"
MICROGLIAL_RF = "model-45e16a37-c8b2-4f91-a6d0-7e3b5c9d2f84"
EXTERNAL_MACAM = "model-9ccc79de-1d6e-4b3a-8f27-c5a9e0b4d716"
NEURO_RISK = "model-29ce54ef-7f4c-4d5a-9e21-6b0c3a8d1f42"


class WriterSpy:
    """Counts calls of the catalog's one model_versions writer, then lets the real one run."""

    def __init__(self, real):
        self.real = real
        self.calls: list[dict] = []

    def __call__(self, conn, **kwargs):
        self.calls.append(kwargs)
        return self.real(conn, **kwargs)


@pytest.fixture
def writer_spy(monkeypatch):
    spy = WriterSpy(catalog._write_model_version)
    monkeypatch.setattr(catalog, "_write_model_version", spy)
    return spy


@pytest.fixture
def report_path(tmp_path):
    return tmp_path / "docs" / "model_artifacts" / "migration_report_ws1.md"


@pytest.fixture
def backfilled(settings, report_path, writer_spy):
    outcome = backfill(settings=settings, report_path=report_path, load_fixture=True)
    return outcome


def snapshot(conn, skip=("tool_calls",)) -> dict[str, list[str]]:
    """Every public table's full contents, as sorted JSON rows."""
    tables = [r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
    return {table: sorted(json.dumps(r["row"], sort_keys=True) for r in conn.execute(
        f'SELECT to_jsonb(t) AS row FROM "{table}" t').fetchall()) for table in tables if table not in skip}


def test_the_fixture_is_the_eight_legacy_artifacts_of_the_spec():
    assert len(LEGACY) == 8
    titles = {a["title"] for a in LEGACY.values()}
    assert ODE_TITLES <= titles
    assert LEGACY[CELL_TYPE_CLASSIFIER]["metadata"]["parameter_count"] == "12.3M"


def test_every_legacy_artifact_gets_a_model_versions_row_and_none_is_rejected(conn, backfilled):
    assert sorted(backfilled.adopted) == sorted(LEGACY)
    rows = conn.execute("""SELECT a.id, a.title, mv.promotion_state FROM artifacts a
                             JOIN model_versions mv ON mv.artifact_id = a.id""").fetchall()
    states = {r["id"]: r["promotion_state"] for r in rows}
    assert set(states) == set(LEGACY)
    assert "rejected" not in states.values()
    assert sum(state == "promoted" for state in states.values()) >= 6
    assert {r["title"] for r in rows if r["promotion_state"] == "candidate"} == ODE_TITLES
    assert_lineage_invariants(conn)


def test_the_odes_wait_for_the_gate(conn, backfilled):
    queued = conn.execute("""SELECT a.title FROM gate_jobs j JOIN artifacts a ON a.id = j.artifact_id
                              WHERE j.status = 'queued'""").fetchall()
    assert {r["title"] for r in queued} == ODE_TITLES


def test_backfill_writes_through_the_same_writer_as_registration(conn, settings, report_path, writer_spy):
    ad_risk = "model-8479a365-5e1f-4a27-9c6d-3b8a0f2e7c51"
    registration = register_model({"title": "AD risk, registered", "metadata": LEGACY[ad_risk]["metadata"]},
                                  settings=settings)
    outcome = backfill(settings=settings, report_path=report_path, load_fixture=True)
    written = [call["artifact_id"] for call in writer_spy.calls]
    assert written[0] == registration
    assert sorted(written[1:]) == sorted(outcome.adopted) == sorted(LEGACY)
    # The same metadata through either path lands in the same model_versions columns.
    mapped = ("is_external", "external_source_url", "base_model_id", "training_params_json", "eval_metrics_json",
              "benchmark_id")
    rows = {r["artifact_id"]: r for r in conn.execute(
        f"SELECT artifact_id, {', '.join(mapped)} FROM model_versions WHERE artifact_id = ANY(%s)",
        ([registration, ad_risk],)).fetchall()}
    assert {k: rows[registration][k] for k in mapped} == {k: rows[ad_risk][k] for k in mapped}
    assert rows[ad_risk]["eval_metrics_json"] == LEGACY[ad_risk]["metadata"]["evaluation_metrics"]


def test_ambiguous_fields_are_held_for_review_never_guessed(conn, backfilled):
    held = {(r["artifact_id"], r["field"]): r for r in conn.execute(
        "SELECT artifact_id, field, reason, legacy_value, status FROM model_review_items").fetchall()}
    rounded = held[(CELL_TYPE_CLASSIFIER, "parameter_count")]
    assert rounded["legacy_value"] == "12.3M" and rounded["status"] == "open"
    assert held[(MICROGLIAL_RF, "parameter_count")]["legacy_value"] is None
    assert (EXTERNAL_MACAM, "external_source_version") in held
    # Nowhere did "12.3M" become a number.
    metadata = conn.execute("SELECT metadata FROM artifacts WHERE id = %s", (CELL_TYPE_CLASSIFIER,)).fetchone()["metadata"]
    assert "parameter_count" not in metadata
    for table in ("artifacts", "model_versions"):
        dumped = conn.execute(f"SELECT string_agg(to_jsonb(t)::text, ' ') AS s FROM {table} t").fetchone()["s"]
        assert "12300000" not in dumped and "1.23e7" not in dumped.lower()
    # Every artifact whose metadata still fails the schema has something held to explain it.
    for row in conn.execute("SELECT artifact_id, metadata_valid FROM model_backfill_log").fetchall():
        if not row["metadata_valid"]:
            assert any(key[0] == row["artifact_id"] for key in held), row


def test_plain_renames_are_applied_and_the_legacy_blob_is_kept(conn, backfilled):
    metadata = conn.execute("SELECT metadata FROM artifacts WHERE id = %s", (NEURO_RISK,)).fetchone()["metadata"]
    assert validate_metadata(metadata) == metadata
    assert (metadata["model_family"], metadata["parameter_count"], metadata["evaluation_dataset"]) == \
           ("gradient_boosting", 15400, "UKB 2025 holdout")
    logged = {r["artifact_id"]: r["legacy_metadata"] for r in conn.execute(
        "SELECT artifact_id, legacy_metadata FROM model_backfill_log").fetchall()}
    assert logged == {artifact_id: artifact["metadata"] for artifact_id, artifact in LEGACY.items()}


def test_a_second_run_changes_nothing(conn, settings, report_path, backfilled):
    before = snapshot(conn)
    report_bytes, report_mtime = report_path.read_bytes(), report_path.stat().st_mtime_ns
    audits_before = conn.execute("SELECT count(*) AS n FROM tool_calls WHERE tool_name = 'backfill'").fetchone()["n"]

    again = backfill(settings=settings, report_path=report_path, load_fixture=True)

    assert again.adopted == [] and again.already_done == 8
    assert snapshot(conn) == before
    assert report_path.read_bytes() == report_bytes
    assert report_path.stat().st_mtime_ns == report_mtime
    # Only the call's own audit row is new.
    audits = conn.execute("SELECT status FROM tool_calls WHERE tool_name = 'backfill' ORDER BY id").fetchall()
    assert len(audits) == audits_before + 1 and audits[-1]["status"] == "ok"


def test_the_report_names_every_artifact_with_old_and_new_state_and_what_is_held(conn, report_path, backfilled):
    assert backfilled.report_path == report_path.resolve()
    text = report_path.read_text()
    assert len(report_path.read_bytes()) >= 2048
    sections = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL))
    versions = {r["artifact_id"]: r for r in conn.execute("SELECT artifact_id, promotion_state FROM model_versions")}
    held = conn.execute("SELECT artifact_id, field FROM model_review_items").fetchall()
    for artifact_id, legacy in LEGACY.items():
        section = sections[legacy["title"]]
        assert f"`{artifact_id}`" in section
        assert "| lifecycle_state | active | active |" in section
        assert "| model_versions row | none | promotion_state=" \
               f"{versions[artifact_id]['promotion_state']}," in section
        for item in held:
            if item["artifact_id"] == artifact_id:
                assert f"- `{item['field']}`: " in section, (artifact_id, item["field"])
        if not any(item["artifact_id"] == artifact_id for item in held):
            assert "Nothing held for review." in section
    assert '`"12.3M"`' in sections["Cell Type Classifier"]
    assert "- artifacts adopted: 8" in text


def test_a_rejected_registration_cannot_sneak_in_through_the_backfill(conn, settings, report_path):
    # The backfill adopts what is already in artifacts; registration refuses
    # what is not valid. A refused registration leaves nothing to adopt.
    with pytest.raises(MetadataValidationError):
        register_model({"title": "bad", "metadata": {"framework": "pytorch"}}, settings=settings)
    outcome = backfill(settings=settings, report_path=report_path)
    assert outcome.adopted == [] and outcome.already_done == 0
    assert report_path.exists()


def test_the_report_is_a_function_of_the_database_alone(conn, backfilled):
    from model_eval_gate import db
    from model_eval_gate.report import render_migration_report

    rows = db.fetch_all(conn, "backfill_report_rows")
    # Two artifacts may share a title; the order rows arrive in must not matter.
    rows[1] = {**rows[1], "title": rows[0]["title"]}
    assert render_migration_report(rows) == render_migration_report(list(reversed(rows)))
    # The summary states what the database says, also after the gate rejected one.
    rows[0] = {**rows[0], "promotion_state": "rejected"}
    summary = render_migration_report(rows).split("| artifact |")[0]
    assert "- promotion_state rejected: 1 (rejected by the eval gate after the backfill)" in summary
    assert "No artifact was rejected" not in summary
