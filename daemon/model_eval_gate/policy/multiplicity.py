"""Multiplicity: a lineage's attempts on one benchmark split share one false-promotion budget.

Pure: no I/O, no clock, no randomness. docs/model_promotion_policy.md
("Holdout accounting") states the rule and its guarantee; a test holds the
document to the constants below.

The rule is alpha spending over attempts (a Bonferroni sequence that never
runs out). Attempt k of a lineage on a split (k = 1, 2, ...; every query
counts: gate, re-gate, dry run, quick run, sibling) tests "the candidate is
better than the head it is compared with" at the one-sided level

    alpha_k = FAMILY_ALPHA * 6 / (pi**2 * k**2)

and because sum_k 6 / (pi**2 * k**2) = 1, the levels of all attempts a
lineage will ever make on the split add up to FAMILY_ALPHA. By the union
bound, the probability that the lineage *ever* promotes a candidate that is
no better than the head it replaced is at most FAMILY_ALPHA, however many
times it tries and however its candidates are correlated. The price is
power on late attempts: attempt 1 is tested at 1.52% (95% is 2.5%), attempt
10 at 0.015%.

The one-sided test at alpha_k is the lower end of a two-sided interval at
confidence 1 - 2 * alpha_k, so the gate asks the bootstrap for that
interval (confidence_for_attempt) and the unchanged policy rule "oriented
ci_low > 0" is the test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: The lineage-wise bound: P(a lineage ever promotes a no-better model on one split) <= this.
#: One-sided, the same size as the single 95% test it replaces (2.5% in the favourable tail).
FAMILY_ALPHA = 0.025

#: Name of the spending sequence, recorded in every verdict.
SPENDING_RULE = "alpha_k = 0.025 * 6 / (pi^2 k^2)"

_BASEL = 6.0 / math.pi**2  # 1 / sum_k 1/k^2


def _check_attempt(attempt: Any) -> int:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be a whole number >= 1, got {attempt!r}")
    return attempt


def alpha_for_attempt(attempt: int) -> float:
    """One-sided level at which attempt `attempt` (1-based) of a lineage on a split is tested."""
    k = _check_attempt(attempt)
    return FAMILY_ALPHA * _BASEL / (k * k)


def alpha_spent(attempt: int) -> float:
    """Total level spent by attempts 1..attempt (always below FAMILY_ALPHA)."""
    k = _check_attempt(attempt)
    return FAMILY_ALPHA * _BASEL * sum(1.0 / (j * j) for j in range(1, k + 1))


def confidence_for_attempt(attempt: int) -> float:
    """Two-sided interval level whose lower end is the one-sided test at alpha_for_attempt."""
    return 1.0 - 2.0 * alpha_for_attempt(attempt)


@dataclass(frozen=True)
class AttemptLevel:
    """What one attempt is tested at: recorded in the verdict and in the query record."""

    attempt: int
    alpha: float
    confidence: float
    alpha_spent: float
    family_alpha: float = FAMILY_ALPHA
    rule: str = SPENDING_RULE

    def as_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "alpha": self.alpha, "confidence": self.confidence,
                "alpha_spent": self.alpha_spent, "family_alpha": self.family_alpha, "rule": self.rule}


def level_for_attempt(attempt: int) -> AttemptLevel:
    return AttemptLevel(attempt, alpha_for_attempt(attempt), confidence_for_attempt(attempt), alpha_spent(attempt))


def promotes_under_rule(oriented_delta: float, oriented_se: float, attempt: int) -> bool:
    """The rule on a normally distributed estimate: promote when delta / se exceeds z_(1 - alpha_k).

    The gate itself reads a bootstrap interval (decision.py); this form is what
    the rule's own simulation (benchmarks/bench_holdout.py, tests) exercises.
    """
    from statistics import NormalDist

    if not oriented_se > 0:
        return False
    z = NormalDist().inv_cdf(1.0 - alpha_for_attempt(attempt))
    return oriented_delta >= 0 and oriented_delta / oriented_se > z
