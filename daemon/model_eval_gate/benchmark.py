"""Benchmark directories: the manifest, the split files, and the split hash.

A benchmark is a directory::

    benchmark.json   the manifest; its contract is schemas/benchmark.json
    inputs/          what models see, bound read-only into the sandbox at /split
    labels.csv       `example_id,label` (any relative path the manifest names,
                     outside inputs/); never visible to models

`load_benchmark` validates all of it and reports every problem at once in a
`BenchmarkError`; `split_hash` identifies the data a result was computed on.

Rules a caller can rely on:

- Nothing in a benchmark may be a symlink or a special file: not the manifest,
  not inputs/ or anything under it, not the labels file, and the labels path
  may not escape the benchmark directory.  Symlinks are refused rather than
  followed because a symlink's meaning depends on where it is resolved (the
  host while hashing, the sandbox while evaluating), so its hash could not
  stand for what a model saw.
- Labels: binary labels are 0 or 1 (read as float64 0.0/1.0; "0.0"/"1.0"
  are accepted), multiclass labels are class names (stored as int64 indices
  into `classes`), regression labels are finite floats (float64).
- A self-scored benchmark has no labels to score against: eval.py writes
  per-example metric values and the gate averages them, flagging every result
  as self-reported.  Its labels file is optional; when present it is the list
  of expected example ids (first column `example_id`, other columns ignored).
- Example ids are kept exactly as written (no whitespace stripping), must be
  non-empty and unique.

CSV files are UTF-8 (a leading byte-order mark is ignored), comma-separated,
with RFC 4180 quoting; blank lines at the end are ignored, a blank line
elsewhere is a row with the wrong number of fields.  Rows in messages are
numbered from 1, not counting the header (evaluation/csv_tables.py, shared
with predictions.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from model_eval_gate import resources
from model_eval_gate.evaluation.csv_tables import (
    EXAMPLE_ID_COLUMN,
    MAX_EXAMPLES_SHOWN,
    describe_bad_rows,
    describe_cells,
    format_problems,
    header_text,
    parse_float_column,
    plural,
    read_csv_table,
    sample_of,
)
from model_eval_gate.decision import DEFAULT_NON_INFERIORITY_MARGIN, MIN_RANK_CLASS_COUNT, UNIT_SCALE_METRICS
from model_eval_gate.statistics.design import DesignError, ResamplingDesign

MANIFEST_NAME = "benchmark.json"
INPUTS_DIR_NAME = "inputs"
SCHEMA_NAME = "benchmark.json"
LABEL_COLUMN = "label"

TASKS = ("binary", "multiclass", "regression")

# The metrics the gate computes itself, per task (DESIGN.md section 5).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auroc", "average_precision", "accuracy", "log_loss", "brier"),
    "multiclass": ("accuracy", "log_loss"),
    "regression": ("rmse", "mae"),
}

# Direction of every metric the gate computes; self-scored benchmarks declare
# their own in the manifest's `higher_is_better`.
BUILTIN_HIGHER_IS_BETTER: dict[str, bool] = {
    "auroc": True,
    "average_precision": True,
    "accuracy": True,
    "log_loss": False,
    "brier": False,
    "rmse": False,
    "mae": False,
}

# A manifest is a few hundred bytes; the cap only stops a runaway file from
# being read into memory.
_MANIFEST_MAX_BYTES = 1 << 20
class BenchmarkError(ValueError):
    """A benchmark directory is invalid.  `problems` lists every problem found."""

    def __init__(self, benchmark_dir: os.PathLike[str] | str, problems: Sequence[str]):
        self.benchmark_dir = str(benchmark_dir)
        self.problems = tuple(problems)
        super().__init__(
            format_problems(f"benchmark {self.benchmark_dir} is invalid", self.problems)
        )


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A validated benchmark directory, with its labels loaded.

    Treat every field as read-only: the arrays are flagged non-writeable and
    the dicts are private copies.  `higher_is_better` covers every metric in
    `metrics` (built-in directions, or the manifest's for self-scored).
    `example_ids` and `labels` are in the labels file's order, which is the
    order predictions are aligned to; for a self-scored benchmark without a
    labels file both are None, and `labels` is always None when self-scored.
    """

    id: str
    title: str | None
    task: str
    primary_metric: str
    metrics: tuple[str, ...]
    guardrails: dict[str, float]
    non_inferiority_margin: float | None
    floor: float | None
    classes: tuple[str, ...] | None
    self_scored: bool
    higher_is_better: dict[str, bool]
    root: Path
    inputs_dir: Path
    labels_path: Path | None
    example_ids: tuple[str, ...] | None
    labels: np.ndarray | None
    split_hash: str
    manifest: dict[str, Any]
    # Groups and strata the bootstrap resamples by (manifest `resampling`);
    # None when the examples are resampled independently.
    resampling_design: ResamplingDesign | None = None

    @property
    def n_examples(self) -> int | None:
        return None if self.example_ids is None else len(self.example_ids)

    @cached_property
    def example_index(self) -> dict[str, int]:
        """Maps each example id to its position in `example_ids`."""
        if self.example_ids is None:
            raise ValueError(f"benchmark {self.id} has no fixed list of example ids")
        return {example_id: position for position, example_id in enumerate(self.example_ids)}

    @cached_property
    def example_index_bytes(self) -> dict[bytes, int]:
        """example_index keyed by the ids' UTF-8 bytes, for parsers that never decode a model's cells."""
        return {example_id.encode("utf-8"): position for example_id, position in self.example_index.items()}

    @cached_property
    def longest_example_id_bytes(self) -> int:
        return max(map(len, self.example_index_bytes), default=0)


