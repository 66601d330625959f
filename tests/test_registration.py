"""register_model(): validation first, then artifacts + universal_artifacts + model_versions in one transaction.

Invalid input writes nothing but its own audit row in tool_calls (every call
of a tool is audited, refused ones too; see test_tool_calls.py).
"""
from __future__ import annotations

import copy
import json
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from model_eval_gate import register_model
from model_eval_gate.catalog import MetadataValidationError
from invariants import assert_lineage_invariants

AUDIT_TABLE = "tool_calls"


def valid_payload(**changes) -> dict:
    payload = {
        "title": "AD Risk Prediction Model v2",
        "metadata": {
            "model_family": "logistic_regression",
            "framework": "scikit-learn",
            "parameter_count": 24,
            "training_data": "ADNI baseline cohort (n=1,602)",
            "evaluation_dataset": "ADNI 20% holdout",
            "evaluation_metrics": {"auroc": 0.831, "brier": 0.166},
            "training_config": {"C": 0.5, "penalty": "l2"},
        },
        "version_tag": "v2",
        "changelog": "stronger regularisation",
        "created_by": "agent-ml-7",
        "code_repo_url": "https://github.com/research-platform/ad-risk",
        "code_commit_sha": "9e4d1c7a52b3",
        "code_entrypoint": "train.py",
        "training_started_at": "2026-04-01T10:00:00Z",
        "training_completed_at": "2026-04-01T12:30:00+02:00",  # 10:30 UTC: after the start
        "trained_by": "agent-ml-7",
    }
    payload.update(changes)
    return payload


def external_payload(**changes) -> dict:
    payload = valid_payload(title="Microglial-Amyloid-Cytokine Activation Model v2")
    payload["metadata"].update(is_external=True, external_source_url="https://zenodo.org/records/10482213",
                               external_source_version="v2.1")
    payload.update(changes)
    return payload


def public_tables(conn) -> list[str]:
    return [r["tablename"] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]


def row_counts(conn) -> dict[str, int]:
    return {table: conn.execute(f'SELECT count(*) AS n FROM "{table}"').fetchone()["n"] for table in public_tables(conn)}


def assert_refused_without_writes(conn, settings, payload) -> MetadataValidationError:
    """Registration refuses payload; every table but the audit keeps its row count; one error audit row."""
    before = row_counts(conn)
    assert {"artifacts", "universal_artifacts", "model_versions", "gate_jobs", AUDIT_TABLE} <= set(before)
    with pytest.raises(MetadataValidationError) as caught:
        register_model(payload, settings=settings)
    after = row_counts(conn)
    assert after[AUDIT_TABLE] == before[AUDIT_TABLE] + 1
    assert {t: n for t, n in after.items() if t != AUDIT_TABLE} == \
           {t: n for t, n in before.items() if t != AUDIT_TABLE}
    audit = conn.execute("SELECT tool_name, status, error FROM tool_calls ORDER BY id DESC LIMIT 1").fetchone()
    assert audit["tool_name"] == "register_model" and audit["status"] == "error"
    assert audit["error"].startswith("MetadataValidationError: ")
    return caught.value


# ------------------------------------------------------------ good input --

def test_registration_writes_the_three_rows_and_queues_a_gate_job(conn, settings):
    payload = valid_payload()
    artifact_id = register_model(copy.deepcopy(payload), settings=settings)

    artifact = conn.execute("SELECT * FROM artifacts WHERE id = %s", (artifact_id,)).fetchone()
    assert artifact["artifact_type"] == "model"
    assert artifact["title"] == payload["title"]
    assert artifact["metadata"] == payload["metadata"]
    assert (artifact["version_number"], artifact["parent_version_id"], artifact["lineage_id"]) == (1, None, artifact_id)
    assert (artifact["is_latest"], artifact["lifecycle_state"]) == (0, "candidate")
    assert (artifact["version_tag"], artifact["changelog"], artifact["created_by"]) == ("v2", payload["changelog"],
                                                                                         "agent-ml-7")
    assert artifact["origin_type"] == "internal"

    universal = conn.execute("SELECT * FROM universal_artifacts WHERE artifact_id = %s", (artifact_id,)).fetchone()
    assert (universal["artifact_type"], universal["title"], universal["lifecycle_state"]) == \
           ("model", payload["title"], "candidate")

    version = conn.execute("SELECT * FROM model_versions WHERE artifact_id = %s", (artifact_id,)).fetchone()
    assert version["promotion_state"] == "candidate"
    assert version["is_external"] == 0
    assert (version["code_repo_url"], version["code_commit_sha"], version["code_entrypoint"]) == \
           (payload["code_repo_url"], "9e4d1c7a52b3", "train.py")
    assert version["training_started_at"] == datetime(2026, 4, 1, 10, 0, tzinfo=timezone.utc)
    assert version["training_completed_at"] == datetime(2026, 4, 1, 10, 30, tzinfo=timezone.utc)
    assert version["trained_by"] == "agent-ml-7"
    assert version["eval_metrics_json"] == payload["metadata"]["evaluation_metrics"]
    assert version["training_params_json"] == payload["metadata"]["training_config"]

    jobs = conn.execute("SELECT status, reason FROM gate_jobs WHERE artifact_id = %s", (artifact_id,)).fetchall()
    assert jobs == [{"status": "queued", "reason": "registered"}]
    assert_lineage_invariants(conn)


