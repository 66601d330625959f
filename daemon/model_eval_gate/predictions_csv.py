"""predictions.csv parsed in bounded time and memory, whatever its content.

The model writes this file, so its content is hostile until checked. The
general CSV reader (evaluation/csv_tables.read_csv_table) builds a Python string per cell:
a 48 MiB file of unknown ids cost 723 MiB in the gate process, and checking a
40,000-column header cell by cell cost seconds of daemon CPU outside every
sandbox limit. Here:

- the header's length is checked against what the benchmark's columns allow
  before it is split, and its cells are compared in linear time;
- rows are parsed in chunks of CHUNK_BYTES: each chunk's cells live only
  while the chunk is parsed, ids are turned into benchmark positions at once
  (an int64 per row), values go into one preallocated float64 array;
- no row may be longer than the longest id and a number per column allow,
  and parsing stops past the benchmark's row count (plus a little, so that a
  few unknown or repeated ids are still named);
- a deadline bounds the whole parse.

So memory is the file itself, the result arrays and one chunk's cells:
benchmarks/bench_predictions_parse.py measures at most 3x the file size
and time linear in it.
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CHUNK_BYTES = 128 * 1024
# The longest text a number may take in a cell ("-1.2345678901234567e-308"
# with room for spaces).
MAX_NUMBER_CELL_BYTES = 64
# Rows past the benchmark's count that are still read, so that a few unknown
# or repeated ids are named instead of only "too many rows".
EXTRA_ROWS_READ = 100
MAX_SAMPLES = 20  # unknown ids and unparseable cells kept for the message


class ParseBudgetExceeded(ValueError):
    """Parsing predictions.csv ran past its time budget."""


@dataclass
class CsvColumns:
    """What the parse found. Row r of the file (from 0 after the header) is index r everywhere."""

    header: list[str]  # the stripped header cells, in file order
    n_rows: int
    values: np.ndarray  # (n_rows, len(value_columns)), NaN where a cell is not a number
    positions: np.ndarray | None  # (n_rows,) benchmark index of each row's id, -1 if not in the benchmark
    ids: list[str] | None  # the ids themselves when there is no benchmark list to map them to
    unknown_ids: dict[int, str] = field(default_factory=dict)  # row -> id, the first few not in the benchmark
    bad_cells: dict[str, tuple[list[int], dict[int, str]]] = field(default_factory=dict)  # column -> (rows, samples)


def header_limit(expected: Sequence[str]) -> int:
    """The longest header line the expected columns allow (a BOM, spaces around cells, CRLF)."""
    return len(",".join(expected).encode()) + 16 * len(expected) + 8


def parse(data: bytes, expected: Sequence[str], value_columns: Sequence[str], id_column: str, *,
          index: dict[bytes, int] | None, max_rows: int | None, max_id_bytes: int | None,
          deadline: float, problems: list[str], name: str = "predictions.csv") -> CsvColumns | None:
    """Parse the file's bytes; None (with problems) when it cannot be used at all."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if not data[start:start + 1] or not data[start:].strip(b"\r\n"):
        problems.append(f"{name} is empty (no header)")
        return None
    limit = header_limit(expected)
    end = data.find(b"\n", start, start + limit + 2)
    if end < 0:
        end = len(data)
        if end - start > limit:
            problems.append(f"{name} header is longer than the {limit} bytes the benchmark's columns allow "
                            f"({', '.join(expected)}); the file was not read further")
            return None
    header_bytes = data[start:end].rstrip(b"\r")
    try:
        header_text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{name} is not UTF-8 text ({exc.reason} at byte {start + exc.start})")
        return None
    quoted = data.find(b'"', start) >= 0 or data.find(b"\x00", start) >= 0
    header = [cell.strip() for cell in (next(csv.reader([header_text])) if quoted else header_text.split(","))]
    header_problems = _header_problems(header, expected, name)
    if header_problems:
        problems.extend(header_problems)
        return None
    width = len(header)
    max_row = None
    if max_id_bytes is not None:
        max_row = max_id_bytes + width * (MAX_NUMBER_CELL_BYTES + 1) + 2
    parser = _Accumulator(header, value_columns, id_column, index=index, max_rows=max_rows, max_row=max_row,
                          deadline=deadline, name=name)
    body = end + 1
    if quoted:
        ok = parser.feed_csv_module(data, body, problems)
    else:
        ok = parser.feed_plain(data, body, problems)
    if not ok:
        return None
    return parser.result()


def _header_problems(header: list[str], expected: Sequence[str], name: str) -> list[str]:
    from .evaluation.csv_tables import sample_text

    counts = Counter(header)
    if counts == Counter(expected):
        return []
    expected_set = set(expected)
    problems = []
    duplicated = sorted(cell for cell, count in counts.items() if count > 1)
    missing = [column for column in expected if column not in counts]
    unknown = [cell for cell in header if cell not in expected_set]
    if duplicated:
        problems.append(f"{name} header repeats column(s) {sample_text(duplicated)}")
    if missing:
        problems.append(f"{name} header lacks column(s) {sample_text(missing)}")
    if unknown:
        problems.append(f"{name} header has unexpected column(s) {sample_text(unknown)}")
    got = ",".join(header)
    if len(got) > 200:
        got = got[:200] + f"... ({len(header)} columns)"
    problems.append(f"{name} header must be {','.join(expected)!r} (columns in any order), got {got!r}")
    return problems


