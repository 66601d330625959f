"""Metrics under resampling weights and the paired bootstrap (pure: no I/O).

Two layers:

* Metrics.  ``METRICS`` maps (task, name) to a `Metric`; `metric_for` looks
  one up.  ``Metric.weighted(y_true, predictions, weights)`` evaluates the
  metric under a (B, n) matrix of example weights (bootstrap counts: row b
  holds how often each example occurs in resample b) and returns B values at
  once; `point_estimate` is the metric on the data as given (all weights 1).

* The paired bootstrap.  `paired_bootstrap` / `paired_bootstrap_many` draw
  resamples of the example positions and evaluate candidate and parent on
  the *same* resamples, so the interval is for the difference on one split,
  not for two independent estimates.  The interval is the percentile interval
  of the resampled deltas (candidate - parent, raw metric units).

Resample r of a run with seed s is row r of
``numpy.random.default_rng(s).integers(0, n, size=(n_resamples, n))``: the
positions scipy.stats.bootstrap draws from a Generator with that seed.  The
rows are drawn chunk by chunk from the one Generator in order, and every
metric value is a function of the row's draw counts alone, computed row by
row in a fixed order: integer arithmetic for the rank metrics; for a mean
metric, numpy's pairwise sum of count x value in example order (what
`Metric.weighted` computes); for average precision, the pairwise sum of the
positives' terms in ascending score order.  So any chunk size, thread count
or engine gives bit-identical results; chunks only bound memory.

Two engines compute exactly that.  The numpy path below (a helper thread
draws the next chunk while the current one is scored) is the reference; the
compiled kernel in statistics/compiled_bootstrap.py (numba, on every core)
does the same arithmetic in fused loops, 10-20 times faster at a million
examples.  BOOTSTRAP_ENGINE chooses.  Both draw independent examples: a
benchmark that declares groups or strata, or has few examples of one class,
is resampled by statistics/resampling.py instead (numpy, whatever
BOOTSTRAP_ENGINE says), whose kernels work on per-group sums, so a resample
costs O(groups) and the kernel has nothing to add.

Performance: the scores are sorted once per model; a resample then costs a
few O(n) passes (count the draws, gather the counts in score order,
cumulative-sum, gather, dot) instead of a sort.  benchmarks/bench_bootstrap.py
measures both engines against drawing the positions alone and against scipy;
docs/performance.md has the figures and the profile.

Undefined values are never NaN in a result: a resample in which a rank metric
is undefined (all its examples share one label) is dropped and counted
(``n_valid < n_resamples``); a metric undefined on the whole split, or on more
than half of the resamples, raises `MetricUndefined`.
"""
from __future__ import annotations

import contextlib
import enum
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

# Re-exported: the interval and the seeds have modules of their own, and
# callers keep reading them here.
from .statistics.intervals import (  # noqa: F401
    MIN_TAIL_RESAMPLES,
    interval_method,
    normal_tail_interval,
    percentile_interval,
)
from .statistics.seeds import derive_seed, derive_split_seed  # noqa: F401

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression", "self_scored")

#: Predicted probabilities are clipped to [PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]
#: before taking logs, so one confident mistake costs ~34.5 nats, not infinity.
PROBABILITY_CLIP = 1e-15

#: Binary accuracy predicts the positive class when P(positive) > this.
BINARY_THRESHOLD = 0.5

#: How far a multiclass probability row may sum from 1; the same tolerance
#: predictions.py applies when it reads eval.py's output.
PROBABILITY_SUM_TOLERANCE = 1e-4

#: A metric defined in fewer than this fraction of resamples has no usable
#: interval: MetricUndefined.  (decision.py asks for more before it decides.)
MIN_VALID_FRACTION = 0.5

#: Upper bound on one chunk's working arrays, whatever the split size (a
#: chunk still holds one resample when a single one needs more).
CHUNK_MEMORY_BUDGET_BYTES = 64 * 2**20

#: Preferred size of one chunk's working arrays.  Below the budget on
#: purpose: a chunk whose arrays stay in the CPU caches between the passes
#: over them is much faster than one streamed from RAM (measured: 1-2
#: resamples per chunk for 100,000 examples, a few hundred for 1,000).
CHUNK_TARGET_BYTES = 12 * 2**20

#: Draw the next chunk's positions on a helper thread while this one is scored
#: (the numpy path).
PREFETCH_DRAWS = True

#: Which engine computes the resamples' metric values; both give the same
#: bits.  "auto": the compiled kernel (statistics/compiled_bootstrap.py:
#: numba, every core) for runs of at least COMPILED_MIN_DRAWS drawn positions
#: when numba imports, else numpy.  "numpy": always the numpy path below, the
#: reference the kernel is tested against.  "compiled": the kernel, or an error.
#: Designs (groups, strata, label classes) always take statistics/resampling.py.
BOOTSTRAP_ENGINE = "auto"

#: Below this many drawn positions (examples x resamples) "auto" stays with
#: numpy: it takes well under a second there, less than importing numba and
#: loading the kernel's cached machine code into a fresh process.
COMPILED_MIN_DRAWS = 2**23

#: Threads of the compiled kernel; None: every core this process may run on.
BOOTSTRAP_THREADS: int | None = None

DEFAULT_N_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95

class MetricUndefined(ValueError):
    """The metric has no value on this data (e.g. AUROC with a single class)."""


# --------------------------------------------------------------------------
# Result type (decision.py imports it)
# --------------------------------------------------------------------------


class OrientedDelta(NamedTuple):
    """A delta and its interval turned so that positive means the candidate is better."""

    delta: float
    ci_low: float
    ci_high: float
    relative_delta: float | None


