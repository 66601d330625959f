"""statistics/: resampling designs (groups, strata, label classes) and their intervals.

Simulations are against a known population truth: clustered binormal scores
where candidate and parent swap a per-cluster advantage with a fair coin, so
by symmetry their population AUROCs are exactly equal (the null), and within
a cluster each model's AUROC is the binormal Phi(d / sqrt(2 var)).  Rates are
asserted with their Monte Carlo error stated; benchmarks/sim_statistics.py clustered
is the long version.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats

from model_eval_gate import decision, stats
from model_eval_gate.statistics import intervals
from model_eval_gate.statistics.design import DesignError, ResamplingDesign
from model_eval_gate.statistics.resampling import paired_design_bootstrap


def clustered_binormal(rng: np.random.Generator, n_clusters: int, per_cluster: int, interaction: float,
                       separation: float = 1.0):
    """Labels, cluster ids and two models whose advantage flips per cluster (population delta exactly 0)."""
    n = n_clusters * per_cluster
    y = (rng.random(n) < 0.5).astype(np.float64)
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    advantage = interaction * rng.choice([-1.0, 1.0], n_clusters)[cluster]
    offset = rng.normal(0.0, 0.5, n_clusters)[cluster]
    shared = rng.normal(0.0, 1.0, n)
    candidate = y * (separation + advantage) + offset + 0.6 * shared + rng.normal(0.0, 0.8, n)
    parent = y * (separation - advantage) + offset + 0.6 * shared + rng.normal(0.0, 0.8, n)
    return y, cluster, candidate, parent


def grouped_benchmark(y, cluster, metrics=("auroc",), **design):
    return SimpleNamespace(task="binary", self_scored=False, metrics=metrics, labels=y,
                           higher_is_better={m: stats.metric_for("binary", m).higher_is_better for m in metrics},
                           resampling_design=ResamplingDesign.from_columns(y.size, groups=cluster, **design))


# ------------------------------------------------------------------ t quantile


@pytest.mark.parametrize("df", [1, 2, 5, 19, 29, 120, 5000])
@pytest.mark.parametrize("p", [0.5, 0.8, 0.975, 0.995, 0.025])
def test_t_quantile_matches_scipy(df, p):
    assert intervals.t_quantile(p, df) == pytest.approx(scipy.stats.t.ppf(p, df), abs=1e-9)


# ------------------------------------------------------------------ designs


def test_groups_are_drawn_whole_and_strata_keep_their_size():
    groups = np.repeat(np.arange(12), 3)
    strata = np.repeat(np.array(["a"] * 4 + ["b"] * 8), 3)
    design = ResamplingDesign.from_columns(36, groups=groups, strata=strata)
    assert (design.n_units, design.n_strata) == (12, 2)
    counts = design.draw_unit_counts(np.random.default_rng(3), 500)
    assert counts.shape == (500, 12)
    assert (counts[:, :4].sum(axis=1) == 4).all() and (counts[:, 4:].sum(axis=1) == 8).all()
    weights = counts[:, design.unit_of_example]
    assert (weights.reshape(500, 12, 3) == counts[:, :, None]).all()  # every example of a group moves together


def test_label_stratified_design_keeps_the_class_counts():
    y = np.array([1.0] * 7 + [0.0] * 93)
    design = ResamplingDesign.from_columns(100, labels=y, stratify_by_label=True)
    counts = design.draw_unit_counts(np.random.default_rng(1), 300)
    assert (counts[:, y == 1].sum(axis=1) == 7).all() and (counts[:, y == 0].sum(axis=1) == 93).all()


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(groups=[0, 0, 1, 1], strata=["a", "b", "c", "c"]), "same for every example"),
    (dict(groups=[0, 0, 1, 1], strata=["a", "a", "b", "b"]), "at least 2 groups"),
    (dict(groups=[0, 1, 2]), "3 values for 4 examples"),
    (dict(groups=[0, 0, 1, 1], labels=[0, 1, 0, 1], stratify_by_label=True), "declare strata of groups"),
])
def test_unusable_designs_are_named(kwargs, fragment):
    with pytest.raises(DesignError, match=fragment):
        ResamplingDesign.from_columns(4, **kwargs)


def test_unit_kernels_equal_metric_weighted_on_example_weights():
    """The O(units) kernels give what Metric.weighted gives on the expanded example weights."""
    rng = np.random.default_rng(7)
    y, cluster, candidate, parent = clustered_binormal(rng, 15, 20, 0.3)
    candidate = np.round(1 / (1 + np.exp(-candidate)), 2)  # ties, and probabilities for the mean metrics
    parent = np.round(1 / (1 + np.exp(-parent)), 2)
    design = ResamplingDesign.from_columns(y.size, groups=cluster)
    metrics = [stats.metric_for("binary", m) for m in ("auroc", "brier", "log_loss")]
    results = paired_design_bootstrap("binary", metrics, y, candidate, parent, design, n_resamples=300, seed=5,
                                      confidence=0.95)
    counts = np.vstack([c for _, c in design.chunks(5, 300)])
    weights = counts[:, design.unit_of_example]
    for metric in metrics:
        expected = metric.weighted(y, candidate, weights).values - metric.weighted(y, parent, weights).values
        point = stats.point_estimate(metric, y, candidate) - stats.point_estimate(metric, y, parent)
        low, high, df = intervals.few_units_t(point, expected, 15, 1, 0.95)
        result = results[metric.name]
        assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-12)
        assert result.interval == "few_groups_t" and result.degrees_of_freedom == df == 14


def test_many_groups_use_the_percentile_interval():
    rng = np.random.default_rng(2)
    y, cluster, candidate, parent = clustered_binormal(rng, 40, 10, 0.3)
    result = stats.compare_on_benchmark(grouped_benchmark(y, cluster), candidate, parent, n_resamples=200,
                                        seed=1)["auroc"]
    assert result.interval == "percentile" and result.degrees_of_freedom is None
    assert result.resampled == "40 groups"


def test_an_independent_design_is_exactly_the_plain_bootstrap():
    rng = np.random.default_rng(4)
    y, _, candidate, parent = clustered_binormal(rng, 20, 10, 0.0)  # ~100 of each class: no few-positives path
    plain = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=y,
                            higher_is_better={"auroc": True},
                            resampling_design=ResamplingDesign.from_columns(y.size))
    assert plain.resampling_design.is_independent
    assert stats.compare_on_benchmark(plain, candidate, parent, n_resamples=100, seed=3) == \
        stats.paired_bootstrap_many("binary", ["auroc"], y, candidate, parent, n_resamples=100, seed=3)


# ------------------------------------------------------------------ the null simulation


def test_cluster_bootstrap_holds_the_false_promotion_rate_with_20_clusters():
    """20 clusters x 100 examples, strong model x cluster interaction, equal population AUROC.

    Today's example bootstrap promotes in ~27% of replicates (the interval is
    about 4x too narrow); the cluster bootstrap with the few-groups t interval
    must stay within [1.5%, 4%] (nominal one-sided 2.5%).  2000 replicates:
    Monte Carlo SE about 0.35 points at 2.5%.
    """
    rng = np.random.default_rng(20261201)
    replicates, promoted, promoted_by_examples, example_replicates = 2000, 0, 0, 100
    for replicate in range(replicates):
        y, cluster, candidate, parent = clustered_binormal(rng, 20, 100, 0.45)
        result = stats.compare_on_benchmark(grouped_benchmark(y, cluster), candidate, parent, n_resamples=1000,
                                            seed=replicate)["auroc"]
        promoted += result.ci_low > 0
        if replicate < example_replicates:
            plain = stats.paired_bootstrap(stats.metric_for("binary", "auroc"), y, candidate, parent,
                                           n_resamples=200, seed=replicate)
            promoted_by_examples += plain.ci_low > 0
    rate = promoted / replicates
    assert 0.015 <= rate <= 0.04, f"cluster bootstrap false-promotion rate {rate:.2%} (MC SE 0.35 points)"
    example_rate = promoted_by_examples / example_replicates
    assert example_rate > 0.12, f"the example bootstrap was expected to fail here, got {example_rate:.1%}"


def test_a_verdict_says_when_the_interval_is_few_groups_t():
    rng = np.random.default_rng(11)
    y, cluster, candidate, parent = clustered_binormal(rng, 12, 50, 0.0)
    candidate = candidate + 0.8 * y  # a clearly better candidate
    comparisons = stats.compare_on_benchmark(grouped_benchmark(y, cluster), candidate, parent, n_resamples=1000,
                                             seed=2)
    verdict = decision.decide(policy=decision.BenchmarkPolicy("auroc", {"auroc": True}), comparisons=comparisons)
    assert verdict.outcome is decision.Outcome.PROMOTE
    assert "12 groups" in verdict.reason and "t interval on 11 degrees of freedom" in verdict.reason
    assert verdict.as_dict()["resampling"] == {"interval": "few_groups_t", "degrees_of_freedom": 11,
                                               "resampled": "12 groups"}
    assert comparisons["auroc"].as_dict()["interval"] == "few_groups_t"


def test_the_few_groups_t_interval_follows_the_holdout_attempts_level():
    """Attempt k of holdout accounting is tested at 1 - 2 alpha_k; the t interval takes that level's t quantile."""
    from model_eval_gate.policy.multiplicity import confidence_for_attempt

    rng = np.random.default_rng(11)
    y, cluster, candidate, parent = clustered_binormal(rng, 12, 50, 0.0)
    candidate = candidate + 0.8 * y
    benchmark = grouped_benchmark(y, cluster)
    single = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=1000, seed=2)["auroc"]
    level = confidence_for_attempt(5)
    comparisons = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=1000, seed=2,
                                             confidence=level)
    attempt = comparisons["auroc"]
    assert attempt.interval == "few_groups_t" and attempt.confidence == level
    # The same resamples, so the same standard error: the widths differ by the t quantiles' ratio alone.
    ratio = intervals.t_quantile(0.5 + level / 2, 11) / intervals.t_quantile(0.975, 11)
    assert (attempt.ci_high - attempt.ci_low) == pytest.approx((single.ci_high - single.ci_low) * ratio, rel=1e-12)
    assert attempt.delta == single.delta
    verdict = decision.decide(policy=decision.BenchmarkPolicy("auroc", {"auroc": True}), comparisons=comparisons,
                              confidence=level)
    assert verdict.confidence == level and verdict.resampling["interval"] == "few_groups_t"
    assert f"{decision.level_text(level)} CI" in verdict.reason
    with pytest.raises(decision.DecisionInputError, match="this decision is made at"):
        decision.decide(policy=decision.BenchmarkPolicy("auroc", {"auroc": True}), comparisons=comparisons)