def test_an_external_model_records_its_source(conn, settings):
    artifact_id = register_model(external_payload(artifact_id="model-macam-v2"), settings=settings)
    assert artifact_id == "model-macam-v2"
    version = conn.execute("SELECT * FROM model_versions WHERE artifact_id = %s", (artifact_id,)).fetchone()
    assert (version["is_external"], version["external_source_url"], version["external_source_version"]) == \
           (1, "https://zenodo.org/records/10482213", "v2.1")
    artifact = conn.execute("SELECT origin_type, origin_url FROM artifacts WHERE id = %s", (artifact_id,)).fetchone()
    assert artifact == {"origin_type": "external", "origin_url": "https://zenodo.org/records/10482213"}


def test_a_child_version_continues_its_parents_lineage(conn, settings):
    root = register_model(valid_payload(artifact_id="ad-risk-v1"), settings=settings)
    child = register_model(valid_payload(artifact_id="ad-risk-v2", parent_version_id=root), settings=settings)
    grandchild = register_model(valid_payload(artifact_id="ad-risk-v3", parent_version_id=child), settings=settings)
    rows = {r["id"]: r for r in conn.execute(
        "SELECT id, version_number, parent_version_id, lineage_id, is_latest, lifecycle_state FROM artifacts").fetchall()}
    assert rows[child] == {"id": child, "version_number": 2, "parent_version_id": root, "lineage_id": root,
                           "is_latest": 0, "lifecycle_state": "candidate"}
    assert rows[grandchild] == {"id": grandchild, "version_number": 3, "parent_version_id": child,
                                "lineage_id": root, "is_latest": 0, "lifecycle_state": "candidate"}
    assert_lineage_invariants(conn)


def test_a_fine_tune_may_name_an_existing_base_model(conn, settings):
    base = register_model(valid_payload(artifact_id="base-model"), settings=settings)
    payload = valid_payload()
    payload["metadata"]["base_model_id"] = base
    tuned = register_model(payload, settings=settings)
    row = conn.execute("SELECT base_model_id FROM model_versions WHERE artifact_id = %s", (tuned,)).fetchone()
    assert row["base_model_id"] == base


def test_registration_is_one_transaction(conn, settings):
    # A real fault inside the database, after artifacts and universal_artifacts
    # were written: the model_versions INSERT fails, and so must everything.
    conn.execute("""CREATE FUNCTION refuse_model_version() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'injected fault'; END; $$""")
    conn.execute("""CREATE TRIGGER refuse_model_version BEFORE INSERT ON model_versions
                    FOR EACH ROW EXECUTE FUNCTION refuse_model_version()""")
    before = row_counts(conn)
    with pytest.raises(psycopg.errors.RaiseException, match="injected fault"):
        register_model(valid_payload(artifact_id="half-written"), settings=settings)
    after = row_counts(conn)
    assert {t: n for t, n in after.items() if t != AUDIT_TABLE} == \
           {t: n for t, n in before.items() if t != AUDIT_TABLE}
    assert conn.execute("SELECT count(*) AS n FROM artifacts WHERE id = 'half-written'").fetchone()["n"] == 0


# ------------------------------------------------------------- bad input --

