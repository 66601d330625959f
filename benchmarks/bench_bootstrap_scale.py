"""The paired bootstrap at a million examples: every binary metric, multiclass, regression, CSV.

    PYTHONPATH=daemon python benchmarks/bench_bootstrap_scale.py [--repeats 3] [--quick]

Prints figures; asserts nothing.  In one run, on 1,000,000 examples and
1,000 resamples (medians of --repeats interleaved runs; this machine is
shared, so the ratios to the floor measured in the same run are the figures
to quote):

* the floor: drawing the 10^9 positions alone, ``rng.integers(0, n,
  size=(1, n))`` row after row on one core (int64, as the numpy engine
  draws; the kernel draws the same values as int32);
* paired_bootstrap_many over auroc, average_precision, accuracy, log_loss
  and brier with the compiled kernel (wall clock, and CPU time of all
  threads), and with the numpy engine (fewer resamples, scaled);
* scipy.stats.bootstrap(paired=True, vectorized=True, method="percentile")
  for each of the five metrics (a rank-sum AUROC, a sort-based average
  precision, vectorised means), on a few resamples, scaled to 1,000;
* the same five metrics with both models' scores rounded to 3 decimals
  (tie groups, as real scores have them), and multiclass (10 classes:
  accuracy, log_loss) and regression (rmse, mae), against the same floor;
* the kernel's passes one by one (CPU microseconds per resample, one
  thread): what a resample costs and where;
* in fresh processes: peak memory of the 1M all-metrics run, and the cost
  of importing numba and loading the kernel's cached machine code;
* reading a 1M-row predictions.csv with model_eval_gate.predictions next to
  numpy.loadtxt and (if installed) pyarrow.csv of the same bytes.
"""
from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_bootstrap import synthetic_binary  # noqa: E402
from model_eval_gate import stats  # noqa: E402
from model_eval_gate.statistics import compiled_bootstrap  # noqa: E402

