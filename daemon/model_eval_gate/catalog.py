"""The model catalog: metadata validation, registration, and the WS1 backfill.

Registration and the backfill share one write path (_write_model_version), so
legacy artifacts go through the same validators agents use.
"""
from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import psycopg

from . import db
from .bounded_json import MAX_METADATA_BYTES, JsonLimitError, check_value, load_bounded
from .config import Settings
from .logging import get_logger, log_tool_call
from .resources import schema_path

log = get_logger(__name__)

# Fields of the model_versions row a registration may set directly.
MODEL_VERSION_FIELDS = (
    "code_repo_url", "code_commit_sha", "code_entrypoint", "training_started_at",
    "training_completed_at", "trained_by", "gpu_allocation_id", "training_params_json",
    "eval_metrics_json", "eval_dataset_artifact_id", "benchmark_id",
)


@dataclass(frozen=True)
class Violation:
    path: str  # JSON path, e.g. "$.metadata.parameter_count"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class MetadataValidationError(ValueError):
    """Invalid model metadata or registration; lists every violation, not only the first."""

    def __init__(self, violations: Iterable[Violation], what: str = "model metadata"):
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"invalid {what}: {len(self.violations)} violation(s)\n{lines}")


def _ecma_regex(pattern: str) -> str:
    """Translate a JSON Schema (ECMA-262) pattern to Python's re dialect.

    Two differences matter for our identifiers: Python's `$` also matches
    before a trailing newline ("3f9c2a1\\n" would pass as a commit SHA), and
    Python's `\\d` matches every Unicode digit. ECMA's mean end-of-input and 0-9.
    """
    out, in_class, i = [], False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            out.append(("0-9" if in_class else "[0-9]") if escaped == "d" else char + escaped)
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
        i += 1
    return "".join(out)


@cache
def _compiled_pattern(pattern: str) -> re.Pattern:
    return re.compile(_ecma_regex(pattern))


def _pattern_keyword(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _compiled_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 7 with ECMA-262 pattern semantics, as the specification defines them.
_SchemaValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern_keyword})


@cache
def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path(name).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return _SchemaValidator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def metadata_schema() -> dict:
    return _validator("model_artifact_metadata.json").schema


def _join_path(prefix: str, error: jsonschema.ValidationError) -> str:
    path = prefix
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: jsonschema.ValidationError, prefix: str) -> Violation:
    if error.validator == "required":
        # "'framework' is a required property": point at the missing key itself.
        missing = re.match(r"'(.+)' is a required property", error.message)
        if missing:
            return Violation(f"{_join_path(prefix, error)}.{missing.group(1)}", "required property is missing")
    if error.validator == "additionalProperties":
        return Violation(_join_path(prefix, error), error.message)
    if error.validator == "anyOf" and all(set(branch) == {"required"} for branch in error.validator_value):
        # tradeoff_justification's "at least one claim": name the choices.
        names = ", ".join(name for branch in error.validator_value for name in branch["required"])
        return Violation(_join_path(prefix, error), f"needs at least one of: {names}")
    instance = json.dumps(error.instance, default=str)
    if len(instance) > 60:
        instance = instance[:57] + "..."
    return Violation(_join_path(prefix, error), error.message.replace(repr(error.instance), instance, 1)
                     if len(repr(error.instance)) > 60 else error.message)


def _about_is_external(error: jsonschema.ValidationError) -> bool:
    if error.absolute_path:
        return error.absolute_path[0] == "is_external"
    return error.validator == "required" and "'is_external'" in error.message


