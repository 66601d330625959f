"""schemas/model_artifact_metadata.json and validate_metadata(): the contract and its messages.

Pure tests: no database. Registration (which also needs the database) is in
test_registration.py.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from model_eval_gate import validate_metadata
from model_eval_gate.catalog import MetadataValidationError, metadata_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schemas" / "model_artifact_metadata.json"

REQUIRED = {"model_family", "framework", "parameter_count", "training_data", "evaluation_dataset",
            "evaluation_metrics"}
OPTIONAL = {"benchmark_id", "base_model_id", "training_config", "is_external", "external_source_url",
            "external_source_version", "tradeoff_justification"}
EXTERNAL_SOURCE = {"external_source_url", "external_source_version"}


def internal_metadata(**changes) -> dict:
    metadata = {
        "model_family": "logistic_regression",
        "framework": "scikit-learn",
        "parameter_count": 24,
        "training_data": "ADNI baseline cohort (n=1,602)",
        "evaluation_dataset": "ADNI 20% holdout",
        "evaluation_metrics": {"auroc": 0.823, "brier": 0.171},
    }
    metadata.update(changes)
    return metadata


def external_metadata(**changes) -> dict:
    source = {"is_external": True, "external_source_url": "https://huggingface.co/org/model",
              "external_source_version": "4f1c2a9"}
    return internal_metadata(**{**source, **changes})


def violation_paths(metadata) -> list[str]:
    with pytest.raises(MetadataValidationError) as caught:
        validate_metadata(metadata)
    error = caught.value
    for violation in error.violations:
        assert str(violation) in str(error), "every violation is in the message"
    return [v.path for v in error.violations]


# ------------------------------------------------------------- the schema --

@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def test_schema_declares_draft_07_and_is_valid_against_the_metaschema(schema):
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    # The same check spelled out: the schema is an instance of the Draft-07 metaschema.
    metaschema_errors = list(jsonschema.Draft7Validator(jsonschema.Draft7Validator.META_SCHEMA).iter_errors(schema))
    assert metaschema_errors == []


def test_the_catalog_validates_with_the_schema_file(schema):
    assert metadata_schema() == schema


def test_schema_lists_every_required_and_optional_field(schema):
    assert set(schema["properties"]) >= REQUIRED | OPTIONAL
    assert schema["type"] == "object"
    count = schema["properties"]["parameter_count"]
    assert count["type"] == "integer" and count["minimum"] == 0


def test_schema_has_one_explicit_required_array_per_is_external_variant(schema):
    variants = schema["oneOf"]
    assert len(variants) == 2
    by_title = {v["title"]: v for v in variants}
    internal, external = by_title["internal model"], by_title["external model"]
    assert set(internal["required"]) == REQUIRED
    assert set(external["required"]) == REQUIRED | EXTERNAL_SOURCE | {"is_external"}
    internal_values = internal["properties"]["is_external"]["enum"]
    external_values = external["properties"]["is_external"]["enum"]
    assert set(map(repr, internal_values)) == {"False", "0"}
    assert set(map(repr, external_values)) == {"True", "1"}


def test_tradeoff_justification_allows_only_the_allowlisted_claims(schema):
    tradeoff = schema["properties"]["tradeoff_justification"]
    assert tradeoff["additionalProperties"] is False
    assert {"param_count", "latency", "memory"} <= set(tradeoff["properties"])


# ------------------------------------------------------- valid payloads --

@pytest.mark.parametrize("metadata", [
    internal_metadata(),
    internal_metadata(is_external=False),
    internal_metadata(is_external=0),
    external_metadata(),
    external_metadata(is_external=1),
    internal_metadata(training_data=["SEA-AD snRNA-seq", {"cohort": "ROSMAP"}], benchmark_id="bench-ad",
                      base_model_id="model-parent", training_config={"C": 0.5},
                      tradeoff_justification={"param_count": "-50%", "rationale": "half the size"},
                      evaluation_metrics={"auroc": 0.8, "calibration": None}),
    internal_metadata(host_specific_note="extra keys are allowed"),
], ids=["internal", "internal-false", "internal-0", "external", "external-1", "all-optionals", "extra-key"])
def test_valid_metadata_passes_unchanged(metadata):
    assert validate_metadata(metadata) is metadata


# ----------------------------------------------------- invalid payloads --

def test_every_violation_is_listed_with_its_json_path():
    metadata = internal_metadata(parameter_count=-5, training_data="", evaluation_metrics={"auroc": "high"},
                                 tradeoff_justification={"speed": "-10%"}, external_source_url="not a url")
    del metadata["framework"]
    paths = violation_paths(metadata)
    for expected in ("$.framework", "$.parameter_count", "$.training_data", "$.evaluation_metrics.auroc",
                     "$.tradeoff_justification", "$.external_source_url"):
        assert expected in paths, (expected, paths)


def test_the_error_is_a_value_error_that_counts_its_violations():
    with pytest.raises(ValueError, match=r"invalid model metadata: 6 violation\(s\)"):
        validate_metadata({})


@pytest.mark.parametrize("is_external", [True, 1, 1.0])
def test_an_external_model_must_name_its_source(is_external):
    paths = violation_paths(internal_metadata(is_external=is_external))
    assert sorted(paths) == ["$.external_source_url", "$.external_source_version"]


def test_an_external_model_reports_what_it_misses_not_a_generic_oneof_failure():
    with pytest.raises(MetadataValidationError) as caught:
        validate_metadata(external_metadata(external_source_version=None))
    assert "not valid under any of the given schemas" not in str(caught.value)
    assert [v.path for v in caught.value.violations] == ["$.external_source_version"]


def test_an_unknown_is_external_value_is_named():
    assert violation_paths(internal_metadata(is_external="yes")) == ["$.is_external"]


def test_missing_fields_are_reported_at_their_own_path():
    assert sorted(violation_paths({})) == sorted(f"$.{field}" for field in REQUIRED)


@pytest.mark.parametrize("metadata", [None, [], "model", 3, True])
def test_non_object_metadata_is_refused(metadata):
    assert violation_paths(metadata) == ["$"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_metrics_are_refused(value):
    assert violation_paths(internal_metadata(evaluation_metrics={"auroc": value})) == ["$.evaluation_metrics.auroc"]


@pytest.mark.parametrize("changes, path", [
    ({"model_family": "transformer\x00"}, "$.model_family"),
    ({"training_data": "SEA-AD \ud800"}, "$.training_data"),
    ({"training_config": {"lr\x00": 0.1}}, '$.training_config["lr\\u0000"]'),
    ({"training_config": {"callback": object()}}, "$.training_config.callback"),
    ({"training_config": {1: "a"}}, "$.training_config[1]"),
])
def test_values_postgresql_cannot_store_are_refused(changes, path):
    assert path in violation_paths(internal_metadata(**changes))


@pytest.mark.parametrize("claim", ["-50%%", "-５0%", "half", "+50%"])
def test_tradeoff_claims_must_match_the_claim_grammar_exactly(claim):
    paths = violation_paths(internal_metadata(tradeoff_justification={"param_count": claim}))
    assert paths == ["$.tradeoff_justification.param_count"]


def test_a_tradeoff_without_any_claim_names_the_allowed_claims():
    with pytest.raises(MetadataValidationError, match="needs at least one of: param_count, latency, memory"):
        validate_metadata(internal_metadata(tradeoff_justification={"rationale": "smaller"}))


# ------------------------------------------------------------ properties --

names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20) \
    .filter(lambda s: s.strip() != "")
metric_values = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers())


@hypothesis_settings(max_examples=40, deadline=None, database=None)
@given(family=names, framework=names, count=st.integers(min_value=0, max_value=10**12), data=names,
       dataset=names, metrics=st.dictionaries(names, metric_values, max_size=4),
       external=st.booleans(), version=names)
def test_any_well_formed_metadata_is_accepted(family, framework, count, data, dataset, metrics, external, version):
    metadata = {"model_family": family, "framework": framework, "parameter_count": count, "training_data": data,
                "evaluation_dataset": dataset, "evaluation_metrics": metrics}
    if external:
        metadata.update(is_external=True, external_source_url="https://zenodo.org/records/1",
                        external_source_version=version)
    assert validate_metadata(metadata) is metadata
