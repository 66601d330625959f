"""Few examples of one class: registration minimum, label-stratified resamples and a t interval.

Null: binormal scores, candidate and parent with the same separation (equal
population AUROC, Phi(1/sqrt(2 var)) for both) and shared noise.  With 6
positives the percentile bootstrap promotes about 6% of such candidates
(nominal 2.5%); the few-positives t interval stays below nominal.  The long
version (5 to 30 positives, 1000 resamples) is
benchmarks/sim_statistics.py few-positives.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from benchmark_factory import make_benchmark

from model_eval_gate import stats
from model_eval_gate.benchmark import BenchmarkError, load_benchmark, record_benchmark, registration_problems
from model_eval_gate.decision import MIN_RANK_CLASS_COUNT


def null_pair(rng, positives: int, negatives: int):
    y = np.r_[np.ones(positives), np.zeros(negatives)]
    shared = rng.normal(0.0, 1.0, y.size)
    candidate = y + 0.7 * shared + rng.normal(0.0, 0.7, y.size)
    parent = y + 0.7 * shared + rng.normal(0.0, 0.7, y.size)
    return y, candidate, parent


def test_few_positives_t_interval_holds_where_the_percentile_interval_does_not():
    """600 replicates at 6 positives, 200 negatives (Monte Carlo SE ~0.6 points at 2.5%, ~1 at 6%)."""
    rng = np.random.default_rng(606)
    auroc = stats.metric_for("binary", "auroc")
    replicates, by_t, by_percentile = 600, 0, 0
    for replicate in range(replicates):
        y, candidate, parent = null_pair(rng, 6, 200)
        benchmark = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=y,
                                    higher_is_better={"auroc": True})
        result = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=250, seed=replicate)["auroc"]
        assert result.interval == "few_positives_t" and result.degrees_of_freedom == 5
        assert result.n_valid == 250  # label-stratified: every resample has both classes
        by_t += result.ci_low > 0
        plain = stats.paired_bootstrap(auroc, y, candidate, parent, n_resamples=250, seed=replicate)
        by_percentile += plain.ci_low > 0
    print(f"percentile {by_percentile / replicates:.2%}, few-positives t {by_t / replicates:.2%}")
    assert by_percentile / replicates > 0.04, f"percentile {by_percentile / replicates:.1%}"
    assert 0.003 <= by_t / replicates <= 0.035, f"few-positives t {by_t / replicates:.1%}"


def test_many_positives_keep_the_plain_bootstrap():
    rng = np.random.default_rng(1)
    y, candidate, parent = null_pair(rng, 60, 200)
    benchmark = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc", "brier"), labels=y,
                                higher_is_better={"auroc": True, "brier": False})
    p = 1 / (1 + np.exp(-candidate)), 1 / (1 + np.exp(-parent))
    results = stats.compare_on_benchmark(benchmark, p[0], p[1], n_resamples=200, seed=3)
    assert results == stats.paired_bootstrap_many("binary", ["auroc", "brier"], y, p[0], p[1], n_resamples=200,
                                                   seed=3)


def test_registration_refuses_a_rank_metric_with_too_few_of_one_class(tmp_path, conn):
    bench_dir = make_benchmark(tmp_path, n=300)
    labels = (bench_dir / "labels.csv").read_text().splitlines()
    kept_positive = 0
    rows = [labels[0]]
    for line in labels[1:]:
        example_id, label = line.split(",")
        if label == "1":
            kept_positive += 1
            label = "1" if kept_positive <= MIN_RANK_CLASS_COUNT - 1 else "0"
        rows.append(f"{example_id},{label}")
    (bench_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    benchmark = load_benchmark(bench_dir)  # a valid directory...
    problems = registration_problems(benchmark)
    assert problems and f"{MIN_RANK_CLASS_COUNT - 1} positive" in problems[0] and "at least 20" in problems[0]
    with pytest.raises(BenchmarkError, match="at least 20 of each class"):
        record_benchmark(conn, benchmark)  # ...that cannot decide anything
    assert conn.execute("SELECT count(*) AS n FROM benchmarks").fetchone()["n"] == 0


def test_a_non_rank_primary_metric_needs_no_class_minimum(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=30, primary_metric="accuracy", metrics=["accuracy", "auroc"])
    assert registration_problems(load_benchmark(bench_dir)) == []
