"""How fast and how lean is the paired bootstrap?  Prints figures; asserts nothing.

    PYTHONPATH=daemon python benchmarks/bench_bootstrap.py [--repeats 5] [--quick] [--profile]

For n = 100,000 examples and 1,000 resamples it times, as medians of
--repeats runs (shared machines are noisy):

* the floor: drawing the same 100M positions with
  ``rng.integers(0, n, size=(rows, n))`` in the engine's own chunking, which
  any bootstrap over these examples must at least do (the engine draws
  exactly these; ``dtype=np.int32`` yields the same values, measured no
  faster here, and would slow the counting, so the draw is left as it is);
* model_eval_gate.stats.paired_bootstrap for AUROC and for log loss, wall
  clock (the compiled kernel on every core, stats.BOOTSTRAP_ENGINE "auto")
  and, on one thread, CPU time; and the numpy engine's wall clock;
* scipy.stats.bootstrap(paired=True, vectorized=True, method="percentile")
  with a rank-based AUROC (scipy.stats.rankdata per resample) and a
  vectorised log loss, in batches of 20 resamples (the fastest of 10, 20, 50,
  100 and 250 for log loss here).  scipy's AUROC is slow, so it runs fewer
  resamples and is scaled linearly to 1,000; the output says so.

Then, in a fresh subprocess, the peak resident memory (VmHWM) of
paired_bootstrap_many over all five binary metrics on 1,000,000 examples.
Linux only, for /proc/self/status.

--profile adds the AUROC engine's cost per resample, pass by pass (each pass
timed alone on one chunk of the same data, best of several): what the draw
thread does, and what the scoring thread does between two draws.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from model_eval_gate import stats  # noqa: E402

N_EXAMPLES = 100_000
N_RESAMPLES = 1000
MEMORY_EXAMPLES = 1_000_000
BINARY_METRICS = ("auroc", "average_precision", "accuracy", "log_loss", "brier")
FLOOR_TARGET = 2.0  # ours / floor, wall clock
SCIPY_TARGET = 20.0  # scipy / ours
MEMORY_TARGET_MIB = 300


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def synthetic_binary(n: int, seed: int = 20240601) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated probability models, the candidate slightly better."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.float64)
    shared = rng.normal(0.0, 1.0, n)
    candidate = 1.0 / (1.0 + np.exp(-(1.3 * (y - 0.3) + 0.8 * shared + rng.normal(0.0, 0.6, n))))
    parent = 1.0 / (1.0 + np.exp(-(1.2 * (y - 0.3) + 0.8 * shared + rng.normal(0.0, 0.6, n))))
    return y, candidate, parent


def median_seconds(run, repeats: int, clock=time.perf_counter) -> float:
    samples = []
    for _ in range(repeats):
        start = clock()
        run()
        samples.append(clock() - start)
    return statistics.median(samples)


def interleaved_medians(runs, repeats: int) -> list[float]:
    """Median seconds of each (run, clock), the runs taking turns so drifting load hits all alike."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for (run, clock), times in zip(runs, samples):
            start = clock()
            run()
            times.append(clock() - start)
    return [statistics.median(times) for times in samples]


def floor_run(n: int, n_resamples: int, rows: int, seed: int):
    def run():
        rng = np.random.default_rng(seed)
        for start in range(0, n_resamples, rows):
            rng.integers(0, n, size=(min(rows, n_resamples - start), n))
    return run


def engine_run(metric: stats.Metric, y, candidate, parent, seed: int):
    def run():
        stats.paired_bootstrap(metric, y, candidate, parent, n_resamples=N_RESAMPLES, seed=seed)
    return run


def single_threaded(run):
    def wrapped():
        previous = stats.PREFETCH_DRAWS, stats.BOOTSTRAP_THREADS
        stats.PREFETCH_DRAWS, stats.BOOTSTRAP_THREADS = False, 1
        try:
            run()
        finally:
            stats.PREFETCH_DRAWS, stats.BOOTSTRAP_THREADS = previous
    return wrapped


def numpy_engine(run):
    def wrapped():
        previous, stats.BOOTSTRAP_ENGINE = stats.BOOTSTRAP_ENGINE, "numpy"
        try:
            run()
        finally:
            stats.BOOTSTRAP_ENGINE = previous
    return wrapped


def rank_auroc_statistic(labels, scores, axis=-1):
    """AUROC per resample from mid-ranks (Mann-Whitney U), the textbook way."""
    import scipy.stats

    ranks = scipy.stats.rankdata(scores, axis=axis)
    positives = labels.sum(axis=axis)
    negatives = labels.shape[axis] - positives
    u = (ranks * labels).sum(axis=axis) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return u / (positives * negatives)


def scipy_delta_statistic(per_model):
    def statistic(labels, candidate, parent, axis=-1):
        return per_model(labels, candidate, axis) - per_model(labels, parent, axis)
    return statistic