class _Accumulator:
    def __init__(self, header: list[str], value_columns: Sequence[str], id_column: str, *,
                 index: dict[bytes, int] | None, max_rows: int | None, max_row: int | None,
                 deadline: float, name: str):
        self.width = len(header)
        self.header = header
        self.id_at = header.index(id_column)
        self.value_at = [header.index(column) for column in value_columns]
        self.value_columns = list(value_columns)
        self.index = index
        self.max_rows = max_rows
        self.max_row = max_row
        self.deadline = deadline
        self.name = name
        self.n_rows = 0
        capacity = (max_rows + EXTRA_ROWS_READ) if max_rows is not None else 1024
        self.values = np.empty((capacity, len(value_columns)), dtype=np.float64)
        self.positions = np.empty(capacity, dtype=np.int64) if index is not None else None
        self.ids: list[str] | None = [] if index is None else None
        self.unknown_ids: dict[int, str] = {}
        self.bad_cells: dict[str, tuple[list[int], dict[int, str]]] = {}
        self.bad_rows: list[tuple[int, int]] = []
        self.n_bad_rows = 0

    # -- feeding -----------------------------------------------------------

    def feed_plain(self, data: bytes, position: int, problems: list[str]) -> bool:
        # Trailing newlines end the file; an empty line before them is a bad row.
        stop = len(data)
        while stop > position and data[stop - 1] in b"\r\n":
            stop -= 1
        decoder = codecs.getincrementaldecoder("utf-8")()
        while position < stop:
            self._check_deadline()
            chunk_end = min(stop, position + CHUNK_BYTES)
            if chunk_end < stop:
                cut = data.rfind(b"\n", position, chunk_end)
                if cut < 0:
                    problems.append(self._long_row_problem(self.n_rows + self.n_bad_rows + 1))
                    return False
                chunk_end = cut
            chunk = data[position:chunk_end]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                problems.append(f"{self.name} is not UTF-8 text ({exc.reason} at byte {position + exc.start})")
                return False
            if b"\r" in chunk:
                if chunk.endswith(b"\r"):  # the CR of the CRLF this chunk was cut at
                    chunk = chunk[:-1]
                chunk = chunk.replace(b"\r\n", b"\n")
                if b"\r" in chunk:
                    problems.append(f"{self.name} has a carriage return inside a row; end rows with \\n or \\r\\n")
                    return False
            if not self._feed_chunk(chunk, problems):
                return False
            position = chunk_end + 1
        return self._finish_bad_rows(problems)

    def _feed_chunk(self, chunk: bytes, problems: list[str]) -> bool:
        raw = np.frombuffer(chunk, dtype=np.uint8)
        newlines = np.flatnonzero(raw == 10)
        line_ends = np.append(newlines, raw.size)
        line_starts = np.concatenate(([0], newlines + 1))
        lengths = line_ends - line_starts
        first_row = self.n_rows + self.n_bad_rows
        if self.max_row is not None and lengths.size and int(lengths.max()) > self.max_row:
            problems.append(self._long_row_problem(first_row + int(np.argmax(lengths > self.max_row)) + 1))
            return False
        commas = np.flatnonzero(raw == 44)
        fields = np.where(lengths == 0, 0,
                          np.bincount(np.searchsorted(newlines, commas), minlength=lengths.size) + 1)
        bad = np.flatnonzero(fields != self.width)
        if bad.size or self.n_bad_rows:
            # A malformed file: count its bad rows (named in the message), parse nothing more.
            for line in bad[: max(0, MAX_SAMPLES - len(self.bad_rows))]:
                self.bad_rows.append((first_row + int(line) + 1, int(fields[line])))
            self.n_bad_rows += int(bad.size)
            self.n_rows += int(lengths.size - bad.size)
            return self._within_rows(problems)
        cells = chunk.replace(b"\n", b",").split(b",")
        return self._take(cells, int(lengths.size), problems)

    def feed_csv_module(self, data: bytes, position: int, problems: list[str]) -> bool:
        text = io.TextIOWrapper(io.BytesIO(memoryview(data)[position:]), encoding="utf-8", newline="")
        reader = csv.reader(text, strict=True)
        rows: list[list[str]] = []
        try:
            for row in reader:
                if self.max_row is not None and sum(map(len, row)) > self.max_row:
                    problems.append(self._long_row_problem(reader.line_num))
                    return False
                rows.append(row)
                if len(rows) >= 4096:
                    if not self._take_rows(rows, problems):
                        return False
                    rows = []
                    self._check_deadline()
        except UnicodeDecodeError as exc:
            problems.append(f"{self.name} is not UTF-8 text ({exc.reason})")
            return False
        except csv.Error as exc:
            problems.append(f"{self.name} malformed CSV at line {reader.line_num + 1}: {exc}")
            return False
        while rows and not rows[-1]:
            rows.pop()
        if rows and not self._take_rows(rows, problems):
            return False
        return self._finish_bad_rows(problems)

    def _take_rows(self, rows: list[list[str]], problems: list[str]) -> bool:
        first_row = self.n_rows + self.n_bad_rows
        good = []
        for offset, row in enumerate(rows):
            if len(row) != self.width:
                if len(self.bad_rows) < MAX_SAMPLES:
                    self.bad_rows.append((first_row + offset + 1, len(row)))
                self.n_bad_rows += 1
            elif not self.n_bad_rows:
                good.append(row)
            else:
                self.n_rows += 1
        if self.n_bad_rows:
            self.n_rows += len(good)
            return self._within_rows(problems)
        cells = [cell.encode("utf-8") for row in good for cell in row]
        return self._take(cells, len(good), problems)

    # -- one batch of well-formed rows -------------------------------------------------

    def _take(self, cells: list[bytes], n: int, problems: list[str]) -> bool:
        row0 = self.n_rows
        if not self._reserve(row0 + n, problems):
            return False
        width = self.width
        id_cells = cells[self.id_at::width]
        if self.index is not None:
            found = list(map(self.index.get, id_cells, itertools.repeat(-1, n)))
            self.positions[row0:row0 + n] = found
            if len(self.unknown_ids) < MAX_SAMPLES and -1 in found:
                for offset, position in enumerate(found):
                    if position < 0 and len(self.unknown_ids) < MAX_SAMPLES:
                        self.unknown_ids[row0 + offset] = id_cells[offset].decode("utf-8", "replace")
        else:
            self.ids.extend(cell.decode("utf-8") for cell in id_cells)
        for j, at in enumerate(self.value_at):
            column = cells[at::width]
            try:
                self.values[row0:row0 + n, j] = np.array(column, dtype=np.float64)
            except ValueError:
                self.values[row0:row0 + n, j] = self._floats_one_by_one(column, row0, self.value_columns[j])
        self.n_rows += n
        return True

    def _floats_one_by_one(self, column: list[bytes], row0: int, name: str) -> np.ndarray:
        parsed = np.empty(len(column), dtype=np.float64)
        rows, samples = self.bad_cells.setdefault(name, ([], {}))
        for offset, cell in enumerate(column):
            try:
                parsed[offset] = float(cell)
            except ValueError:
                parsed[offset] = np.nan
                rows.append(row0 + offset)
                if len(samples) < MAX_SAMPLES:
                    samples[row0 + offset] = cell.decode("utf-8", "replace")[:MAX_NUMBER_CELL_BYTES]
        return parsed

    def _reserve(self, rows: int, problems: list[str]) -> bool:
        if not self._within_rows(problems, rows):
            return False
        if rows > self.values.shape[0]:  # no benchmark row count: grow geometrically
            capacity = max(rows, 2 * self.values.shape[0])
            grown = np.empty((capacity, self.values.shape[1]), dtype=np.float64)
            grown[:self.n_rows] = self.values[:self.n_rows]
            self.values = grown
        return True

    def _within_rows(self, problems: list[str], rows: int | None = None) -> bool:
        rows = self.n_rows + self.n_bad_rows if rows is None else rows
        if self.max_rows is not None and rows > self.max_rows + EXTRA_ROWS_READ:
            problems.append(f"{self.name} has more than {self.max_rows + EXTRA_ROWS_READ} rows; the benchmark has "
                            f"{self.max_rows} examples (one row each); the file was not read further")
            return False
        return True

    def _finish_bad_rows(self, problems: list[str]) -> bool:
        if not self.n_bad_rows:
            return True
        shown = ", ".join(f"row {row} has {fields}" for row, fields in self.bad_rows[:5])
        more = self.n_bad_rows - min(5, len(self.bad_rows))
        problems.append(f"{self.name}: {self.n_bad_rows} row(s) do not have {self.width} fields like the header: "
                        f"{shown}" + (f", and {more} more" if more > 0 else ""))
        return False

    def _long_row_problem(self, row: int) -> str:
        return (f"{self.name} row {row} is longer than the {self.max_row} bytes a row can take "
                "(the benchmark's longest example id and a number per column); the file was not read further")

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise ParseBudgetExceeded(f"parsing {self.name} took longer than its time budget")

    def result(self) -> CsvColumns:
        n = self.n_rows
        return CsvColumns(
            header=self.header, n_rows=n, values=self.values[:n],
            positions=self.positions[:n] if self.positions is not None else None,
            ids=self.ids, unknown_ids=self.unknown_ids, bad_cells=self.bad_cells,
        )