def _flatten(errors, prefix: str, instance: Any) -> list[Violation]:
    violations: list[Violation] = []
    for error in errors:
        if error.validator == "oneOf" and error.context and not error.absolute_path and isinstance(instance, dict):
            # The root oneOf picks internal vs external by is_external. Report
            # the violations of the variant whose is_external accepts the
            # payload's value, which says "external_source_url is missing"
            # rather than "not valid under any of the given schemas". An
            # is_external no variant accepts (top-level enum reports it) is
            # read as internal, the default.
            variants = sorted({e.schema_path[0] for e in error.context if e.schema_path})
            refusing = {e.schema_path[0] for e in error.context if e.schema_path and _about_is_external(e)}
            variant = next((v for v in variants if v not in refusing), variants[0] if variants else None)
            branch = [e for e in error.context if e.schema_path and e.schema_path[0] == variant
                      and not _about_is_external(e)]
            found = _flatten(branch, prefix, instance)
            if not found and not refusing.issuperset(variants):
                # Never let a failed oneOf vanish: say so even without details.
                # (When every variant refuses is_external, its enum says why.)
                found = [_describe(error, prefix)]
            violations.extend(found)
        else:
            violations.append(_describe(error, prefix))
    return _dedupe(violations)


def _dedupe(violations: Iterable[Violation]) -> list[Violation]:
    # Keep order; a field can fail the same way twice.
    seen, unique = set(), []
    for violation in violations:
        if (violation.path, violation.message) not in seen:
            seen.add((violation.path, violation.message))
            unique.append(violation)
    return unique


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character, which PostgreSQL text and jsonb cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate), which PostgreSQL cannot store"
    return None


def _unstorable(value: Any, path: str) -> list[Violation]:
    """What JSON cannot carry or PostgreSQL cannot store, which the schema does not see.

    NaN and Infinity, NUL characters, lone surrogates, non-string keys and
    non-JSON Python objects would otherwise pass validation and then fail
    inside the INSERT, or worse, be stored as a metric no one can act on.
    """
    if value is None or isinstance(value, (bool, int)):
        return []
    if isinstance(value, float):
        return [] if math.isfinite(value) else [
            Violation(path, f"{value!r} is not a finite number (JSON has no NaN or Infinity)")]
    if isinstance(value, str):
        problem = _text_problem(value)
        return [Violation(path, problem)] if problem else []
    if isinstance(value, (list, tuple)):
        return [v for index, item in enumerate(value) for v in _unstorable(item, f"{path}[{index}]")]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            child = _child_path(path, key)
            if not isinstance(key, str):
                found.append(Violation(child, f"object keys must be strings, not {type(key).__name__}"))
            elif (problem := _text_problem(key)) is not None:
                found.append(Violation(child, f"the key {problem}"))
            found += _unstorable(item, child)
        return found
    return [Violation(path, f"a {type(value).__name__} is not a JSON value")]


