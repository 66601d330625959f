"""Minimum detectable effects: the verdict's MDE is the effect detected with 80% power.

Known truth: binormal scores with unit-variance classes after noise, so a
model with separation d has population AUROC Phi(d / sqrt(2 var)); the
candidate's separation is set so that its true AUROC gain equals the MDE a
pilot verdict stated.  The long version is benchmarks/sim_statistics.py power.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from benchmark_factory import make_benchmark

from model_eval_gate import decision, stats
from model_eval_gate.benchmark import load_benchmark, registration_mde, registration_summary
from model_eval_gate.statistics import power

NOISE_SHARED, NOISE_OWN = 0.7, 0.7
VARIANCE = NOISE_SHARED**2 + NOISE_OWN**2


def separation_for(auc: float) -> float:
    return math.sqrt(2 * VARIANCE) * scipy.stats.norm.ppf(auc)


def draw(rng, n: int, candidate_auc: float, parent_auc: float):
    y = (rng.random(n) < 0.5).astype(np.float64)
    shared = rng.normal(0.0, NOISE_SHARED, n)
    candidate = separation_for(candidate_auc) * y + shared + rng.normal(0.0, NOISE_OWN, n)
    parent = separation_for(parent_auc) * y + shared + rng.normal(0.0, NOISE_OWN, n)
    return y, candidate, parent


POLICY = decision.BenchmarkPolicy("auroc", {"auroc": True})
AUROC = stats.metric_for("binary", "auroc")


def verdict_for(y, candidate, parent, seed):
    comparisons = {"auroc": stats.paired_bootstrap(AUROC, y, candidate, parent, n_resamples=1000, seed=seed)}
    return decision.decide(policy=POLICY, comparisons=comparisons)


def test_the_stated_mde_is_detected_about_80_percent_of_the_time():
    """300 replicates at the pilot MDE: power 80% has Monte Carlo SE 2.3 points."""
    rng = np.random.default_rng(8080)
    n, parent_auc = 1000, 0.80
    pilots = [verdict_for(*draw(rng, n, parent_auc, parent_auc), seed=s).minimum_detectable_effect for s in range(5)]
    mde = float(np.mean(pilots))
    assert 0.01 < mde < 0.1
    replicates = 300
    detected = sum(verdict_for(*draw(rng, n, parent_auc + mde, parent_auc), seed=r).reason_code
                   is decision.ReasonCode.IMPROVED for r in range(replicates))
    assert 0.70 <= detected / replicates <= 0.90, f"power at the MDE {detected / replicates:.1%}"


def test_every_compared_verdict_states_its_mde():
    rng = np.random.default_rng(3)
    verdict = verdict_for(*draw(rng, 400, 0.8, 0.8), seed=1)
    assert verdict.reason_code is decision.ReasonCode.PRIMARY_NOT_IMPROVED
    assert "At 80% power this split detects a auroc change of about" in verdict.reason
    payload = verdict.as_dict()
    assert payload["minimum_detectable_effect"] == pytest.approx(verdict.minimum_detectable_effect)
    assert payload["mde_power"] == 0.8
    half = (verdict.metric_table[0].ci_high - verdict.metric_table[0].ci_low) / 2
    assert verdict.minimum_detectable_effect == pytest.approx(half * (1 + 0.8416212 / 1.9599640), rel=1e-6)


def test_mde_shrinks_with_the_split_like_one_over_root_n():
    small = power.registration_mde("auroc", 500, 500, 1000)
    large = power.registration_mde("auroc", 2500, 2500, 5000)
    assert small / large == pytest.approx(math.sqrt(5), rel=0.02)
    # Issue 12: a true gain of 0.01 has 10% power at n = 1000 and 31% at n = 5000; the MDEs are far above it.
    assert small > 0.02 and large > 0.01


def test_hanley_mcneil_variance_matches_the_simulated_spread_of_a_binormal_auroc():
    rng = np.random.default_rng(12)
    positives = negatives = 100
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    values = [stats.point_estimate(AUROC, y, separation_for(0.8) * y + rng.normal(0, math.sqrt(VARIANCE), y.size))
              for _ in range(3000)]
    simulated = np.var(values, ddof=1)  # Monte Carlo relative SE of a variance from 3000 draws: ~2.6%
    assert power.hanley_mcneil_variance(0.8, positives, negatives) == pytest.approx(simulated, rel=0.12)


def test_registration_states_the_mde(tmp_path):
    benchmark = load_benchmark(make_benchmark(tmp_path, n=400))
    value = registration_mde(benchmark)
    assert value is not None and 0.02 < value < 0.2
    assert f"about {value:.3g}" in registration_summary(benchmark)
    regression = load_benchmark(make_benchmark(tmp_path / "r", task="regression", n=50))
    assert registration_mde(regression) is None
    assert "stated in each verdict" in registration_summary(regression)