def test_metadata_and_registration_problems_are_all_listed(conn, settings):
    payload = valid_payload(code_commit_sha="not-a-sha", training_started_at="yesterday", colour="blue")
    payload["metadata"].update(parameter_count="12.3M", evaluation_metrics={"auroc": "good"})
    del payload["metadata"]["framework"]
    error = assert_refused_without_writes(conn, settings, payload)
    paths = [v.path for v in error.violations]
    for expected in ("$.code_commit_sha", "$.training_started_at", "$", "$.metadata.parameter_count",
                     "$.metadata.evaluation_metrics.auroc", "$.metadata.framework"):
        assert expected in paths, (expected, paths)
        assert f"{expected}: " in str(error)
    assert "'colour' was unexpected" in str(error)


def test_an_unknown_parent_is_a_violation(conn, settings):
    error = assert_refused_without_writes(conn, settings, valid_payload(parent_version_id="no-such-model"))
    assert [str(v) for v in error.violations] == ["$.parent_version_id: no artifact 'no-such-model'"]


def test_a_parent_that_is_not_a_model_is_a_violation(conn, settings):
    conn.execute("INSERT INTO artifacts (id, artifact_type, title) VALUES ('dataset-1', 'dataset', 'ADNI')")
    error = assert_refused_without_writes(conn, settings, valid_payload(parent_version_id="dataset-1"))
    assert [v.path for v in error.violations] == ["$.parent_version_id"]
    assert "is a dataset, not a model" in str(error)


def test_a_duplicate_artifact_id_is_a_violation(conn, settings):
    register_model(valid_payload(artifact_id="model-dup"), settings=settings)
    error = assert_refused_without_writes(conn, settings, valid_payload(artifact_id="model-dup"))
    assert [v.path for v in error.violations] == ["$.artifact_id"]
    assert "already exists" in str(error)


@pytest.mark.parametrize("reference", ["", "no-such-dataset"])
def test_references_to_missing_artifacts_are_violations(conn, settings, reference):
    payload = valid_payload(eval_dataset_artifact_id=reference)
    payload["metadata"]["base_model_id"] = "no-such-base"
    error = assert_refused_without_writes(conn, settings, payload)
    assert sorted(v.path for v in error.violations) == ["$.eval_dataset_artifact_id", "$.metadata.base_model_id"]


@pytest.mark.parametrize("field, value", [
    ("training_started_at", "2026-04-01 10:00"),          # no seconds, no offset
    ("training_started_at", "2026-04-01T10:00:00"),       # no offset: which instant?
    ("training_started_at", "2026-02-30T10:00:00Z"),
    ("training_completed_at", "2026-04-01T10:00:00+20:00"),
    ("training_completed_at", "9999-12-31T23:59:59-14:00"),
    ("training_completed_at", "2026-04-01T09:00:00Z"),    # before the start
    ("code_commit_sha", "9e4d1c7a52b3\n"),
    ("artifact_id", "model-1\n"),
    ("title", "AD risk \x00"),
    ("changelog", "lone \udc80 surrogate"),
])
def test_values_the_database_would_refuse_or_misread_are_violations(conn, settings, field, value):
    error = assert_refused_without_writes(conn, settings, valid_payload(**{field: value}))
    assert f"$.{field}" in [v.path for v in error.violations]


# ------------------------------------------------------------ properties --

METADATA_REQUIRED = ["model_family", "framework", "parameter_count", "training_data", "evaluation_dataset",
                     "evaluation_metrics"]
REGISTRATION_KEYS = set(json.loads((Path(__file__).resolve().parents[1] / "schemas" / "model_registration.json")
                                   .read_text())["properties"])
junk_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3))
blank_strings = st.sampled_from(["", " ", "\t\n"])


def _with_metadata(change):
    """A mutation of the metadata object (a no-op when an earlier mutation removed it)."""
    def mutate(payload):
        if isinstance(payload.get("metadata"), dict):
            change(payload["metadata"])
        return payload
    return mutate


def _setter(key, value):
    def mutate(metadata):
        metadata[key] = value
    return mutate


def _dropper(*keys):
    def mutate(mapping):
        for key in keys:
            mapping.pop(key, None)
    return mutate


def _top_level(key, value):
    def mutate(payload):
        payload[key] = value
        return payload
    return mutate


not_integral = st.floats().filter(lambda x: not x.is_integer())
bad_parameter_counts = st.one_of(st.integers(max_value=-1), not_integral, st.booleans(), st.text(max_size=8),
                                 st.none(), st.just("12.3M"))