def _schema_violations(name: str, instance: dict, prefix: str) -> list[Violation]:
    errors = sorted(_validator(name).iter_errors(instance),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return _flatten(errors, prefix, instance)


# A registration file holds the metadata and a few short fields beside it.
MAX_REGISTRATION_BYTES = MAX_METADATA_BYTES + 64 * 1024


def metadata_violations(metadata: Any, prefix: str = "$") -> list[Violation]:
    if not isinstance(metadata, dict):
        return [Violation(prefix, f"metadata must be a JSON object, not {type(metadata).__name__}")]
    # Size and depth first: the checks below recurse, and psycopg's JSON loader
    # would raise RecursionError on every later read of a deeply nested row.
    too_big = check_value(metadata, what="metadata")
    if too_big is not None:
        return [Violation(prefix, too_big)]
    unstorable = _unstorable(metadata, prefix)
    if any(v.message.startswith("object keys must be strings") for v in unstorable):
        return unstorable  # the schema validator cannot look at such an object
    return _dedupe(unstorable + _schema_violations("model_artifact_metadata.json", metadata, prefix))


def validate_metadata(metadata: Any) -> dict:
    """Validate model metadata against schemas/model_artifact_metadata.json.

    Returns the metadata unchanged when valid; raises MetadataValidationError
    (a ValueError) naming every violation with its JSON path otherwise.
    """
    violations = metadata_violations(metadata)
    if violations:
        raise MetadataValidationError(violations)
    return metadata


# RFC 3339 date-time with an offset PostgreSQL accepts (at most 15:59 away
# from UTC). jsonschema checks format "date-time" only when the optional
# rfc3339-validator is installed, so the catalog checks it itself.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                      r"([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])")
TIMESTAMP_FIELDS = ("training_started_at", "training_completed_at")


def parse_timestamp(text: Any) -> datetime | None:
    """An aware datetime for an RFC 3339 string whose UTC time has a year in 1..9999, else None."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    normalised = text[:10] + "T" + text[11:]
    normalised = normalised[:-1] + "+00:00" if normalised[-1] in "Zz" else normalised
    try:
        parsed = datetime.fromisoformat(normalised)
        parsed.astimezone(timezone.utc)  # year 1 or 9999 pushed past the calendar by the offset
    except (ValueError, OverflowError):
        return None
    return parsed


def registration_violations(payload: Any) -> list[Violation]:
    if not isinstance(payload, dict):
        return [Violation("$", f"a registration must be a JSON object, not {type(payload).__name__}")]
    too_big = check_value({k: v for k, v in payload.items() if k != "metadata"}, max_bytes=64 * 1024,
                          what="the registration without its metadata")
    if too_big is not None:
        return [Violation("$", too_big)]
    unstorable = _unstorable({k: v for k, v in payload.items() if k != "metadata"}, "$")
    if any(v.message.startswith("object keys must be strings") for v in unstorable):
        return unstorable  # the schema validator cannot look at such an object
    violations = unstorable + _schema_violations("model_registration.json", payload, "$")
    if isinstance(payload.get("metadata"), dict):
        violations += metadata_violations(payload["metadata"], "$.metadata")
        metadata = payload["metadata"]
        for key in ("benchmark_id",):
            if key in metadata and payload.get(key) not in (None, metadata[key]):
                violations.append(Violation(f"$.{key}", f"differs from $.metadata.{key} ({metadata[key]!r})"))
    stamps = {}
    for field in TIMESTAMP_FIELDS:
        value = payload.get(field)
        if isinstance(value, str):
            stamps[field] = parse_timestamp(value)
            if stamps[field] is None and not any(v.path == f"$.{field}" for v in violations):
                violations.append(Violation(f"$.{field}", f"{value!r} is not an RFC 3339 date-time with a "
                                                          "time zone offset (at most 15:59 from UTC, years 1 to 9999), "
                                                          "e.g. 2026-04-16T15:20:00Z"))
    started, completed = stamps.get("training_started_at"), stamps.get("training_completed_at")
    if started and completed and completed < started:
        violations.append(Violation("$.training_completed_at", "is before training_started_at"))
    return _dedupe(violations)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _database_violations(conn: psycopg.Connection, payload: dict) -> list[Violation]:
    """What only the database can tell: ids that must or must not exist."""
    violations = []
    artifact_id = payload.get("artifact_id")
    if artifact_id and db.fetch_one(conn, "artifact_exists", {"id": artifact_id})["present"]:
        violations.append(Violation("$.artifact_id", f"an artifact {artifact_id!r} already exists"))
    parent_id = payload.get("parent_version_id")
    if parent_id:
        parent = db.fetch_one(conn, "artifact_by_id", {"id": parent_id})
        if parent is None:
            violations.append(Violation("$.parent_version_id", f"no artifact {parent_id!r}"))
        elif parent["artifact_type"] != "model":
            violations.append(Violation("$.parent_version_id", f"{parent_id!r} is a {parent['artifact_type']}, not a model"))
    metadata = payload.get("metadata") or {}
    for path, ref in (("$.metadata.base_model_id", metadata.get("base_model_id")),
                      ("$.eval_dataset_artifact_id", payload.get("eval_dataset_artifact_id"))):
        # An empty string is a reference too: the foreign key would refuse it.
        if ref is not None and not db.fetch_one(conn, "artifact_exists", {"id": ref})["present"]:
            violations.append(Violation(path, f"no artifact {ref!r}"))
    return violations


def _write_model_version(conn: psycopg.Connection, *, artifact_id: str, metadata: dict, fields: Mapping[str, Any],
                         promotion_state: str, promotion_notes: str | None) -> None:
    """The one writer of model_versions rows, used by registration and the backfill."""
    is_external = metadata.get("is_external") in (True, 1)
    db.execute(conn, "insert_model_version", {
        "artifact_id": artifact_id,
        "is_external": 1 if is_external else 0,
        "external_source_url": metadata.get("external_source_url"),
        "external_source_version": metadata.get("external_source_version"),
        "base_model_id": metadata.get("base_model_id"),
        "code_repo_url": fields.get("code_repo_url"),
        "code_commit_sha": fields.get("code_commit_sha"),
        "code_entrypoint": fields.get("code_entrypoint"),
        "training_started_at": fields.get("training_started_at"),
        "training_completed_at": fields.get("training_completed_at"),
        "trained_by": fields.get("trained_by"),
        "gpu_allocation_id": fields.get("gpu_allocation_id"),
        "training_params_json": _json_or_none(fields.get("training_params_json") or metadata.get("training_config")),
        "eval_metrics_json": _json_or_none(fields.get("eval_metrics_json") or metadata.get("evaluation_metrics")),
        "eval_dataset_artifact_id": fields.get("eval_dataset_artifact_id"),
        "benchmark_id": fields.get("benchmark_id") or metadata.get("benchmark_id"),
        "promotion_state": promotion_state,
        "promotion_notes": promotion_notes,
    })


def register_model_in(conn: psycopg.Connection, payload: dict) -> str:
    """Validate and register inside the caller's transaction; see register_model."""
    violations = registration_violations(payload)
    if not violations:
        violations = _database_violations(conn, payload)
    if violations:
        raise MetadataValidationError(violations, "model registration")
    metadata = payload["metadata"]
    artifact_id = payload.get("artifact_id") or f"model-{uuid.uuid4()}"
    parent_id = payload.get("parent_version_id")
    parent = db.fetch_one(conn, "artifact_by_id", {"id": parent_id}) if parent_id else None
    db.execute(conn, "insert_artifact", {
        "id": artifact_id,
        "title": payload["title"],
        "version_number": parent["version_number"] + 1 if parent else 1,
        "parent_version_id": parent_id,
        "version_tag": payload.get("version_tag"),
        "changelog": payload.get("changelog"),
        # A new version is a candidate until the gate decides: never latest.
        "is_latest": 0,
        "lifecycle_state": "candidate",
        "origin_type": payload.get("origin_type") or ("external" if metadata.get("is_external") in (True, 1) else "internal"),
        "origin_url": payload.get("origin_url") or metadata.get("external_source_url"),
        "metadata": json.dumps(metadata, sort_keys=True),
        "created_by": payload.get("created_by"),
    })
    db.execute(conn, "upsert_universal_artifact", {"id": artifact_id, "title": payload["title"], "lifecycle_state": "candidate"})
    fields = {k: payload.get(k) for k in MODEL_VERSION_FIELDS}
    # Validated above: store the instant itself, not PostgreSQL's reading of the text.
    fields.update({k: parse_timestamp(fields[k]) for k in TIMESTAMP_FIELDS if fields[k] is not None})
    _write_model_version(conn, artifact_id=artifact_id, metadata=metadata, fields=fields,
                         promotion_state="candidate", promotion_notes=None)
    return artifact_id


def registration_problems(conn: psycopg.Connection, payload: dict, settings: Settings) -> list[str]:
    """What would make a new candidate's gate end in an error at once (a running daemon gates it as
    soon as it is registered): no artifact_id to place its eval.py under, no eval.py there yet, or a
    benchmark (its own, else its parent's) that is not recorded. Reads only."""
    from .evaluate import model_dir

    problems = []
    artifact_id = payload.get("artifact_id")
    if not artifact_id:
        problems.append("the registration has no artifact_id, so its eval.py cannot be in place yet: add "
                        '"artifact_id" and put the model in MODEL_EVAL_GATE_ARTIFACT_ROOT/models/<artifact_id>/')
    elif not (model_dir(settings, artifact_id) / "eval.py").is_file():
        problems.append(f"no eval.py in {model_dir(settings, artifact_id)}: put the model there first")
    named = payload.get("benchmark_id") or (payload.get("metadata") or {}).get("benchmark_id")
    found = db.fetch_one(conn, "registration_benchmark",
                         {"benchmark_id": named, "parent_id": payload.get("parent_version_id")})
    if not conn.autocommit:
        conn.rollback()
    if found["benchmark_id"] is None:
        problems.append("no benchmark_id, and the parent names none: the gate would have nothing to compare on")
    elif not found["recorded"]:
        problems.append(f"benchmark {found['benchmark_id']} is not recorded: record it first with "
                        "model-eval-gate benchmark add DIR")
    return problems


@log_tool_call("register_model", summarize=lambda artifact_id: {"artifact_id": artifact_id})
def register_model(payload: dict, *, settings: Settings | None = None, warn: bool = True) -> str:
    """Register a candidate model version: artifacts, universal_artifacts and
    model_versions in one transaction. Invalid input raises
    MetadataValidationError and writes nothing. Returns the artifact id.

    The model_versions insert fires the gate's trigger, which queues the
    candidate for evaluation in the same transaction. With warn, a
    registration whose gate can only end in an error (registration_problems)
    is logged as a warning, once per problem.
    """
    settings = settings or Settings.from_env()
    with db.connect(settings) as conn:
        problems = registration_problems(conn, payload, settings) if warn and isinstance(payload, dict) \
            and not registration_violations(payload) else []
        with conn.transaction():
            artifact_id = register_model_in(conn, payload)
    log.info("model_registered", artifact_id=artifact_id, parent_id=payload.get("parent_version_id"))
    for problem in problems:
        log.warning("registered_gate_will_fail", artifact_id=artifact_id, problem=problem,
                    fix=f"then: model-eval-gate regate {artifact_id}")
    return artifact_id


def load_registration_file(path: Path) -> Any:
    """The parsed file (any JSON value; registration validates it). OSError propagates.

    Read under limits (bounded_json): at most MAX_REGISTRATION_BYTES, nested at
    most MAX_JSON_DEPTH deep, integers of at most 40 digits, no duplicate keys.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_REGISTRATION_BYTES + 1)
    if len(data) > MAX_REGISTRATION_BYTES:
        raise MetadataValidationError([Violation("$", f"the registration file is over the limit of "
                                                      f"{MAX_REGISTRATION_BYTES} bytes")], "model registration")
    try:
        data.decode("utf-8")
        return load_bounded(data, max_bytes=MAX_REGISTRATION_BYTES, what="the registration file")
    except UnicodeDecodeError as exc:
        raise MetadataValidationError([Violation("$", f"not UTF-8 text: {exc}")], "model registration") from None
    except JsonLimitError as exc:
        raise MetadataValidationError([Violation("$", str(exc))], "model registration") from None
    except json.JSONDecodeError as exc:
        raise MetadataValidationError([Violation("$", f"not valid JSON: {exc}")], "model registration") from None


# ---------------------------------------------------------------- backfill --

# Legacy spellings of schema fields. Only renames that change nothing about
# the value are applied; anything needing interpretation is held for review.
_SYNONYMS = {
    "model_family": ("model_family", "model_type", "architecture"),
    "framework": ("framework", "library"),
    "parameter_count": ("parameter_count", "n_parameters", "num_parameters"),
    "training_data": ("training_data", "trained_on"),
    "evaluation_dataset": ("evaluation_dataset", "eval_dataset"),
    "evaluation_metrics": ("evaluation_metrics", "metrics", "fit_metrics"),
    "external_source_url": ("external_source_url", "source_url"),
    "external_source_version": ("external_source_version", "source_version"),
    "training_config": ("training_config",),
}
_CODE_SYNONYMS = {
    "code_repo_url": ("code_repo_url", "code_repo"),
    "code_commit_sha": ("code_commit_sha", "commit"),
    "code_entrypoint": ("code_entrypoint", "entrypoint"),
    "trained_by": ("trained_by",),
}
_ODE_FAMILIES = {"biophysical_ode", "ode"}


@dataclass(frozen=True)
class BackfillPlan:
    artifact_id: str
    metadata: dict           # legacy blob plus the unambiguous normalised fields
    fields: dict             # model_versions fields found
    extracted: dict          # what was taken from where, for the report
    review: list[tuple[str, str, Any]]  # (field, reason, legacy value)
    promotion_state: str


def _first(blob: Mapping, names: Iterable[str]) -> tuple[str | None, Any]:
    for name in names:
        if name in blob:
            return name, blob[name]
    return None, None


def plan_backfill(row: Mapping) -> BackfillPlan:
    """Decide, without writing, what the backfill will do with one legacy artifact."""
    legacy = dict(row["metadata"] or {})
    metadata = dict(legacy)
    extracted: dict[str, str] = {}
    review: list[tuple[str, str, Any]] = []

    for field, names in _SYNONYMS.items():
        source, value = _first(legacy, names)
        if source is None:
            continue
        if field == "parameter_count" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            # "12.3M" or null: a rounded or absent count is not a count.
            metadata.pop("parameter_count", None)
            review.append((field, f"legacy {source} {value!r} is not an exact parameter count", value))
            continue
        metadata[field] = value
        if source != field:
            extracted[field] = f"from legacy key {source!r}"

    # A nested evaluation block: take its dataset and numeric metrics verbatim.
    evaluation = legacy.get("evaluation")
    if isinstance(evaluation, dict):
        if "evaluation_dataset" not in metadata and isinstance(evaluation.get("dataset"), str):
            metadata["evaluation_dataset"] = evaluation["dataset"]
            extracted["evaluation_dataset"] = "from legacy evaluation.dataset"
        numbers = {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "evaluation_metrics" not in metadata and numbers:
            metadata["evaluation_metrics"] = numbers
            extracted["evaluation_metrics"] = "from legacy evaluation.* numbers"

    if legacy.get("is_external") in (True, 1):
        if "external_source_url" not in metadata and row.get("origin_url"):
            metadata["external_source_url"] = row["origin_url"]
            extracted["external_source_url"] = "from artifacts.origin_url"

    fields: dict[str, Any] = {}
    for field, names in _CODE_SYNONYMS.items():
        source, value = _first(legacy, names)
        if source is not None and isinstance(value, str) and value:
            fields[field] = value
            if source != field:
                extracted[field] = f"from legacy key {source!r}"
    if "code_commit_sha" in fields and not re.fullmatch(r"[0-9a-fA-F]{7,64}", fields["code_commit_sha"]):
        review.append(("code_commit_sha", "legacy commit is not a hexadecimal SHA", fields.pop("code_commit_sha")))
    if "code_repo_url" not in fields:
        review.append(("code_repo_url", "no code link in the legacy metadata (WS2 links code)", None))
    elif "code_commit_sha" not in fields:
        review.append(("code_commit_sha", "code repository named without a commit to pin", fields["code_repo_url"]))

    for violation in metadata_violations(metadata):
        field = violation.path.removeprefix("$.").split(".")[0].split("[")[0] or "$"
        if not any(item[0] == field for item in review):
            review.append((field, violation.message, legacy.get(field)))

    family = str(metadata.get("model_family") or legacy.get("type") or "").lower()
    is_ode = family in _ODE_FAMILIES or "ode" in str(row.get("title", "")).lower().split()
    in_service = row.get("lifecycle_state") == "active" and row.get("is_latest") == 1
    # The platform already serves its active legacy models, so they land as
    # promoted; biophysical ODEs wait for the gate (WS4) as candidates.
    promotion_state = "promoted" if in_service and not is_ode else "candidate"
    return BackfillPlan(row["id"], metadata, fields, extracted, review, promotion_state)


@dataclass(frozen=True)
class BackfillOutcome:
    adopted: list[str]
    already_done: int
    report_path: Path


def legacy_fixture() -> list[dict]:
    text = importlib_resources.files("model_eval_gate.demo").joinpath("legacy_artifacts.json").read_text()
    return json.loads(text)["artifacts"]


def load_legacy_fixture(conn: psycopg.Connection) -> int:
    """Insert the 8 legacy artifacts as the host had them (no-op for those present)."""
    inserted = 0
    for artifact in legacy_fixture():
        cursor = db.execute(conn, "insert_legacy_artifact", {**artifact, "metadata": json.dumps(artifact["metadata"])})
        inserted += cursor.rowcount
    return inserted


def parse_legacy_metadata(text: str | None) -> tuple[dict, str | None]:
    """A legacy artifact's metadata from its exact stored text, and what was wrong with it (None if nothing).

    A SQLite-era host keeps metadata as TEXT: empty strings, keys given
    twice, text that is not JSON at all. The text is never rewritten for
    that; the model row is adopted with what can be read, and the problem
    goes to a human (model_review_items).
    """
    if text is None or not text.strip():
        return {}, "the legacy metadata is empty"
    repeated: list[str] = []

    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                repeated.append(key)
            seen[key] = value  # the last one wins, as jsonb keeps it
        return seen

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        return {}, f"the legacy metadata is not JSON ({exc.msg}): {shown!r}"
    if not isinstance(value, dict):
        return {}, f"the legacy metadata is a JSON {type(value).__name__}, not an object"
    if repeated:
        return value, f"the legacy metadata repeats key(s) {', '.join(sorted(set(repeated)))}; the last value was kept"
    return value, None


def adopt_legacy_model(conn: psycopg.Connection, row: Mapping) -> BackfillPlan:
    legacy_text = row.get("metadata_text")
    if "metadata" not in row:  # a row read as stored text (legacy_models_without_version)
        metadata, problem = parse_legacy_metadata(legacy_text)
        row = {**row, "metadata": metadata}
    else:
        problem = None
        legacy_text = json.dumps(row["metadata"]) if legacy_text is None and row["metadata"] is not None else legacy_text
    plan = plan_backfill(row)
    if problem:
        plan.review.insert(0, ("metadata", problem, legacy_text))
    valid = not metadata_violations(plan.metadata)
    notes = None
    if plan.review:
        notes = "WS1 backfill held for review: " + "; ".join(f"{f}: {r}" for f, r, _ in plan.review)
    stored = db.fetch_one(conn, "update_artifact_metadata",
                          {"id": plan.artifact_id, "metadata": json.dumps(plan.metadata, sort_keys=True)})
    db.execute(conn, "upsert_universal_artifact", {"id": plan.artifact_id, "title": row["title"], "lifecycle_state": row["lifecycle_state"]})
    _write_model_version(conn, artifact_id=plan.artifact_id, metadata=plan.metadata, fields=plan.fields,
                         promotion_state=plan.promotion_state, promotion_notes=notes)
    db.execute(conn, "insert_backfill_log", {
        "artifact_id": plan.artifact_id,
        "legacy_metadata": json.dumps(row["metadata"] or {}),
        "legacy_metadata_text": legacy_text,
        "backfilled_metadata_text": stored["stored_text"],
        "legacy_state": json.dumps({"is_latest": row["is_latest"], "lifecycle_state": row["lifecycle_state"],
                                    "version_number": row["version_number"], "origin_type": row["origin_type"]}),
        "extracted": json.dumps({"renamed": plan.extracted, "model_versions_fields": plan.fields}, sort_keys=True),
        "metadata_valid": valid,
    })
    for field, reason, value in plan.review:
        db.execute(conn, "insert_review_item", {"artifact_id": plan.artifact_id, "field": field,
                                                "reason": reason, "legacy_value": json.dumps(value, default=str)})
    return plan


@log_tool_call("backfill", summarize=lambda outcome: {"adopted": outcome.adopted, "report": str(outcome.report_path)})
def backfill(*, settings: Settings | None = None, report_path: Path | None = None,
             load_fixture: bool = False) -> BackfillOutcome:
    """Give every model artifact without one a model_versions row (WS1).

    Rejects none: what cannot be decided is held in model_review_items. A
    second run finds nothing to adopt and rewrites the same report.
    """
    from .report import write_migration_report

    settings = settings or Settings.from_env()
    with db.connect(settings) as conn:
        with conn.transaction():
            if load_fixture:
                load_legacy_fixture(conn)
            rows = db.fetch_all(conn, "legacy_models_without_version")
            adopted = [adopt_legacy_model(conn, row).artifact_id for row in rows]
        report_rows = db.fetch_all(conn, "backfill_report_rows")
    path = write_migration_report(report_rows, report_path or default_report_path())
    log.info("backfill_finished", adopted=len(adopted), report=str(path))
    return BackfillOutcome(adopted, len(report_rows) - len(adopted), path)


def default_report_path() -> Path:
    return Path.cwd() / "docs" / "model_artifacts" / "migration_report_ws1.md"
