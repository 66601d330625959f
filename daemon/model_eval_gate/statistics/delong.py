"""DeLong's test for two correlated AUROCs on the same examples (pure: no I/O).

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of AUROCs
computed on the same positives and negatives from their structural
components (placement values); Sun & Xu (2014, IEEE Signal Processing
Letters 21(11)) compute those components from three mid-rankings per model,
O(n log n) instead of O(P x N):

    AUROC   = (sum of the positives' mid-ranks among all - P(P+1)/2) / (P N)
    V10_i   = (mid-rank of positive i among all - its mid-rank among positives) / N
    V01_j   = 1 - (mid-rank of negative j among all - its mid-rank among negatives) / P
    Var     = Cov(V10) / P + Cov(V01) / N

The paired test of candidate - parent is z = delta / sqrt(Var_c + Var_p -
2 Cov_cp).  The gate records it beside the bootstrap for AUROC and flags a
verdict where the two disagree on the decision (decision.py).  Ties count
1/2, as in stats.py, so the AUROCs equal the gate's exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_eval_gate.statistics.intervals import normal_cdf, normal_quantile


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with tied values sharing the mean of their ranks (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    _, inverse, counts = np.unique(ordered, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    average = last - (counts - 1) / 2.0
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = average[inverse]
    return ranks


def _components(y: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    positives, negatives = scores[y == 1], scores[y == 0]
    m, n = positives.size, negatives.size
    combined = midranks(np.concatenate([positives, negatives]))
    within_positives, within_negatives = midranks(positives), midranks(negatives)
    auc = (combined[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v10 = (combined[:m] - within_positives) / n
    v01 = 1.0 - (combined[m:] - within_negatives) / m
    return float(auc), v10, v01


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's paired comparison of two AUROCs on one split."""

    candidate: float
    parent: float
    delta: float
    standard_error: float
    z: float | None
    p_value: float  # two-sided
    ci_low: float
    ci_high: float
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "delong_sun_xu_2014",
            "candidate": self.candidate,
            "parent": self.parent,
            "delta": self.delta,
            "standard_error": self.standard_error,
            "z": self.z,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
        }


def auroc_variance(y: Any, scores: Any) -> tuple[float, float]:
    """(AUROC, DeLong variance) of one model."""
    y, scores = np.asarray(y, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    _require_both_classes(y)
    auc, v10, v01 = _components(y, scores)
    m, n = v10.size, v01.size
    variance = (np.var(v10, ddof=1) if m > 1 else 0.0) / m + (np.var(v01, ddof=1) if n > 1 else 0.0) / n
    return auc, float(variance)


def paired_delong(y: Any, candidate: Any, parent: Any, *, confidence: float = 0.95) -> DeLongResult:
    """DeLong's test of AUROC(candidate) - AUROC(parent) on the same examples."""
    y = np.asarray(y, dtype=np.float64)
    candidate, parent = np.asarray(candidate, dtype=np.float64), np.asarray(parent, dtype=np.float64)
    _require_both_classes(y)
    auc_c, v10_c, v01_c = _components(y, candidate)
    auc_p, v10_p, v01_p = _components(y, parent)
    m, n = v10_c.size, v01_c.size
    d10, d01 = v10_c - v10_p, v01_c - v01_p
    variance = (np.var(d10, ddof=1) if m > 1 else 0.0) / m + (np.var(d01, ddof=1) if n > 1 else 0.0) / n
    delta = auc_c - auc_p
    standard_error = math.sqrt(max(float(variance), 0.0))
    half = normal_quantile(0.5 + confidence / 2.0) * standard_error
    if standard_error > 0:
        z = delta / standard_error
        p_value = 2.0 * (1.0 - normal_cdf(abs(z)))
    else:
        z, p_value = None, 1.0 if delta == 0 else 0.0
    return DeLongResult(auc_c, auc_p, delta, standard_error, z, p_value, delta - half + 0.0, delta + half + 0.0,
                        confidence)


def _require_both_classes(y: np.ndarray) -> None:
    if not ((y == 1).any() and (y == 0).any()):
        raise ValueError("DeLong's test needs both positives and negatives")
