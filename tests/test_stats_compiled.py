"""statistics/compiled_bootstrap.py: the compiled kernel gives stats.py's numpy results bit for bit.

(Named to run after the sandbox tests: importing numba adds ~130 MB to this
process for good, and a sandbox's reported peak RSS (ru_maxrss) includes
the RSS of the process it was forked from.)

The numpy path is the reference (tests/test_stats.py holds it to scipy and
to direct loops); here every result of the kernel must EQUAL it, for every
task, with ties, whatever the chunking and the number of threads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_eval_gate import stats
from model_eval_gate.statistics import compiled_bootstrap

BINARY = ("auroc", "average_precision", "accuracy", "log_loss", "brier")

if not compiled_bootstrap.AVAILABLE:  # numba is a dependency: its absence is a broken install, never a skip
    raise RuntimeError("numba does not import: it is a dependency of model-eval-gate; pip install -e '.[test]'")


def run(engine: str, *args, threads: int | None = None, **kwargs):
    previous = stats.BOOTSTRAP_ENGINE, stats.BOOTSTRAP_THREADS
    stats.BOOTSTRAP_ENGINE, stats.BOOTSTRAP_THREADS = engine, threads
    try:
        return stats.paired_bootstrap_many(*args, **kwargs)
    except stats.MetricUndefined as exc:
        return f"MetricUndefined: {exc}"
    finally:
        stats.BOOTSTRAP_ENGINE, stats.BOOTSTRAP_THREADS = previous


def binary_case(rng: np.random.Generator):
    n = int(rng.integers(2, 1500))
    y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.float64)
    candidate = np.clip(0.3 * y + rng.random(n) * 0.7, 0.0, 1.0)
    parent = np.clip(candidate + rng.normal(0.0, 0.2, n), 0.0, 1.0)
    decimals = rng.choice([0, 1, 2, 3, 0])  # 0: no rounding; 1-3: many ties, across labels too
    if decimals:
        candidate, parent = np.round(candidate, decimals), np.round(parent, decimals)
    return n, y, candidate, parent


def test_binary_results_equal_the_numpy_engine_whatever_the_chunks_and_threads():
    rng = np.random.default_rng(20261202)
    for case in range(40):
        n, y, candidate, parent = binary_case(rng)
        n_resamples = int(rng.integers(2, 250))
        seed = int(rng.integers(0, 2**63))
        reference = run("numpy", "binary", list(BINARY), y, candidate, parent, n_resamples=n_resamples, seed=seed)
        for chunk_size, threads in ((None, None), (1, 2), (7, 3), (None, 1)):
            assert run("compiled", "binary", list(BINARY), y, candidate, parent, n_resamples=n_resamples,
                       seed=seed, chunk_size=chunk_size, threads=threads) == reference, (case, n, chunk_size, threads)


def test_single_metrics_and_other_tasks_equal_the_numpy_engine():
    rng = np.random.default_rng(7)
    for case in range(15):
        n = int(rng.integers(2, 2000))
        n_resamples, seed = int(rng.integers(2, 200)), int(rng.integers(0, 2**40))
        _, y, candidate, parent = binary_case(rng)
        for name in BINARY:
            assert (run("compiled", "binary", [name], y, candidate, parent, n_resamples=n_resamples, seed=seed)
                    == run("numpy", "binary", [name], y, candidate, parent, n_resamples=n_resamples, seed=seed))
        labels = rng.normal(size=n)
        values = (labels + rng.normal(0.0, 1.0, n), labels + rng.normal(0.0, 1.2, n))
        assert (run("compiled", "regression", ["rmse", "mae"], labels, *values, n_resamples=n_resamples, seed=seed)
                == run("numpy", "regression", ["rmse", "mae"], labels, *values, n_resamples=n_resamples, seed=seed))
        classes = int(rng.integers(2, 11))
        labels = rng.integers(0, classes, n).astype(np.float64)
        probabilities = (rng.dirichlet(np.ones(classes), n), rng.dirichlet(np.ones(classes), n))
        assert (run("compiled", "multiclass", ["accuracy", "log_loss"], labels, *probabilities,
                    n_resamples=n_resamples, seed=seed)
                == run("numpy", "multiclass", ["accuracy", "log_loss"], labels, *probabilities,
                       n_resamples=n_resamples, seed=seed))
        # Self-scored: real values, small integers (summed exactly in int8) and integers too large for int8.
        scored = tuple(np.column_stack([rng.normal(size=n), rng.integers(-3, 4, n), rng.integers(0, 1000, n)])
                       .astype(np.float64) for _ in range(2))
        kwargs = dict(n_resamples=n_resamples, seed=seed,
                      self_scored_higher_is_better={"a": True, "b": False, "c": True})
        assert (run("compiled", "self_scored", ["a", "b", "c"], None, *scored, **kwargs)
                == run("numpy", "self_scored", ["a", "b", "c"], None, *scored, **kwargs))


def test_a_count_past_255_is_recounted_wide():
    """uint8 counts wrap at 256: such a row must be scored with int32 counts, not wrapped ones.

    Real draws of n >= 256 reach 256 copies of one example essentially
    never, so the row is made by hand: every draw lands on example 0 or 1.
    """
    n = 300
    rng = np.random.default_rng(3)
    y = np.zeros(n)
    y[::3] = 1.0
    candidate, parent = np.round(rng.random(n), 1), np.round(rng.random(n), 1)
    positive = y == 1
    ranks = compiled_bootstrap.rank_orders((candidate, parent), positive)
    positives = np.flatnonzero(positive).astype(np.int64)
    values = np.ascontiguousarray(np.stack([rng.normal(size=n), rng.normal(size=n)]))
    drawn = np.where(rng.random((2, n)) < 0.5, 0, 1).astype(np.int32)  # row 1: ~150 on each, fits a uint8
    drawn[0, :] = 0  # row 0: all 300 draws on example 0 (a positive): wraps a uint8
    outputs = (np.empty((2, 2)), np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2)), np.zeros(2, dtype=np.int64))
    narrow = np.zeros(n, dtype=np.uint8)
    means = (values, np.arange(2), np.empty((0, n), dtype=np.int8), np.empty(0, dtype=np.int64),
             compiled_bootstrap.pairwise_plan(n))
    compiled_bootstrap._score_rows(
        drawn, *means, ranks.orders, ranks.flags, ranks.untied, positives, True,
        *compiled_bootstrap.rank_workspace(positives.size, True), narrow, np.empty(n, dtype=np.uint8), *outputs)
    assert not narrow.any()  # left zeroed for the next row
    mean_sums, twice_wins, ap_sums, positive_totals = outputs
    split = stats._LabelSplit(y)
    layouts = [stats._RankLayout(candidate, split), stats._RankLayout(parent, split)]
    for r in range(2):
        counts = np.bincount(drawn[r], minlength=n).astype(np.int64)[None, :]
        assert mean_sums[r].tolist() == np.multiply(counts, values, dtype=np.float64).sum(axis=1).tolist()
        view = stats._CountView(counts, split)
        assert positive_totals[r] == view.positive_total[0]
        for model, layout in enumerate(layouts):
            role = f"model {model}"  # the view caches cumulative counts per role
            assert twice_wins[r, model] == stats._auroc_twice_wins(view, layout, role)[0]
            assert ap_sums[r, model] / positive_totals[r] == stats._average_precision(view, layout, role)[0]


def test_the_kernels_stream_is_numpys():
    """Generator.integers(0, n) values, row after row, a rejection-heavy bound (n = 3 * 2**29) included."""
    assert compiled_bootstrap.stream_matches_numpy()
    for seed, n in ((0, 2), (1, 1000), (2**40 + 3, 1_000_003), (5, 3 * 2**29), (6, 2**31 - 2)):
        state, reference = compiled_bootstrap.generator_state(seed), np.random.default_rng(seed)
        for length in (1, 7, 1000):  # odd lengths leave a half-word buffered for the next row
            ours = np.empty(length, dtype=np.int32)
            compiled_bootstrap._draw(state, n, ours, False)
            assert ours.tolist() == reference.integers(0, n, size=length).tolist(), (seed, n, length)


def test_own_stream_and_numpy_positions_give_the_same_sums():
    rng = np.random.default_rng(11)
    n, y, candidate, parent = binary_case(rng)
    positive = y == 1
    if positive.all() or not positive.any():
        y[:2], positive = [0.0, 1.0], y == 1
    ranks = compiled_bootstrap.rank_orders((candidate, parent), positive)
    results = [compiled_bootstrap.resampled_sums(
        n_examples=n, n_resamples=57, seed=99, mean_columns=[candidate - parent, np.sign(candidate - parent)],
        ranks=ranks,
        positives=np.flatnonzero(positive), want_ap=True, threads=2, rows=5, own_stream=own) for own in (True, False)]
    for field in ("mean_sums", "twice_wins", "ap_sums", "positive_totals"):
        assert np.array_equal(getattr(results[0], field), getattr(results[1], field)), field


def test_a_wrapped_count_is_drawn_again_and_counted_wide():
    """_draw reports a uint8 count that wraps; _score_count_rows then redraws the row from its saved state."""
    n = 300
    full = np.full(n, 255, dtype=np.uint8)
    assert compiled_bootstrap._draw(compiled_bootstrap.generator_state(1), n, full, True)  # 255 + 1 wraps
    fresh = np.zeros(n, dtype=np.uint8)
    assert not compiled_bootstrap._draw(compiled_bootstrap.generator_state(1), n, fresh, True)

    rng = np.random.default_rng(4)
    y = (rng.random(n) < 0.4).astype(np.float64)
    candidate, parent = rng.random(n), np.round(rng.random(n), 1)
    positive = y == 1
    ranks = compiled_bootstrap.rank_orders((candidate, parent), positive)
    positives = np.flatnonzero(positive).astype(np.int64)
    values = np.ascontiguousarray(np.stack([rng.normal(size=n)]))
    means = (values, np.arange(1), np.empty((0, n), dtype=np.int8), np.empty(0, dtype=np.int64),
             compiled_bootstrap.pairwise_plan(n))
    states = np.stack([compiled_bootstrap.generator_state(seed) for seed in (8, 9)])
    narrow = np.full((2, n), 77, dtype=np.uint8)  # garbage: row 0 is marked wrapped and must not be read
    drawn = np.empty(n, dtype=np.int32)
    compiled_bootstrap._draw(states[1].copy(), n, drawn, False)
    narrow[1] = np.bincount(drawn, minlength=n)
    outputs = (np.empty((2, 1)), np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2)), np.zeros(2, dtype=np.int64))
    compiled_bootstrap._score_count_rows(
        narrow, np.array([True, False]), states, *means, ranks.orders, ranks.flags, ranks.untied, positives, True,
        *compiled_bootstrap.rank_workspace(positives.size, True), np.empty(n, dtype=np.uint8),
        np.empty((compiled_bootstrap.STACK_DEPTH, 2)), *outputs)
    split = stats._LabelSplit(y)
    layouts = [stats._RankLayout(candidate, split), stats._RankLayout(parent, split)]
    for r, seed in enumerate((8, 9)):
        counts = np.bincount(np.random.default_rng(seed).integers(0, n, n), minlength=n)[None, :]
        assert outputs[0][r].tolist() == np.multiply(counts, values, dtype=np.float64).sum(axis=1).tolist()
        view = stats._CountView(counts, split)
        for model, layout in enumerate(layouts):
            assert outputs[1][r, model] == stats._auroc_twice_wins(view, layout, f"model {model}")[0]
            assert (outputs[2][r, model] / outputs[3][r]
                    == stats._average_precision(view, layout, f"model {model}")[0])


def test_auto_uses_the_kernel_for_large_runs_only(monkeypatch):
    monkeypatch.setattr(stats, "BOOTSTRAP_ENGINE", "auto")
    assert stats._compiled_engine(1000, 1000) is None  # numpy is quicker than loading the kernel
    assert stats._compiled_engine(100_000, 1000) is compiled_bootstrap
    monkeypatch.setattr(stats, "BOOTSTRAP_ENGINE", "numpy")
    assert stats._compiled_engine(100_000, 1000) is None
    monkeypatch.setattr(stats, "BOOTSTRAP_ENGINE", "compiled")
    assert stats._compiled_engine(10, 10) is compiled_bootstrap
    monkeypatch.setattr(stats, "BOOTSTRAP_ENGINE", "fast")
    with pytest.raises(ValueError, match="BOOTSTRAP_ENGINE must be"):
        stats._compiled_engine(10, 10)


def test_the_kernel_refuses_arguments_of_another_type():
    """Compiled for fixed signatures: a wrong dtype is an error, never a silent new compilation."""
    with pytest.raises(TypeError):
        compiled_bootstrap._pairwise_sum(np.ones(10, dtype=np.float32), 0, 10)


def test_designs_are_resampled_by_the_design_path_whatever_the_engine(monkeypatch):
    """Groups, strata and few positives never reach the kernel: the same bits under every engine, run after run.

    The kernel draws independent examples; statistics/resampling.py draws
    design units. A design run that reached _compiled_engine would be
    resampling the wrong thing, so the probe fails the test if it is asked.
    """
    from types import SimpleNamespace

    from model_eval_gate.statistics.design import ResamplingDesign

    rng = np.random.default_rng(12)
    n_groups, per_group = 24, 30
    y = (rng.random(n_groups * per_group) < 0.4).astype(np.float64)
    groups = np.repeat(np.arange(n_groups), per_group)
    candidate = y * 1.0 + rng.normal(0.0, 0.5, n_groups)[groups] + rng.normal(0.0, 1.0, y.size)
    parent = candidate + rng.normal(0.0, 0.4, y.size)
    probabilities = (1.0 / (1.0 + np.exp(-candidate)), 1.0 / (1.0 + np.exp(-parent)))
    metrics = ("auroc", "average_precision", "brier", "accuracy")
    grouped = SimpleNamespace(task="binary", self_scored=False, metrics=metrics, labels=y,
                              higher_is_better={m: stats.metric_for("binary", m).higher_is_better for m in metrics},
                              resampling_design=ResamplingDesign.from_columns(y.size, groups=groups))
    few = np.zeros(400)
    few[:12] = 1.0
    few_candidate = np.clip(0.2 * few + rng.random(400), 0.0, 1.0)
    few_parent = np.clip(few_candidate + rng.normal(0.0, 0.1, 400), 0.0, 1.0)
    few_positives = SimpleNamespace(task="binary", self_scored=False, metrics=("auroc",), labels=few,
                                    higher_is_better={"auroc": True})

    def compare(engine: str, threads: int | None):
        monkeypatch.setattr(stats, "BOOTSTRAP_ENGINE", engine)
        monkeypatch.setattr(stats, "BOOTSTRAP_THREADS", threads)
        return (stats.compare_on_benchmark(grouped, *probabilities, n_resamples=1000, seed=5),
                stats.compare_on_benchmark(few_positives, few_candidate, few_parent, n_resamples=1000, seed=5))

    reference = compare("numpy", None)
    assert reference[0]["auroc"].interval == "few_groups_t" and reference[0]["auroc"].resampled == "24 groups"
    assert reference[1]["auroc"].interval == "few_positives_t"

    def no_kernel(*args, **kwargs):
        raise AssertionError("a design run asked for the independent-example kernel")

    monkeypatch.setattr(stats, "COMPILED_MIN_DRAWS", 0)
    monkeypatch.setattr(stats, "_compiled_engine", no_kernel)
    for engine, threads in (("compiled", None), ("compiled", 1), ("auto", 2), ("numpy", None)):
        assert compare(engine, threads) == reference, (engine, threads)


def test_the_scale_benchmarks_profile_runs_on_the_kernel_as_it_is():
    """benchmarks/bench_bootstrap_scale.py calls the kernel's passes one by one; a changed signature must fail here."""
    import importlib.util
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_bootstrap_scale.py"
    spec = importlib.util.spec_from_file_location("bench_bootstrap_scale", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(5)
    y = (rng.random(5000) < 0.3).astype(np.float64)
    profile = bench.kernel_profile(y, rng.random(5000), rng.random(5000), repeats=1)
    assert len(profile) > 10 and all(milliseconds >= 0 for _, milliseconds in profile)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 31, 32, 33, 1000, 4099])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_the_vectorised_untied_scan_is_the_scan_written_out(n, share):
    """16 examples per step, prefix sums across lanes and packed stores: the same integers as the definition.

    Twice the AUROC pair count is 2 x sum over positives of count x (negative
    weight below); each positive's row is (count, positive weight below,
    negative weight below), in score order.  Checked around every block
    boundary, with no positive, some and only positives, and for the int32
    counts of a wrapped resample.
    """
    rng = np.random.default_rng(n)
    positive = rng.random(n) < share
    ranks = compiled_bootstrap.rank_orders((rng.random(n), rng.random(n)), positive)
    for counts in (rng.poisson(1.0, n).astype(np.uint8), rng.poisson(1.0, n).astype(np.int32) * 1000):
        ordered = counts[ranks.orders[0]]
        labels = (ranks.flags[0] & 1).astype(bool)
        weights = ordered.astype(np.int64)
        negative_below = np.cumsum(np.where(labels, 0, weights)) - np.where(labels, 0, weights)
        positive_below = np.cumsum(np.where(labels, weights, 0)) - np.where(labels, weights, 0)
        expected = 2 * int(np.sum(np.where(labels, weights * negative_below, 0)))
        positive_rows, *_ = compiled_bootstrap.rank_workspace(int(labels.sum()), True)
        assert compiled_bootstrap._rank_scan_untied(ordered, ranks.flags[0], True, positive_rows) == expected
        assert compiled_bootstrap._rank_scan_untied(ordered, ranks.flags[0], False, positive_rows) == expected
        kept = int(labels.sum())
        assert positive_rows[0, :kept].tolist() == weights[labels].tolist()
        assert positive_rows[1, :kept].tolist() == positive_below[labels].tolist()
        assert positive_rows[2, :kept].tolist() == negative_below[labels].tolist()