def load_benchmark(path: os.PathLike[str] | str) -> Benchmark:
    """Validate the benchmark directory at `path` and load its labels.

    Raises BenchmarkError listing every problem found: manifest schema
    violations (with JSON paths), cross-field rules, a missing inputs/,
    symlinks or special files, a labels path that escapes the directory or
    lies inside inputs/, and labels that are missing, duplicated, empty or
    outside the task's domain.
    """
    root = _benchmark_root(path)
    problems: list[str] = []
    manifest = _read_manifest(root, problems)
    inputs_entries = _scan_inputs(root, problems)
    labels_path = None
    labels_data = None
    example_ids: tuple[str, ...] | None = None
    labels: np.ndarray | None = None
    design_data = None
    design_columns: dict[str, list[str]] = {}
    if manifest is not None:
        problems.extend(_manifest_problems(manifest))
        labels_path = _resolve_labels_path(root, manifest, problems)
        # The bytes parsed here are the bytes hashed, so the hash and the
        # labels cannot disagree if the file changes meanwhile.
        labels_data = _read_labels_bytes(labels_path, manifest, problems)
        design_data = _read_design_bytes(root, manifest, problems)
        if labels_data is not None and _labels_are_interpretable(manifest):
            example_ids, labels = _read_labels(labels_data, manifest, problems, design_columns)
    design = None
    if manifest is not None and not problems and _resampling(manifest):
        design = _resampling_design(manifest, example_ids, labels, design_data, design_columns, problems)
    if problems or manifest is None:
        raise BenchmarkError(root, problems)
    assert inputs_entries is not None  # no problems, so inputs/ was scanned
    self_scored = bool(manifest.get("self_scored", False))
    metrics = tuple(manifest["metrics"])
    if self_scored:
        higher_is_better = {metric: bool(manifest["higher_is_better"][metric]) for metric in metrics}
    else:
        higher_is_better = {metric: BUILTIN_HIGHER_IS_BETTER[metric] for metric in metrics}
    classes = manifest.get("classes")
    return Benchmark(
        id=manifest["id"],
        title=manifest.get("title"),
        task=manifest["task"],
        primary_metric=manifest["primary_metric"],
        metrics=metrics,
        guardrails={metric: float(tol) for metric, tol in manifest.get("guardrails", {}).items()},
        non_inferiority_margin=_optional_float(manifest.get("non_inferiority_margin")),
        floor=_optional_float(manifest.get("floor")),
        classes=tuple(classes) if classes is not None else None,
        self_scored=self_scored,
        higher_is_better=higher_is_better,
        root=root,
        inputs_dir=root / INPUTS_DIR_NAME,
        labels_path=labels_path,
        example_ids=example_ids,
        labels=labels,
        split_hash=_hash_split(inputs_entries, labels_data, manifest, design_data),
        manifest=json.loads(json.dumps(manifest)),
        resampling_design=design,
    )


def split_hash(benchmark_dir: os.PathLike[str] | str) -> str:
    """SHA-256 (64 hex digits) identifying the data a result was computed on.

    Covers, and only covers:
    - the inputs/ tree: every file's path relative to inputs/ and its bytes,
      and every directory's relative path (an empty directory is visible to a
      model, so it counts);
    - the labels file's bytes (not its name), or the fact there is none;
    - the manifest fields that change how labels and predictions are read:
      `task`, `classes` (their order is the prediction column order) and
      `self_scored`.

    Policy fields (id, title, description, metrics, primary_metric,
    guardrails, non_inferiority_margin, floor, higher_is_better) are left out
    on purpose: they are recorded with every result separately, and changing
    them must not invalidate cached predictions, which depend only on the data.

    Deterministic: entries are hashed in sorted order of their UTF-8 relative
    paths, each as a tagged, length-prefixed record after a versioned
    preamble, so neither mtimes, permissions nor directory-listing order
    matter and no two different trees can produce the same byte stream.  Symlinks and special files are refused
    (BenchmarkError), never followed.  The manifest and paths are validated
    first; the labels' contents are not parsed (load_benchmark does that).
    """
    root = _benchmark_root(benchmark_dir)
    problems: list[str] = []
    manifest = _read_manifest(root, problems)
    entries = _scan_inputs(root, problems)
    labels_data = None
    if manifest is not None:
        problems.extend(_manifest_problems(manifest))
        labels_path = _resolve_labels_path(root, manifest, problems)
        labels_data = _read_labels_bytes(labels_path, manifest, problems)
        design_data = _read_design_bytes(root, manifest, problems)
    if problems or manifest is None or entries is None:
        raise BenchmarkError(root, problems)
    return _hash_split(entries, labels_data, manifest, design_data)


