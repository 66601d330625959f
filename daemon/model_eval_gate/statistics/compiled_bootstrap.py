"""The paired bootstrap's per-resample passes, compiled with numba and run on every core (pure: no I/O).

stats.py defines the resamples (row r of
``default_rng(seed).integers(0, n, size=(B, n))``) and what is computed from
each row's draw counts; its numpy path is the reference.  This module
computes the same numbers, bit for bit, in a few fused compiled loops per
resample, on as many threads as there are cores.  stats.py uses it for large
runs when numba imports (a dependency; without it the numpy path gives the
same results, 10-20 times slower at a million examples).

Why each result is bit-identical to the numpy path:

* Mean metrics (log loss, Brier, accuracy, MAE, RMSE, self-scored): numpy
  sums count x value in example order with its pairwise summation (numpy's
  ``pairwise_sum``: runs of at most 128 values summed by 8 accumulators,
  longer runs split in two at a multiple of 8).  pairwise.py walks
  the same tree over the same products, with no fast-math flags, so every
  rounding is the same.
* AUROC: the pair counts are exact integers in both paths.
* Average precision: each positive's term ``(P - below) / at_or_above * c``
  is computed with the same operations, in ascending score order (ties in
  label order), and summed pairwise like numpy's row sum.

Per resample: count the draws (uint8 counts, 1 MB for a million examples);
the float mean metrics' weighted sums, up to COUNTED_ROWS resamples per pass
over a column (pairwise.py: numpy's tree walked from a plan, its leaves one
8-wide vector each); and per model a gather of the counts in score order
and a scan of 16 examples per step (rank_scans.py) that yields the AUROC
pair count and the average-precision rows, whose terms are then divided
and summed in one vectorised pass.

Threads.  Resamples are drawn chunk by chunk from the one Generator, under a
lock that also hands out the chunk numbers, so chunk k always holds resamples
[k * rows, (k + 1) * rows) whichever thread draws it.  The thread then scores
its chunk without the lock (numba's ``nogil``, like ``Generator.integers``,
releases the GIL), while another draws the next one.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .compiled import AVAILABLE, compiled as _compiled, numba  # noqa: F401  (numba: the benchmark's version line)
from .pairwise import (STACK_DEPTH, _pairwise_sum, _pairwise_weighted, pairwise_plan,  # noqa: F401
                       planned_weighted, planned_weighted_rows)
from .pcg_stream import _STATE_WORDS, _draw, generator_state, stream_matches_numpy  # noqa: F401
from .rank_scans import LANES, _average_precision_sum, _gather, _rank_scan, _rank_scan_untied  # noqa: F401

#: Positions per chunk (rows x n): 8 MiB of int64 per thread in flight.
CHUNK_POSITIONS = 2**20

#: Resamples per chunk at most when the kernel counts its own draws: each
#: float mean column (8 MB at a million examples) is read once per chunk.
#: 4 rows of uint8 counts are 4 MB per thread at a million examples; 8 rows
#: measured no faster (their counts no longer share the L3 cache as well).
COUNTED_ROWS = 4

#: Chunks per thread at least, so that the threads share the work evenly.
_CHUNKS_PER_THREAD = 8

#: The kernel's positions are int32.
MAX_EXAMPLES = 2**31 - 1


@_compiled(["int64(int8[::1], uint8[::1])", "int64(int8[::1], int32[::1])"])
def _integer_weighted(values, counts):
    """sum_j counts[j] * values[j], exactly (small integers: accuracy's -1, 0 and 1)."""
    total = 0
    for j in range(values.shape[0]):
        total += np.int64(values[j]) * np.int64(counts[j])
    return total


@_compiled(["boolean(int32[::1], uint8[::1])", "boolean(int32[::1], int32[::1])"])
def _count(positions, counts):
    """counts[j] += how often j was drawn; True if a count wrapped around (uint8 past 255)."""
    wrapped = False
    for i in range(positions.shape[0]):
        j = positions[i]
        counts[j] += 1
        wrapped |= counts[j] == 0
    return wrapped


_MEANS = "float64[:, ::1], int64[::1], int8[:, ::1], int64[::1], int64[::1]"
_RANKS = ("int32[:, ::1], uint8[:, ::1], boolean[::1], int64[::1], boolean, int32[:, ::1], float64[::1], "
          "int64[::1], float64[::1]")
_OUTPUTS = "float64[::1], int64[::1], float64[::1], int64[::1]"


@_compiled([f"void(uint8[::1], {_MEANS}, float64[::1], float64[::1])",
            f"void(int32[::1], {_MEANS}, float64[::1], float64[::1])"])
def _mean_sums(counts, float_values, float_columns, integer_values, integer_columns, mean_plan, stack, mean_sums):
    """One resample's sums of count x value for each mean column (see Sums)."""
    for m in range(float_values.shape[0]):
        # numpy's reduction starts at 0.0
        mean_sums[float_columns[m]] = 0.0 + planned_weighted(float_values[m], counts, mean_plan, stack)
    for m in range(integer_values.shape[0]):
        # Every partial sum of small integers is exact in float64, so numpy's
        # pairwise float sum is this integer, whatever its order.
        mean_sums[integer_columns[m]] = float(_integer_weighted(integer_values[m], counts))


@_compiled([f"void(uint8[::1], uint8[::1], {_RANKS}, int64[::1], float64[::1], int64[::1])",
            f"void(int32[::1], int32[::1], {_RANKS}, int64[::1], float64[::1], int64[::1])"])
def _rank_sums(counts, sorted_counts, orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
               twice_wins, ap_sums, positive_total_out):
    """One resample's drawn positives and each model's AUROC pair count and average-precision sum (see Sums)."""
    if orders.shape[0] == 0:
        return
    n = counts.shape[0]
    positive_total = 0
    for i in range(positives.shape[0]):
        positive_total += counts[positives[i]]
    positive_total_out[0] = positive_total
    for model in range(orders.shape[0]):
        _gather(orders[model], counts, sorted_counts)
        if untied[model]:
            twice_wins[model] = _rank_scan_untied(sorted_counts, flags[model], want_ap, positive_rows)
        else:
            twice_wins[model] = _rank_scan(sorted_counts, flags[model], want_ap, positive_rows)
        if want_ap:
            ap_sums[model] = _average_precision_sum(positive_rows, n, positive_total, terms, ap_plan, stack)


@_compiled([f"void(uint8[::1], uint8[::1], {_MEANS}, {_RANKS}, {_OUTPUTS})",
            f"void(int32[::1], int32[::1], {_MEANS}, {_RANKS}, {_OUTPUTS})"])
def _score_counts(counts, sorted_counts, float_values, float_columns, integer_values, integer_columns, mean_plan,
                  orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
                  mean_sums, twice_wins, ap_sums, positive_total_out):
    """One resample's sums from its counts (see Sums)."""
    _mean_sums(counts, float_values, float_columns, integer_values, integer_columns, mean_plan, stack, mean_sums)
    _rank_sums(counts, sorted_counts, orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
               twice_wins, ap_sums, positive_total_out)


_ROW_OUTPUTS = "float64[:, ::1], int64[:, ::1], float64[:, ::1], int64[::1]"


@_compiled(f"void(int32[:, ::1], {_MEANS}, {_RANKS}, uint8[::1], uint8[::1], {_ROW_OUTPUTS})")
def _score_rows(positions, float_values, float_columns, integer_values, integer_columns, mean_plan,
                orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack, narrow, narrow_sorted,
                mean_sums, twice_wins, ap_sums, positive_totals):
    """Score each row of drawn positions into row r of the outputs.

    Counts are uint8 (a quarter of the memory traffic of int32, and 1 MB
    for a million examples: it stays in the L2 cache); a row in which some
    example was drawn more than 255 times (possible only for n >= 256, and
    then astronomically unlikely) is counted again in int32.  narrow must
    be all zero on entry; it is all zero again on return.
    """
    n = narrow.shape[0]
    for r in range(positions.shape[0]):
        row = positions[r]
        if _count(row, narrow):
            narrow[:] = 0
            wide = np.zeros(n, dtype=np.int32)
            wide_sorted = np.empty(n if orders.shape[0] else 0, dtype=np.int32)
            _count(row, wide)
            _score_counts(wide, wide_sorted, float_values, float_columns, integer_values, integer_columns, mean_plan,
                          orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
                          mean_sums[r], twice_wins[r], ap_sums[r], positive_totals[r:r + 1])
        else:
            _score_counts(narrow, narrow_sorted, float_values, float_columns, integer_values, integer_columns,
                          mean_plan, orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
                          mean_sums[r], twice_wins[r], ap_sums[r], positive_totals[r:r + 1])
            narrow[:] = 0


@_compiled("void(uint64[::1], int64, uint8[:, ::1], uint64[:, ::1], boolean[::1])")
def _draw_counts(state, n, narrow, states_before, wrapped):
    """Draw one resample per row of `narrow` and count it there (uint8).

    states_before[r] keeps the state row r started from, so that a row whose
    counts wrapped (wrapped[r]) can be drawn again and counted in int32.
    """
    for r in range(narrow.shape[0]):
        states_before[r, :] = state
        narrow[r, :] = 0
        wrapped[r] = _draw(state, n, narrow[r], True)


@_compiled(f"void(uint8[:, ::1], boolean[::1], uint64[:, ::1], {_MEANS}, {_RANKS}, uint8[::1], float64[:, ::1], "
           f"{_ROW_OUTPUTS})")
def _score_count_rows(narrow, wrapped, states_before, float_values, float_columns, integer_values, integer_columns,
                      mean_plan, orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
                      narrow_sorted, row_stack, mean_sums, twice_wins, ap_sums, positive_totals):
    """Score each row of counts from _draw_counts into row r of the outputs (wrapped rows recounted in int32).

    The float mean columns are summed for all rows in one pass per column
    (planned_weighted_rows; row_stack is its (STACK_DEPTH, rows) stack), the
    rest row by row.
    """
    n = narrow.shape[1]
    rows = narrow.shape[0]
    column_sums = np.empty(rows)
    for m in range(float_values.shape[0]):
        planned_weighted_rows(float_values[m], narrow, mean_plan, row_stack, column_sums)
        for r in range(rows):
            mean_sums[r, float_columns[m]] = 0.0 + column_sums[r]  # numpy's reduction starts at 0.0
    for r in range(rows):
        if wrapped[r]:  # its narrow counts are wrong: everything again, in int32
            wide = np.zeros(n, dtype=np.int32)
            wide_sorted = np.empty(n if orders.shape[0] else 0, dtype=np.int32)
            _draw(states_before[r].copy(), n, wide, True)
            _score_counts(wide, wide_sorted, float_values, float_columns, integer_values, integer_columns, mean_plan,
                          orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan, stack,
                          mean_sums[r], twice_wins[r], ap_sums[r], positive_totals[r:r + 1])
            continue
        for m in range(integer_values.shape[0]):
            mean_sums[r, integer_columns[m]] = float(_integer_weighted(integer_values[m], narrow[r]))
        _rank_sums(narrow[r], narrow_sorted, orders, flags, untied, positives, want_ap, positive_rows, terms, ap_plan,
                   stack, twice_wins[r], ap_sums[r], positive_totals[r:r + 1])


@dataclass(frozen=True)
class RankOrders:
    """Each model's examples in ascending score order (ties in position order), as the rank pass reads them."""

    orders: np.ndarray  # (models, n) int32 example positions
    flags: np.ndarray  # (models, n) uint8: 1 = positive, 2 = first of its tie group, 4 = last of it
    untied: np.ndarray  # (models,) bool: no two of the model's scores are equal


#: Examples per block when rank_orders compares neighbouring sorted scores (bounds its temporaries).
_COMPARE_BLOCK = 1 << 16


def _distinct_from_previous(scores: np.ndarray, order: np.ndarray) -> np.ndarray:
    """new_value[k]: whether scores[order[k]] differs from scores[order[k - 1]] (True at k = 0).

    Block by block, so that no sorted copy of the scores (8 MB at a million
    examples) is held beside the sort's own result.
    """
    n = order.size
    new_value = np.empty(n, dtype=bool)
    if n:
        new_value[0] = True
    for start in range(1, n, _COMPARE_BLOCK):
        stop = min(start + _COMPARE_BLOCK, n)
        np.not_equal(scores[order[start:stop]], scores[order[start - 1:stop - 1]], out=new_value[start:stop])
    return new_value


def rank_orders(scores: Sequence[np.ndarray], positive: np.ndarray) -> RankOrders:
    """The rank pass's view of each model's scores (`positive`: boolean label per example).

    One model after the other: sorting both at once on two threads (numpy's
    sort releases the GIL) saved 0.1 s of 4.7 at a million examples and
    raised the peak memory by 19 MiB, too close to the 300 MB budget.
    """
    n = positive.size
    orders = np.empty((len(scores), n), dtype=np.int32)
    flags = np.empty((len(scores), n), dtype=np.uint8)
    untied = np.empty(len(scores), dtype=bool)
    for model, model_scores in enumerate(scores):
        order = np.argsort(model_scores)
        new_value = _distinct_from_previous(model_scores, order)
        if not new_value.all():
            # Ties: average precision sums a tie group's positives in position
            # order, so the order must be the stable one.  A stable sort of a
            # million floats (timsort) takes several times numpy's default, so
            # it runs only where some score repeats; the sorted values, and so
            # new_value, are the same for either order.
            order = np.argsort(model_scores, kind="stable")
        orders[model] = order
        del order  # int64; the int32 copy is kept
        flags[model] = positive[orders[model]]
        flags[model, :-1] |= new_value[1:].view(np.uint8) << 2
        flags[model, -1] |= 4
        flags[model] |= new_value.view(np.uint8) << 1
        untied[model] = bool(new_value.all())
    return RankOrders(orders, flags, untied)


@dataclass
class Sums:
    """What the kernel returns per resample; stats.py turns it into metric deltas."""

    mean_sums: np.ndarray  # (B, columns) pairwise sums of each mean column over the drawn positions
    twice_wins: np.ndarray  # (B, models) int64: 2 x AUROC pair count of each model
    ap_sums: np.ndarray  # (B, models) float64: sum of each model's average-precision terms
    positive_totals: np.ndarray  # (B,) int64: drawn positives


def full_data_sums(ranks: RankOrders, positives: np.ndarray, *, want_ap: bool) -> Sums:
    """The rank sums of the data as given (every count 1): the rank metrics' point values.

    The same arithmetic as a resample's, so stats.py's AUROC and average
    precision of the full data equal its numpy path's bit for bit.
    """
    n = ranks.orders.shape[1]
    counts = np.ones(n, dtype=np.uint8)
    positive_positions = np.ascontiguousarray(positives, dtype=np.int64)
    sums = Sums(mean_sums=np.empty((1, 0)), twice_wins=np.zeros((1, 2), dtype=np.int64), ap_sums=np.zeros((1, 2)),
                positive_totals=np.zeros(1, dtype=np.int64))
    no_means = (np.empty((0, n)), np.empty(0, dtype=np.int64), np.empty((0, n), dtype=np.int8),
                np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    _score_counts(counts, np.empty(n, dtype=np.uint8), *no_means, ranks.orders, ranks.flags, ranks.untied,
                  positive_positions, want_ap, *rank_workspace(positive_positions.size, want_ap),
                  sums.mean_sums[0], sums.twice_wins[0], sums.ap_sums[0], sums.positive_totals)
    return sums


def rank_workspace(positive_count: int, want_ap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positive_rows, terms, ap_plan, stack): one thread's scratch for the rank metrics and pairwise sums.

    positive_rows has a column per positive, one for the scan's writes after
    the last positive and LANES for the vectorised scan's whole-vector stores.
    """
    columns = positive_count + 1 + LANES if want_ap else 1
    plan = pairwise_plan(positive_count) if want_ap else np.empty(0, dtype=np.int64)
    return (np.empty((3, columns), dtype=np.int32), np.empty(positive_count if want_ap else 0), plan,
            np.empty(STACK_DEPTH))


def _mean_matrices(columns: list, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(float rows, their column numbers, int8 rows, their column numbers, pairwise plan) of the mean metrics.

    Consumes `columns` (each entry is set to None once copied, so a million
    examples' columns are not held twice).  A column of small integers
    (accuracy's -1, 0, 1) is summed exactly in int8: 1 byte per example to
    stream instead of 8, and the same result as numpy's float sum, which is
    exact for such values.
    """
    integer = [m for m, column in enumerate(columns)
               if np.all(np.abs(column) <= 127) and np.all(column == np.floor(column))]
    floating = [m for m in range(len(columns)) if m not in integer]
    float_values = np.empty((len(floating), n))
    integer_values = np.empty((len(integer), n), dtype=np.int8)
    for rows, numbers in ((float_values, floating), (integer_values, integer)):
        for row, m in enumerate(numbers):
            rows[row], columns[m] = columns[m], None
    plan = pairwise_plan(n) if floating else np.empty(0, dtype=np.int64)
    return (float_values, np.array(floating, dtype=np.int64), integer_values, np.array(integer, dtype=np.int64),
            plan)


_STREAM_CHECKED: list[bool] = []


def _own_stream() -> bool:
    """stream_matches_numpy(), checked once per process."""
    if not _STREAM_CHECKED:
        _STREAM_CHECKED.append(stream_matches_numpy())
    return _STREAM_CHECKED[0]


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def chunk_rows(n_examples: int, n_resamples: int, threads: int, *, counted: bool = False) -> int:
    """Resamples per chunk: at most CHUNK_POSITIONS positions, and enough chunks to share.

    counted: the kernel draws and counts the rows itself (uint8 counts, a
    byte per position instead of int32 positions and their count); then a
    chunk holds up to COUNTED_ROWS resamples of a large benchmark, whose
    float mean columns are read once per chunk (planned_weighted_rows).
    """
    by_memory = max(1, CHUNK_POSITIONS // n_examples)
    if counted:
        by_memory = max(by_memory, min(COUNTED_ROWS, (4 * CHUNK_POSITIONS) // n_examples))
    by_sharing = max(1, -(-n_resamples // (_CHUNKS_PER_THREAD * threads)))
    return min(by_memory, by_sharing)


def resampled_sums(*, n_examples: int, n_resamples: int, seed: int, mean_columns: list,
                   ranks: RankOrders | None, positives: np.ndarray | None, want_ap: bool,
                   threads: int | None = None, rows: int | None = None, own_stream: bool | None = None) -> Sums:
    """Every resample's sums, drawn as stats.py documents and scored by the compiled kernel.

    mean_columns: per-example values ((n,) float64 each) whose count-weighted
    sums are wanted; the list is consumed (see _mean_matrices).  ranks: the two models' (candidate,
    parent) rank orders when a rank metric is asked for; positives: the
    positive examples' positions (label order) then.  The result does not
    depend on threads or rows.  own_stream: draw with _draw (default: when
    stream_matches_numpy) rather than numpy's Generator; the same values.
    """
    if not AVAILABLE:
        raise RuntimeError("the compiled bootstrap needs numba (pip install numba)")
    n = int(n_examples)
    if n >= MAX_EXAMPLES:
        raise ValueError(f"the compiled bootstrap takes fewer than {MAX_EXAMPLES} examples, got {n}")
    threads = default_threads() if threads is None else max(1, int(threads))
    models = 0 if ranks is None else ranks.orders.shape[0]
    n_columns = len(mean_columns)
    means = _mean_matrices(mean_columns, n)
    if ranks is not None:
        rank_arrays = (ranks.orders, ranks.flags, ranks.untied)
        positive_positions = np.ascontiguousarray(positives, dtype=np.int64)
    else:
        rank_arrays = (np.empty((0, n), dtype=np.int32), np.empty((0, n), dtype=np.uint8), np.empty(0, dtype=bool))
        positive_positions = np.empty(0, dtype=np.int64)
    sums = Sums(mean_sums=np.empty((n_resamples, n_columns)),
                twice_wins=np.zeros((n_resamples, models), dtype=np.int64),
                ap_sums=np.zeros((n_resamples, models)),
                positive_totals=np.zeros(n_resamples, dtype=np.int64))

    own_stream = _own_stream() if own_stream is None else own_stream
    rows = chunk_rows(n, n_resamples, threads, counted=own_stream) if rows is None else max(1, int(rows))
    rng = None if own_stream else np.random.default_rng(seed)
    state = generator_state(seed) if own_stream else None
    starts = range(0, n_resamples, rows)
    handout = threading.Lock()
    next_chunk = 0
    failed = threading.Event()

    def work() -> None:
        nonlocal next_chunk
        narrow_sorted = np.empty(n if models else 0, dtype=np.uint8)
        # One row per positive, and one for the writes after the last positive.
        positive_rows, terms, ap_plan, stack = rank_workspace(positive_positions.size, want_ap)
        if own_stream:
            narrow = np.empty((rows, n), dtype=np.uint8)
            states_before = np.empty((rows, _STATE_WORDS), dtype=np.uint64)
            wrapped = np.empty(rows, dtype=bool)
            row_stack = np.empty((STACK_DEPTH, rows))
        else:
            narrow = np.zeros(n, dtype=np.uint8)
        while not failed.is_set():
            with handout:  # the chunk's number and its draws go together, in order
                position = next_chunk
                if position >= len(starts):
                    return
                next_chunk += 1
                start = starts[position]
                stop = min(start + rows, n_resamples)
                if own_stream:
                    _draw_counts(state, n, narrow[:stop - start], states_before[:stop - start],
                                 wrapped[:stop - start])
                else:
                    # int32 positions: the same values as the int64 draw (numpy
                    # draws from the same 32-bit bounded generator for n < 2**32).
                    drawn = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
            outputs = (sums.mean_sums[start:stop], sums.twice_wins[start:stop], sums.ap_sums[start:stop],
                       sums.positive_totals[start:stop])
            try:
                if own_stream:
                    _score_count_rows(narrow[:stop - start], wrapped[:stop - start], states_before[:stop - start],
                                      *means, *rank_arrays, positive_positions, want_ap, positive_rows, terms, ap_plan,
                                      stack, narrow_sorted, row_stack, *outputs)
                else:
                    _score_rows(drawn, *means, *rank_arrays, positive_positions, want_ap, positive_rows, terms,
                                ap_plan, stack, narrow, narrow_sorted, *outputs)
            except BaseException:
                failed.set()
                raise

    workers = min(threads, len(starts))
    if workers <= 1:
        work()
        return sums
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bootstrap") as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()
    return sums