@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 1000, 4099])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("levels", [1, 3, 40, 10**9])
def test_the_vectorised_tied_scan_is_the_scan_written_out(n, share, levels):
    """The tie-group scan, 16 at a time, against its definition: groups of every length, across block boundaries.

    A positive wins over the negatives below its group and ties with those in
    it: 2 x wins = 2 x sum of count x (negative weight below the group) +
    sum over groups of (positive weight in it) x (negative weight in it).
    levels: how many distinct scores (1: one group of everything).
    """
    rng = np.random.default_rng(n + levels)
    positive = rng.random(n) < share
    scores = rng.integers(0, levels, n).astype(np.float64)
    ranks = compiled_bootstrap.rank_orders((scores, scores[::-1].copy()), positive)
    ordered_scores = scores[ranks.orders[0]]
    for counts in (rng.poisson(1.0, n).astype(np.uint8), rng.poisson(1.0, n).astype(np.int32) * 1000):
        ordered = counts[ranks.orders[0]]
        labels = (ranks.flags[0] & 1).astype(bool)
        weights = ordered.astype(np.int64)
        negative, positive_weight = np.where(labels, 0, weights), np.where(labels, weights, 0)
        groups = np.unique(ordered_scores, return_inverse=True)[1]
        first = np.searchsorted(groups, groups)  # each example's group's first position (groups ascend)
        negative_below = (np.cumsum(negative) - negative)[first]
        positive_below = (np.cumsum(positive_weight) - positive_weight)[first]
        in_group = [(positive_weight[groups == g].sum(), negative[groups == g].sum()) for g in range(groups.max() + 1)]
        expected = 2 * int(np.sum(positive_weight * negative_below)) + sum(int(p) * int(q) for p, q in in_group)
        positive_rows, *_ = compiled_bootstrap.rank_workspace(int(labels.sum()), True)
        assert compiled_bootstrap._rank_scan(ordered, ranks.flags[0], True, positive_rows) == expected
        assert compiled_bootstrap._rank_scan(ordered, ranks.flags[0], False, positive_rows) == expected
        kept = int(labels.sum())
        assert positive_rows[0, :kept].tolist() == weights[labels].tolist()
        assert positive_rows[1, :kept].tolist() == positive_below[labels].tolist()
        assert positive_rows[2, :kept].tolist() == negative_below[labels].tolist()


