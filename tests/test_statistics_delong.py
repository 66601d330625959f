"""DeLong's paired AUROC test (Sun & Xu 2014) beside the bootstrap.

References: the O(P x N) structural components written out here, scipy's
rankdata; known truth: binormal scores (population AUROC Phi(d / sqrt(2 var)))
with equal separations for the null.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from model_eval_gate import decision, stats
from model_eval_gate.statistics.delong import DeLongResult, auroc_variance, midranks, paired_delong

AUROC = stats.metric_for("binary", "auroc")


def direct_components(y, scores):
    positives, negatives = scores[y == 1], scores[y == 0]
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])
    return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)


def test_midranks_equal_scipy_rankdata():
    values = np.round(np.random.default_rng(1).normal(size=500), 1)
    assert np.array_equal(midranks(values), scipy.stats.rankdata(values))


@pytest.mark.parametrize("decimals", [None, 1])
def test_fast_components_equal_the_direct_double_sum(decimals):
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.3).astype(float)
    candidate, parent = y + rng.normal(size=300), 0.5 * y + rng.normal(size=300)
    if decimals is not None:
        candidate, parent = np.round(candidate, decimals), np.round(parent, decimals)
    result = paired_delong(y, candidate, parent)
    auc_c, v10_c, v01_c = direct_components(y, candidate)
    auc_p, v10_p, v01_p = direct_components(y, parent)
    assert result.candidate == pytest.approx(auc_c, abs=1e-12) == stats.point_estimate(AUROC, y, candidate)
    d10, d01 = v10_c - v10_p, v01_c - v01_p
    variance = np.var(d10, ddof=1) / d10.size + np.var(d01, ddof=1) / d01.size
    assert result.standard_error == pytest.approx(np.sqrt(variance), rel=1e-10)
    single = auroc_variance(y, candidate)
    assert single[1] == pytest.approx(np.var(v10_c, ddof=1) / v10_c.size + np.var(v01_c, ddof=1) / v01_c.size)


def null_pair(rng, n=600):
    y = (rng.random(n) < 0.4).astype(float)
    shared = rng.normal(size=n)
    return y, y + 0.7 * shared + rng.normal(0, 0.7, n), y + 0.7 * shared + rng.normal(0, 0.7, n)


def test_delong_holds_the_null_false_promotion_rate():
    """2000 null replicates, 600 examples: nominal 2.5%, Monte Carlo SE 0.35 points."""
    rng = np.random.default_rng(31)
    replicates = 2000
    promoted = sum(paired_delong(*null_pair(rng)).ci_low > 0 for _ in range(replicates))
    assert 0.015 <= promoted / replicates <= 0.04, f"DeLong null rate {promoted / replicates:.2%}"


def test_delong_and_the_bootstrap_agree_on_almost_every_decision():
    """200 replicates, half null and half a true gain near the detection limit."""
    rng = np.random.default_rng(32)
    replicates, agree = 200, 0
    for replicate in range(replicates):
        y, candidate, parent = null_pair(rng)
        if replicate % 2:
            candidate = candidate + 0.25 * y
        test = paired_delong(y, candidate, parent)
        boot = stats.paired_bootstrap(AUROC, y, candidate, parent, n_resamples=1000, seed=replicate)
        agree += (test.ci_low > 0) == (boot.ci_low > 0)
    assert agree / replicates >= 0.95, f"agreement {agree / replicates:.1%}"


def test_a_disagreement_is_flagged_in_the_verdict_but_does_not_decide():
    policy = decision.BenchmarkPolicy("auroc", {"auroc": True})
    bootstrap = stats.BootstrapResult("auroc", True, 0.83, 0.81, 0.02, 0.001, 0.04, 0.02 / 0.81, 1000, 1000, 4, 0.95)
    delong = DeLongResult(0.83, 0.81, 0.02, 0.0105, 1.905, 0.0568, -0.0006, 0.0406, 0.95)
    verdict = decision.decide(policy=policy, comparisons={"auroc": bootstrap}, cross_check=delong)
    assert verdict.reason_code is decision.ReasonCode.IMPROVED
    assert "DeLong's paired test disagrees" in verdict.reason
    record = verdict.as_dict()["cross_check"]
    assert (record["agrees"], record["bootstrap_significant"], record["delong_significant"]) == (False, True, False)
    agreeing = DeLongResult(0.83, 0.81, 0.02, 0.009, 2.2, 0.027, 0.0024, 0.0376, 0.95)
    verdict = decision.decide(policy=policy, comparisons={"auroc": bootstrap}, cross_check=agreeing)
    assert verdict.cross_check["agrees"] is True and "DeLong" not in verdict.reason
