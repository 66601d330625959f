"""The paired bootstrap under a resampling design (groups, strata, label classes).

Same contract as stats.paired_bootstrap_many: candidate and parent are scored
on the same resamples and each metric gets a BootstrapResult of
candidate - parent.  What differs is what a resample draws (design.py) and
which interval is read off the resampled deltas (intervals.py):

* with fewer than FEW_UNITS groups, the few-units t interval on G - H
  degrees of freedom (the verdict says so);
* otherwise the percentile interval, as stats.py.

Kernels work on unit-level sufficient statistics where they exist, so a
resample costs O(units), not O(examples):

* a mean metric's delta is (C @ S) / (C @ sizes), S the per-unit sums of the
  per-example differences;
* AUROC is c' K c / ((c . P)(c . N)), K[g, h] counting (twice) the
  positive-over-negative pairs between unit g's positives and unit h's
  negatives, computed once per model;
* anything else (average precision, many units) expands the unit counts to
  example weights and calls Metric.weighted.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model_eval_gate.statistics import intervals
from model_eval_gate.statistics.design import ResamplingDesign

#: The AUROC unit kernel holds (examples of one class) x units counts; above
#: this many cells it falls back to example weights.
UNIT_KERNEL_MAX_CELLS = 20_000_000


def _unit_sums(design: ResamplingDesign, values: np.ndarray) -> np.ndarray:
    return np.bincount(design.unit_of_example, weights=values, minlength=design.n_units)


def _twice_wins_by_unit(design: ResamplingDesign, y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """K[g, h] = sum over positives i of g and negatives j of h of 2[s_i > s_j] + [s_i == s_j]."""
    units = design.unit_of_example
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    order = np.argsort(scores[negatives], kind="stable")
    sorted_scores = scores[negatives][order]
    cumulative = np.zeros((negatives.size + 1, design.n_units), dtype=np.int64)
    cumulative[np.arange(1, negatives.size + 1), units[negatives][order]] = 1
    np.cumsum(cumulative, axis=0, out=cumulative)
    below = np.searchsorted(sorted_scores, scores[positives], side="left")
    below_or_tied = np.searchsorted(sorted_scores, scores[positives], side="right")
    per_positive = (cumulative[below] + cumulative[below_or_tied]).astype(np.float64)
    membership = np.zeros((design.n_units, positives.size))
    membership[units[positives], np.arange(positives.size)] = 1.0
    return membership @ per_positive


class _DesignDelta:
    """One metric: full-data values and the resampled deltas for a chunk of unit counts."""

    def __init__(self, metric, design: ResamplingDesign, y, candidate, parent):
        from model_eval_gate import stats

        self.metric = metric
        self.design = design
        self.candidate_value = stats.point_estimate(metric, y, candidate)
        self.parent_value = stats.point_estimate(metric, y, parent)
        self._y, self._candidate, self._parent = y, candidate, parent
        kind = metric.kind
        self._kernel = None
        if kind in (stats.MetricKind.MEAN, stats.MetricKind.ROOT_MEAN):
            self._sizes = design.unit_sizes.astype(np.float64)
            cand = metric.per_example(y, candidate)
            par = metric.per_example(y, parent)
            if kind is stats.MetricKind.MEAN:
                self._sums = (_unit_sums(design, cand - par),)
            else:
                self._sums = (_unit_sums(design, cand), _unit_sums(design, par))
        elif kind is stats.MetricKind.AUROC and y.size * design.n_units <= UNIT_KERNEL_MAX_CELLS:
            self._kernel = (_twice_wins_by_unit(design, y, candidate)
                            - _twice_wins_by_unit(design, y, parent))
            self._positives = _unit_sums(design, (y == 1).astype(np.float64))
            self._negatives = _unit_sums(design, (y == 0).astype(np.float64))

    def deltas(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(deltas, defined) for (rows, n_units) unit counts."""
        from model_eval_gate import stats

        kind = self.metric.kind
        weights = counts.astype(np.float64)
        if kind is stats.MetricKind.MEAN:
            totals = weights @ self._sizes
            return (weights @ self._sums[0]) / totals, totals > 0
        if kind is stats.MetricKind.ROOT_MEAN:
            totals = weights @ self._sizes
            return (np.sqrt((weights @ self._sums[0]) / totals)
                    - np.sqrt((weights @ self._sums[1]) / totals)), totals > 0
        if self._kernel is not None:
            pairs = (weights @ self._positives) * (weights @ self._negatives)
            twice = np.einsum("rg,rg->r", weights @ self._kernel, weights)
            defined = pairs > 0
            return np.divide(twice, 2.0 * pairs, out=np.zeros(pairs.shape), where=defined), defined
        example_weights = counts[:, self.design.unit_of_example]
        cand = self.metric.weighted(self._y, self._candidate, example_weights)
        par = self.metric.weighted(self._y, self._parent, example_weights)
        defined = cand.defined & par.defined
        return np.where(defined, cand.values - par.values, 0.0), defined


