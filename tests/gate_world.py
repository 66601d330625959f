"""A small world for gate tests: a recorded benchmark, model directories, registered versions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark_factory import make_benchmark, write_eval_py

from model_eval_gate import db
from model_eval_gate.benchmark import load_benchmark, record_benchmark
from model_eval_gate.catalog import register_model_in
from model_eval_gate.evaluate import model_dir


def metadata(parameter_count: int = 1000, **extra) -> dict:
    return {
        "model_family": "logistic_regression", "framework": "python", "parameter_count": parameter_count,
        "training_data": "synthetic cohort", "evaluation_dataset": "synthetic benchmark",
        "evaluation_metrics": {}, **extra,
    }


class World:
    def __init__(self, settings, conn, tmp_path: Path, *, task: str = "binary", n: int = 300, **benchmark_args):
        self.settings, self.conn, self.tmp_path, self.task = settings, conn, tmp_path, task
        self.benchmark_dir = make_benchmark(tmp_path / "benchmarks", task=task, n=n, **benchmark_args)
        self.benchmark = load_benchmark(self.benchmark_dir)
        record_benchmark(conn, self.benchmark)

    def model(self, artifact_id: str, *, strength: float | None = 1.0, parent: str | None = None,
              benchmark: bool | str = True, eval_source: str | None = None, weights: int | None = None,
              **meta) -> str:
        """Register a candidate version and give it an eval.py (strength None: no eval.py).

        benchmark: True names the world's benchmark, a string names that one, False none.
        weights: write weights.npy with that many parameters (what the gate counts for param_count claims)."""
        directory = model_dir(self.settings, artifact_id)
        if eval_source is not None:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "eval.py").write_text(eval_source)
        elif strength is not None:
            write_eval_py(directory, task=self.task, strength=strength)
        if weights is not None:
            directory.mkdir(parents=True, exist_ok=True)
            np.save(directory / "weights.npy", np.zeros(weights, dtype=np.float32))
        payload = {"artifact_id": artifact_id, "title": artifact_id, "parent_version_id": parent,
                   "trained_by": "agent-test", "created_by": "pipeline", "metadata": metadata(**meta)}
        if benchmark:
            payload["benchmark_id"] = benchmark if isinstance(benchmark, str) else self.benchmark.id
        with self.conn.transaction():
            register_model_in(self.conn, payload)
        return artifact_id

    def row(self, artifact_id: str) -> dict:
        return self.conn.execute(
            "SELECT a.is_latest, a.lifecycle_state, a.superseded_by, mv.promotion_state, mv.promotion_notes "
            "FROM artifacts a JOIN model_versions mv ON mv.artifact_id = a.id WHERE a.id = %s",
            (artifact_id,)).fetchone()

    def snapshot(self) -> dict[str, list]:
        tables = [r["tablename"] for r in self.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        return {t: [json.dumps(r, sort_keys=True, default=str)
                    for r in self.conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')] for t in tables}