def log_loss_statistic(labels, scores, axis=-1):
    p = np.clip(scores, stats.PROBABILITY_CLIP, 1 - stats.PROBABILITY_CLIP)
    return -(labels * np.log(p) + (1 - labels) * np.log1p(-p)).mean(axis=axis)


def scipy_run(statistic, y, candidate, parent, n_resamples: int, batch: int, seed: int):
    import scipy.stats

    generator_keyword = "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"

    def run():
        scipy.stats.bootstrap(
            (y, candidate, parent), scipy_delta_statistic(statistic), paired=True, vectorized=True,
            method="percentile", n_resamples=n_resamples, batch=batch,
            **{generator_keyword: np.random.default_rng(seed)},
        )
    return run


# Runs in a fresh interpreter that imports only numpy and the engine (not
# scipy), so its peak RSS is the engine's, plus the interpreter and the data.
# The peak is VmHWM from /proc (Linux): ru_maxrss would report the parent's
# high-water mark, which a child inherits across fork and exec.
MEMORY_PROBE = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {daemon!r})
    sys.path.insert(0, {benchmarks!r})
    from bench_bootstrap import synthetic_binary
    from model_eval_gate import stats

    def high_water_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    y, candidate, parent = synthetic_binary({n})
    before = high_water_kib()
    start = time.perf_counter()
    results = stats.paired_bootstrap_many("binary", {metrics!r}, y, candidate, parent,
                                          n_resamples={n_resamples}, seed=7)
    seconds = time.perf_counter() - start
    peak = high_water_kib()
    print(json.dumps({{"before_kib": before, "peak_kib": peak, "seconds": seconds,
                      "chunk_rows": stats.default_chunk_size(
                          {n}, stats.chunk_bytes_per_example([stats.metric_for("binary", m) for m in {metrics!r}]))}}))
