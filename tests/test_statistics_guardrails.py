"""Guardrails: tolerance against the split's standard error; a tolerance of 0.

Known truth: two models whose per-example probabilities are exchanged by a
fair coin have exactly equal population Brier scores, so every guardrail veto
of such a candidate is a false veto. Its rate is about Phi(1.96 - t / SE);
the warning states that probability, and the simulation holds it to it.
"""
from __future__ import annotations

import numpy as np
import pytest

from model_eval_gate import decision, stats
from model_eval_gate.statistics.power import paired_standard_error_estimate

BRIER = stats.metric_for("binary", "brier")
POLICY = decision.BenchmarkPolicy("auroc", {"auroc": True, "brier": False}, guardrails={"brier": 0.005})


def exchangeable_pair(rng, n):
    y = (rng.random(n) < 0.3).astype(float)
    logits = 1.2 * (y - 0.3) + rng.normal(0, 1, n)
    a = 1 / (1 + np.exp(-(logits + rng.normal(0, 0.6, n))))
    b = 1 / (1 + np.exp(-(logits + rng.normal(0, 0.6, n))))
    swap = rng.random(n) < 0.5
    return y, np.where(swap, a, b), np.where(swap, b, a)


def test_the_warning_states_the_false_veto_rate_of_an_equal_candidate():
    """400 equal-candidate replicates at n = 1000 (Monte Carlo SE <= 2.5 points)."""
    rng = np.random.default_rng(4000)
    improved = stats.BootstrapResult("auroc", True, 0.83, 0.81, 0.02, 0.01, 0.03, 0.02 / 0.81, 1000, 1000, 1, 0.95)
    replicates, vetoed, stated = 400, 0, []
    for replicate in range(replicates):
        y, candidate, parent = exchangeable_pair(rng, 1000)
        brier = stats.paired_bootstrap(BRIER, y, candidate, parent, n_resamples=1000, seed=replicate)
        verdict = decision.decide(policy=POLICY, comparisons={"auroc": improved, "brier": brier})
        vetoed += verdict.reason_code is decision.ReasonCode.GUARDRAIL_VIOLATED
        (warning,) = verdict.guardrail_warnings
        stated.append(warning["equal_candidate_veto_probability"])
    rate, expected = vetoed / replicates, float(np.mean(stated))
    print(f"simulated false veto {rate:.2%}, stated {expected:.2%}")
    assert expected > 0.15  # t is well under 3 SE here: the warning fires
    assert rate == pytest.approx(expected, abs=0.07), f"simulated {rate:.1%}, stated {expected:.1%}"


def test_the_first_evaluation_estimates_each_guardrails_standard_error():
    """The root verdict warns from one model's spread, before any comparison exists."""
    rng = np.random.default_rng(5)
    y, candidate, parent = exchangeable_pair(rng, 4000)
    se = paired_standard_error_estimate(BRIER, y, candidate)
    # The bootstrap SE of a real paired delta between two such models is of the same order.
    boot = stats.paired_bootstrap(BRIER, y, candidate, parent, n_resamples=1000, seed=2)
    assert 0.3 < se / ((boot.ci_high - boot.ci_low) / 3.92) < 3.0
    verdict = decision.decide(policy=POLICY, is_root=True, candidate_scores={"auroc": 0.8, "brier": 0.15},
                              guardrail_standard_errors={"brier": 0.004})
    assert verdict.reason_code is decision.ReasonCode.ROOT_VERSION
    assert verdict.guardrail_warnings and "on future comparisons on this split" in verdict.reason
