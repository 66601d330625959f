"""CSV tables and the problem messages about them, shared by benchmark.py
(labels, inputs, designs) and predictions.py (what eval.py wrote).

UTF-8 (a leading byte-order mark is ignored), comma-separated, RFC 4180
quoting; blank lines at the end are ignored, a blank line elsewhere is a row
with the wrong number of fields. Rows in messages are numbered from 1, not
counting the header, and no message lists more than MAX_EXAMPLES_SHOWN
examples or MAX_PROBLEMS_SHOWN problems.
"""
from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The column that names each example, in labels, inputs and predictions alike.
EXAMPLE_ID_COLUMN = "example_id"

# How many problems an error message spells out, and how many examples
# (ids, rows) one problem names.
MAX_PROBLEMS_SHOWN = 25
MAX_EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV: header cells, and the data as columns of strings.

    `bad_rows` lists (row number from 1, field count) of rows whose width
    differs from the header's; when it is non-empty `columns` is empty.
    """

    header: list[str]
    columns: list[list[str]]
    n_rows: int
    bad_rows: list[tuple[int, int]]


def read_csv_table(data: bytes, problems: list[str]) -> CsvTable | None:
    """Parse UTF-8 CSV bytes into columns; None (with a problem) if unreadable.

    Plain files (no quotes, no bare CR, no NUL) take a vectorised path about
    three times faster than the csv module; anything else goes through the
    csv module, so both agree on every file.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    if b'"' not in data and b"\x00" not in data:
        plain = data.replace(b"\r\n", b"\n") if b"\r" in data else data
        if b"\r" not in plain:
            plain = plain.rstrip(b"\n")
            if not plain:
                problems.append("is empty (no header)")
                return None
            return _read_plain_csv(plain)
    return _read_csv_with_csv_module(data.decode("utf-8"), problems)


def _read_plain_csv(data: bytes) -> CsvTable:
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == ord("\n"))
    commas = np.flatnonzero(raw == ord(","))
    n_lines = newlines.size + 1
    commas_per_line = np.bincount(np.searchsorted(newlines, commas), minlength=n_lines)
    line_ends = np.append(newlines, raw.size)
    line_lengths = line_ends - np.concatenate(([0], newlines + 1))
    fields_per_line = np.where(line_lengths == 0, 0, commas_per_line + 1)

    header_end = int(line_ends[0])  # a byte offset: slice the bytes, not the text
    header = data[:header_end].decode("utf-8").split(",")
    width = len(header)
    bad_lines = np.flatnonzero(fields_per_line[1:] != width)
    if bad_lines.size:
        bad_rows = [(int(line) + 1, int(fields_per_line[line + 1])) for line in bad_lines]
        return CsvTable(header=header, columns=[], n_rows=n_lines - 1, bad_rows=bad_rows)
    if n_lines == 1:
        return CsvTable(header=header, columns=[[] for _ in header], n_rows=0, bad_rows=[])
    cells = data[header_end + 1:].decode("utf-8").replace("\n", ",").split(",")
    columns = [cells[j::width] for j in range(width)]
    return CsvTable(header=header, columns=columns, n_rows=n_lines - 1, bad_rows=[])


def _read_csv_with_csv_module(text: str, problems: list[str]) -> CsvTable | None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        problems.append(f"malformed CSV at line {reader.line_num}: {exc}")
        return None
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        problems.append("is empty (no header)")
        return None
    header, data_rows = rows[0], rows[1:]
    width = len(header)
    bad_rows = [(i + 1, len(row)) for i, row in enumerate(data_rows) if len(row) != width]
    if bad_rows:
        return CsvTable(header=header, columns=[], n_rows=len(data_rows), bad_rows=bad_rows)
    columns = [[row[j] for row in data_rows] for j in range(width)]
    return CsvTable(header=header, columns=columns, n_rows=len(data_rows), bad_rows=[])


def parse_float_column(cells: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse numbers as Python's float() does; returns (values, unparseable row indices).

    Unparseable cells are NaN in `values`.  NaN and inf spelled out parse;
    callers check finiteness themselves.
    """
    try:
        return np.array(cells, dtype=np.float64), np.empty(0, dtype=np.int64)
    except ValueError:
        pass
    values = np.empty(len(cells), dtype=np.float64)
    unparseable = []
    for index, cell in enumerate(cells):
        try:
            values[index] = float(cell)
        except ValueError:
            values[index] = np.nan
            unparseable.append(index)
    return values, np.asarray(unparseable, dtype=np.int64)


def describe_cells(
    indices: np.ndarray,
    cells: Sequence[Any] | None,
    example_ids: Sequence[str] | None,
    locate: str = "row",
    base: int = 1,
) -> str:
    """Name the first few offending places: `row 3 (example_id 'a', value '1.5'), and 4 more`."""
    shown = []
    for index in indices[:MAX_EXAMPLES_SHOWN]:
        index = int(index)
        parts = []
        if example_ids is not None:
            parts.append(f"{EXAMPLE_ID_COLUMN} {example_ids[index]!r}")
        if cells is not None:
            value = cells[index]
            parts.append(f"value {value.item() if isinstance(value, np.generic) else value!r}")
        shown.append(f"{locate} {index + base}" + (f" ({', '.join(parts)})" if parts else ""))
    more = len(indices) - len(shown)
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def describe_bad_rows(bad_rows: Sequence[tuple[int, int]], width: int) -> str:
    shown = [f"row {row} has {fields}" for row, fields in bad_rows[:MAX_EXAMPLES_SHOWN]]
    more = len(bad_rows) - len(shown)
    return (
        f"{len(bad_rows)} row(s) do not have {width} fields like the header: "
        + ", ".join(shown)
        + (f", and {more} more" if more > 0 else "")
    )


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("x") else "s")


def sample_of(items: Sequence[Any], quote: bool = True) -> str:
    render: Callable[[Any], str] = repr if quote else str
    shown = [render(item) for item in items[:MAX_EXAMPLES_SHOWN]]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def sample_text(items: Sequence[Any]) -> str:
    """`'a', 'b', 'c', 'd', 'e', and 37 more`: the first few items, quoted."""
    return sample_of(items)


def header_text(header: Sequence[str]) -> str:
    return repr(",".join(header))


def format_problems(summary: str, problems: Sequence[str]) -> str:
    """`summary:` then one indented line per problem, capped at MAX_PROBLEMS_SHOWN."""
    shown = [f"  - {problem}" for problem in problems[:MAX_PROBLEMS_SHOWN]]
    more = len(problems) - len(shown)
    if more > 0:
        shown.append(f"  - and {more} more problem(s)")
    return f"{summary}:\n" + "\n".join(shown) if shown else summary
