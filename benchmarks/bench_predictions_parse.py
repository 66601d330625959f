"""Parsing a model's predictions.csv: memory and time against file size, whatever the content.

    python benchmarks/bench_predictions_parse.py [--rows 200000 400000 800000] [--repeats 3]

For each benchmark size (rows), four files a model could write:

- valid:     every example once, in order (what an honest model writes)
- shuffled:  every example once, in a random order
- unknown:   as many rows, every id unknown to the benchmark and as long as
             the longest real id (the 48 MiB attack of issue 14, bounded)
- too_many:  10x the benchmark's rows (stopped at the row count)

Each parse runs in a fresh subprocess, so its peak RSS (ru_maxrss) is the
parse's own; the figure is the growth of peak RSS over the process's RSS
before reading (interpreter, numpy, the loaded benchmark), divided by the
file size. The peer in the same run is csv_tables.read_csv_table, the general
reader the predictions parser used before (it builds a string per cell).
Target (issue 14): at most 3x the file size and time linear in it.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

BENCHMARK_ID = "bench-parse"


def write_benchmark(directory: Path, n: int) -> None:
    (directory / "inputs").mkdir(parents=True)
    (directory / "inputs" / "features.csv").write_text("example_id,x\n" + "".join(f"ex{i:08d},0\n" for i in range(n)))
    labels = np.random.default_rng(0).integers(0, 2, n)
    (directory / "labels.csv").write_text("example_id,label\n" + "".join(f"ex{i:08d},{y}\n" for i, y in enumerate(labels)))
    (directory / "benchmark.json").write_text(json.dumps({
        "id": BENCHMARK_ID, "task": "binary", "primary_metric": "auroc", "metrics": ["auroc"],
        "labels": "labels.csv"}))


def write_case(out: Path, kind: str, n: int) -> None:
    out.mkdir(parents=True)
    rng = np.random.default_rng(1)
    values = rng.random(n if kind != "too_many" else 10 * n)
    if kind == "valid":
        ids = (f"ex{i:08d}" for i in range(n))
    elif kind == "shuffled":
        ids = (f"ex{i:08d}" for i in rng.permutation(n))
    elif kind == "unknown":
        ids = (f"zz{i:08d}" for i in range(n))
    else:
        ids = (f"ex{i % n:08d}" for i in range(10 * n))
    with open(out / "predictions.csv", "w") as handle:
        handle.write("example_id,prediction\n")
        handle.writelines(f"{example_id},{value:.6f}\n" for example_id, value in zip(ids, values))


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from model_eval_gate.benchmark import load_benchmark
from model_eval_gate.evaluation.csv_tables import read_csv_table
from model_eval_gate.predictions import PredictionsError, read_predictions
benchmark = load_benchmark(sys.argv[2])
benchmark.example_index_bytes  # the benchmark's own cost, not the parse's
out, parser = Path(sys.argv[3]), sys.argv[4]
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))
before = rss()
started = time.perf_counter()
outcome = "ok"
if parser == "bounded":
    try:
        read_predictions(out, benchmark, max_bytes=1 << 30)
    except PredictionsError as exc:
        outcome = "refused: " + exc.problems[0][:70]
else:
    table = read_csv_table((out / "predictions.csv").read_bytes(), [])
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "growth": max(0, peak - before), "outcome": outcome}))
"""


def measure(benchmark_dir: Path, out: Path, parser: str) -> dict:
    completed = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "daemon"), str(benchmark_dir), str(out), parser],
                               capture_output=True, text=True, check=True)
    return json.loads(completed.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 400_000, 800_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'rows':>8} {'case':<9} {'file MiB':>8} | {'bounded: s':>10} {'MB/s':>6} {'mem/file':>8} | "
          f"{'read_csv_table: s':>17} {'mem/file':>8} | outcome")
    worst = 0.0
    rates = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in args.rows:
            benchmark_dir = Path(scratch) / f"bench-{n}"
            write_benchmark(benchmark_dir, n)
            for kind in ("valid", "shuffled", "unknown", "too_many"):
                out = Path(scratch) / f"out-{n}-{kind}"
                write_case(out, kind, n)
                size = (out / "predictions.csv").stat().st_size
                ours = [measure(benchmark_dir, out, "bounded") for _ in range(args.repeats)]
                peer = [measure(benchmark_dir, out, "general") for _ in range(args.repeats)]
                seconds = statistics.median(r["seconds"] for r in ours)
                ratio = statistics.median(r["growth"] for r in ours) / size
                peer_seconds = statistics.median(r["seconds"] for r in peer)
                peer_ratio = statistics.median(r["growth"] for r in peer) / size
                if kind != "too_many":
                    worst = max(worst, ratio)
                    rates.append(size / seconds / 1e6)
                print(f"{n:>8} {kind:<9} {size / 2**20:>8.1f} | {seconds:>10.3f} {size / seconds / 1e6:>6.1f} "
                      f"{ratio:>8.2f} | {peer_seconds:>17.3f} {peer_ratio:>8.2f} | {ours[0]['outcome']}")
    print(f"\nworst memory growth / file size (bounded parser, files it reads whole): {worst:.2f} (target <= 3)")
    print(f"throughput MB/s across sizes: min {min(rates):.1f}, median {statistics.median(rates):.1f}, "
          f"max {max(rates):.1f} (linear time: the rate does not fall as files grow)")
    return 0 if worst <= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
