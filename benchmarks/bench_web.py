"""What does a page of `model-eval-gate web` cost to serve?  Prints figures.

    model-eval-gate demo --home /tmp/meg-demo                      # a database with real verdicts
    PYTHONPATH=daemon python benchmarks/bench_web.py --demo-home /tmp/meg-demo [--requests 200]

Starts the real server (`python -m model_eval_gate.cli web --port 0`) on the
demo's database and fetches each page, and its JSON twin, --requests times
one after another over loopback HTTP, after a warm-up. The floor, measured in
the same run, is /healthz: the same server, connection pool and HTTP round
trip, with one `SELECT 1` as its only query. Medians and the ratio to the
floor are printed, with the 90th percentile (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/healthz", "/verdicts/model-ad-risk-v3-pruned", "/api/verdicts/model-ad-risk-v3-pruned",
         "/lineages/model-ad-risk-v3-pruned", "/queue", "/api/queue", "/benchmarks", "/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-home", type=Path, required=True, help="the home of a finished `model-eval-gate demo`")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env.update(PYTHONPATH=str(ROOT / "daemon"), MODEL_EVAL_GATE_HOME=str(args.demo_home))
    proc = subprocess.Popen([sys.executable, "-m", "model_eval_gate.cli", "web", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        if "serving " not in line:
            print(f"the server did not start: {line!r}", file=sys.stderr)
            return 1
        url = line.split("serving ", 1)[1].split()[0].rstrip("/")
        timings: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        for path in PATHS:
            for _ in range(10):  # warm-up: the pool's connections, Jinja's compiled templates
                urllib.request.urlopen(url + path, timeout=30).read()
            samples = []
            for _ in range(args.requests):
                started = time.perf_counter()
                with urllib.request.urlopen(url + path, timeout=30) as response:
                    body = response.read()
                samples.append(time.perf_counter() - started)
            timings[path], sizes[path] = samples, len(body)
        floor = statistics.median(timings["/healthz"])
        print(f"{args.requests} sequential requests per path, loopback HTTP, medians (p90); floor = /healthz")
        print(f"{'path':<42} {'median ms':>10} {'p90 ms':>8} {'x floor':>8} {'bytes':>8}")
        for path in PATHS:
            samples = sorted(timings[path])
            median = statistics.median(samples)
            p90 = samples[int(0.9 * (len(samples) - 1))]
            print(f"{path:<42} {median * 1000:>10.2f} {p90 * 1000:>8.2f} {median / floor:>8.1f} {sizes[path]:>8}")
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
