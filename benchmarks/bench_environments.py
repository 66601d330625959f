"""What does a model's own environment cost?  Prints figures; asserts nothing.

    PYTHONPATH=daemon python benchmarks/bench_environments.py [--runs 15] [--skip-sklearn]

Measures, for a small lock (six, one pure-Python wheel) and a scientific one
(scikit-learn 1.6.1 with numpy and scipy, six wheels):

* cold build: empty environment cache and empty uv cache (downloads included);
* warm build: empty environment cache, uv's wheel cache already filled (what a
  second lock sharing wheels with an earlier one pays);
* warm start: the environment is cached, so plan + ensure is a lock and a stat
  (median of --runs);
* the sandboxed run of an eval.py that imports the environment's package
  (`import six`, `import sklearn.ensemble`), interleaved run by run with its
  peer: the same eval.py (without the import) on the default interpreter.

Medians in milliseconds.  Needs the package index (PyPI) and bubblewrap.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from model_eval_gate.evaluation import environments as envs  # noqa: E402
from model_eval_gate.sandbox import discard_output, run_eval_py  # noqa: E402

LOCKS = {
    "six": ("six==1.17.0\n", "import six\n"),
    "scikit-learn": ("cloudpickle==3.1.3\njoblib==1.6.0\nnumpy==2.4.6\nscikit-learn==1.6.1\n"
                     "scipy==1.17.1\nthreadpoolctl==3.8.0\n", "import sklearn.ensemble\n"),
}
EVAL_PY = "import os, sys\n{imports}open(os.path.join(sys.argv[sys.argv.index('--out') + 1], 'done'), 'w').close()\n"


def _model(root: Path, name: str, lock: str | None, imports: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "eval.py").write_text(EVAL_PY.format(imports=imports))
    if lock is not None:
        (directory / "requirements.txt").write_text(lock)
    return directory


def _timed_run(model: Path, split: Path, work: Path, environment: envs.Environment | None) -> float:
    started = time.perf_counter()
    result = run_eval_py(model, split, work_dir=work,
                         python=environment.interpreter.executable if environment else None,
                         environment=environment.path if environment else None)
    elapsed = time.perf_counter() - started
    discard_output(result.out_dir)
    if not result.ok:
        raise SystemExit(f"the sandboxed run failed: {result.error}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="meg-bench-env-"))
    root.chmod(0o755)
    try:
        split = root / "benchmark" / "inputs"
        split.mkdir(parents=True)
        (split / "features.csv").write_text("example_id,x\na,1\n")
        work = root / "work"
        work.mkdir()
        print(f"{'lock':<14}{'cold build':>12}{'warm build':>12}{'warm start':>12}{'run (env)':>12}"
              f"{'run (default)':>15}{'env/default':>13}")
        for name, (lock, imports) in LOCKS.items():
            if name == "scikit-learn" and args.skip_sklearn:
                continue
            model = _model(root / "models", name, lock, imports)
            peer = _model(root / "models", f"{name}-peer", None, "")
            cold = envs.BuildSettings(cache_dir=root / f"cache-{name}-cold")
            plan = envs.plan_environment(model, cold)
            cold_seconds = envs.ensure_environment(plan, cold).build_seconds
            # Warm: a new environment cache, uv's wheel cache from the cold build (copied in).
            warm = envs.BuildSettings(cache_dir=root / f"cache-{name}-warm")
            warm.cache_dir.mkdir()
            shutil.copytree(cold.cache_dir / ".uv-cache", warm.cache_dir / ".uv-cache", symlinks=True)
            warm_seconds = envs.ensure_environment(plan, warm).build_seconds
            starts = []
            for _ in range(args.runs):
                started = time.perf_counter()
                environment = envs.ensure_environment(envs.plan_environment(model, warm), warm)
                starts.append(time.perf_counter() - started)
            with_env, default = [], []
            for _ in range(args.runs):  # interleaved: drifting load hits both alike
                with_env.append(_timed_run(model, split, work, environment))
                default.append(_timed_run(peer, split, work, None))
            env_ms, default_ms = statistics.median(with_env) * 1e3, statistics.median(default) * 1e3
            print(f"{name:<14}{cold_seconds * 1e3:>10.0f}ms{warm_seconds * 1e3:>10.0f}ms"
                  f"{statistics.median(starts) * 1e3:>10.1f}ms{env_ms:>10.0f}ms{default_ms:>13.0f}ms"
                  f"{env_ms / default_ms:>12.2f}x")
        print("\nwarm start is plan (parse, describe the interpreter: cached) + ensure (flock, stat);"
              "\nrun (env) includes importing the package, run (default) imports nothing.")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