N = 1_000_000
B = 1000
BINARY = ("auroc", "average_precision", "accuracy", "log_loss", "brier")
WALL_TARGET_SECONDS = 5.0
FLOOR_TARGET = 1.5
MEMORY_TARGET_MB = 300


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def interleaved(runs: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU (all threads of this process) seconds of each run, taking turns."""
    samples = {name: {"wall": [], "cpu": []} for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            samples[name]["wall"].append(time.perf_counter() - wall)
            samples[name]["cpu"].append(time.process_time() - cpu)
    return {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}


def floor_run(n: int, n_resamples: int, dtype=np.int64):
    def run():
        rng = np.random.default_rng(1)
        for _ in range(n_resamples):
            rng.integers(0, n, size=(1, n), dtype=dtype)
    return run


def engine_run(engine: str, task: str, metrics, y, candidate, parent, n_resamples: int):
    def run():
        previous, stats.BOOTSTRAP_ENGINE = stats.BOOTSTRAP_ENGINE, engine
        try:
            stats.paired_bootstrap_many(task, list(metrics), y, candidate, parent, n_resamples=n_resamples, seed=7)
        finally:
            stats.BOOTSTRAP_ENGINE = previous
    return run


def multiclass_data(n: int, classes: int = 10, seed: int = 5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.float64)
    shared = rng.normal(0.0, 1.0, (n, classes))

    def model(signal: float) -> np.ndarray:
        logits = signal * np.eye(classes)[y.astype(int)] + shared + rng.normal(0.0, 0.7, (n, classes))
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    return y, model(1.3), model(1.2)


def regression_data(n: int, seed: int = 6):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    shared = rng.normal(0.0, 0.5, n)
    return y, y + shared + rng.normal(0.0, 0.8, n), y + shared + rng.normal(0.0, 0.9, n)


# --------------------------------------------------------------------------
# scipy, the textbook way, per metric
# --------------------------------------------------------------------------


def _auroc_rows(labels, scores, axis=-1):
    import scipy.stats

    ranks = scipy.stats.rankdata(scores, axis=axis)
    positives = labels.sum(axis=axis)
    negatives = labels.shape[axis] - positives
    return ((ranks * labels).sum(axis=axis) - positives * (positives + 1) / 2) / (positives * negatives)


def _average_precision_rows(labels, scores, axis=-1):
    # Step-wise AP with ties grouped: sort descending, precision at the last
    # example of each tie group, weighted by the positives in it.
    order = np.argsort(-scores, axis=axis, kind="stable")
    s = np.take_along_axis(scores, order, axis=axis)
    lab = np.take_along_axis(labels, order, axis=axis)
    true_positives = np.cumsum(lab, axis=axis)
    seen = np.arange(1, s.shape[axis] + 1)
    last = np.ones_like(s, dtype=bool)
    last[..., :-1] = s[..., 1:] != s[..., :-1]
    tp_at = np.where(last, true_positives, 0.0)
    previous = np.maximum.accumulate(np.where(last, true_positives, 0.0), axis=axis)
    previous = np.concatenate([np.zeros_like(previous[..., :1]), previous[..., :-1]], axis=axis)
    gained = np.where(last, tp_at - previous, 0.0)
    return (gained * true_positives / seen).sum(axis=axis) / true_positives[..., -1]


def _mean_rows(per_example):
    def statistic(labels, scores, axis=-1):
        return per_example(labels, scores).mean(axis=axis)
    return statistic


def _log_loss(labels, scores):
    p = np.clip(scores, stats.PROBABILITY_CLIP, 1 - stats.PROBABILITY_CLIP)
    return -(labels * np.log(p) + (1 - labels) * np.log1p(-p))


SCIPY_BINARY = {
    "auroc": _auroc_rows,
    "average_precision": _average_precision_rows,
    "accuracy": _mean_rows(lambda labels, scores: ((scores > 0.5) == (labels == 1)).astype(np.float64)),
    "log_loss": _mean_rows(_log_loss),
    "brier": _mean_rows(lambda labels, scores: np.square(scores - labels)),
}


def scipy_seconds(statistic, y, candidate, parent, n_resamples: int) -> float:
    import scipy.stats

    keyword = "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"

    def delta(labels, cand, par, axis=-1):
        return statistic(labels, cand, axis) - statistic(labels, par, axis)

    start = time.perf_counter()
    scipy.stats.bootstrap((y, candidate, parent), delta, paired=True, vectorized=True, method="percentile",
                          n_resamples=n_resamples, batch=1, **{keyword: np.random.default_rng(7)})
    return time.perf_counter() - start


# --------------------------------------------------------------------------
# The kernel's passes, one by one
# --------------------------------------------------------------------------


def kernel_profile(y, candidate, parent, repeats: int = 9) -> list[tuple[str, float]]:
    """CPU milliseconds per resample of each pass, on one thread, median of `repeats`."""
    cb = compiled_bootstrap
    n = y.size
    positive = y == 1
    ranks = cb.rank_orders((candidate, parent), positive)
    positives = np.flatnonzero(positive).astype(np.int64)
    rng = np.random.default_rng(1)
    drawn = rng.integers(0, n, size=(1, n), dtype=np.int32)
    counts = np.zeros(n, dtype=np.uint8)
    cb._count(drawn[0], counts)
    sorted_counts = np.empty(n, dtype=np.uint8)
    rows, terms, ap_plan, stack = cb.rank_workspace(positives.size, True)
    column = np.random.default_rng(2).normal(size=n)
    plan = cb.pairwise_plan(n)
    four_rows = np.stack([np.roll(counts, shift) for shift in range(4)])
    row_stack, four_sums = np.empty((cb.STACK_DEPTH, 4)), np.empty(4)
    positive_total = int(counts[positives].sum())
    cb._gather(ranks.orders[0], counts, sorted_counts)

    def count_once():
        scratch = np.zeros(n, dtype=np.uint8)
        start = time.thread_time()
        cb._count(drawn[0], scratch)
        return time.thread_time() - start

    state = cb.generator_state(1)
    draw_rows = (np.empty((1, n), dtype=np.uint8), np.empty((1, 6), dtype=np.uint64), np.empty(1, dtype=bool))
    accuracy_column = np.sign(column).astype(np.int8)
    steps = [
        ("draw the 10^6 positions, int64 (the floor)", lambda: rng.integers(0, n, size=(1, n))),
        ("draw the 10^6 positions, int32", lambda: rng.integers(0, n, size=(1, n), dtype=np.int32)),
        ("count numpy's positions (uint8)", None),
        ("the kernel: draw numpy's stream and count it (uint8)", lambda: cb._draw_counts(state, n, *draw_rows)),
        ("one mean metric: pairwise sum of count x value, recursive walk (before)",
         lambda: cb._pairwise_weighted(column, counts, 0, n)),
        ("one mean metric: planned walk, vectorised leaves", lambda: cb.planned_weighted(column, counts, plan, stack)),
        ("one mean metric: 4 resamples per pass (per resample)",
         lambda: cb.planned_weighted_rows(column, four_rows, plan, row_stack, four_sums), 4),
        ("one integer mean metric (accuracy): exact int8 sum", lambda: cb._integer_weighted(accuracy_column, counts)),
        ("per model: gather the counts in score order", lambda: cb._gather(ranks.orders[0], counts, sorted_counts)),
        ("per model: scan, tie groups (AUROC pair count)",
         lambda: cb._rank_scan(sorted_counts, ranks.flags[0], False, rows)),
        ("per model: scan, tie groups, with the AP terms",
         lambda: cb._rank_scan(sorted_counts, ranks.flags[0], True, rows)),
        ("per model: scan, no ties (AUROC pair count)",
         lambda: cb._rank_scan_untied(sorted_counts, ranks.flags[0], False, rows)),
        ("per model: scan, no ties, with the AP terms",
         lambda: cb._rank_scan_untied(sorted_counts, ranks.flags[0], True, rows)),
        ("per model: AP terms' division and pairwise sum",
         lambda: cb._average_precision_sum(rows, n, positive_total, terms, ap_plan, stack)),
        ("before the resamples: both models' rank orders (sorts)",
         lambda: cb.rank_orders((candidate, parent), positive)),
    ]
    results = []
    for name, run, *per in steps:
        times = []
        for _ in range(repeats):
            if run is None:
                times.append(count_once())
                continue
            start = time.thread_time()
            run()
            times.append(time.thread_time() - start)
        results.append((name, statistics.median(times) * 1e3 / (per[0] if per else 1)))
    return results


# --------------------------------------------------------------------------
# Fresh processes: memory, start-up
# --------------------------------------------------------------------------

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
    stats.BOOTSTRAP_ENGINE = {engine!r}
    before = high_water_kib()
    if {engine!r} == "compiled":
        from model_eval_gate.statistics import compiled_bootstrap
    loaded = high_water_kib()
    start = time.perf_counter()
    stats.paired_bootstrap_many("binary", {metrics!r}, y, candidate, parent, n_resamples={n_resamples}, seed=7)
    seconds = time.perf_counter() - start
    print(json.dumps({{"before_kib": before, "loaded_kib": loaded, "peak_kib": high_water_kib(),
                      "seconds": seconds}}))
""")

