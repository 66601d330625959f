"""Reading what eval.py wrote to /out, aligned to the benchmark's examples.

eval.py writes exactly one of (schemas/eval_output.json is the contract):

- ``predictions.csv`` with header ``example_id,prediction`` (binary: P(label
  = 1); regression: the predicted value), or for multiclass ``example_id``
  plus one column per class named as in the manifest's ``classes``; for a
  self-scored benchmark ``example_id`` plus one column per metric.  Header
  cells are matched after stripping surrounding spaces and may come in any
  order; columns are reordered to the benchmark's.
- ``predictions.npz`` (read with allow_pickle=False) with a 1-D
  ``example_id`` array (unicode strings or integers) and ``prediction``: 1-D
  for binary/regression, (n, K) for multiclass with columns in the manifest's
  class order unless an optional 1-D ``classes`` array names them; for a
  self-scored benchmark one 1-D array per metric instead of ``prediction``.
  Any other array is an error, so a misspelt name cannot go unnoticed.

Rules: every value finite; probabilities in [0, 1]; each multiclass row sums
to 1 within PROBABILITY_SUM_TOLERANCE (1e-4).  Rows off by more are rejected,
not renormalised: silently rescaling would score a model on numbers it did
not output; rows within the tolerance are kept exactly as written.  Every
benchmark example must appear exactly once and no other example may appear.
For a self-scored benchmark without a list of example ids, whatever ids
eval.py wrote are taken, sorted; compare two such outputs with
`check_same_examples` before pairing them.

`max_bytes` caps the file read; for an npz it also caps the total
uncompressed size of its arrays, so a small archive cannot inflate without
bound.
"""
from __future__ import annotations

import io
import itertools
import math
import os
import stat
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_eval_gate import predictions_csv
from model_eval_gate.benchmark import EXAMPLE_ID_COLUMN, Benchmark, example_id_problems
from model_eval_gate.evaluation.csv_tables import MAX_EXAMPLES_SHOWN, describe_cells, format_problems, sample_text

PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_NPZ = "predictions.npz"
PREDICTION_COLUMN = "prediction"
CLASSES_ARRAY = "classes"
PROBABILITY_SUM_TOLERANCE = 1e-4

# (out_dir, file name, max_bytes) -> the file's bytes; must refuse symlinks,
# non-regular files and files over max_bytes by raising an exception.
ReadFile = Callable[[os.PathLike[str] | str, str, int], bytes]
# What a reader may raise: the sandbox's SandboxOutputError is a ValueError,
# and any reader may hit an OSError.
_READ_ERRORS = (OSError, ValueError)


class PredictionsError(ValueError):
    """eval.py's output is missing or invalid.  `problems` lists every problem found."""

    def __init__(self, where: os.PathLike[str] | str, problems: Sequence[str]):
        self.where = str(where)
        self.problems = tuple(problems)
        super().__init__(format_problems(f"invalid model output in {self.where}", self.problems))


