"""Repeated candidates through the real gate: lineage-wise false promotions and power, rule vs today.

The question of issue 11: an automated author submits K candidates to one
lineage, each truly no better than the head; how often does the lineage
ever promote one? And what does the multiplicity rule cost a candidate that
is truly +0.02 AUROC better?

Population truth (binormal, known exactly): labels are balanced; a model's
score is mu * label + noise, noise ~ N(0, 1), so its AUROC is
Phi(mu / sqrt(2)). The head has mu0 (AUROC 0.80); a null candidate has the
same mu0, an improved one mu1 (AUROC 0.82). A candidate's noise is
correlated with its head's (rho, default 0.6), as retrained versions of one
model are. Each lineage has its own head (its own noise), so lineages are
independent replicates; within a lineage every candidate is compared with
that head on the one split, so attempts are correlated, as in practice.

Every candidate goes through the real gate (run_eval_gate: job claim,
holdout accounting, paired bootstrap at the attempt's level, decision,
fenced apply) on a real PostgreSQL. Only the sandbox is skipped: each
model's predictions are stored ahead of time as its cached evaluation
(the cache the gate consults first), because running eval.py is not the
question here. "Today" is the rule before holdout accounting, every attempt
at 95% (2.5% one-sided): computed on the same predictions with the same
bootstrap and decision code (stats.compare_on_benchmark + decision.decide at
confidence 0.95), in process.

A lineage stops at its first false promotion (the event counted). Power at
attempt k: lineages whose counter is set to k - 1 (as if k - 1 attempts had
been made) submit one improved candidate; the fraction promoted.

Monte Carlo error: one binomial standard error, sqrt(p (1 - p) / lineages),
printed beside every rate.

    python benchmarks/bench_holdout.py                 # 300 lineages x 100 attempts, n = 5000 (long)
    python benchmarks/bench_holdout.py --lineages 40 --attempts 20 --power-lineages 40   # a few minutes
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_database import scratch_database, server_description  # noqa: E402

from model_eval_gate import db, decision, stats  # noqa: E402
from model_eval_gate.benchmark import load_benchmark, record_benchmark  # noqa: E402
from model_eval_gate.config import Settings  # noqa: E402
from model_eval_gate.evaluate import model_dir, model_hash  # noqa: E402
from model_eval_gate.gate import claim_for_artifact, run_claimed_job  # noqa: E402
from model_eval_gate.logging import configure_logging  # noqa: E402

K_REPORTED = (1, 5, 20, 100)


def auroc_mu(auroc: float) -> float:
    return math.sqrt(2.0) * NormalDist().inv_cdf(auroc)


def write_benchmark(directory: Path, benchmark_id: str, n: int, rng: np.random.Generator) -> np.ndarray:
    (directory / "inputs").mkdir(parents=True)
    ids = [f"ex{i:06d}" for i in range(n)]
    labels = rng.permutation(np.arange(n) % 2)
    (directory / "inputs" / "examples.csv").write_text("example_id\n" + "".join(f"{i}\n" for i in ids))
    (directory / "labels.csv").write_text("example_id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels)))
    (directory / "benchmark.json").write_text(json.dumps({
        "id": benchmark_id, "task": "binary", "primary_metric": "auroc", "metrics": ["auroc"],
        "labels": "labels.csv", "query_budget": 10**7}))
    return labels


class Lineages:
    """Registers versions whose evaluations are already cached, and gates them for real."""

    def __init__(self, conn, settings: Settings):
        self.conn, self.settings = conn, settings
        self.count = 0

    def version(self, benchmark, artifact_id: str, parent: str | None, predictions: np.ndarray) -> str:
        directory = model_dir(self.settings, artifact_id)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "eval.py").write_text(f"# {artifact_id}: predictions are cached by the benchmark\n")
        values = np.ascontiguousarray(predictions, dtype="<f8")
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO artifacts (id, artifact_type, title, parent_version_id, is_latest, lifecycle_state, "
                "created_by, metadata) VALUES (%s, 'model', %s, %s, 0, 'candidate', 'bench', '{}'::jsonb)",
                (artifact_id, artifact_id, parent))
            self.conn.execute(
                "INSERT INTO model_versions (artifact_id, benchmark_id, trained_by, promotion_state) "
                "VALUES (%s, %s, %s, 'candidate')", (artifact_id, benchmark.id, f"agent-{artifact_id.split('-')[1]}"))
            db.execute(self.conn, "store_evaluation", {
                "artifact_id": artifact_id, "benchmark_id": benchmark.id, "split_hash": benchmark.split_hash,
                "model_hash": model_hash(directory), "predictions": values.tobytes(),
                "prediction_shape": list(values.shape), "n_examples": int(values.shape[0]),
                "self_reported": False, "sandboxed": True, "wall_seconds": 0.0, "cpu_seconds": 0.0,
                "peak_rss_bytes": 0})
        return artifact_id

    def gate(self, artifact_id: str) -> dict:
        """What run_eval_gate does, on one kept connection (as the daemon's worker does)."""
        self.count += 1
        job = claim_for_artifact(self.conn, self.settings, artifact_id, worker_id="bench", reason="direct",
                                 requested_by="bench")
        return run_claimed_job(self.settings, job, conn=self.conn)


def today_promotes(benchmark, candidate: np.ndarray, head: np.ndarray, n_resamples: int) -> bool:
    """The rule before holdout accounting: every attempt a 95% paired-bootstrap test."""
    seed = stats.derive_split_seed(benchmark.split_hash, head)
    comparisons = stats.compare_on_benchmark(benchmark, candidate, head, n_resamples=n_resamples, seed=seed,
                                             confidence=decision.CONFIDENCE)
    verdict = decision.decide(policy=decision.BenchmarkPolicy.from_manifest(benchmark.manifest,
                                                                            benchmark.higher_is_better),
                              comparisons=comparisons)
    return verdict.promotes


def rate(hits: int, total: int) -> str:
    p = hits / total if total else float("nan")
    se = math.sqrt(p * (1 - p) / total) if total else float("nan")
    return f"{p:6.1%} ± {se:4.1%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lineages", type=int, default=300)
    parser.add_argument("--attempts", type=int, default=100)
    parser.add_argument("--power-lineages", type=int, default=300)
    parser.add_argument("--n", type=int, default=5000, help="examples in the split of the power runs")
    parser.add_argument("--null-n", type=int, default=5000, help="examples in the split of the null runs")
    parser.add_argument("--rho", type=float, default=0.6, help="correlation of a candidate's noise with its head's")
    parser.add_argument("--head-auroc", type=float, default=0.80)
    parser.add_argument("--improvement", type=float, default=0.02)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)
    rng = np.random.default_rng(args.seed)
    mu0, mu1 = auroc_mu(args.head_auroc), auroc_mu(args.head_auroc + args.improvement)
    reported = [k for k in K_REPORTED if k <= args.attempts] or [args.attempts]

    with tempfile.TemporaryDirectory(prefix="bench-holdout-") as tmp, scratch_database("bench-holdout") as dsn:
        home = Path(tmp)
        settings = Settings(dsn=dsn, home=home, artifact_root=home / "artifacts", n_resamples=args.resamples,
                            rate_limit_window_seconds=0, allow_unsandboxed=False)
        null_labels = write_benchmark(home / "null", "bench-holdout-null", args.null_n, rng)
        power_labels = write_benchmark(home / "power", "bench-holdout-power", args.n, rng)
        null_benchmark, power_benchmark = load_benchmark(home / "null"), load_benchmark(home / "power")
        # The figures are rates, not latencies: durable commits would only slow the run down.
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT set_config('synchronous_commit', 'off', false)")
            database = admin.execute("SELECT current_database()").fetchone()[0]
            admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
        print(f"# bench_holdout: {server_description(dsn)}")
        print(f"# null runs n = {args.null_n}, power runs n = {args.n}, head AUROC {args.head_auroc}, null candidates equal, improved "
              f"+{args.improvement}; rho = {args.rho}; {args.resamples} resamples; seed {args.seed}")
        with db.connect(settings, autocommit=True) as conn:
            record_benchmark(conn, null_benchmark)
            record_benchmark(conn, power_benchmark)
            world = Lineages(conn, settings)

            def scores(labels: np.ndarray, mu: float, head_noise: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
                own = rng.standard_normal(labels.size)
                noise = own if head_noise is None else args.rho * head_noise + math.sqrt(1 - args.rho**2) * own
                return mu * labels + noise, noise

            started = time.perf_counter()
            first_rule: list[int] = []
            first_today: list[int] = []
            for lineage in range(args.lineages):
                benchmark = null_benchmark
                head_scores, head_noise = scores(null_labels, mu0, None)
                root = world.version(benchmark, f"null-{lineage:04d}-root", None, head_scores)
                assert world.gate(root)["reason_code"] == "root_version"
                rule_hit = today_hit = args.attempts + 1
                for attempt in range(1, args.attempts + 1):
                    candidate, _ = scores(null_labels, mu0, head_noise)
                    if today_hit > args.attempts and today_promotes(benchmark, candidate, head_scores, args.resamples):
                        today_hit = attempt
                    if rule_hit > args.attempts:
                        artifact = world.version(benchmark, f"null-{lineage:04d}-{attempt:03d}", root, candidate)
                        result = world.gate(artifact)
                        assert result["holdout"]["attempt"] == attempt, result["holdout"]
                        if result["outcome"] in ("promote", "promote_with_tradeoff"):
                            rule_hit = attempt
                    if rule_hit <= args.attempts and today_hit <= args.attempts:
                        break
                first_rule.append(rule_hit)
                first_today.append(today_hit)
                if (lineage + 1) % max(1, args.lineages // 10) == 0:
                    done = lineage + 1
                    print(f"#   {done}/{args.lineages} null lineages, {world.count} gates, "
                          f"{time.perf_counter() - started:.0f} s; so far at K = {args.attempts}: today "
                          f"{rate(sum(h <= args.attempts for h in first_today), done)}, alpha spending "
                          f"{rate(sum(h <= args.attempts for h in first_rule), done)}", file=sys.stderr, flush=True)
            null_seconds = time.perf_counter() - started

            print("\nLineage-wise false promotions (every candidate truly no better than its head):")
            print(f"  {'K':>4}  {'today (each at 2.5%)':>20}  {'alpha spending':>16}  {'bound':>6}")
            for k in reported:
                from model_eval_gate.policy.multiplicity import alpha_spent
                print(f"  {k:>4}  {rate(sum(h <= k for h in first_today), args.lineages):>20}  "
                      f"{rate(sum(h <= k for h in first_rule), args.lineages):>16}  {alpha_spent(k):6.2%}")

            started = time.perf_counter()
            print(f"\nPower for a true +{args.improvement} AUROC at n = {args.n} (the candidate at attempt k):")
            print(f"  {'k':>4}  {'today (at 2.5%)':>16}  {'alpha spending':>16}")
            for k in reported:
                today_hits = rule_hits = 0
                for lineage in range(args.power_lineages):
                    benchmark = power_benchmark
                    head_scores, head_noise = scores(power_labels, mu0, None)
                    root = world.version(benchmark, f"pow{k}-{lineage:04d}-root", None, head_scores)
                    world.gate(root)
                    conn.execute(
                        "INSERT INTO holdout_attempts (lineage_id, benchmark_id, split_hash, split_role, attempts) "
                        "VALUES (%s, %s, %s, 'public', %s)", (root, benchmark.id, benchmark.split_hash, k - 1))
                    candidate, _ = scores(power_labels, mu1, head_noise)
                    today_hits += today_promotes(benchmark, candidate, head_scores, args.resamples)
                    result = world.gate(world.version(benchmark, f"pow{k}-{lineage:04d}-cand", root, candidate))
                    assert result["holdout"]["attempt"] == k
                    rule_hits += result["outcome"] == "promote"
                print(f"  {k:>4}  {rate(today_hits, args.power_lineages):>16}  "
                      f"{rate(rule_hits, args.power_lineages):>16}")
            power_seconds = time.perf_counter() - started
            print(f"\n# {world.count} real gates: null part {null_seconds:.0f} s, power part {power_seconds:.0f} s "
                  f"({(null_seconds + power_seconds) / max(1, world.count) * 1000:.0f} ms per gate incl. today's "
                  f"in-process bootstrap); ± is one Monte Carlo standard error")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
