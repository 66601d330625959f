"""Minimum detectable effects: what a benchmark can see (pure: no I/O).

The gate promotes when the oriented two-sided interval's lower end is above
zero.  For an interval delta +- q_c x SE (q_c the 1 - alpha/2 quantile, of
the normal or of t on the interval's degrees of freedom), a true effect d is
detected with probability about P(Z > q_c - d / SE), so 80% power needs

    MDE = (q_c + q_0.80) x SE = half_width x (1 + q_0.80 / q_c).

A verdict reads SE from its own interval, so "not significant" can be told
from "this split cannot see an effect that small".  At registration there is
no interval yet; for AUROC and average precision the SE of a paired
difference is estimated from the class counts with Hanley & McNeil's (1982)
variance at a reference AUROC, for accuracy from the binomial at a reference
accuracy, both with a between-model correlation of REFERENCE_CORRELATION.
tests/test_statistics_power.py holds the verdict's MDE to simulated power.
"""
from __future__ import annotations

import math

from model_eval_gate.statistics.intervals import normal_quantile, t_quantile

#: The power the minimum detectable effect is quoted at.
MDE_POWER = 0.80

#: At registration: the correlation assumed between two versions' per-example
#: errors (successive versions of one lineage share most of their mistakes).
REFERENCE_CORRELATION = 0.5

#: At registration: the reference value of the primary metric when the
#: benchmark declares no floor.
REFERENCE_SCORE = 0.8


def _quantile(p: float, df: int | None) -> float:
    return normal_quantile(p) if df is None else t_quantile(p, df)


def mde_from_interval(ci_low: float, ci_high: float, confidence: float, *, df: int | None = None,
                      power: float = MDE_POWER) -> float:
    """The effect detected with `power` by an interval as wide as [ci_low, ci_high]."""
    q_confidence = _quantile(0.5 + confidence / 2.0, df)
    q_power = _quantile(power, df)
    half_width = (ci_high - ci_low) / 2.0
    return half_width * (1.0 + q_power / q_confidence)


def hanley_mcneil_variance(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil's (1982) variance of an AUROC with the given class counts."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    return (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
            + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)


def registration_mde(metric: str, positives: int | None, negatives: int | None, n: int, *,
                     reference: float | None = None, confidence: float = 0.95,
                     power: float = MDE_POWER) -> float | None:
    """MDE of a paired comparison on a split, before any model was evaluated; None when unknowable.

    Known for AUROC / average precision (Hanley-McNeil) and accuracy
    (binomial); other metrics' spread depends on the models, so their MDE
    first appears in a verdict.
    """
    score = REFERENCE_SCORE if reference is None or not 0.5 < reference < 1.0 else reference
    if metric in ("auroc", "average_precision"):
        if not positives or not negatives:
            return None
        variance = 2.0 * (1.0 - REFERENCE_CORRELATION) * hanley_mcneil_variance(score, positives, negatives)
    elif metric == "accuracy":
        variance = 2.0 * (1.0 - REFERENCE_CORRELATION) * score * (1.0 - score) / n
    else:
        return None
    return (normal_quantile(0.5 + confidence / 2.0) + normal_quantile(power)) * math.sqrt(variance)


def paired_standard_error_estimate(metric, y, predictions) -> float | None:
    """SE of a future paired delta of `metric`, from one model's predictions (the first evaluation).

    One model's per-example spread gives SE_1 = sd / sqrt(n) (delta method for
    rmse, DeLong for AUROC); two versions whose errors correlate
    REFERENCE_CORRELATION give sqrt(2 (1 - r)) SE_1.  None for average
    precision (no simple variance).
    """
    import numpy as np

    from model_eval_gate import stats
    from model_eval_gate.statistics.delong import auroc_variance

    factor = math.sqrt(2.0 * (1.0 - REFERENCE_CORRELATION))
    predictions = np.asarray(predictions, dtype=np.float64)
    if metric.kind is stats.MetricKind.AUROC:
        return factor * math.sqrt(auroc_variance(y, predictions)[1])
    if metric.kind is stats.MetricKind.AVERAGE_PRECISION:
        return None
    values = metric.per_example(None if y is None else np.asarray(y, dtype=np.float64), predictions)
    n = values.size
    se = float(np.std(values, ddof=1)) / math.sqrt(n)
    if metric.kind is stats.MetricKind.ROOT_MEAN:
        root = math.sqrt(float(np.mean(values)))
        se = se / (2.0 * root) if root > 0 else 0.0
    return factor * se