GENERIC_TARGET_PROBE = """
import sys
import numpy as np
from model_eval_gate import stats
from model_eval_gate.statistics import rank_scans
rng = np.random.default_rng(5)
for decimals in (0, 2):
    n = 3001
    y = (rng.random(n) < 0.3).astype(np.float64)
    candidate = np.clip(0.3 * y + rng.random(n) * 0.7, 0.0, 1.0)
    parent = np.clip(candidate + rng.normal(0.0, 0.2, n), 0.0, 1.0)
    if decimals:
        candidate, parent = np.round(candidate, decimals), np.round(parent, decimals)
    results = []
    for engine in ("numpy", "compiled"):
        stats.BOOTSTRAP_ENGINE = engine
        results.append(stats.paired_bootstrap_many("binary", list(sys.argv[1].split(",")), y, candidate, parent,
                                                   n_resamples=300, seed=11))
    assert results[0] == results[1], decimals
assembly = next(iter(rank_scans._rank_scan_untied.inspect_asm().values()))
print("avx512" if "zmm" in assembly else "baseline")
"""


def test_the_kernel_gives_the_same_bits_on_a_cpu_without_avx512(tmp_path):
    """The vector passes are LLVM IR, lowered for whatever CPU runs them: on plain x86-64 the same results.

    numba compiles for the host; NUMBA_CPU_NAME=generic makes it compile for
    baseline x86-64 (SSE2: no AVX-512 compress, no 512-bit registers), in a
    fresh cache so nothing compiled for this machine is reused.
    """
    import os
    import subprocess
    import sys
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    completed = subprocess.run([sys.executable, "-c", GENERIC_TARGET_PROBE, ",".join(BINARY)], env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == "baseline"