STARTUP_PROBE = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {daemon!r})
    start = time.perf_counter()
    import numba
    imported = time.perf_counter()
    from model_eval_gate.statistics import compiled_bootstrap
    loaded = time.perf_counter()
    print(json.dumps({{"import_numba": imported - start, "load_kernel": loaded - imported}}))
""")


def fresh_process(probe: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def installed_size_mib(module_name: str) -> float:
    module = __import__(module_name)
    total = 0
    for path in Path(module.__file__).parent.rglob("*"):
        if path.is_file():
            total += path.stat().st_size
    return total / 2**20


# --------------------------------------------------------------------------
# Reading predictions.csv
# --------------------------------------------------------------------------


def csv_figures(n: int, repeats: int) -> dict[str, float | None]:
    from model_eval_gate import predictions

    ids = tuple(f"ex{i:07d}" for i in range(n))
    values = np.random.default_rng(3).random(n)
    buffer = io.StringIO()
    buffer.write("example_id,prediction\n")
    for example_id, value in zip(ids, values.tolist()):
        buffer.write(f"{example_id},{value!r}\n")
    data = buffer.getvalue().encode()
    index = {e: i for i, e in enumerate(ids)}
    benchmark = SimpleNamespace(id="scale", task="binary", self_scored=False, classes=None, metrics=("auroc",),
                                example_ids=ids, example_index=index,
                                example_index_bytes={e.encode(): i for e, i in index.items()},
                                longest_example_id_bytes=max(len(e) for e in ids))
    figures: dict[str, float | None] = {"megabytes": len(data) / 1e6}
    with tempfile.TemporaryDirectory() as out_dir:
        (Path(out_dir) / "predictions.csv").write_bytes(data)

        def ours():
            predictions.read_predictions(out_dir, benchmark, max_bytes=len(data) + 1,
                                         read_file=lambda d, name, cap: (Path(d) / name).read_bytes())

        def numpy_loadtxt():
            np.loadtxt(io.BytesIO(data), delimiter=",", skiprows=1, usecols=1, dtype=np.float64)

        runs = {"model_eval_gate": ours, "numpy.loadtxt (values only)": numpy_loadtxt}
        try:
            import pyarrow.csv as pacsv

            runs["pyarrow.csv.read_csv"] = lambda: pacsv.read_csv(io.BytesIO(data))
        except ImportError:
            figures["pyarrow.csv.read_csv"] = None
        for name, times in interleaved(runs, repeats).items():
            figures[name] = times["wall"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per figure; medians are printed")
    parser.add_argument("--numpy-resamples", type=int, default=20, help="resamples the numpy engine runs (scaled)")
    parser.add_argument("--scipy-resamples", type=int, default=4, help="resamples scipy runs per metric (scaled)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 200 resamples, smaller peers")
    args = parser.parse_args()
    n_resamples = B
    if args.quick:
        args.repeats, n_resamples, args.numpy_resamples, args.scipy_resamples = 1, 200, 5, 2

    import scipy

    print(f"paired bootstrap at scale: n = {N:,} examples, B = {n_resamples:,} resamples, "
          f"medians of {args.repeats} interleaved runs, {compiled_bootstrap.default_threads()} cores usable")
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, numba "
          f"{getattr(compiled_bootstrap.numba, '__version__', 'absent')}, python {sys.version.split()[0]}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print()

    y, candidate, parent = synthetic_binary(N)
    engine_run("compiled", "binary", BINARY, y[:1000], candidate[:1000], parent[:1000], 2)()  # load the kernel
    scale = n_resamples / args.numpy_resamples
    times = interleaved({
        "floor": floor_run(N, n_resamples),
        "compiled": engine_run("compiled", "binary", BINARY, y, candidate, parent, n_resamples),
        "numpy": engine_run("numpy", "binary", BINARY, y, candidate, parent, args.numpy_resamples),
    }, args.repeats)
    floor, ours, numpy_engine = times["floor"], times["compiled"], times["numpy"]
    scipy_total = 0.0
    scipy_parts = []
    for name in BINARY:
        seconds = scipy_seconds(SCIPY_BINARY[name], y, candidate, parent, args.scipy_resamples)
        scipy_total += seconds * n_resamples / args.scipy_resamples
        scipy_parts.append(f"{name} {seconds / args.scipy_resamples:.2f}")
    print(f"binary, all five metrics ({', '.join(BINARY)})")
    print(f"  floor: draw the positions, one core            {floor['wall']:8.2f} s wall {floor['cpu']:8.2f} s CPU")
    print(f"  model_eval_gate, compiled kernel               {ours['wall']:8.2f} s wall {ours['cpu']:8.2f} s CPU "
          f"(all threads)")
    print(f"  model_eval_gate, numpy engine                  {numpy_engine['wall'] * scale:8.2f} s wall "
          f"[ran {args.numpy_resamples} resamples in {numpy_engine['wall']:.2f} s, scaled x{scale:g}]")
    print(f"  scipy.stats.bootstrap, the five one by one     {scipy_total:8.2f} s wall "
          f"[s per resample: {'; '.join(scipy_parts)}; scaled x{n_resamples / args.scipy_resamples:g}]")
    print(f"  ratios: compiled/floor {ours['wall'] / floor['wall']:.2f}x wall, "
          f"{ours['cpu'] / floor['cpu']:.2f}x CPU;  numpy engine/compiled "
          f"{numpy_engine['wall'] * scale / ours['wall']:.1f}x;  scipy/compiled {scipy_total / ours['wall']:.0f}x")
    wall_at_b = ours["wall"] * B / n_resamples
    print(f"  targets: at most {WALL_TARGET_SECONDS:g} s wall for B = {B}: {verdict(wall_at_b <= WALL_TARGET_SECONDS)} "
          f"({wall_at_b:.2f} s);  at most {FLOOR_TARGET:g}x the single-core floor: "
          f"{verdict(ours['wall'] / floor['wall'] <= FLOOR_TARGET)}")
    print()

    # Real scores repeat (rounded probabilities, discrete classifiers): the
    # same five metrics with both models' scores rounded to 3 decimals, so
    # that each model has about a thousand tie groups and takes the tie-group scan.
    rounded = (y, np.round(candidate, 3), np.round(parent, 3))
    times = interleaved({"floor": floor_run(N, n_resamples),
                         "compiled": engine_run("compiled", "binary", BINARY, *rounded, n_resamples)}, args.repeats)
    floor, ours = times["floor"], times["compiled"]
    print(f"binary, all five metrics, scores rounded to 3 decimals (tie groups): compiled {ours['wall']:.2f} s wall, "
          f"{ours['cpu']:.2f} s CPU; floor {floor['wall']:.2f} s; {ours['wall'] / floor['wall']:.2f}x the floor")

    for task, metrics, data in (("multiclass", ("accuracy", "log_loss"), multiclass_data(N)),
                                ("regression", ("rmse", "mae"), regression_data(N))):
        times = interleaved({"floor": floor_run(N, n_resamples),
                             "compiled": engine_run("compiled", task, metrics, *data, n_resamples)}, args.repeats)
        floor, ours = times["floor"], times["compiled"]
        label = f"{task} ({', '.join(metrics)}" + (", 10 classes)" if task == "multiclass" else ")")
        print(f"{label}: compiled {ours['wall']:.2f} s wall, {ours['cpu']:.2f} s CPU; floor {floor['wall']:.2f} s; "
              f"{ours['wall'] / floor['wall']:.2f}x the floor")
    print()

    print("the kernel's passes, CPU ms per resample on one thread (n = 1,000,000, binary, median of 9)")
    print("  (a resample of the five metrics: draw and count, 2 float and 1 integer mean metric, and per model")
    print("   a gather, a scan with the AP terms and the AP sum; the synthetic scores have no ties)")
    for name, ms in kernel_profile(y, candidate, parent):
        print(f"  {name:58} {ms:7.2f}")
    print()

    daemon, benchmarks = str(ROOT / "daemon"), str(ROOT / "benchmarks")
    print(f"peak memory, fresh process, all five binary metrics, n = {N:,}, B = 100 (the peak does not grow with B)")
    for engine in ("compiled", "numpy"):
        memory = fresh_process(MEMORY_PROBE.format(daemon=daemon, benchmarks=benchmarks, n=N, engine=engine,
                                                   metrics=list(BINARY), n_resamples=100))
        print(f"  {engine:8}: VmHWM {memory['peak_kib'] / 1024:.0f} MiB; before the call "
              f"{memory['before_kib'] / 1024:.0f} MiB (interpreter, numpy, the inputs)"
              + (f", after importing the kernel {memory['loaded_kib'] / 1024:.0f} MiB" if engine == "compiled" else "")
              + f"; the call added {(memory['peak_kib'] - memory['loaded_kib']) / 1024:.0f} MiB "
              f"({memory['seconds']:.1f} s)")
    print(f"  target: under {MEMORY_TARGET_MB} MB")
    startup = [fresh_process(STARTUP_PROBE.format(daemon=daemon)) for _ in range(max(3, args.repeats))]
    print(f"start-up in a fresh process (median of {len(startup)}): import numba "
          f"{statistics.median(s['import_numba'] for s in startup):.2f} s, load the kernel from its cache "
          f"{statistics.median(s['load_kernel'] for s in startup):.2f} s")
    print(f"installed size: numba {installed_size_mib('numba'):.0f} MiB, "
          f"llvmlite {installed_size_mib('llvmlite'):.0f} MiB")
    print()

    figures = csv_figures(N, max(1, args.repeats))
    print(f"reading a {N:,}-row predictions.csv ({figures['megabytes']:.0f} MB), wall seconds")
    for name in ("model_eval_gate", "numpy.loadtxt (values only)", "pyarrow.csv.read_csv"):
        value = figures.get(name)
        print(f"  {name:30} " + ("not installed" if value is None else f"{value:6.2f}"))


if __name__ == "__main__":
    main()