@dataclass(frozen=True)
class BootstrapResult:
    """One metric compared between candidate and parent on the same examples.

    delta, ci_low and ci_high are raw (candidate - parent, in the metric's own
    units); higher_is_better says which direction is an improvement.
    """

    metric: str
    higher_is_better: bool
    candidate: float
    parent: float
    delta: float
    ci_low: float
    ci_high: float
    relative_delta: float | None  # delta / |parent|; None when parent == 0
    n_resamples: int
    n_valid: int  # resamples where the metric was defined for both models
    seed: int
    confidence: float
    # How the interval was made: "percentile" or "normal_tail" (statistics/intervals.py,
    # interval_method), "few_groups_t" / "few_positives_t" (statistics/: too
    # few groups or examples of one class for percentiles, on
    # degrees_of_freedom); and what a resample drew.
    interval: str = "percentile"
    degrees_of_freedom: int | None = None
    resampled: str = "examples"

    def oriented(self) -> OrientedDelta:
        """delta, interval and relative delta with positive meaning "candidate better"."""
        if self.higher_is_better:
            return OrientedDelta(self.delta, self.ci_low, self.ci_high, self.relative_delta)
        relative = None if self.relative_delta is None else -self.relative_delta + 0.0
        # + 0.0: a zero stays 0.0 rather than becoming -0.0 in reports.
        return OrientedDelta(-self.delta + 0.0, -self.ci_high + 0.0, -self.ci_low + 0.0, relative)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats and ints, None for a missing relative delta."""
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "candidate": self.candidate,
            "parent": self.parent,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "relative_delta": self.relative_delta,
            "n_resamples": self.n_resamples,
            "n_valid": self.n_valid,
            "seed": self.seed,
            "confidence": self.confidence,
            "interval": self.interval,
            "degrees_of_freedom": self.degrees_of_freedom,
            "resampled": self.resampled,
        }


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


class MetricKind(enum.Enum):
    """How a metric turns example weights into a value; fixes the vectorised kernel."""

    MEAN = "mean"  # weighted mean of a per-example value
    ROOT_MEAN = "root_mean"  # square root of a weighted mean (rmse)
    AUROC = "auroc"  # rank statistic over positive/negative pairs
    AVERAGE_PRECISION = "average_precision"  # rank statistic over positives

    @property
    def is_rank(self) -> bool:
        return self in (MetricKind.AUROC, MetricKind.AVERAGE_PRECISION)


class MetricValues(NamedTuple):
    """B metric values; `defined` is False (and the value NaN) where the metric has no value."""

    values: np.ndarray
    defined: np.ndarray


PerExample = Callable[[np.ndarray | None, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A metric the gate computes itself.

    For MEAN and ROOT_MEAN metrics `per_example(y_true, predictions)` gives the
    value each example contributes; rank metrics need no such function.
    `needs_probabilities`: binary predictions must lie in [0, 1] (AUROC and
    average precision accept any finite score).
    """

    name: str
    task: str
    higher_is_better: bool
    kind: MetricKind
    description: str
    per_example: PerExample | None = None
    needs_probabilities: bool = False

    def weighted(self, y_true: Any, predictions: Any, weights: Any) -> MetricValues:
        """The metric under each row of `weights` ((B, n), non-negative, finite)."""
        y, pred = _validated_inputs(self.task, (self,), y_true, predictions, "predictions")
        matrix = _validated_weights(weights, pred.shape[0])
        if self.kind.is_rank:
            split = _LabelSplit(y)
            view = _CountView(matrix, split)
            values = _rank_metric(self.kind, view, _RankLayout(pred, split))
            defined = (view.positive_total > 0) & (view.negative_total > 0)
        else:
            totals = matrix.sum(axis=1)
            defined = totals > 0
            sums = (matrix * self.per_example(y, pred)).sum(axis=1)
            values = np.divide(sums, totals, out=np.zeros_like(sums, dtype=np.float64), where=defined)
            if self.kind is MetricKind.ROOT_MEAN:
                values = np.sqrt(values)
        values = np.where(defined, values, np.nan)
        return MetricValues(values, defined)


def _probabilities(pred: np.ndarray) -> np.ndarray:
    return np.clip(pred, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)