""")


def measure_memory(n: int, n_resamples: int) -> dict:
    probe = MEMORY_PROBE.format(daemon=str(ROOT / "daemon"), benchmarks=str(ROOT / "benchmarks"), n=n,
                                metrics=list(BINARY_METRICS), n_resamples=n_resamples)
    completed = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                               env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(completed.stdout.strip().splitlines()[-1])


def auroc_profile(y, candidate, parent, seed: int, repeats: int = 300) -> None:
    """Microseconds per resample of each pass of the AUROC delta, on one engine-sized chunk."""
    n = y.size
    metric = stats.metric_for("binary", "auroc")
    rows = stats.default_chunk_size(n, stats.chunk_bytes_per_example([metric]))
    split = stats._LabelSplit(y)
    layouts = {"candidate": stats._RankLayout(candidate, split), "parent": stats._RankLayout(parent, split)}
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(rows, n))
    counts = np.empty((rows, n), dtype=stats._count_dtype(n))
    stats._count_into(counts, indices)
    workspace = stats._Workspace()
    view = stats._CountView(counts, split, workspace, row_total=n)
    negatives = np.empty((rows, split.negatives.size), dtype=counts.dtype)
    padded = np.zeros((rows, split.negatives.size + 1), dtype=counts.dtype)
    brackets = np.empty((rows, split.positives.size), dtype=counts.dtype)
    layout = layouts["candidate"]

    def best(run) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats // 5):
                run()
            times.append((time.perf_counter() - start) / (repeats // 5))
        return min(times) / rows * 1e6

    steps = [
        ("draw thread", "draw the positions (Generator.integers)", lambda: rng.integers(0, n, size=(rows, n))),
        ("scoring", "count the draws (ufunc.at; holds the GIL)", lambda: stats._count_into(counts, indices)),
        ("scoring", "positives' counts: gather and total",
         lambda: stats._CountView(counts, split, workspace, row_total=n)),
        ("scoring", "per model: gather negatives' counts in score order",
         lambda: stats._take_columns(counts, layout.negatives_by_score, negatives)),
        ("scoring", "per model: cumulative sum", lambda: np.cumsum(negatives, axis=1, out=padded[:, 1:])),
        ("scoring", "per model: gather the brackets at the positives",
         lambda: stats._take_columns(padded, layout.below, brackets)),
        ("scoring", "both models: one widening weighted sum",
         lambda: np.einsum("ij,ij->i", view.positive_counts, brackets, dtype=np.int64)),
        ("scoring", "the whole AUROC delta, both models (incl. the above)",
         lambda: stats._auroc_twice_wins_delta(stats._CountView(counts, split, workspace, row_total=n),
                                               layouts["candidate"], layouts["parent"])),
    ]
    print(f"auroc engine profile: microseconds per resample (n = {n:,}, chunks of {rows}), each pass alone")
    for thread, name, run in steps:
        print(f"  {thread:12} {name:58} {best(run):8.1f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure; the median is printed")
    parser.add_argument("--scipy-auroc-resamples", type=int, default=20,
                        help="resamples scipy's AUROC actually runs (scaled to 1000)")
    parser.add_argument("--memory-resamples", type=int, default=100,
                        help="resamples for the 1M-example memory run (the peak does not grow with it)")
    parser.add_argument("--quick", action="store_true", help="2 repeats, smaller scipy and memory runs")
    parser.add_argument("--profile", action="store_true", help="also time each pass of the AUROC engine")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.scipy_auroc_resamples, args.memory_resamples = 2, 10, 20

    y, candidate, parent = synthetic_binary(N_EXAMPLES)
    seed = stats.derive_seed("bench-candidate", "bench-parent")
    print(f"paired bootstrap, n = {N_EXAMPLES:,} examples, B = {N_RESAMPLES:,} resamples, "
          f"median of {args.repeats} runs, {os.cpu_count()} CPUs")
    import scipy

    print(f"numpy {np.__version__}, scipy {scipy.__version__}, python {sys.version.split()[0]}")
    print()
    if args.profile:
        auroc_profile(y, candidate, parent, seed)

    for name, scipy_statistic, scipy_resamples in (
        ("auroc", rank_auroc_statistic, args.scipy_auroc_resamples),
        ("log_loss", log_loss_statistic, N_RESAMPLES),
    ):
        metric = stats.metric_for("binary", name)
        rows = stats.default_chunk_size(N_EXAMPLES, stats.chunk_bytes_per_example([metric]))
        engine_run(metric, y[:1000], candidate[:1000], parent[:1000], seed)()  # load the kernel first
        floor, floor_cpu, ours, ours_cpu, ours_numpy = interleaved_medians(
            [(floor_run(N_EXAMPLES, N_RESAMPLES, rows, seed), time.perf_counter),
             (floor_run(N_EXAMPLES, N_RESAMPLES, rows, seed), time.thread_time),
             (engine_run(metric, y, candidate, parent, seed), time.perf_counter),
             (single_threaded(engine_run(metric, y, candidate, parent, seed)), time.thread_time),
             (numpy_engine(engine_run(metric, y, candidate, parent, seed)), time.perf_counter)],
            args.repeats)
        scipy_repeats = max(1, min(args.repeats, 3)) if name == "auroc" else args.repeats
        batch = max(1, min(scipy_resamples, 20))  # bounds scipy's (batch, n) arrays
        scipy_seconds = median_seconds(
            scipy_run(scipy_statistic, y, candidate, parent, scipy_resamples, batch, seed), scipy_repeats)
        scipy_scaled = scipy_seconds * N_RESAMPLES / scipy_resamples

        print(f"{name}  (engine chunk: {rows} resamples)")
        print(f"  floor: rng.integers, same chunking     {floor:8.3f} s wall   {floor_cpu:8.3f} s CPU")
        print(f"  model_eval_gate paired_bootstrap       {ours:8.3f} s wall   {ours_cpu:8.3f} s CPU "
              f"(CPU: on one thread)")
        print(f"  the same with the numpy engine         {ours_numpy:8.3f} s wall")
        note = "" if scipy_resamples == N_RESAMPLES else (
            f"  [ran {scipy_resamples} resamples in {scipy_seconds:.2f} s, scaled x{N_RESAMPLES / scipy_resamples:g}]")
        print(f"  scipy.stats.bootstrap(paired=True)     {scipy_scaled:8.3f} s wall{note}")
        print(f"  ratios: ours/floor {ours / floor:.2f}x wall, {ours_cpu / floor_cpu:.2f}x CPU;  "
              f"scipy/ours {scipy_scaled / ours:.1f}x;  scipy/floor {scipy_scaled / floor:.1f}x")
        print(f"  targets: within {FLOOR_TARGET:g}x of the floor (wall): {verdict(ours / floor < FLOOR_TARGET)};  "
              f"at least {SCIPY_TARGET:g}x faster than scipy: {verdict(scipy_scaled / ours >= SCIPY_TARGET)}")
        if scipy_scaled / floor < SCIPY_TARGET:
            print(f"  (scipy takes only {scipy_scaled / floor:.1f}x the floor here: {SCIPY_TARGET:g}x faster than "
                  f"scipy would mean finishing before the positions are drawn)")
        print()

    memory = measure_memory(MEMORY_EXAMPLES, args.memory_resamples)
    print(f"peak memory, paired_bootstrap_many({', '.join(BINARY_METRICS)})")
    print(f"  n = {MEMORY_EXAMPLES:,}, B = {args.memory_resamples} in chunks of {memory['chunk_rows']} "
          f"(the peak does not grow with B), {memory['seconds']:.1f} s")
    print(f"  max RSS of a fresh process: {memory['peak_kib'] / 1024:.0f} MiB, of which "
          f"{memory['before_kib'] / 1024:.0f} MiB before the call (interpreter, numpy, the three input arrays); "
          f"the call added {(memory['peak_kib'] - memory['before_kib']) / 1024:.0f} MiB")
    print(f"  target: under {MEMORY_TARGET_MIB} MB: {verdict(memory['peak_kib'] * 1024 < MEMORY_TARGET_MIB * 10**6)}")


if __name__ == "__main__":
    main()
