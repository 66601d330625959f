"""Long simulations behind the statistical rules of docs/model_promotion_policy.md.

Each subcommand prints rates with their Monte Carlo standard error
(sqrt(p(1-p)/R)); the suite runs a small version of each
(tests/test_statistics_*.py).  Fixed seeds: the same command prints the same
figures.

    python benchmarks/sim_statistics.py clustered [--replicates 10000] [--attempt K]
    python benchmarks/sim_statistics.py few-positives [--replicates 2000] [--attempt K]
    python benchmarks/sim_statistics.py delong [--replicates 10000]

--attempt K tests at holdout attempt K's level (policy/multiplicity.py:
confidence 1 - 2 alpha_K, nominal one-sided rate alpha_K) instead of a single
test's 95%: the t intervals take that level's quantile.

Run from the checkout root with the package installed (or PYTHONPATH=daemon).
"""
from __future__ import annotations

import argparse
import math
import time
from types import SimpleNamespace

import numpy as np

from model_eval_gate import stats
from model_eval_gate.statistics.design import ResamplingDesign


def level(args) -> tuple[float, float]:
    """(two-sided confidence, nominal one-sided false-promotion rate) of the run."""
    if args.attempt is None:
        return stats.DEFAULT_CONFIDENCE, (1 - stats.DEFAULT_CONFIDENCE) / 2
    from model_eval_gate.policy.multiplicity import alpha_for_attempt, confidence_for_attempt

    return confidence_for_attempt(args.attempt), alpha_for_attempt(args.attempt)


def rate_text(hits: int, replicates: int) -> str:
    p = hits / replicates
    return f"{p:6.2%} ± {math.sqrt(p * (1 - p) / replicates):.2%}"


# ------------------------------------------------------------------ clustered


def clustered_binormal(rng, n_clusters, per_cluster, interaction, separation=1.0):
    """The suite's null: the models swap a per-cluster advantage by a fair coin (equal population AUROC)."""
    n = n_clusters * per_cluster
    y = (rng.random(n) < 0.5).astype(np.float64)
    cluster = np.repeat(np.arange(n_clusters), per_cluster)
    advantage = interaction * rng.choice([-1.0, 1.0], n_clusters)[cluster]
    offset = rng.normal(0.0, 0.5, n_clusters)[cluster]
    shared = rng.normal(0.0, 1.0, n)
    candidate = y * (separation + advantage) + offset + 0.6 * shared + rng.normal(0.0, 0.8, n)
    parent = y * (separation - advantage) + offset + 0.6 * shared + rng.normal(0.0, 0.8, n)
    return y, cluster, candidate, parent


def clustered(args) -> None:
    confidence, nominal = level(args)
    print(f"null false-promotion rate (one-sided, nominal {nominal:.3%}, interval level {confidence:.4%}): AUROC, "
          "models swap a per-cluster advantage")
    print(f"{'clusters':>8} {'per':>5} {'interaction':>11} {'example bootstrap':>20} {'cluster bootstrap':>20} interval")
    auroc = stats.metric_for("binary", "auroc")
    for n_clusters, per_cluster, interaction in ((20, 100, 0.45), (20, 100, 0.2), (10, 100, 0.45),
                                                 (50, 40, 0.45), (240, 9, 0.45)):
        rng = np.random.default_rng(1000 + n_clusters)
        by_cluster = by_example = 0
        example_replicates = max(1, args.replicates // 10)
        started = time.perf_counter()
        interval = ""
        for replicate in range(args.replicates):
            y, cluster, candidate, parent = clustered_binormal(rng, n_clusters, per_cluster, interaction)
            benchmark = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=y,
                                        higher_is_better={"auroc": True},
                                        resampling_design=ResamplingDesign.from_columns(y.size, groups=cluster))
            result = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=1000, seed=replicate,
                                                confidence=confidence)
            by_cluster += result["auroc"].ci_low > 0
            interval = result["auroc"].interval
            if replicate < example_replicates:
                by_example += stats.paired_bootstrap(auroc, y, candidate, parent, n_resamples=1000,
                                                     seed=replicate, confidence=confidence).ci_low > 0
        print(f"{n_clusters:>8} {per_cluster:>5} {interaction:>11} {rate_text(by_example, example_replicates):>20} "
              f"{rate_text(by_cluster, args.replicates):>20} {interval} "
              f"({time.perf_counter() - started:.0f} s)")


# ------------------------------------------------------------------ few positives


def few_positives(args) -> None:
    confidence, nominal = level(args)
    print(f"null false-promotion rate (nominal {nominal:.3%}), AUROC, equal binormal separation, 200 negatives, "
          "1000 resamples")
    print(f"{'positives':>9} {'percentile':>16} {'gate (t below 50)':>18} interval")
    auroc = stats.metric_for("binary", "auroc")
    for positives in (5, 10, 20, 30):
        rng = np.random.default_rng(100 + positives)
        by_gate = by_percentile = 0
        interval = ""
        for replicate in range(args.replicates):
            y = np.r_[np.ones(positives), np.zeros(200)]
            shared = rng.normal(0, 1, y.size)
            candidate = y + 0.7 * shared + rng.normal(0, 0.7, y.size)
            parent = y + 0.7 * shared + rng.normal(0, 0.7, y.size)
            benchmark = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=y,
                                        higher_is_better={"auroc": True})
            result = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=1000, seed=replicate,
                                                confidence=confidence)
            by_gate += result["auroc"].ci_low > 0
            interval = result["auroc"].interval
            try:
                plain = stats.paired_bootstrap(auroc, y, candidate, parent, n_resamples=1000, seed=replicate,
                                               confidence=confidence)
                by_percentile += plain.ci_low > 0 and plain.n_valid >= 900
            except stats.MetricUndefined:
                pass
        print(f"{positives:>9} {rate_text(by_percentile, args.replicates):>16} "
              f"{rate_text(by_gate, args.replicates):>18} {interval}")


# ------------------------------------------------------------------ DeLong


def delong(args) -> None:
    from model_eval_gate.statistics.delong import paired_delong

    print("DeLong's paired test: null false-promotion rate (nominal 2.5%), binormal, 40% positives")
    for n in (200, 600, 2000):
        rng = np.random.default_rng(n)
        hits = 0
        for _ in range(args.replicates):
            y = (rng.random(n) < 0.4).astype(float)
            shared = rng.normal(size=n)
            test = paired_delong(y, y + 0.7 * shared + rng.normal(0, 0.7, n), y + 0.7 * shared + rng.normal(0, 0.7, n))
            hits += test.ci_low > 0
        print(f"  n = {n:>5}: {rate_text(hits, args.replicates)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, function, replicates in (("clustered", clustered, 10000), ("few-positives", few_positives, 2000),
                                       ("delong", delong, 10000)):
        command = sub.add_parser(name)
        command.add_argument("--replicates", type=int, default=replicates)
        if name != "delong":
            command.add_argument("--attempt", type=int, default=None,
                                 help="test at holdout attempt K's level instead of 95%%")
        command.set_defaults(function=function)
    args = parser.parse_args()
    args.function(args)


if __name__ == "__main__":
    main()