def _binary_accuracy(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return ((pred > BINARY_THRESHOLD) == (y == 1)).astype(np.float64)


def _binary_log_loss(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    p = _probabilities(pred)
    return -np.where(y == 1, np.log(p), np.log1p(-p))


def _squared_error(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.square(pred - y)


def _absolute_error(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.abs(pred - y)


def _multiclass_accuracy(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    # argmax takes the first of tied classes: a tie is a definite (maybe wrong) guess.
    return (np.argmax(pred, axis=1) == y).astype(np.float64)


def _multiclass_log_loss(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    # Rows are not renormalised: the model is scored on what it wrote.
    chosen = pred[np.arange(pred.shape[0]), y.astype(np.intp)]
    return -np.log(_probabilities(chosen))


def _self_scored_value(y: np.ndarray | None, pred: np.ndarray) -> np.ndarray:
    return pred


def _builtin_metrics() -> dict[tuple[str, str], Metric]:
    K = MetricKind
    metrics = [
        Metric("auroc", "binary", True, K.AUROC,
               "area under the ROC curve; tied scores count 1/2"),
        Metric("average_precision", "binary", True, K.AVERAGE_PRECISION,
               "mean over positives of the precision at their score (step-wise, ties grouped)"),
        Metric("accuracy", "binary", True, K.MEAN,
               f"fraction correct, predicting positive when P > {BINARY_THRESHOLD}",
               _binary_accuracy, needs_probabilities=True),
        Metric("log_loss", "binary", False, K.MEAN,
               f"mean negative log-likelihood, probabilities clipped to [{PROBABILITY_CLIP}, 1 - {PROBABILITY_CLIP}]",
               _binary_log_loss, needs_probabilities=True),
        Metric("brier", "binary", False, K.MEAN,
               "mean squared difference between P(positive) and the 0/1 label",
               _squared_error, needs_probabilities=True),
        Metric("rmse", "regression", False, K.ROOT_MEAN, "root mean squared error", _squared_error),
        Metric("mae", "regression", False, K.MEAN, "mean absolute error", _absolute_error),
        Metric("accuracy", "multiclass", True, K.MEAN,
               "fraction whose most probable class is the label (first class wins ties)",
               _multiclass_accuracy, needs_probabilities=True),
        Metric("log_loss", "multiclass", False, K.MEAN,
               f"mean negative log of the label's probability, clipped to [{PROBABILITY_CLIP}, 1 - {PROBABILITY_CLIP}]",
               _multiclass_log_loss, needs_probabilities=True),
    ]
    return {(m.task, m.name): m for m in metrics}


#: Every built-in metric, keyed by (task, name).  Self-scored metrics are not
#: listed: the benchmark names them, see `metric_for`.
METRICS: Mapping[tuple[str, str], Metric] = MappingProxyType(_builtin_metrics())

#: Built-in metric names per task.
TASK_METRICS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    task: tuple(name for (t, name) in METRICS if t == task) for task in TASKS if task != "self_scored"
})


def metric_for(task: str, name: str, *, higher_is_better: bool | None = None) -> Metric:
    """The metric `name` for `task`.

    For task "self_scored" any name is accepted (the benchmark names its own
    metrics), the value is the mean of the per-example values the model
    reported, and `higher_is_better` is required.  For built-in metrics the
    direction is fixed; passing a different one is an error.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if task == "self_scored":
        if not isinstance(higher_is_better, bool):
            raise ValueError(
                f"self-scored metric {name!r} needs higher_is_better=True or False (the benchmark declares it)"
            )
        return Metric(name, task, higher_is_better, MetricKind.MEAN,
                      "mean of the per-example values the model reported (self-scored)", _self_scored_value)
    metric = METRICS.get((task, name))
    if metric is None:
        raise ValueError(f"unknown metric {name!r} for task {task!r}; {task} metrics are {list(TASK_METRICS[task])}")
    if higher_is_better is not None and higher_is_better != metric.higher_is_better:
        raise ValueError(
            f"{task} metric {name!r} is {'higher' if metric.higher_is_better else 'lower'}-is-better; "
            f"higher_is_better={higher_is_better!r} contradicts it"
        )
    return metric


def point_estimate(metric: Metric, y_true: Any, predictions: Any) -> float:
    """The metric on the data as given (every example once).  MetricUndefined if it has no value."""
    _check_metric(metric)
    y, pred = _validated_inputs(metric.task, (metric,), y_true, predictions, "predictions")
    return _point_value(metric, y, pred, _LabelSplit(y) if metric.kind.is_rank else None)


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------


def _check_metric(metric: Any) -> None:
    if not isinstance(metric, Metric):
        raise TypeError(f"expected a Metric (see metric_for), got {type(metric).__name__}")


def _as_float_array(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not an array of numbers: {exc}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{what} must be real, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def _describe_positions(mask: np.ndarray, limit: int = 5) -> str:
    positions = np.flatnonzero(mask)
    shown = ", ".join(str(int(p)) for p in positions[:limit])
    more = positions.size - limit
    return f"{positions.size} value(s), at example position(s) {shown}" + (f" and {more} more" if more > 0 else "")


def _validated_inputs(task: str, metrics: Sequence[Metric], y_true: Any, predictions: Any,
                      what: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(labels, predictions) as float64 arrays after checking them against the task's domain."""
    pred = _as_float_array(predictions, what)
    if task == "multiclass":
        if pred.ndim != 2:
            raise ValueError(f"multiclass {what} must be (n_examples, n_classes) probabilities, got shape {pred.shape}")
        if pred.shape[1] < 2:
            raise ValueError(f"multiclass {what} need at least 2 class columns, got {pred.shape[1]}")
    elif task == "self_scored":
        if len(metrics) == 1 and pred.ndim == 2 and pred.shape[1] == 1:
            pred = np.ascontiguousarray(pred[:, 0])
        if pred.ndim == 2 and pred.shape[1] != len(metrics):
            raise ValueError(
                f"self-scored {what} have {pred.shape[1]} value columns but {len(metrics)} metric(s) were named"
            )
        if pred.ndim not in (1, 2) or (pred.ndim == 1 and len(metrics) != 1):
            raise ValueError(
                f"self-scored {what} must hold one column of per-example values per metric "
                f"({len(metrics)}), got shape {pred.shape}"
            )
    elif pred.ndim != 1:
        raise ValueError(f"{task} {what} must be one value per example (1-D), got shape {pred.shape}")
    n = pred.shape[0]
    if n < 2:
        raise ValueError(f"{what}: a bootstrap needs at least 2 examples, got {n}")
    finite = np.isfinite(pred)
    if not finite.all():
        bad = ~finite if finite.ndim == 1 else ~finite.all(axis=1)
        raise ValueError(f"{what} contain NaN or infinite values: {_describe_positions(bad)}")
    if any(m.needs_probabilities for m in metrics):
        outside = (pred < 0.0) | (pred > 1.0)
        if outside.ndim == 2:
            outside = outside.any(axis=1)
        if outside.any():
            names = sorted({m.name for m in metrics if m.needs_probabilities})
            raise ValueError(f"{what} must be probabilities in [0, 1] for {names}: {_describe_positions(outside)}")
    if task == "multiclass":
        off = np.abs(pred.sum(axis=1) - 1.0) > PROBABILITY_SUM_TOLERANCE
        if off.any():
            raise ValueError(
                f"multiclass {what} rows must sum to 1 (within {PROBABILITY_SUM_TOLERANCE}): {_describe_positions(off)}"
            )

    if task == "self_scored":  # labels are not used; if given they must still fit
        if y_true is not None and np.shape(y_true)[:1] != (n,):
            raise ValueError(f"y_true has shape {np.shape(y_true)} but {what} have {n} examples")
        return None, pred
    if y_true is None:
        raise ValueError(f"{task} metrics need labels; y_true is None")
    y = _as_float_array(y_true, "y_true")
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label per example), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y_true has {y.shape[0]} examples but {what} have {n}")
    if not np.isfinite(y).all():
        raise ValueError(f"y_true contains NaN or infinite values: {_describe_positions(~np.isfinite(y))}")
    if task == "binary":
        bad = (y != 0.0) & (y != 1.0)
        if bad.any():
            raise ValueError(f"binary labels must be 0 or 1: {_describe_positions(bad)}")
    elif task == "multiclass":
        n_classes = pred.shape[1]
        bad = (y != np.floor(y)) | (y < 0) | (y >= n_classes)
        if bad.any():
            raise ValueError(
                f"multiclass labels must be class indices 0..{n_classes - 1}: {_describe_positions(bad)}"
            )
    return y, pred


def _validated_weights(weights: Any, n: int) -> np.ndarray:
    matrix = np.asarray(weights)
    if matrix.ndim != 2 or matrix.shape[1] != n:
        raise ValueError(f"weights must have shape (n_resamples, {n}), got {matrix.shape}")
    if matrix.dtype == bool or np.issubdtype(matrix.dtype, np.integer):
        if matrix.size and matrix.min() < 0:
            raise ValueError("weights must be non-negative")
        # Integer counts keep the rank metrics exact: int64 sums cannot round.
        return np.ascontiguousarray(matrix, dtype=np.int64)
    matrix = _as_float_array(matrix, "weights")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return matrix


# --------------------------------------------------------------------------
# Rank metrics under example counts
# --------------------------------------------------------------------------


class _LabelSplit:
    """Positions of the positive and negative examples (binary labels)."""

    def __init__(self, y: np.ndarray):
        self.positives = np.flatnonzero(y == 1)
        self.negatives = np.flatnonzero(y == 0)


class _RankLayout:
    """One model's scores arranged so that rank statistics need only cumulative sums.

    Count-weighted, AUROC is the sum over positives i of c_i * (negative
    weight scoring below s_i + half the negative weight tied with it), over
    P * N.  With the negatives in ascending score order and `cum` their padded
    cumulative counts, that bracket is (cum[below_i] + cum[below_or_tied_i]) / 2,
    so a resample costs a gather, a cumulative sum, a gather and a dot
    product, all O(n): the scores are sorted once, never per resample.
    Average precision adds the same for the positives (`positives_below`).
    """

    def __init__(self, scores: np.ndarray, split: _LabelSplit):
        negative_scores = scores[split.negatives]
        positive_scores = scores[split.positives]
        negative_order = np.argsort(negative_scores, kind="stable")
        positive_order = np.argsort(positive_scores, kind="stable")
        self.negatives_by_score = split.negatives[negative_order]
        self.positives_by_score = split.positives[positive_order]
        # Average precision sums its terms in this order (ascending score,
        # ties in label order): the order the compiled kernel meets them in.
        self.positive_order = positive_order
        sorted_negatives = negative_scores[negative_order]
        sorted_positives = positive_scores[positive_order]

        def per_positive(sorted_haystack: np.ndarray, side: str) -> np.ndarray:
            # Searching with sorted needles walks the haystack in order (cache
            # friendly); the answers are then put back in positive order.
            found = np.empty(positive_scores.size, dtype=np.intp)
            found[positive_order] = np.searchsorted(sorted_haystack, sorted_positives, side=side)
            return found

        self.below = per_positive(sorted_negatives, "left")
        below_or_tied = per_positive(sorted_negatives, "right")
        # Few positives usually tie with a negative (clipped probabilities at
        # 0 or 1, rounded scores), so their correction is gathered separately.
        self.tied = np.flatnonzero(below_or_tied != self.below)
        self.tied_below = self.below[self.tied]
        self.tied_below_or_tied = below_or_tied[self.tied]
        self.positives_below = per_positive(sorted_positives, "left")


class _Workspace:
    """Reusable scratch arrays, so chunk after chunk works in the same (cached) memory."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, rows: int, width: int, dtype: np.dtype) -> np.ndarray:
        """A C-contiguous (rows, width) array of dtype; contents undefined."""
        held = self._arrays.get(name)
        if held is None or held.shape[0] < rows or held.shape[1] != width or held.dtype != dtype:
            held = self._arrays[name] = np.empty((rows, width), dtype=dtype)
        return held[:rows]


def _take_columns(source: np.ndarray, columns: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # Every column index is in range by construction; mode="wrap" is numpy's
    # cheapest take (mode="raise" with out= goes through a temporary copy).
    return np.take(source, columns, axis=1, out=out, mode="wrap")


class _CountView:
    """Per-chunk quantities that every rank metric of the chunk shares.

    `counts` is (rows, n) example weights: integer bootstrap counts (exact
    arithmetic) or non-negative floats.  Cumulative sums are cached per
    `role` (the model they belong to), so AUROC and average precision of one
    model share them.
    """

    def __init__(self, counts: np.ndarray, split: _LabelSplit, workspace: _Workspace | None = None,
                 row_total: int | None = None):
        self.counts = counts
        self.split = split
        exact = np.issubdtype(counts.dtype, np.integer)
        self.accumulator = np.dtype(np.int64) if exact else np.dtype(np.float64)
        self._workspace = workspace or _Workspace()
        rows = counts.shape[0]
        self.positive_counts = _take_columns(
            counts, split.positives, self._workspace.array("positive_counts", rows, split.positives.size, counts.dtype))
        self.positive_total = self.positive_counts.sum(axis=1, dtype=self.accumulator)
        if row_total is None:
            self.total = counts.sum(axis=1, dtype=self.accumulator)
        else:
            self.total = np.full(rows, row_total, dtype=self.accumulator)
        self.negative_total = self.total - self.positive_total
        self._cumulative: dict[str, np.ndarray] = {}

    def scratch(self, name: str, width: int, dtype: np.dtype | None = None) -> np.ndarray:
        return self._workspace.array(name, self.counts.shape[0], width, dtype or self.counts.dtype)

    def _padded_cumsum(self, name: str, positions: np.ndarray) -> np.ndarray:
        gathered = _take_columns(self.counts, positions, self.scratch(f"{name}/gathered", positions.size))
        padded = self.scratch(name, positions.size + 1)
        padded[:, 0] = 0
        np.cumsum(gathered, axis=1, out=padded[:, 1:])
        return padded

    def negatives_up_to(self, layout: _RankLayout, role: str) -> np.ndarray:
        """Column k: weight of the k lowest-scoring negatives under `layout` (column 0 is 0)."""
        name = f"negatives_up_to/{role}"
        if name not in self._cumulative:
            self._cumulative[name] = self._padded_cumsum(name, layout.negatives_by_score)
        return self._cumulative[name]

    def positives_up_to(self, layout: _RankLayout, role: str) -> np.ndarray:
        """Column k: weight of the k lowest-scoring positives under `layout` (column 0 is 0)."""
        name = f"positives_up_to/{role}"
        if name not in self._cumulative:
            self._cumulative[name] = self._padded_cumsum(name, layout.positives_by_score)
        return self._cumulative[name]


def _auroc_twice_wins(view: _CountView, layout: _RankLayout, role: str = "model") -> np.ndarray:
    """2 * (weighted positive-over-negative pairs + half the tied pairs), per row; exact for counts.

    Positive i contributes c_i * (cum[below_i] + cum[below_or_tied_i]): twice
    the negatives strictly below it, plus the tied negatives once.
    """
    cumulative = view.negatives_up_to(layout, role)
    below = _take_columns(cumulative, layout.below, view.scratch("brackets", layout.below.size))
    twice_wins = 2 * np.einsum("ij,ij->i", view.positive_counts, below, dtype=view.accumulator)
    twice_wins += _tied_twice_wins(view, layout, cumulative)
    return twice_wins


def _tied_twice_wins(view: _CountView, layout: _RankLayout, cumulative: np.ndarray) -> np.ndarray | int:
    """The tied negatives' share of _auroc_twice_wins (counted once, not twice)."""
    if not layout.tied.size:
        return 0
    tied_counts = _take_columns(view.positive_counts, layout.tied)
    tied_negatives = (_take_columns(cumulative, layout.tied_below_or_tied)
                      - _take_columns(cumulative, layout.tied_below))
    return np.einsum("ij,ij->i", tied_counts, tied_negatives, dtype=view.accumulator)


def _auroc_twice_wins_delta(view: _CountView, candidate: _RankLayout, parent: _RankLayout) -> np.ndarray:
    """_auroc_twice_wins(candidate) - _auroc_twice_wins(parent), exactly, in one weighted sum.

    Both models weigh the same positive counts, so the brackets are
    subtracted first (|difference| <= N fits the count dtype) and one
    widening dot product serves both: that product is the costliest pass of
    the rank metrics after the count gathers.
    """
    candidate_cumulative = view.negatives_up_to(candidate, "candidate")
    parent_cumulative = view.negatives_up_to(parent, "parent")
    width = candidate.below.size
    brackets = _take_columns(candidate_cumulative, candidate.below, view.scratch("brackets", width))
    brackets -= _take_columns(parent_cumulative, parent.below, view.scratch("parent_brackets", width))
    twice_delta = 2 * np.einsum("ij,ij->i", view.positive_counts, brackets, dtype=view.accumulator)
    twice_delta += _tied_twice_wins(view, candidate, candidate_cumulative)
    twice_delta -= _tied_twice_wins(view, parent, parent_cumulative)
    return twice_delta


def _average_precision(view: _CountView, layout: _RankLayout, role: str = "model") -> np.ndarray:
    """sum over positives of c_i * precision at s_i, / P; 0 where P = 0.

    Precision at s_i is (positive weight scoring >= s_i) / (all weight scoring
    >= s_i): tied examples share one threshold, as in the step-wise AP.
    """
    width = layout.below.size
    positives_below = _take_columns(view.positives_up_to(layout, role), layout.positives_below,
                                    view.scratch("positives_below", width))
    examples_below = _take_columns(view.negatives_up_to(layout, role), layout.below,
                                   view.scratch("examples_below", width))
    examples_below += positives_below
    at_or_above = np.subtract(view.total[:, None], examples_below, dtype=np.float64)
    precision = np.subtract(view.positive_total[:, None], positives_below, dtype=np.float64)
    # Nothing at or above s_i only happens where c_i = 0 (the term is 0 anyway);
    # dividing by 1 there keeps 0/0 out.
    at_or_above += at_or_above == 0
    precision /= at_or_above
    precision *= view.positive_counts
    summed = _take_columns(precision, layout.positive_order).sum(axis=1)
    return np.divide(summed, view.positive_total, out=np.zeros(summed.shape), where=view.positive_total > 0)


def _rank_metric(kind: MetricKind, view: _CountView, layout: _RankLayout) -> np.ndarray:
    if kind is MetricKind.AUROC:
        pairs = view.positive_total * view.negative_total
        return np.divide(_auroc_twice_wins(view, layout), 2 * pairs, out=np.zeros(pairs.shape), where=pairs > 0)
    return _average_precision(view, layout)


def _point_value(metric: Metric, y: np.ndarray | None, pred: np.ndarray, split: _LabelSplit | None,
                 layout: _RankLayout | None = None) -> float:
    n = pred.shape[0]
    if metric.kind.is_rank:
        assert split is not None
        if split.positives.size == 0 or split.negatives.size == 0:
            only = "positive" if split.negatives.size == 0 else "negative"
            raise MetricUndefined(f"{metric.name} is undefined: all {n} labels are {only}; it needs both classes")
        view = _CountView(np.ones((1, n), dtype=np.int64), split)
        return float(_rank_metric(metric.kind, view, layout or _RankLayout(pred, split))[0])
    value = float(np.sum(metric.per_example(y, pred)) / n)
    return math.sqrt(value) if metric.kind is MetricKind.ROOT_MEAN else value


# --------------------------------------------------------------------------
# The paired bootstrap
# --------------------------------------------------------------------------


def _count_dtype(n: int) -> np.dtype:
    # int32 halves the memory traffic of every gather; sums of counts stay
    # below 2n, so it is exact up to a billion examples.
    return np.dtype(np.int32) if 2 * n < 2**31 else np.dtype(np.int64)


def _count_into(counts: np.ndarray, indices: np.ndarray) -> None:
    """counts[r, j] = how often position j was drawn in resample r."""
    counts.fill(0)
    one = counts.dtype.type(1)  # the dtype of counts: ufunc.at's fast path
    for row, positions in zip(counts, indices):
        np.add.at(row, positions, one)


@dataclass(frozen=True)
class _Chunk:
    """Consecutive resamples [start, start + rows): drawn positions, and their counts if asked for."""

    start: int
    indices: np.ndarray  # (rows, n) int64 example positions
    counts: np.ndarray | None  # (rows, n) how often each example was drawn

    @property
    def stop(self) -> int:
        return self.start + self.indices.shape[0]


class _Resamples(NamedTuple):
    """What a statistic scores: a chunk's positions and counts and, for rank metrics, its shared count view."""

    indices: np.ndarray
    counts: np.ndarray
    view: _CountView | None


class _PairedStatistic:
    """A metric evaluated for candidate and parent: full-data values and resampled deltas."""

    metric: Metric
    candidate_value: float
    parent_value: float

    def resampled_deltas(self, resamples: _Resamples) -> tuple[np.ndarray, np.ndarray | None]:
        """(candidate - parent per resample, mask of resamples where defined or None for all)."""
        raise NotImplementedError

    def take_mean_columns(self) -> list[np.ndarray]:
        """Per-example values whose resampled sums the compiled kernel is to return.

        Hands them over: the statistic keeps no reference (the kernel copies
        them into one matrix, and a million examples' columns are 8 MB each).
        """
        return []

    def deltas_from_sums(self, sums: Any, first_column: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """resampled_deltas from the compiled kernel's sums (its columns start at first_column).

        The same numpy operations as resampled_deltas on the same numbers, so
        the results are bit-identical.
        """
        raise NotImplementedError


def _resampled_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of `values` under each row of draw counts: sum_j c_j v_j / n.

    The products are summed in example order by numpy's pairwise sum, row
    by row, so chunking cannot change a bit, and the compiled kernel walks
    the same order (statistics/compiled_bootstrap.py).  This is
    Metric.weighted's sum; summing the gathered values in draw order (as
    before) rounds differently in the last bits and costs a random read
    per draw instead of a streaming pass.
    """
    return np.multiply(counts, values, dtype=np.float64).sum(axis=1) / counts.shape[1]


class _MeanDelta(_PairedStatistic):
    # A mean's delta is the mean of per-example differences, so one gather
    # serves both models, and identical predictions give exactly 0.
    def __init__(self, metric: Metric, y, candidate, parent):
        self.metric = metric
        cand_values = metric.per_example(y, candidate)
        parent_values = metric.per_example(y, parent)
        n = candidate.shape[0]
        self.candidate_value = float(np.sum(cand_values) / n)
        self.parent_value = float(np.sum(parent_values) / n)
        self._differences = cand_values - parent_values

    def resampled_deltas(self, resamples):
        return _resampled_means(self._differences, resamples.counts), None

    def take_mean_columns(self):
        columns, self._differences = [self._differences], None
        return columns

    def deltas_from_sums(self, sums, first_column, n):
        return sums.mean_sums[:, first_column] / n, None


class _RootMeanDelta(_PairedStatistic):
    def __init__(self, metric: Metric, y, candidate, parent):
        self.metric = metric
        self._candidate = metric.per_example(y, candidate)
        self._parent = metric.per_example(y, parent)
        n = candidate.shape[0]
        self.candidate_value = math.sqrt(float(np.sum(self._candidate) / n))
        self.parent_value = math.sqrt(float(np.sum(self._parent) / n))

    def resampled_deltas(self, resamples):
        candidate = np.sqrt(_resampled_means(self._candidate, resamples.counts))
        parent = np.sqrt(_resampled_means(self._parent, resamples.counts))
        return candidate - parent, None

    def take_mean_columns(self):
        columns, self._candidate, self._parent = [self._candidate, self._parent], None, None
        return columns

    def deltas_from_sums(self, sums, first_column, n):
        candidate = np.sqrt(sums.mean_sums[:, first_column] / n)
        parent = np.sqrt(sums.mean_sums[:, first_column + 1] / n)
        return candidate - parent, None


class _RankDelta(_PairedStatistic):
    def __init__(self, metric: Metric, y, candidate, parent, split: _LabelSplit,
                 layouts: dict[str, _RankLayout] | None, point_values: tuple[float, float] | None = None):
        # layouts None: the compiled kernel scores the resamples, and gave the
        # full-data values (point_values) from counts of one.
        self.metric = metric
        if layouts is None:
            assert point_values is not None
            self.candidate_value, self.parent_value = point_values
            return
        self._candidate = layouts["candidate"]
        self._parent = layouts["parent"]
        self.candidate_value = _point_value(metric, y, candidate, split, self._candidate)
        self.parent_value = _point_value(metric, y, parent, split, self._parent)

    def resampled_deltas(self, resamples):
        view = resamples.view
        assert view is not None
        defined = (view.positive_total > 0) & (view.negative_total > 0)
        if self.metric.kind is MetricKind.AUROC:
            # The exact integer difference of the pair counts, before dividing.
            twice_delta = _auroc_twice_wins_delta(view, self._candidate, self._parent)
            pairs = view.positive_total * view.negative_total
            deltas = np.divide(twice_delta, 2 * pairs, out=np.zeros(pairs.shape), where=defined)
        else:
            deltas = (_average_precision(view, self._candidate, "candidate")
                      - _average_precision(view, self._parent, "parent"))
        return deltas, defined

    def deltas_from_sums(self, sums, first_column, n):
        # Column 0 of the kernel's rank sums is the candidate, column 1 the parent.
        positive_total = sums.positive_totals
        negative_total = n - positive_total
        defined = (positive_total > 0) & (negative_total > 0)
        if self.metric.kind is MetricKind.AUROC:
            twice_delta = sums.twice_wins[:, 0] - sums.twice_wins[:, 1]
            pairs = positive_total * negative_total
            deltas = np.divide(twice_delta, 2 * pairs, out=np.zeros(pairs.shape), where=defined)
        else:
            has_positives = positive_total > 0
            candidate = np.divide(sums.ap_sums[:, 0], positive_total, out=np.zeros(positive_total.shape),
                                  where=has_positives)
            parent = np.divide(sums.ap_sums[:, 1], positive_total, out=np.zeros(positive_total.shape),
                               where=has_positives)
            deltas = candidate - parent
        return deltas, defined


def _metric_column(task: str, predictions: np.ndarray, column: int) -> np.ndarray:
    """What metric number `column` scores: its own value column when self-scored, else everything."""
    if task == "self_scored" and predictions.ndim == 2:
        return predictions[:, column]
    return predictions


def _paired_statistics(task: str, metrics: Sequence[Metric], y, candidate, parent,
                       split: _LabelSplit | None, kernel_ranks: Any = None) -> list[_PairedStatistic]:
    """One _PairedStatistic per metric.

    kernel_ranks (compiled_bootstrap.full_data_sums: counts of one) when the
    compiled kernel is to score the resamples: the rank metrics then take
    their full-data values from it and build no numpy layouts.
    """
    rank_metrics = [m for m in metrics if m.kind.is_rank]
    layouts: dict[str, _RankLayout] | None = {}
    if rank_metrics:
        assert split is not None
        if split.positives.size == 0 or split.negatives.size == 0:  # the clearer error, before any work
            _point_value(rank_metrics[0], y, candidate, split)
        if kernel_ranks is None:
            layouts = {"candidate": _RankLayout(candidate, split), "parent": _RankLayout(parent, split)}
        else:
            layouts = None
    statistics: list[_PairedStatistic] = []
    for column, metric in enumerate(metrics):
        cand, par = _metric_column(task, candidate, column), _metric_column(task, parent, column)
        if metric.kind is MetricKind.MEAN:
            statistics.append(_MeanDelta(metric, y, cand, par))
        elif metric.kind is MetricKind.ROOT_MEAN:
            statistics.append(_RootMeanDelta(metric, y, cand, par))
        else:
            assert split is not None
            point_values = None
            if layouts is None:
                sums = kernel_ranks
                if metric.kind is MetricKind.AUROC:
                    pairs = 2 * int(sums.positive_totals[0]) * (candidate.shape[0] - int(sums.positive_totals[0]))
                    point_values = tuple(float(np.divide(sums.twice_wins[0, m], pairs)) for m in (0, 1))
                else:
                    point_values = tuple(float(np.divide(sums.ap_sums[0, m], sums.positive_totals[0]))
                                         for m in (0, 1))
            statistics.append(_RankDelta(metric, y, cand, par, split, layouts, point_values))
    return statistics


# Working bytes per resample and example: a mean gathers one float64 per
# draw (rmse two); a rank metric, for two models, gathers, accumulates and
# indexes int32 counts (average precision adds positive-side arrays and
# float64 ratios).
_CHUNK_BYTES = {MetricKind.MEAN: 8, MetricKind.ROOT_MEAN: 16, MetricKind.AUROC: 16,
                MetricKind.AVERAGE_PRECISION: 48}


def chunk_bytes_per_example(metrics: Sequence[Metric]) -> int:
    """Working memory one resample needs per example when `metrics` share the resamples."""
    has_rank_metric = any(m.kind.is_rank for m in metrics)
    # int64 positions for the chunk being scored and the one being drawn,
    # int32 counts, and for rank metrics their positive columns.
    return 20 + (12 if has_rank_metric else 0) + sum(_CHUNK_BYTES[m.kind] for m in metrics)


def default_chunk_size(n_examples: int, bytes_per_example: int) -> int:
    """Resamples per chunk: about CHUNK_TARGET_BYTES of working arrays, within the budget.

    A chunk holds at least one resample, so a split too large for the budget
    gets one resample at a time.
    """
    per_resample = max(1, n_examples * bytes_per_example)
    target = max(1, CHUNK_TARGET_BYTES // per_resample)
    ceiling = max(1, CHUNK_MEMORY_BUDGET_BYTES // per_resample)
    return int(min(target, ceiling))


def _drawn_chunks(n: int, n_resamples: int, rows: int, seed: int, with_counts: bool) -> Iterator[_Chunk]:
    """The resamples chunk after chunk, drawn from one Generator in order.

    With more than one chunk the next chunk is drawn on a helper thread
    while the caller counts and scores the current one: Generator.integers
    releases the GIL, so on a second core the draw costs little wall time.
    The counting stays on the caller's thread because ufunc.at holds the GIL:
    on the helper it would stall the caller's scoring instead of overlapping
    it (measured: benchmarks/bench_bootstrap.py, docs/performance.md).  One
    thread draws every chunk, in order, so the positions are the same as
    drawing inline.
    """
    rng = np.random.default_rng(seed)
    starts = range(0, n_resamples, rows)
    prefetch = PREFETCH_DRAWS and len(starts) > 1
    # One count buffer: chunks are counted on the caller's thread, one at a time.
    count_buffer = np.empty((rows, n), dtype=_count_dtype(n)) if with_counts else None

    def draw(position: int) -> np.ndarray:
        start = starts[position]
        return rng.integers(0, n, size=(min(rows, n_resamples - start), n))

    def chunk_of(position: int, indices: np.ndarray) -> _Chunk:
        counts = None
        if count_buffer is not None:
            counts = count_buffer[: indices.shape[0]]
            _count_into(counts, indices)
        return _Chunk(starts[position], indices, counts)

    if not prefetch:
        for position in range(len(starts)):
            yield chunk_of(position, draw(position))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootstrap-draw") as pool:
        pending = pool.submit(draw, 0)
        for position in range(len(starts)):
            indices = pending.result()
            if position + 1 < len(starts):
                pending = pool.submit(draw, position + 1)
            yield chunk_of(position, indices)


def _validated_run_settings(n_resamples: Any, seed: Any, confidence: Any, chunk_size: Any) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (see derive_seed), got {seed!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")


def _numpy_deltas(statistics: Sequence[_PairedStatistic], split: _LabelSplit | None, n: int, *, n_resamples: int,
                  seed: int, rows: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every statistic's resampled deltas and defined-masks, chunk by chunk with numpy."""
    deltas = [np.empty(n_resamples) for _ in statistics]
    defined = [np.ones(n_resamples, dtype=bool) for _ in statistics]
    workspace = _Workspace()
    with contextlib.closing(_drawn_chunks(n, n_resamples, rows, seed, with_counts=True)) as chunks:
        for chunk in chunks:
            view = None if split is None else _CountView(chunk.counts, split, workspace, row_total=n)
            resamples = _Resamples(chunk.indices, chunk.counts, view)
            for statistic, out, ok in zip(statistics, deltas, defined):
                values, mask = statistic.resampled_deltas(resamples)
                out[chunk.start:chunk.stop] = values
                if mask is not None:
                    ok[chunk.start:chunk.stop] = mask
    return deltas, defined


def _compiled_engine(n_examples: int, n_resamples: int) -> Any:
    """The compiled kernel's module if it is to resample these examples, else None (numpy)."""
    n_draws = n_examples * n_resamples
    if BOOTSTRAP_ENGINE not in ("auto", "numpy", "compiled"):
        raise ValueError(f"BOOTSTRAP_ENGINE must be 'auto', 'numpy' or 'compiled', got {BOOTSTRAP_ENGINE!r}")
    if BOOTSTRAP_ENGINE == "numpy" or (BOOTSTRAP_ENGINE == "auto" and n_draws < COMPILED_MIN_DRAWS):
        return None
    from .statistics import compiled_bootstrap

    if not compiled_bootstrap.AVAILABLE:
        if BOOTSTRAP_ENGINE == "compiled":
            raise RuntimeError("BOOTSTRAP_ENGINE is 'compiled' but numba does not import (pip install numba)")
        return None
    if n_examples >= compiled_bootstrap.MAX_EXAMPLES:  # beyond its int32 positions
        if BOOTSTRAP_ENGINE == "compiled":
            raise ValueError(f"the compiled bootstrap takes fewer than {compiled_bootstrap.MAX_EXAMPLES} examples")
        return None
    return compiled_bootstrap


def _compiled_deltas(kernel: Any, statistics: Sequence[_PairedStatistic], rank_orders: Any,
                     split: _LabelSplit | None, n: int, *, n_resamples: int, seed: int,
                     rows: int | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """_numpy_deltas' results, bit for bit, from the compiled kernel on every core."""
    columns: list[np.ndarray | None] = []
    first_columns = []
    for statistic in statistics:
        first_columns.append(len(columns))
        columns.extend(statistic.take_mean_columns())
    rank_kinds = {s.metric.kind for s in statistics if s.metric.kind.is_rank}
    sums = kernel.resampled_sums(
        n_examples=n, n_resamples=n_resamples, seed=seed, mean_columns=columns, ranks=rank_orders,
        positives=None if split is None else split.positives,
        want_ap=MetricKind.AVERAGE_PRECISION in rank_kinds, threads=BOOTSTRAP_THREADS, rows=rows)
    deltas, defined = [], []
    for statistic, first in zip(statistics, first_columns):
        values, mask = statistic.deltas_from_sums(sums, first, n)
        deltas.append(values)
        defined.append(np.ones(n_resamples, dtype=bool) if mask is None else mask)
    return deltas, defined


def _run(task: str, metrics: Sequence[Metric], y_true, candidate, parent, *, n_resamples: int, seed: int,
         confidence: float, chunk_size: int | None) -> dict[str, BootstrapResult]:
    _validated_run_settings(n_resamples, seed, confidence, chunk_size)
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names repeat: {names}")
    n_resamples, seed, confidence = int(n_resamples), int(seed), float(confidence)
    y, cand = _validated_inputs(task, metrics, y_true, candidate, "candidate predictions")
    _, par = _validated_inputs(task, metrics, y_true, parent, "parent predictions")
    if cand.shape != par.shape:
        raise ValueError(f"candidate predictions have shape {cand.shape} but parent predictions {par.shape}")
    n = cand.shape[0]

    has_rank_metric = any(m.kind.is_rank for m in metrics)
    split = _LabelSplit(y) if has_rank_metric else None
    kernel = _compiled_engine(n, n_resamples)
    if kernel is not None:
        rank_orders = kernel_ranks = None
        if has_rank_metric and split.positives.size and split.negatives.size:
            rank_orders = kernel.rank_orders((cand, par), y == 1)
            kernel_ranks = kernel.full_data_sums(rank_orders, split.positives,
                                                 want_ap=any(m.kind is MetricKind.AVERAGE_PRECISION for m in metrics))
        statistics = _paired_statistics(task, metrics, y, cand, par, split, kernel_ranks)
        deltas, defined = _compiled_deltas(kernel, statistics, rank_orders, split, n, n_resamples=n_resamples,
                                           seed=seed, rows=chunk_size)
    else:
        statistics = _paired_statistics(task, metrics, y, cand, par, split)
        rows = int(chunk_size) if chunk_size is not None else default_chunk_size(n, chunk_bytes_per_example(metrics))
        deltas, defined = _numpy_deltas(statistics, split, n, n_resamples=n_resamples, seed=seed, rows=rows)

    results: dict[str, BootstrapResult] = {}
    for statistic, values, ok in zip(statistics, deltas, defined):
        metric = statistic.metric
        valid = values[ok]
        if valid.size < MIN_VALID_FRACTION * n_resamples:
            raise MetricUndefined(
                f"{metric.name} was defined in only {valid.size} of {n_resamples} resamples "
                f"(fewer than {MIN_VALID_FRACTION:.0%}): too few examples of one class for a usable interval"
            )
        low, high = percentile_interval(valid, confidence)
        delta = statistic.candidate_value - statistic.parent_value
        results[metric.name] = BootstrapResult(
            metric=metric.name,
            higher_is_better=metric.higher_is_better,
            candidate=statistic.candidate_value,
            parent=statistic.parent_value,
            delta=delta,
            ci_low=low,
            ci_high=high,
            relative_delta=None if statistic.parent_value == 0 else delta / abs(statistic.parent_value),
            n_resamples=n_resamples,
            n_valid=int(valid.size),
            seed=seed,
            confidence=confidence,
            interval=interval_method(int(valid.size), confidence),
        )
    return results


def paired_bootstrap(metric: Metric, y_true: Any, candidate: Any, parent: Any, *,
                     n_resamples: int = DEFAULT_N_RESAMPLES, seed: int, confidence: float = DEFAULT_CONFIDENCE,
                     chunk_size: int | None = None) -> BootstrapResult:
    """Paired-bootstrap percentile interval of metric(candidate) - metric(parent).

    Both models are scored on the same resampled examples.  `chunk_size`
    (resamples per chunk) only bounds memory; the result does not depend on it.
    """
    _check_metric(metric)
    return _run(metric.task, (metric,), y_true, candidate, parent, n_resamples=n_resamples, seed=seed,
                confidence=confidence, chunk_size=chunk_size)[metric.name]


def paired_bootstrap_many(task: str, metric_names: Sequence[str], y_true: Any, candidate: Any, parent: Any, *,
                          n_resamples: int = DEFAULT_N_RESAMPLES, seed: int,
                          confidence: float = DEFAULT_CONFIDENCE,
                          self_scored_higher_is_better: bool | Mapping[str, bool] | None = None,
                          chunk_size: int | None = None) -> dict[str, BootstrapResult]:
    """paired_bootstrap for several metrics of one task, all on the same resamples.

    Each result equals what paired_bootstrap would give for that metric alone
    with the same seed.  For task "self_scored", candidate and parent hold one
    column of per-example values per metric, in `metric_names` order (or are
    1-D for a single metric), and `self_scored_higher_is_better` gives the
    direction (one bool for all, or a mapping per metric).
    """
    if isinstance(metric_names, str) or not isinstance(metric_names, Sequence) or not metric_names:
        raise ValueError(f"metric_names must be a non-empty sequence of names, got {metric_names!r}")
    if len(set(metric_names)) != len(metric_names):
        raise ValueError(f"metric_names repeats a metric: {list(metric_names)}")
    if task != "self_scored" and self_scored_higher_is_better is not None:
        raise ValueError(f"self_scored_higher_is_better applies to self-scored benchmarks only, not {task!r}")
    metrics = []
    for name in metric_names:
        direction = self_scored_higher_is_better
        if isinstance(direction, Mapping):
            if name not in direction:
                raise ValueError(f"self_scored_higher_is_better has no direction for {name!r}")
            direction = direction[name]
        metrics.append(metric_for(task, name, higher_is_better=direction))
    return _run(task, metrics, y_true, candidate, parent, n_resamples=n_resamples, seed=seed,
                confidence=confidence, chunk_size=chunk_size)


def _run_inputs_checked(task: str, metrics: Sequence[Metric], y_true, candidate, parent, *, n_resamples: int,
                        seed: int, confidence: float) -> None:
    """The checks _run applies before resampling, for callers that resample elsewhere."""
    _validated_run_settings(n_resamples, seed, confidence, None)
    _validated_inputs(task, metrics, y_true, candidate, "candidate predictions")
    _validated_inputs(task, metrics, y_true, parent, "parent predictions")


# --------------------------------------------------------------------------
# Benchmark adapters (gate.py): duck-typed, so this module imports no I/O code
# --------------------------------------------------------------------------


def _benchmark_metrics(benchmark: Any) -> tuple[str, list[Metric]]:
    """(task, metrics) of a benchmark; self-scored metrics take the manifest's directions."""
    if benchmark.self_scored:
        return "self_scored", [metric_for("self_scored", name, higher_is_better=bool(benchmark.higher_is_better[name]))
                               for name in benchmark.metrics]
    return benchmark.task, [metric_for(benchmark.task, name) for name in benchmark.metrics]


def compare_on_benchmark(benchmark: Any, candidate_predictions: Any, parent_predictions: Any, *,
                         n_resamples: int = DEFAULT_N_RESAMPLES, seed: int,
                         confidence: float = DEFAULT_CONFIDENCE,
                         only: Sequence[str] | None = None) -> dict[str, BootstrapResult]:
    """paired_bootstrap_many over every metric a benchmark declares (or the subset `only`).

    `benchmark` needs: task, self_scored, metrics, higher_is_better (read for
    self-scored metrics) and labels (None for self-scored). Restricting to a
    subset keeps each metric's columns and gives bit-identical results.
    """
    task, metrics = _benchmark_metrics(benchmark)
    if only is not None:
        keep = [i for i, m in enumerate(metrics) if m.name in set(only)]
        metrics = [metrics[i] for i in keep]
        if task == "self_scored" and np.ndim(candidate_predictions) == 2:
            candidate_predictions = np.asarray(candidate_predictions)[:, keep]
            parent_predictions = np.asarray(parent_predictions)[:, keep]
    design = getattr(benchmark, "resampling_design", None)
    from model_eval_gate.statistics import resampling

    if (design is None or design.is_independent) and resampling.needs_few_positives_design(
            task, metrics, benchmark.labels):
        # Few examples of one class: rank metrics need label-stratified resamples and a t interval.
        from model_eval_gate.statistics.design import ResamplingDesign

        design = ResamplingDesign.from_columns(len(benchmark.labels), labels=benchmark.labels,
                                               stratify_by_label=True)
    if design is not None and not design.is_independent:
        # Groups, strata or label classes: the resamples are drawn by statistics/resampling.py.
        paired_design_bootstrap = resampling.paired_design_bootstrap
        _run_inputs_checked(task, metrics, benchmark.labels, candidate_predictions, parent_predictions,
                            n_resamples=n_resamples, seed=seed, confidence=confidence)
        return paired_design_bootstrap(task, metrics, benchmark.labels, candidate_predictions, parent_predictions,
                                       design, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return _run(task, metrics, benchmark.labels, candidate_predictions, parent_predictions,
                n_resamples=n_resamples, seed=seed, confidence=confidence, chunk_size=None)


def scores_on_benchmark(benchmark: Any, predictions: Any) -> dict[str, float]:
    """Point estimate of every metric the benchmark declares (a root version has nothing to compare)."""
    task, metrics = _benchmark_metrics(benchmark)
    y, pred = _validated_inputs(task, metrics, benchmark.labels, predictions, "predictions")
    split = _LabelSplit(y) if any(m.kind.is_rank for m in metrics) else None
    return {m.name: _point_value(m, y, _metric_column(task, pred, i), split) for i, m in enumerate(metrics)}