def test_an_interval_beyond_the_resamples_resolution_is_recorded_as_the_normal_tail():
    """At attempt 10 a tail holds 0.15 of 1000 resamples: the ends are the normal tail, and the record says so."""
    from model_eval_gate.policy.multiplicity import confidence_for_attempt

    rng = np.random.default_rng(4)
    y, _, candidate, parent = clustered_binormal(rng, 20, 10, 0.0)
    candidate = candidate + 1.5 * y
    plain = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=y,
                            higher_is_better={"auroc": True})
    at_95 = stats.compare_on_benchmark(plain, candidate, parent, n_resamples=1000, seed=3)["auroc"]
    assert at_95.interval == "percentile"
    level = confidence_for_attempt(10)
    comparisons = stats.compare_on_benchmark(plain, candidate, parent, n_resamples=1000, seed=3, confidence=level)
    assert comparisons["auroc"].interval == stats.interval_method(1000, level) == "normal_tail"
    verdict = decision.decide(policy=decision.BenchmarkPolicy("auroc", {"auroc": True}), comparisons=comparisons,
                              confidence=level)
    assert "normal tail of the resampled deltas" in verdict.reason
    assert verdict.resampling == {"interval": "normal_tail", "degrees_of_freedom": None, "resampled": "examples"}


def test_binormal_truth_within_a_cluster():
    """The simulation's within-cluster AUROC is the analytic binormal value Phi(d / sqrt(2 var))."""
    rng = np.random.default_rng(9)
    y, cluster, candidate, _ = clustered_binormal(rng, 1, 200_000, 0.0)
    variance = 0.6**2 + 0.8**2  # the cluster offset is shared by both classes and cancels
    assert stats.point_estimate(stats.metric_for("binary", "auroc"), y, candidate) == pytest.approx(
        scipy.stats.norm.cdf(1.0 / math.sqrt(2 * variance)), abs=0.003)