def _rarer_class_count(y: np.ndarray | None) -> int | None:
    if y is None:
        return None
    positives = int(np.count_nonzero(y == 1))
    return min(positives, y.size - positives)


def needs_few_positives_design(task: str, metrics: Sequence, y_true) -> bool:
    """Whether an independent-example benchmark must be resampled within label classes.

    True for binary rank metrics with fewer than FEW_CLASS_EXAMPLES examples
    of one class: stats.compare_on_benchmark then draws label-stratified
    resamples and the rank metrics get the few-positives t interval.
    """
    if task != "binary" or y_true is None or not any(m.kind.is_rank for m in metrics):
        return False
    rarer = _rarer_class_count(np.asarray(y_true, dtype=np.float64))
    return rarer is not None and 2 <= rarer < intervals.FEW_CLASS_EXAMPLES


def paired_design_bootstrap(task: str, metrics: Sequence, y_true, candidate, parent, design: ResamplingDesign, *,
                            n_resamples: int, seed: int, confidence: float) -> dict:
    """stats.paired_bootstrap_many under `design`; one BootstrapResult per metric."""
    from model_eval_gate import stats

    candidate = np.asarray(candidate, dtype=np.float64)
    parent = np.asarray(parent, dtype=np.float64)
    y = None if y_true is None or task == "self_scored" else np.asarray(y_true, dtype=np.float64)
    if candidate.shape != parent.shape:
        raise ValueError(f"candidate predictions have shape {candidate.shape} but parent predictions {parent.shape}")
    if candidate.shape[0] != design.n_examples:
        raise ValueError(f"the resampling design covers {design.n_examples} examples, "
                         f"the predictions {candidate.shape[0]}")
    statistics = []
    for column, metric in enumerate(metrics):
        if task == "self_scored" and candidate.ndim == 2:
            cand, par = candidate[:, column], parent[:, column]
        else:
            cand, par = candidate, parent
        statistics.append(_DesignDelta(metric, design, y, cand, par))

    deltas = [np.empty(n_resamples) for _ in statistics]
    defined = [np.ones(n_resamples, dtype=bool) for _ in statistics]
    for start, counts in design.chunks(seed, n_resamples):
        stop = start + counts.shape[0]
        for statistic, out, ok in zip(statistics, deltas, defined):
            values, mask = statistic.deltas(counts)
            out[start:stop] = values
            ok[start:stop] = mask

    results = {}
    for statistic, values, ok in zip(statistics, deltas, defined):
        metric = statistic.metric
        valid = values[ok]
        if valid.size < stats.MIN_VALID_FRACTION * n_resamples:
            raise stats.MetricUndefined(
                f"{metric.name} was defined in only {valid.size} of {n_resamples} resamples "
                f"(fewer than {stats.MIN_VALID_FRACTION:.0%}): too few examples of one class for a usable interval")
        delta = statistic.candidate_value - statistic.parent_value
        degrees_of_freedom = None
        rarer = _rarer_class_count(y) if metric.kind.is_rank and not design.grouped else None
        if design.grouped and design.n_units < intervals.FEW_UNITS:
            low, high, degrees_of_freedom = intervals.few_units_t(delta, valid, design.n_units, design.n_strata,
                                                                  confidence)
            method = "few_groups_t"
        elif rarer is not None and 2 <= rarer < intervals.FEW_CLASS_EXAMPLES:
            low, high, degrees_of_freedom = intervals.few_units_t(delta, valid, rarer, 1, confidence)
            method = "few_positives_t"
        else:
            low, high = stats.percentile_interval(valid, confidence)
            method = stats.interval_method(int(valid.size), confidence)
        results[metric.name] = stats.BootstrapResult(
            metric=metric.name, higher_is_better=metric.higher_is_better,
            candidate=statistic.candidate_value, parent=statistic.parent_value, delta=delta,
            ci_low=low, ci_high=high,
            relative_delta=None if statistic.parent_value == 0 else delta / abs(statistic.parent_value),
            n_resamples=int(n_resamples), n_valid=int(valid.size), seed=int(seed), confidence=float(confidence),
            interval=method, degrees_of_freedom=degrees_of_freedom, resampled=design.describe(),
        )
    return results