@dataclass(frozen=True, eq=False)
class Predictions:
    """eval.py's output, aligned to the benchmark's example order.

    `values` is float64 and read-only: shape (n,) for binary (P(label = 1))
    and regression; (n, K) for multiclass, columns in the benchmark's class
    order; (n, M) for self-scored, columns in the benchmark's metric order.
    `columns` names the value columns in that order.
    """

    example_ids: tuple[str, ...]
    values: np.ndarray
    columns: tuple[str, ...]
    source: str
    self_reported: bool

    @property
    def n_examples(self) -> int:
        return len(self.example_ids)

    def column(self, name: str) -> np.ndarray:
        """One value column by name (a class, a metric, or 'prediction')."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns are {list(self.columns)}")
        if self.values.ndim == 1:
            return self.values
        return self.values[:, self.columns.index(name)]


def read_predictions(
    out_dir: os.PathLike[str] | str,
    benchmark: Benchmark,
    *,
    max_bytes: int,
    read_file: ReadFile | None = None,
) -> Predictions:
    """Read and validate eval.py's output in `out_dir` for `benchmark`.

    `read_file` reads one output file (default: the sandbox's reader, which
    opens regular files only, without following symlinks, under a size cap).
    Raises PredictionsError listing every problem found.
    """
    present = [name for name in (PREDICTIONS_CSV, PREDICTIONS_NPZ) if _lexists(Path(out_dir) / name)]
    if not present:
        raise PredictionsError(
            out_dir,
            [f"eval.py wrote neither {PREDICTIONS_CSV} nor {PREDICTIONS_NPZ}{_other_files_note(out_dir)}"],
        )
    if len(present) > 1:
        raise PredictionsError(
            out_dir,
            [f"eval.py wrote both {PREDICTIONS_CSV} and {PREDICTIONS_NPZ}; write exactly one so it is clear which counts"],
        )
    name = present[0]
    where = Path(out_dir) / name
    wrong_kind = _not_a_regular_file(where)
    if wrong_kind is not None:
        raise PredictionsError(where, [f"cannot read {name}: {wrong_kind}"])
    layout = _Layout.for_benchmark(benchmark)
    if name == PREDICTIONS_CSV:
        # No valid file for this benchmark is longer: refuse a longer one unread.
        bound = csv_size_bound(benchmark, layout)
        size = os.lstat(where).st_size
        if bound is not None and size > bound and size <= max_bytes:
            raise PredictionsError(where, [
                f"{name} is {size} bytes; one row per example of benchmark {benchmark.id!r} "
                f"({len(benchmark.example_ids)} examples) takes at most {bound} bytes"])
        if bound is not None:
            max_bytes = min(max_bytes, bound)
    reader = read_file if read_file is not None else _default_read_file()
    try:
        data = reader(out_dir, name, max_bytes)
    except _READ_ERRORS as exc:
        raise PredictionsError(where, [f"cannot read {name}: {exc}"]) from exc

    problems: list[str] = []
    deadline = time.monotonic() + parse_seconds_budget(len(data))
    try:
        if name == PREDICTIONS_CSV:
            parsed = _parse_csv(data, layout, benchmark, deadline, problems)
        else:
            parsed = _parse_npz(data, layout, max_bytes, problems)
    except predictions_csv.ParseBudgetExceeded as exc:
        raise PredictionsError(where, [f"{exc} ({parse_seconds_budget(len(data)):.0f} s for {len(data)} bytes)"]) from None
    except MemoryError:
        raise PredictionsError(where, [f"{name} needs more memory to parse than the gate has"]) from None
    if parsed is None:
        raise PredictionsError(where, problems)
    _check_values(parsed, problems)
    aligned = _align(parsed, benchmark, problems)
    if problems or aligned is None:
        raise PredictionsError(where, problems)
    example_ids, values = aligned
    if layout.one_dimensional:
        values = values[:, 0]
    values = np.ascontiguousarray(values, dtype=np.float64)
    values.setflags(write=False)
    return Predictions(
        example_ids=example_ids,
        values=values,
        columns=layout.value_columns,
        source=name,
        self_reported=benchmark.self_scored,
    )


# Parsing runs in the daemon, outside the sandbox's limits, so it has budgets
# of its own: time (a base plus a rate far below what the parser sustains,
# about 50 MB/s) and memory (by construction, see predictions_csv).
PARSE_BASE_SECONDS = 10.0
PARSE_SECONDS_PER_MIB = 1.0


def parse_seconds_budget(size: int) -> float:
    return PARSE_BASE_SECONDS + PARSE_SECONDS_PER_MIB * size / (1 << 20)


def csv_size_bound(benchmark: Benchmark, layout: _Layout) -> int | None:
    """The most bytes a predictions.csv can take for this benchmark, or None without an example list."""
    if benchmark.example_ids is None:
        return None
    expected = (EXAMPLE_ID_COLUMN, *layout.value_columns)
    row = _longest_id_bytes(benchmark) + len(expected) * (predictions_csv.MAX_NUMBER_CELL_BYTES + 1) + 2
    rows = len(benchmark.example_ids) + predictions_csv.EXTRA_ROWS_READ
    return predictions_csv.header_limit(expected) + 2 + rows * (row + 1)


def check_same_examples(first: Predictions, second: Predictions) -> None:
    """Raise PredictionsError unless both outputs cover the same examples in the same order.

    Needed only for self-scored benchmarks without a list of example ids,
    where each output brings its own ids; otherwise both are aligned to the
    benchmark already.
    """
    if first.example_ids == second.example_ids:
        return
    first_ids, second_ids = set(first.example_ids), set(second.example_ids)
    problems = []
    only_first = sorted(first_ids - second_ids)
    only_second = sorted(second_ids - first_ids)
    if only_first:
        problems.append(f"{len(only_first)} example id(s) only in the first output: {sample_text(only_first)}")
    if only_second:
        problems.append(f"{len(only_second)} example id(s) only in the second output: {sample_text(only_second)}")
    if not problems:
        problems.append("the outputs list the same example ids in a different order")
    raise PredictionsError("the two outputs being compared", problems)


# ---------------------------------------------------------------------------
# What the output must look like for a benchmark


@dataclass(frozen=True)
class _Layout:
    value_columns: tuple[str, ...]
    probabilities: bool
    one_dimensional: bool  # binary/regression: one `prediction` column, returned as (n,)
    self_scored: bool
    multiclass: bool

    @classmethod
    def for_benchmark(cls, benchmark: Benchmark) -> _Layout:
        if benchmark.self_scored:
            return cls(benchmark.metrics, False, False, True, False)
        if benchmark.task == "multiclass":
            assert benchmark.classes is not None
            return cls(benchmark.classes, True, False, False, True)
        return cls((PREDICTION_COLUMN,), benchmark.task == "binary", True, False, False)


@dataclass(frozen=True)
class _Parsed:
    example_ids: list[str]
    values: np.ndarray  # (m, len(value_columns)), NaN where a cell was unparseable
    unparseable: np.ndarray  # (m,) bool: rows with a cell that is not a number
    locate: str  # "row" (CSV, counted from 1) or "index" (npz, counted from 0)
    base: int
    layout: _Layout
    positions: np.ndarray | None = None  # CSV rows mapped to benchmark positions (-1: unknown id)


def _parse_csv(data: bytes, layout: _Layout, benchmark: Benchmark, deadline: float,
               problems: list[str]) -> _Parsed | None:
    expected = (EXAMPLE_ID_COLUMN, *layout.value_columns)
    known = benchmark.example_ids is not None
    table = predictions_csv.parse(
        data, expected, layout.value_columns, EXAMPLE_ID_COLUMN,
        index=benchmark.example_index_bytes if known else None,
        max_rows=len(benchmark.example_ids) if known else None,
        max_id_bytes=_longest_id_bytes(benchmark) if known else None,
        deadline=deadline, problems=problems,
    )
    if table is None:
        return None
    unparseable = np.zeros(table.n_rows, dtype=bool)
    for column in layout.value_columns:
        if column in table.bad_cells:
            rows, samples = table.bad_cells[column]
            bad = np.asarray(rows, dtype=np.int64)
            unparseable[bad] = True
            ids = _IdView(table, benchmark)
            problems.append(f"column {column!r}: {bad.size} value(s) are not numbers: "
                            f"{describe_cells(bad, _Samples(samples), ids)}")
    example_ids = table.ids if table.ids is not None else _IdView(table, benchmark)
    return _Parsed(example_ids, table.values, unparseable, "row", 1, layout, positions=table.positions)


def _longest_id_bytes(benchmark: Benchmark) -> int:
    return benchmark.longest_example_id_bytes


class _IdView(Sequence):
    """The example id of each CSV row, looked up from its benchmark position (no string kept per row)."""

    def __init__(self, table: predictions_csv.CsvColumns, benchmark: Benchmark):
        self._positions = table.positions
        self._unknown = table.unknown_ids
        self._ids = benchmark.example_ids
        self._n = table.n_rows

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._n))]
        position = int(self._positions[row])
        if position >= 0:
            return self._ids[position]
        return self._unknown.get(int(row), "(an id not in the benchmark)")


class _Samples:
    """Cells kept for the message, by row (describe_cells shows only the first few)."""

    def __init__(self, samples: dict[int, str]):
        self._samples = samples

    def __getitem__(self, row: int) -> str:
        return self._samples.get(int(row), "?")


def _parse_npz(data: bytes, layout: _Layout, max_bytes: int, problems: list[str]) -> _Parsed | None:
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        problems.append(f"{PREDICTIONS_NPZ} is not an .npz archive (save it with numpy.savez)")
        return None
    try:
        with zipfile.ZipFile(buffer) as archive:
            uncompressed = sum(member.file_size for member in archive.infolist())
            if uncompressed <= max_bytes:
                _check_npy_headers(archive, problems)
        if uncompressed > max_bytes:
            problems.append(
                f"{PREDICTIONS_NPZ} holds {uncompressed} bytes uncompressed, over the {max_bytes}-byte limit"
            )
            return None
        if problems:
            return None
        buffer.seek(0)
        with np.load(buffer, allow_pickle=False) as archive:
            return _arrays_to_parsed(archive, layout, problems)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
        problems.append(f"{PREDICTIONS_NPZ} cannot be read: {exc}")
        return None


MAX_NPZ_MEMBERS = 8


def _check_npy_headers(archive: zipfile.ZipFile, problems: list[str]) -> None:
    """Each member's declared shape x itemsize must be exactly the bytes it stores, before np.load.

    np.load allocates what the header declares: a 100-byte member claiming
    shape (10**12,) raised an uncaught MemoryError in the daemon. Object
    dtypes are refused here too (allow_pickle=False would refuse them later).
    """
    members = archive.infolist()
    if len(members) > MAX_NPZ_MEMBERS:
        problems.append(f"{PREDICTIONS_NPZ} holds {len(members)} arrays; at most {MAX_NPZ_MEMBERS} are expected")
        return
    for member in members:
        name = member.filename.removesuffix(".npy")
        try:
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
                header_bytes = handle.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            problems.append(f"{PREDICTIONS_NPZ} array {name!r} has no valid .npy header: {exc}")
            continue
        if dtype.hasobject:
            problems.append(f"{PREDICTIONS_NPZ} array {name!r} cannot be loaded: it holds Python objects "
                            f"(dtype {dtype}), which allow_pickle=False refuses; write numbers or unicode strings")
            continue
        declared = math.prod(shape) * dtype.itemsize
        stored = member.file_size - header_bytes
        if declared != stored:
            problems.append(f"{PREDICTIONS_NPZ} array {name!r} declares shape {shape} of {dtype} "
                            f"({declared} bytes) but stores {stored} bytes")


def _arrays_to_parsed(archive: np.lib.npyio.NpzFile, layout: _Layout, problems: list[str]) -> _Parsed | None:
    value_arrays = layout.value_columns if layout.self_scored else (PREDICTION_COLUMN,)
    required = (EXAMPLE_ID_COLUMN, *value_arrays)
    allowed = set(required) | ({CLASSES_ARRAY} if layout.multiclass else set())
    present = list(archive.files)
    missing = [name for name in required if name not in present]
    unknown = sorted(name for name in present if name not in allowed)
    if missing:
        problems.append(
            f"{PREDICTIONS_NPZ} lacks array(s) {sample_text(missing)} (it has {sample_text(present) or 'none'})"
        )
    if unknown:
        problems.append(
            f"{PREDICTIONS_NPZ} has unexpected array(s) {sample_text(unknown)}; "
            f"expected exactly {sample_text(sorted(allowed))}"
        )
    if missing or unknown:
        return None

    arrays = {}
    for name in present:
        try:
            arrays[name] = archive[name]
        except ValueError as exc:
            # allow_pickle=False refuses object arrays: that is the usual cause.
            problems.append(f"{PREDICTIONS_NPZ} array {name!r} cannot be loaded: {exc}")
    if problems:
        return None

    example_ids = _npz_example_ids(arrays[EXAMPLE_ID_COLUMN], problems)
    if example_ids is None:
        return None
    n = len(example_ids)
    if layout.self_scored:
        columns = [_npz_numeric(arrays[metric], metric, (n,), problems) for metric in layout.value_columns]
        if problems:
            return None
        values = np.column_stack(columns) if columns else np.empty((n, 0))
    elif layout.multiclass:
        values = _npz_numeric(arrays[PREDICTION_COLUMN], PREDICTION_COLUMN, (n, len(layout.value_columns)), problems)
        if values is None:
            return None
        if CLASSES_ARRAY in arrays:
            order = _npz_class_order(arrays[CLASSES_ARRAY], layout.value_columns, problems)
            if order is None:
                return None
            values = values[:, order]
    else:
        values = _npz_numeric(arrays[PREDICTION_COLUMN], PREDICTION_COLUMN, (n,), problems)
        if values is None:
            return None
        values = values[:, np.newaxis]
    return _Parsed(example_ids, np.asarray(values, dtype=np.float64), np.zeros(n, dtype=bool), "index", 0, layout)


def _npz_example_ids(array: np.ndarray, problems: list[str]) -> list[str] | None:
    if array.ndim != 1:
        problems.append(f"{PREDICTIONS_NPZ} array 'example_id' must be 1-D, got shape {array.shape}")
        return None
    if array.dtype.kind == "U":
        return array.tolist()
    if array.dtype.kind in "iu":
        return [str(value) for value in array.tolist()]
    problems.append(
        f"{PREDICTIONS_NPZ} array 'example_id' must hold unicode strings or integers, got dtype {array.dtype} "
        "(use numpy.array(ids, dtype=str))"
    )
    return None


def _npz_numeric(array: np.ndarray, name: str, shape: tuple[int, ...], problems: list[str]) -> np.ndarray | None:
    if array.dtype.kind not in "fiu":
        problems.append(f"{PREDICTIONS_NPZ} array {name!r} must be numeric, got dtype {array.dtype}")
        return None
    if array.shape != shape:
        problems.append(
            f"{PREDICTIONS_NPZ} array {name!r} must have shape {shape} to match 'example_id', got {array.shape}"
        )
        return None
    return array.astype(np.float64)


def _npz_class_order(array: np.ndarray, classes: tuple[str, ...], problems: list[str]) -> list[int] | None:
    names = array.tolist() if array.ndim == 1 and array.dtype.kind == "U" else None
    if names is None or sorted(names) != sorted(classes):
        problems.append(
            f"{PREDICTIONS_NPZ} array 'classes' must be a 1-D string array holding exactly the "
            f"benchmark's classes {list(classes)}, got {array.tolist()!r}"
        )
        return None
    return [names.index(name) for name in classes]


# ---------------------------------------------------------------------------
# Checks and alignment


def _check_values(parsed: _Parsed, problems: list[str]) -> None:
    values = parsed.values
    parsed_ok = ~parsed.unparseable
    finite = np.isfinite(values).all(axis=1)
    non_finite = np.flatnonzero(~finite & parsed_ok)
    if non_finite.size:
        problems.append(
            f"{non_finite.size} example(s) have NaN or infinite values: "
            f"{describe_cells(non_finite, None, parsed.example_ids, parsed.locate, parsed.base)}"
        )
    if not parsed.layout.probabilities:
        return
    with np.errstate(invalid="ignore"):
        in_range = ((values >= 0.0) & (values <= 1.0)).all(axis=1)
    outside = np.flatnonzero(~in_range & finite & parsed_ok)
    if outside.size:
        shown = values[:, 0] if parsed.layout.one_dimensional else None
        problems.append(
            f"{outside.size} example(s) have probabilities outside [0, 1]: "
            f"{describe_cells(outside, shown, parsed.example_ids, parsed.locate, parsed.base)}"
        )
    if parsed.layout.multiclass:
        sums = values.sum(axis=1)
        off = np.flatnonzero((np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE) & in_range & finite & parsed_ok)
        if off.size:
            problems.append(
                f"{off.size} example(s) have class probabilities that do not sum to 1 "
                f"(tolerance {PROBABILITY_SUM_TOLERANCE}; shown: the sum): "
                f"{describe_cells(off, sums, parsed.example_ids, parsed.locate, parsed.base)}"
            )


def _align(
    parsed: _Parsed, benchmark: Benchmark, problems: list[str]
) -> tuple[tuple[str, ...], np.ndarray] | None:
    ids = parsed.example_ids
    if benchmark.example_ids is None:
        # Self-scored without an example list: the output defines the examples.
        id_problems = example_id_problems(ids, parsed.locate, parsed.base)
        if not ids:
            id_problems.append("no examples (only a header, or empty arrays)")
        problems.extend(id_problems)
        if id_problems:
            return None
        order = sorted(range(len(ids)), key=ids.__getitem__)
        return tuple(ids[i] for i in order), parsed.values[order]

    n_benchmark = len(benchmark.example_ids)
    if parsed.positions is not None:  # the CSV parser mapped every id already
        positions = parsed.positions
        if positions.size == n_benchmark and bool((positions == np.arange(n_benchmark)).all()):
            return None if problems else (benchmark.example_ids, parsed.values)
    elif len(ids) == n_benchmark and tuple(ids) == benchmark.example_ids:
        # Most models write the split in its own order: skip the per-id lookups.
        return (None if problems else (benchmark.example_ids, parsed.values))
    else:
        index = benchmark.example_index
        positions = np.fromiter(map(index.get, ids, itertools.repeat(-1)), dtype=np.int64, count=len(ids))
    unknown = np.flatnonzero(positions < 0)
    if unknown.size:
        problems.append(
            f"{unknown.size} example id(s) are not in benchmark {benchmark.id!r}: "
            f"{describe_cells(unknown, None, ids, parsed.locate, parsed.base)}"
        )
    counts = np.bincount(positions[positions >= 0], minlength=n_benchmark)
    duplicates = _duplicates_problem(positions, counts, benchmark, parsed)
    if duplicates:
        problems.append(duplicates)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        names = [benchmark.example_ids[i] for i in missing[:MAX_EXAMPLES_SHOWN]]
        more = missing.size - len(names)
        problems.append(
            f"{missing.size} of the benchmark's {len(benchmark.example_ids)} example ids are missing: "
            + ", ".join(map(repr, names))
            + (f", and {more} more" if more > 0 else "")
        )
    if problems:
        return None
    aligned = np.empty_like(parsed.values)
    aligned[positions] = parsed.values
    return benchmark.example_ids, aligned


def _duplicates_problem(positions: np.ndarray, counts: np.ndarray, benchmark: Benchmark, parsed: _Parsed) -> str | None:
    """Ids given more than once, named with where they are, in linear time."""
    repeated = np.flatnonzero(counts > 1)
    if not repeated.size:
        return None
    where = parsed.locate + ("es" if parsed.locate.endswith("x") else "s")
    first_rows = {int(p): [] for p in repeated[:MAX_EXAMPLES_SHOWN]}
    for row in np.flatnonzero(np.isin(positions, repeated[:MAX_EXAMPLES_SHOWN])):
        places = first_rows[int(positions[row])]
        if len(places) < MAX_EXAMPLES_SHOWN:
            places.append(int(row) + parsed.base)
    order = sorted(first_rows, key=lambda p: first_rows[p][0])
    shown = [f"{benchmark.example_ids[p]!r} ({where} {', '.join(map(str, first_rows[p]))})" for p in order]
    more = repeated.size - len(shown)
    return f"{repeated.size} example id(s) appear more than once: {', '.join(shown)}" + (
        f", and {more} more" if more > 0 else "")


# ---------------------------------------------------------------------------
# Reading the file


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _not_a_regular_file(path: Path) -> str | None:
    """Why `path` is not a regular file, from lstat; None if it is one.

    Only for a clear message up front: the reader opens the file without
    following symlinks and checks again, which is what makes it safe.
    """
    mode = os.lstat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"{path.name} is a symlink; eval.py must write a regular file"
    kind = "directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "special file"
    return f"{path.name} is a {kind}, not a regular file"


def _other_files_note(out_dir: os.PathLike[str] | str) -> str:
    try:
        names = sorted(os.listdir(out_dir))
    except OSError as exc:
        return f" ({out_dir} cannot be listed: {exc.strerror})"
    if not names:
        return f" ({out_dir} is empty)"
    return f" ({out_dir} holds {sample_text(names)})"



def _default_read_file() -> ReadFile:
    # Imported here so that reading predictions does not load the sandbox
    # runner (and its dependencies) until a file is actually read.
    from model_eval_gate.sandbox import read_output_file

    return read_output_file

