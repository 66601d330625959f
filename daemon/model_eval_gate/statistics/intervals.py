"""Confidence intervals from bootstrap deltas (pure: no I/O, no scipy at run time).

* `percentile`: the paired bootstrap's interval (percentile_interval, at the
  end of this module), the default with many units.
* `few_units_t`: with fewer than FEW_UNITS resampling units (groups) the
  percentile interval of a cluster bootstrap is too narrow: the bootstrap
  variance of a mean over G groups is (G-1)/G of the unbiased one and the
  normal tails are too thin.  The interval is point +- t(G-H) x SE x
  sqrt(G/(G-H)), with SE the bootstrap standard deviation, G units and H
  strata: the CR1-style small-sample correction of cluster-robust standard
  errors (Cameron & Miller 2015, section VI), on G-H degrees of freedom.
* `few_units_t` also serves rank metrics with fewer than FEW_CLASS_EXAMPLES
  examples of one class: the rarer class's examples play the units (an
  AUROC's variance is driven by its P positives' placements, DeLong's V10),
  on count - 1 degrees of freedom.
* `bca`: Efron's bias-corrected and accelerated interval.  Measured and
  not used by the policy: with few positives it was further from nominal
  than the percentile interval (docs/model_promotion_policy.md 15.3).

Student's t quantile is computed here (regularised incomplete beta by
Lentz's continued fraction, inverted by bisection) because scipy is a test
dependency only; tests/test_statistics_intervals.py holds it to scipy.
"""
from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np

#: Below this many resampling units (groups) intervals are t based (docs/model_promotion_policy.md).
FEW_UNITS = 30

#: Below this many examples of the rarer class a rank metric's interval is t
#: based on (count - 1) degrees of freedom, from label-stratified resamples:
#: the percentile interval promotes equal models 4-10% of the time at 3-10
#: positives (benchmarks/sim_statistics.py few-positives).
FEW_CLASS_EXAMPLES = 50

_NORMAL = NormalDist()


def normal_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def normal_cdf(x: float) -> float:
    return _NORMAL.cdf(x)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with df degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _regularized_incomplete_beta(df / 2.0, 0.5, df / (df + x * x))
    return 1.0 - tail if x >= 0 else tail


@functools.lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The p quantile of Student's t (0 < p < 1), to about 1e-12."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-13 * max(1.0, high):
            break
    return 0.5 * (low + high)


def few_units_t(point: float, deltas: np.ndarray, n_units: int, n_strata: int,
                confidence: float) -> tuple[float, float, int]:
    """(low, high, degrees of freedom) of the few-units t interval around `point`."""
    df = n_units - n_strata
    if df < 1:
        raise ValueError(f"{n_units} units in {n_strata} strata leave no degrees of freedom")
    standard_error = float(np.std(deltas, ddof=1)) * math.sqrt(n_units / df)
    half_width = t_quantile(0.5 + confidence / 2.0, df) * standard_error
    return point - half_width + 0.0, point + half_width + 0.0, df


def bca(point: float, deltas: np.ndarray, jackknife: np.ndarray, confidence: float) -> tuple[float, float]:
    """Efron's BCa interval from bootstrap deltas and leave-one-unit-out jackknife values.

    Falls back to the percentile ends when the bias correction is undefined
    (every resample on one side of the point estimate).
    """
    from model_eval_gate.stats import percentile_interval

    ordered = np.sort(deltas)
    below = np.count_nonzero(ordered < point) + 0.5 * np.count_nonzero(ordered == point)
    fraction = below / ordered.size
    if not 0.0 < fraction < 1.0:
        return percentile_interval(ordered, confidence)
    z0 = normal_quantile(fraction)
    centred = jackknife.mean() - jackknife
    denominator = 6.0 * float(np.sum(centred**2)) ** 1.5
    acceleration = float(np.sum(centred**3)) / denominator if denominator > 0 else 0.0
    tail = (1.0 - confidence) / 2.0

    def adjusted(q: float) -> float:
        z = normal_quantile(q)
        shifted = z0 + (z0 + z) / (1.0 - acceleration * (z0 + z))
        return min(max(normal_cdf(shifted), 0.0), 1.0)

    low = float(np.quantile(ordered, adjusted(tail)))
    high = float(np.quantile(ordered, adjusted(1.0 - tail)))
    return min(low, high) + 0.0, max(low, high) + 0.0


# --- the percentile interval of the paired bootstrap (stats.py) ---------------

#: A percentile interval needs resamples beyond its ends: when a tail,
#: (1 - confidence) / 2 * resamples, holds fewer than this many, the order
#: statistics cannot resolve it (the 0.0002% quantile of 1000 resamples is
#: just their minimum, far too optimistic).  The ends are then the normal
#: tail of the resampled deltas: their mean -/+ z * their standard deviation.
#: Holdout multiplicity (policy/multiplicity.py) asks for such levels.
MIN_TAIL_RESAMPLES = 2.0


def _percentile(sorted_values: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile (numpy's default method) of ascending values."""
    position = (sorted_values.size - 1) * q
    lower = math.floor(position)
    fraction = position - lower
    if lower + 1 >= sorted_values.size:
        return float(sorted_values[-1])
    a, b = float(sorted_values[lower]), float(sorted_values[lower + 1])
    return a + fraction * (b - a)


def percentile_interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided percentile interval.

    The upper end is computed as minus the lower end of the negated values, so
    swapping candidate and parent mirrors the interval exactly.
    """
    tail = (1.0 - confidence) / 2.0
    if tail * deltas.size < MIN_TAIL_RESAMPLES:
        return normal_tail_interval(deltas, confidence)
    ascending = np.sort(deltas)
    low = _percentile(ascending, tail)
    high = -_percentile(-ascending[::-1], tail)
    if low > high:  # only rounding can do this, with a handful of resamples
        low = high = (low + high) / 2.0
    return low + 0.0, high + 0.0  # + 0.0 turns -0.0 into 0.0 for the reports


def normal_tail_interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    """mean -/+ z_(1 - tail) * sd of the resampled deltas: ends beyond the resamples' resolution."""
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    mean = float(np.mean(deltas))
    spread = float(np.std(deltas, ddof=1)) if deltas.size > 1 else 0.0
    return mean - z * spread + 0.0, mean + z * spread + 0.0


def interval_method(n_valid: int, confidence: float) -> str:
    """'percentile' or 'normal_tail': which ends percentile_interval computes for this many resamples."""
    return "percentile" if (1.0 - confidence) / 2.0 * n_valid >= MIN_TAIL_RESAMPLES else "normal_tail"