bad_texts = st.one_of(blank_strings, st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2))
bad_training_data = st.one_of(blank_strings, st.integers(), st.none(), st.just({}), st.just([]), st.just([""]))
bad_metrics = st.one_of(st.text(max_size=5), st.lists(st.floats(), max_size=2), st.integers(),
                        st.dictionaries(st.text(min_size=1, max_size=5),
                                        st.one_of(st.text(max_size=5), st.booleans(), st.just([1.0]),
                                                  st.sampled_from([float("nan"), float("inf")])),
                                        min_size=1, max_size=3))
bad_timestamps = st.one_of(
    st.sampled_from(["yesterday", "", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z",
                     "2026-01-01T00:00:00", "2026-01-01", "2026-01-01T00:00:00+20:00", "9999-12-31T23:59:59-14:00",
                     "0001-01-01T00:00:00+01:00", "２０２６-01-01T00:00:00Z"]),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=12),
    st.integers(),
)
bad_shas = st.one_of(
    st.text(alphabet="ghijklmnopqrstuvwxyz-_ ", min_size=1, max_size=12),
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=6),
    st.text(alphabet="0123456789abcdef", min_size=65, max_size=70),
    st.text(alphabet="0123456789abcdef", min_size=7, max_size=12).map(lambda s: s + "\n"),
    st.integers(),
)
unknown_tradeoff_keys = st.text(min_size=1, max_size=10).filter(lambda k: k not in {"param_count", "latency",
                                                                                     "memory", "rationale"})


@st.composite
def completed_before_started(draw):
    started = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                timezones=st.just(timezone.utc)))
    earlier = started - draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400)))
    def mutate(payload):
        payload["training_started_at"] = started.isoformat()
        payload["training_completed_at"] = earlier.isoformat()
        return payload
    return mutate


mutations = st.one_of(
    st.sampled_from(METADATA_REQUIRED).map(lambda key: _with_metadata(_dropper(key))),
    st.sampled_from(["title", "metadata"]).map(lambda key: (lambda p: (p.pop(key, None), p)[1])),
    st.tuples(st.sampled_from(["model_family", "framework", "evaluation_dataset"]), bad_texts)
      .map(lambda kv: _with_metadata(_setter(*kv))),
    bad_training_data.map(lambda v: _with_metadata(_setter("training_data", v))),
    bad_metrics.map(lambda v: _with_metadata(_setter("evaluation_metrics", v))),
    bad_parameter_counts.map(lambda v: _with_metadata(_setter("parameter_count", v))),
    st.tuples(st.sampled_from([True, 1]),
              st.sampled_from([("external_source_url",), ("external_source_version",),
                               ("external_source_url", "external_source_version")]))
      .map(lambda t: _with_metadata(lambda m: (m.update(is_external=t[0]), _dropper(*t[1])(m)))),
    unknown_tradeoff_keys.map(lambda k: _with_metadata(_setter("tradeoff_justification", {k: "-10%"}))),
    junk_values.map(lambda v: _top_level("metadata", v)),
    st.tuples(st.text(min_size=1, max_size=12).filter(lambda k: k not in REGISTRATION_KEYS), junk_values)
      .map(lambda kv: _top_level(*kv)),
    st.tuples(st.sampled_from(["training_started_at", "training_completed_at"]), bad_timestamps)
      .map(lambda kv: _top_level(*kv)),
    completed_before_started(),
    bad_shas.map(lambda v: _top_level("code_commit_sha", v)),
    st.sampled_from(["\x00", "\ud800"]).map(lambda c: _top_level("title", "AD risk " + c)),
)
non_dict_payloads = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10),
                              st.lists(st.integers(), max_size=3), st.just([valid_payload()]))
malformed_payloads = st.one_of(
    st.lists(mutations, min_size=1, max_size=4).map(
        lambda applied: _apply(applied, valid_payload())),
    non_dict_payloads,
)


def _apply(applied, payload):
    for mutate in applied:
        payload = mutate(payload)
    return payload


@hypothesis_settings(max_examples=60, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=malformed_payloads)
def test_every_malformed_payload_is_refused_with_a_message_and_writes_nothing(conn, settings, payload):
    # One database for every example: nothing may accumulate but audit rows.
    error = assert_refused_without_writes(conn, settings, payload)
    message = str(error)
    assert message.strip() and "$" in message
    assert error.violations and all(v.path.startswith("$") and v.message for v in error.violations)