# ---------------------------------------------------------------------------
# The manifest


def _benchmark_root(path: os.PathLike[str] | str) -> Path:
    root = Path(os.path.realpath(path))
    if not root.is_dir():
        raise BenchmarkError(path, [f"{path} is not a directory"])
    return root


class _ManifestSyntaxError(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _ManifestSyntaxError(f"key {key!r} appears more than once in one object")
        seen[key] = value
    return seen


def _reject_non_finite(constant: str) -> Any:
    raise _ManifestSyntaxError(f"{constant} is not valid JSON")


def _read_manifest(root: Path, problems: list[str]) -> dict[str, Any] | None:
    path = root / MANIFEST_NAME
    try:
        raw = _read_regular_file_bytes(path, _MANIFEST_MAX_BYTES)
    except _FileProblem as exc:
        problems.append(f"{MANIFEST_NAME} {exc}")
        return None
    try:
        manifest = json.loads(
            raw.decode("utf-8-sig"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_non_finite,
        )
    except UnicodeDecodeError as exc:
        problems.append(f"{MANIFEST_NAME}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    except json.JSONDecodeError as exc:
        problems.append(f"{MANIFEST_NAME}: invalid JSON: {exc}")
        return None
    except _ManifestSyntaxError as exc:
        problems.append(f"{MANIFEST_NAME}: invalid JSON: {exc}")
        return None
    if not isinstance(manifest, dict):
        problems.append(f"{MANIFEST_NAME}: must be a JSON object, got {type(manifest).__name__}")
        return None
    return manifest


@cache
def manifest_validator() -> Any:
    """The Draft-07 validator for schemas/benchmark.json (loaded once)."""
    import jsonschema

    schema = json.loads(resources.schema_path(SCHEMA_NAME).read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """Schema violations, then the cross-field rules the schema cannot express."""
    problems = []
    for error in sorted(manifest_validator().iter_errors(manifest), key=lambda e: e.json_path):
        message = f"{MANIFEST_NAME} {error.json_path}: {error.message}"
        # A failed if/then rule carries its reason in the subschema's description.
        if error.validator == "required" and isinstance(error.schema, dict) and "description" in error.schema:
            message += f" ({error.schema['description']})"
        problems.append(message)
    problems.extend(_cross_field_problems(manifest))
    return problems


def _cross_field_problems(manifest: dict[str, Any]) -> list[str]:
    # Written defensively: the schema may already have reported a field as
    # malformed, and such a field is simply not checked again here.
    problems = []
    task = manifest.get("task")
    self_scored = manifest.get("self_scored", False) is True
    metrics_raw = manifest.get("metrics")
    metrics = [m for m in metrics_raw if isinstance(m, str)] if isinstance(metrics_raw, list) else None
    primary = manifest.get("primary_metric")

    if metrics is not None and isinstance(primary, str) and primary not in metrics:
        problems.append(f"{MANIFEST_NAME} $.primary_metric: {primary!r} is not listed in metrics")
    if isinstance(primary, str) and "non_inferiority_margin" not in manifest and (
            self_scored or primary not in UNIT_SCALE_METRICS):
        problems.append(
            f"{MANIFEST_NAME} $.non_inferiority_margin: required for primary metric {primary!r}, which is not on "
            f"a 0..1 scale (the default margin of {DEFAULT_NON_INFERIORITY_MARGIN} suits only "
            f"{', '.join(UNIT_SCALE_METRICS)}); declare the largest loss a tradeoff may cost, in its units")

    if not self_scored and task in TASK_METRICS and metrics is not None:
        valid = TASK_METRICS[task]
        for metric in metrics:
            if metric not in valid:
                problems.append(
                    f"{MANIFEST_NAME} $.metrics: {metric!r} is not a {task} metric "
                    f"(valid: {', '.join(valid)}; self-scored benchmarks may name their own)"
                )

    guardrails = manifest.get("guardrails")
    if isinstance(guardrails, dict):
        for metric in guardrails:
            if metrics is not None and metric not in metrics:
                problems.append(f"{MANIFEST_NAME} $.guardrails: {metric!r} is not listed in metrics")
            if metric == primary:
                problems.append(
                    f"{MANIFEST_NAME} $.guardrails: {metric!r} is the primary metric; "
                    "a guardrail must be a secondary metric"
                )

    resampling = manifest.get("resampling")
    if isinstance(resampling, dict):
        columns = [resampling.get(k) for k in ("group_column", "strata_column") if isinstance(resampling.get(k), str)]
        if len(set(columns)) != len(columns):
            problems.append(f"{MANIFEST_NAME} $.resampling: group_column and strata_column must differ")
        if "file" in resampling and not columns:
            problems.append(f"{MANIFEST_NAME} $.resampling.file: names a groups file but no group_column "
                            "or strata_column to read from it")
        if resampling.get("stratify_by_label") is True:
            if self_scored or task != "binary":
                problems.append(f"{MANIFEST_NAME} $.resampling.stratify_by_label: needs binary labels "
                                "the gate scores (not a self-scored or non-binary benchmark)")
            if "group_column" in resampling:
                problems.append(f"{MANIFEST_NAME} $.resampling.stratify_by_label: a group holds both classes; "
                                "with group_column, declare strata_column instead")

    if "classes" in manifest and task != "multiclass":
        problems.append(f"{MANIFEST_NAME} $.classes: only a multiclass benchmark has classes (task is {task!r})")

    higher_is_better = manifest.get("higher_is_better")
    if "higher_is_better" in manifest and not self_scored:
        problems.append(
            f"{MANIFEST_NAME} $.higher_is_better: only a self-scored benchmark declares metric "
            "directions; the gate knows its own metrics'"
        )
    elif self_scored and isinstance(higher_is_better, dict) and metrics is not None:
        undeclared = [m for m in metrics if m not in higher_is_better]
        unknown = [m for m in higher_is_better if m not in metrics]
        if undeclared:
            problems.append(
                f"{MANIFEST_NAME} $.higher_is_better: no direction for {sample_of(undeclared)}"
            )
        if unknown:
            problems.append(
                f"{MANIFEST_NAME} $.higher_is_better: {sample_of(unknown)} not listed in metrics"
            )
    score_range = manifest.get("score_range")
    if "score_range" in manifest and not self_scored:
        problems.append(f"{MANIFEST_NAME} $.score_range: only a self-scored benchmark declares the range of its scores")
    elif isinstance(score_range, dict):
        for metric, bounds in score_range.items():
            if metrics is not None and metric not in metrics:
                problems.append(f"{MANIFEST_NAME} $.score_range: {metric!r} is not listed in metrics")
            elif (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
                  and not bounds[0] < bounds[1]):
                problems.append(f"{MANIFEST_NAME} $.score_range: {metric!r} needs [lowest, highest] with lowest < highest")
    return problems


def _labels_are_interpretable(manifest: dict[str, Any]) -> bool:
    """Whether the task (and classes) are sound enough to read labels by."""
    if manifest.get("self_scored", False) is True:
        return True
    task = manifest.get("task")
    if task not in TASKS:
        return False
    if task == "multiclass":
        classes = manifest.get("classes")
        return (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)
        )
    return True


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------------
# Paths: inputs/ and the labels file


class _FileProblem(Exception):
    """A path is missing, not a regular file, a symlink, or too large."""


def _read_regular_file_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """Read a regular file without following a symlink at its last component."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _FileProblem("is missing") from None
    except OSError as exc:
        if os.path.islink(path):
            raise _FileProblem("is a symlink; benchmarks may not contain symlinks") from None
        raise _FileProblem(f"cannot be opened: {exc.strerror}") from None
    # fstat before fdopen: fdopen itself refuses a directory, with a vaguer message.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _FileProblem("is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if max_bytes is not None and info.st_size > max_bytes:
            raise _FileProblem(f"is {info.st_size} bytes, over the {max_bytes}-byte limit")
        return handle.read()


def _scan_inputs(root: Path, problems: list[str]) -> list[tuple[bytes, bool, Path]] | None:
    """Every entry under inputs/ as (relative path, is_dir, absolute path).

    Records a problem for a missing inputs/ and for every symlink or special
    file; returns None when inputs/ itself is unusable.
    """
    inputs_dir = root / INPUTS_DIR_NAME
    try:
        info = os.lstat(inputs_dir)
    except FileNotFoundError:
        problems.append(f"{INPUTS_DIR_NAME}/ is missing")
        return None
    if stat.S_ISLNK(info.st_mode):
        problems.append(f"{INPUTS_DIR_NAME}/ is a symlink; it must be a real directory")
        return None
    if not stat.S_ISDIR(info.st_mode):
        problems.append(f"{INPUTS_DIR_NAME} is not a directory")
        return None
    entries: list[tuple[bytes, bool, Path]] = []
    refused: list[str] = []
    pending = [inputs_dir]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                children = list(listing)
        except OSError as exc:
            problems.append(f"{directory.relative_to(root)}/ cannot be listed: {exc.strerror}")
            continue
        for child in children:
            child_path = Path(child.path)
            relative = child_path.relative_to(inputs_dir).as_posix()
            if child.is_symlink():
                refused.append(f"{relative} (symlink)")
            elif child.is_dir(follow_symlinks=False):
                entries.append((os.fsencode(relative), True, child_path))
                pending.append(child_path)
            elif child.is_file(follow_symlinks=False):
                # A hard link is the same file under two names: if the other
                # name is the labels (or any file outside inputs/), the model
                # reads it through /split. Every such file is refused.
                links = child.stat(follow_symlinks=False).st_nlink
                if links > 1:
                    refused.append(f"{relative} (hard link: {links} names for one file; copy it instead)")
                else:
                    entries.append((os.fsencode(relative), False, child_path))
            else:
                refused.append(f"{relative} (special file)")
    if refused:
        refused.sort()
        problems.append(
            f"{INPUTS_DIR_NAME}/ may hold only regular files (each with one name) and directories; "
            f"refused: {sample_of(refused)}"
        )
    entries.sort(key=lambda entry: entry[0])
    return entries


def _is_within(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def _resolve_labels_path(root: Path, manifest: dict[str, Any], problems: list[str]) -> Path | None:
    """The labels file's absolute path, or None (absent when self-scored, or invalid)."""
    return _resolve_hidden_file(root, manifest.get("labels"), "$.labels", "labels file", problems)


def _resolve_hidden_file(root: Path, relative: Any, key: str, noun: str, problems: list[str]) -> Path | None:
    """A file models must never see: inside the benchmark directory, outside inputs/, no symlinks."""
    if not isinstance(relative, str) or not relative:
        return None  # the schema reports it when it is required
    where = f"{MANIFEST_NAME} {key}"
    before = len(problems)
    posix = PurePosixPath(relative)
    if os.path.isabs(relative):
        problems.append(f"{where}: {relative!r} must be a path relative to the benchmark directory")
    if ".." in posix.parts:
        problems.append(f"{where}: {relative!r} must not contain '..'")
    if posix.parts and posix.parts[0] == INPUTS_DIR_NAME:
        problems.append(f"{where}: {relative!r} is inside {INPUTS_DIR_NAME}/, where models would see it")
    if len(problems) > before:
        return None
    candidate = root / relative
    resolved = os.path.realpath(candidate)
    if not _is_within(resolved, str(root)):
        problems.append(f"{where}: {relative!r} resolves outside the benchmark directory (through a symlink)")
        return None
    if _is_within(resolved, os.path.realpath(root / INPUTS_DIR_NAME)):
        problems.append(f"{where}: {relative!r} resolves inside {INPUTS_DIR_NAME}/, where models would see it")
        return None
    try:
        info = os.lstat(candidate)
    except FileNotFoundError:
        problems.append(f"{noun} {relative!r} is missing")
        return None
    if stat.S_ISLNK(info.st_mode):
        problems.append(f"{noun} {relative!r} is a symlink; benchmarks may not contain symlinks")
        return None
    if resolved != str(candidate):
        problems.append(f"{noun} {relative!r} is reached through a symlinked directory")
        return None
    if not stat.S_ISREG(info.st_mode):
        problems.append(f"{noun} {relative!r} is not a regular file")
        return None
    return candidate


# ---------------------------------------------------------------------------
# Labels


def _read_labels_bytes(path: Path | None, manifest: dict[str, Any], problems: list[str]) -> bytes | None:
    if path is None:
        return None
    try:
        return _read_regular_file_bytes(path)
    except _FileProblem as exc:
        problems.append(f"labels file {manifest.get('labels')!r} {exc}")
        return None


def _read_labels(
    data: bytes, manifest: dict[str, Any], problems: list[str], design_columns: dict[str, list[str]] | None = None
) -> tuple[tuple[str, ...] | None, np.ndarray | None]:
    where = f"labels file {manifest.get('labels')!r}"
    self_scored = manifest.get("self_scored", False) is True
    table_problems: list[str] = []
    table = read_csv_table(data, table_problems)
    if table is None:
        problems.extend(f"{where}: {p}" for p in table_problems)
        return None, None
    if self_scored:
        if not table.header or table.header[0] != EXAMPLE_ID_COLUMN:
            problems.append(
                f"{where}: header must start with {EXAMPLE_ID_COLUMN!r} (the list of expected examples), "
                f"got {header_text(table.header)}"
            )
            return None, None
    elif table.header[:2] != [EXAMPLE_ID_COLUMN, LABEL_COLUMN] or sorted(table.header[2:]) != sorted(
            _labels_file_design_columns(manifest)):
        extra = "".join(f",{column}" for column in _labels_file_design_columns(manifest))
        problems.append(
            f"{where}: header must be '{EXAMPLE_ID_COLUMN},{LABEL_COLUMN}{extra}', got {header_text(table.header)}"
        )
        return None, None
    if table.bad_rows:
        problems.append(f"{where}: {describe_bad_rows(table.bad_rows, len(table.header))}")
        return None, None
    if table.n_rows == 0:
        problems.append(f"{where} has no examples (only a header)")
        return None, None

    example_ids = table.columns[0]
    before = len(problems)
    problems.extend(f"{where}: {p}" for p in example_id_problems(example_ids))
    labels = None
    if not self_scored:
        labels = _parse_labels(table.columns[1], example_ids, manifest, where, problems)
    if len(problems) > before:
        return None, None
    if labels is not None:
        labels.setflags(write=False)
    if design_columns is not None:
        for column in _labels_file_design_columns(manifest):
            if column in table.header:
                design_columns[column] = table.columns[table.header.index(column)]
    return tuple(example_ids), labels


def example_id_problems(example_ids: Sequence[str], locate: str = "row", base: int = 1) -> list[str]:
    """Empty and duplicated ids among `example_ids` (at most one problem per kind)."""
    problems = []
    empty = [i for i, example_id in enumerate(example_ids) if not example_id]
    if empty:
        shown = ", ".join(f"{locate} {i + base}" for i in empty[:MAX_EXAMPLES_SHOWN])
        more = len(empty) - MAX_EXAMPLES_SHOWN
        problems.append(f"{len(empty)} empty example id(s): {shown}" + (f", and {more} more" if more > 0 else ""))
    duplicates = duplicate_example_ids_problem(example_ids, locate, base)
    if duplicates:
        problems.append(duplicates)
    return problems


def duplicate_example_ids_problem(example_ids: Sequence[str], locate: str = "row", base: int = 1) -> str | None:
    """Describe ids that appear more than once, naming a few with where they are."""
    if len(set(example_ids)) == len(example_ids):
        return None
    first_seen: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    for i, example_id in enumerate(example_ids):
        if example_id in first_seen:
            duplicates.setdefault(example_id, [first_seen[example_id]]).append(i + base)
        else:
            first_seen[example_id] = i + base
    shown = [
        f"{example_id!r} ({plural(locate)} {', '.join(map(str, places[:MAX_EXAMPLES_SHOWN]))})"
        for example_id, places in list(duplicates.items())[:MAX_EXAMPLES_SHOWN]
    ]
    more = len(duplicates) - len(shown)
    return f"{len(duplicates)} example id(s) appear more than once: {', '.join(shown)}" + (
        f", and {more} more" if more > 0 else ""
    )


def _parse_labels(
    cells: list[str], example_ids: list[str], manifest: dict[str, Any], where: str, problems: list[str]
) -> np.ndarray | None:
    task = manifest["task"]
    if task == "multiclass":
        class_index = {name: index for index, name in enumerate(manifest["classes"])}
        indices = np.fromiter((class_index.get(cell, -1) for cell in cells), dtype=np.int64, count=len(cells))
        unknown = np.flatnonzero(indices < 0)
        if unknown.size:
            problems.append(
                f"{where}: {unknown.size} label(s) are not one of the classes "
                f"{list(manifest['classes'])}: {describe_cells(unknown, cells, example_ids)}"
            )
            return None
        return indices
    values, unparseable = parse_float_column(cells)
    if unparseable.size:
        problems.append(
            f"{where}: {unparseable.size} label(s) are not numbers: {describe_cells(unparseable, cells, example_ids)}"
        )
        return None
    if task == "binary":
        outside = np.flatnonzero((values != 0.0) & (values != 1.0))
        if outside.size:
            problems.append(
                f"{where}: {outside.size} binary label(s) are not 0 or 1: "
                f"{describe_cells(outside, cells, example_ids)}"
            )
            return None
        return values
    non_finite = np.flatnonzero(~np.isfinite(values))
    if non_finite.size:
        problems.append(
            f"{where}: {non_finite.size} regression label(s) are not finite: "
            f"{describe_cells(non_finite, cells, example_ids)}"
        )
        return None
    return values


# ---------------------------------------------------------------------------
# The resampling design (groups and strata; statistics/design.py)


def _resampling(manifest: dict[str, Any]) -> dict[str, Any]:
    value = manifest.get("resampling")
    return value if isinstance(value, dict) else {}


def _declared_design_columns(manifest: dict[str, Any]) -> list[str]:
    resampling = _resampling(manifest)
    return [resampling[key] for key in ("group_column", "strata_column") if isinstance(resampling.get(key), str)]


def _labels_file_design_columns(manifest: dict[str, Any]) -> list[str]:
    """Design columns the labels file carries (none when a separate design file is named)."""
    return [] if _resampling(manifest).get("file") else _declared_design_columns(manifest)


def _read_design_bytes(root: Path, manifest: dict[str, Any], problems: list[str]) -> bytes | None:
    relative = _resampling(manifest).get("file")
    if relative is None:
        return None
    path = _resolve_hidden_file(root, relative, "$.resampling.file", "groups file", problems)
    if path is None:
        return None
    try:
        return _read_regular_file_bytes(path)
    except _FileProblem as exc:
        problems.append(f"groups file {relative!r} {exc}")
        return None


def _resampling_design(manifest: dict[str, Any], example_ids: tuple[str, ...] | None, labels: np.ndarray | None,
                       design_data: bytes | None, design_columns: dict[str, list[str]],
                       problems: list[str]) -> ResamplingDesign | None:
    resampling = _resampling(manifest)
    group_column, strata_column = resampling.get("group_column"), resampling.get("strata_column")
    if example_ids is None:
        problems.append(f"{MANIFEST_NAME} $.resampling: the design needs a labels file listing the examples")
        return None
    if design_data is not None:
        where = f"groups file {resampling['file']!r}"
        table_problems: list[str] = []
        table = read_csv_table(design_data, table_problems)
        if table is None:
            problems.extend(f"{where}: {p}" for p in table_problems)
            return None
        wanted = _declared_design_columns(manifest)
        if table.header[:1] != [EXAMPLE_ID_COLUMN] or sorted(table.header[1:]) != sorted(wanted):
            problems.append(f"{where}: header must be '{EXAMPLE_ID_COLUMN},{','.join(wanted)}', "
                            f"got {header_text(table.header)}")
            return None
        if table.bad_rows:
            problems.append(f"{where}: {describe_bad_rows(table.bad_rows, len(table.header))}")
            return None
        ids = table.columns[0]
        id_problems = example_id_problems(ids)
        if id_problems:
            problems.extend(f"{where}: {p}" for p in id_problems)
            return None
        if set(ids) != set(example_ids):
            missing = [i for i in example_ids if i not in set(ids)]
            unknown = [i for i in ids if i not in set(example_ids)]
            parts = ([f"{len(missing)} labelled example(s) have no row: {sample_of(missing)}"] if missing else []) + (
                [f"{len(unknown)} row(s) name examples the labels file does not: {sample_of(unknown)}"]
                if unknown else [])
            problems.append(f"{where}: {'; '.join(parts)}")
            return None
        position = {example_id: i for i, example_id in enumerate(ids)}
        order = [position[example_id] for example_id in example_ids]
        design_columns = {column: [table.columns[table.header.index(column)][i] for i in order] for column in wanted}
    absent = [column for column in _declared_design_columns(manifest) if column not in design_columns]
    if absent:
        problems.append(f"labels file {manifest.get('labels')!r}: has no column {sample_of(absent)} "
                        f"(named in {MANIFEST_NAME} $.resampling)")
        return None
    try:
        return ResamplingDesign.from_columns(
            len(example_ids),
            groups=design_columns.get(group_column) if group_column else None,
            strata=design_columns.get(strata_column) if strata_column else None,
            labels=labels, stratify_by_label=bool(resampling.get("stratify_by_label", False)),
            group_label=group_column or "group")
    except DesignError as exc:
        problems.append(f"{MANIFEST_NAME} $.resampling: {exc}")
        return None


# ---------------------------------------------------------------------------
# The split hash

_HASH_PREAMBLE = b"model-eval-gate split-hash v1\n"
_HASH_CHUNK_BYTES = 1 << 20


def _hash_record(digest: Any, tag: bytes, payload: bytes) -> None:
    digest.update(tag + len(payload).to_bytes(8, "big") + payload)


def _hash_file_contents(digest: Any, path: Path) -> None:
    """Hash a regular file's bytes as one length-prefixed record."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise BenchmarkError(path.parent, [f"{path} cannot be opened for hashing: {exc.strerror}"]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BenchmarkError(path.parent, [f"{path} stopped being a regular file while being hashed"])
    with os.fdopen(fd, "rb") as handle:
        digest.update(b"C" + info.st_size.to_bytes(8, "big"))
        remaining = info.st_size
        while remaining > 0:
            chunk = handle.read(min(remaining, _HASH_CHUNK_BYTES))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        if remaining != 0 or handle.read(1):
            raise BenchmarkError(path.parent, [f"{path} changed size while being hashed"])


def _hash_split(
    inputs_entries: Iterable[tuple[bytes, bool, Path]],
    labels_data: bytes | None,
    manifest: dict[str, Any],
    design_data: bytes | None = None,
) -> str:
    digest = hashlib.sha256(_HASH_PREAMBLE)
    interpretation = {
        "task": manifest.get("task"),
        "classes": manifest.get("classes"),
        "self_scored": manifest.get("self_scored", False) is True,
    }
    _hash_record(digest, b"S", json.dumps(interpretation, sort_keys=True, separators=(",", ":")).encode())
    for relative, is_dir, absolute in inputs_entries:
        if is_dir:
            _hash_record(digest, b"D", relative)
        else:
            _hash_record(digest, b"F", relative)
            _hash_file_contents(digest, absolute)
    if labels_data is None:
        _hash_record(digest, b"N", b"")
    else:
        _hash_record(digest, b"L", labels_data)
    if design_data is not None:
        # A separate groups file changes every interval: a recorded benchmark
        # whose grouping changed on disk must be refused like changed labels.
        _hash_record(digest, b"G", design_data)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Recording a loaded benchmark in the `benchmarks` table: added by the lead.
# ---------------------------------------------------------------------------


class BenchmarkNotRecorded(LookupError):
    """No row in `benchmarks` for this id, or its directory is gone or changed."""


RANK_METRICS = ("auroc", "average_precision")


def registration_problems(benchmark: Benchmark) -> list[str]:
    """What keeps a valid benchmark from being registered for binding verdicts.

    A rank metric that decides (primary or guardrail) needs at least
    MIN_RANK_CLASS_COUNT examples of each class: with 3 / 5 / 10 positives the
    percentile bootstrap promoted equal models 9.7% / 6.2% / 4.5% of the time
    (docs/model_promotion_policy.md 15.3).
    """
    problems = []
    deciding = [m for m in (benchmark.primary_metric, *benchmark.guardrails) if m in RANK_METRICS]
    if deciding and not benchmark.self_scored and benchmark.task == "binary" and benchmark.labels is not None:
        positives = int(np.count_nonzero(benchmark.labels == 1))
        negatives = benchmark.labels.size - positives
        if min(positives, negatives) < MIN_RANK_CLASS_COUNT:
            problems.append(
                f"labels: {positives} positive and {negatives} negative example(s); {', '.join(deciding)} "
                f"need at least {MIN_RANK_CLASS_COUNT} of each class to decide anything (add examples of the "
                f"rarer class, or make a non-rank metric primary)")
    return problems


def registration_mde(benchmark: Benchmark) -> float | None:
    """Minimum detectable primary-metric change at 80% power on this split, before any evaluation.

    statistics/power.py: Hanley-McNeil for rank metrics, binomial for accuracy,
    at the floor (or 0.8) with a between-version correlation of 0.5; None for
    metrics whose spread depends on the models (the first verdict states it).
    """
    from model_eval_gate.statistics.power import registration_mde as mde

    if benchmark.self_scored or benchmark.labels is None:
        return None
    n = benchmark.labels.size
    positives = int(np.count_nonzero(benchmark.labels == 1)) if benchmark.task == "binary" else None
    return mde(benchmark.primary_metric, positives, None if positives is None else n - positives, n,
               reference=benchmark.floor)


def _reference_score(benchmark: Benchmark) -> float:
    from model_eval_gate.statistics.power import REFERENCE_SCORE

    floor = benchmark.floor
    return floor if floor is not None and 0.5 < floor < 1.0 else REFERENCE_SCORE


def registration_summary(benchmark: Benchmark) -> str:
    """What `benchmark add` says about the split's power."""
    value = registration_mde(benchmark)
    if value is None:
        return (f"minimum detectable {benchmark.primary_metric} change at 80% power: stated in each verdict "
                f"(it depends on the models' spread)")
    return (f"minimum detectable {benchmark.primary_metric} change at 80% power: about {value:.3g} "
            f"(before any evaluation: reference score {_reference_score(benchmark):g}, "
            f"correlation 0.5 between versions; each verdict states its own)")


def record_benchmark(conn: Any, benchmark: Benchmark) -> bool:
    """Upsert the benchmark's row (path, manifest, split hash). Returns True when new.

    Raises BenchmarkError when registration_problems finds any.
    """
    from . import db

    problems = registration_problems(benchmark)
    if problems:
        raise BenchmarkError(benchmark.root, problems)

    row = db.fetch_one(conn, "upsert_benchmark", {
        "id": benchmark.id, "title": benchmark.title, "task": benchmark.task,
        "primary_metric": benchmark.primary_metric, "manifest": json.dumps(benchmark.manifest, sort_keys=True),
        "path": str(benchmark.root), "split_hash": benchmark.split_hash,
    })
    return bool(row and row["inserted"])


def load_recorded_benchmark(conn: Any, benchmark_id: str) -> Benchmark:
    """Load a recorded benchmark from its directory, refusing one that changed since it was recorded.

    Results are tied to the split hash; a split that changed silently under a
    recorded id would make old and new evaluations look comparable.
    """
    from . import db

    row = db.fetch_one(conn, "benchmark_row", {"id": benchmark_id})
    if row is None:
        raise BenchmarkNotRecorded(f"benchmark {benchmark_id!r} is not recorded; run `model-eval-gate benchmark add DIR`")
    if not row["path"]:
        raise BenchmarkNotRecorded(f"benchmark {benchmark_id!r} has no directory on record")
    if not row["split_hash"]:
        # Nothing to hold the files to: they could have been swapped at any time.
        raise BenchmarkNotRecorded(f"benchmark {benchmark_id!r} has no split hash on record, so its files cannot "
                                   f"be trusted; run `model-eval-gate benchmark add {row['path']}` to record one")
    benchmark = load_benchmark(row["path"])
    if benchmark.id != benchmark_id:
        raise BenchmarkNotRecorded(f"the directory recorded for {benchmark_id!r} ({row['path']}) now holds "
                                   f"benchmark {benchmark.id!r}")
    if benchmark.split_hash != row["split_hash"]:
        raise BenchmarkNotRecorded(
            f"benchmark {benchmark_id!r} changed on disk since it was recorded (split hash "
            f"{row['split_hash'][:12]}… is now {benchmark.split_hash[:12]}…); run "
            f"`model-eval-gate benchmark add {row['path']}` to accept the new split")
    return benchmark
