"""Deterministic benchmark directories and model outputs for tests.

    from benchmark_factory import make_benchmark, write_eval_py

    bench_dir = make_benchmark(tmp_path, task="binary", n=200)
    benchmark = load_benchmark(bench_dir)                 # always valid as written
    model_dir = write_eval_py(tmp_path / "models" / "m1", task="binary", strength=0.9)
    # in the sandbox: python eval.py --split /split --out /out

What make_benchmark writes under `tmp_path / benchmark_id`:

    benchmark.json        manifest (defaults per task below; every field overridable)
    inputs/features.csv   example_id,x0,x1,...   standard-normal features, 6 decimals
    labels.csv            example_id,label       (omitted for self-scored unless
                                                  self_scored_example_list=True)

Example ids are `ex00000`, `ex00001`, ... in labels order.  The same arguments
always produce byte-identical files.  Labels follow a known signal in the
features, so a model that uses it scores better than one that does not:

    binary      label = 1 if 1.5*x0 - x1 + 0.5*noise > 0 else 0 (both classes forced present)
    regression  label = 2*x0 - x1 + 0.3*noise
    multiclass  label = classes[argmax_k(x_k + 0.5*noise_k)]  (every class forced present if n >= K)

Defaults: binary primary auroc, metrics (auroc, log_loss, accuracy);
a primary metric off the 0..1 scale (rmse, log_loss, self-scored) gets
non_inferiority_margin 0.05 unless one is given;
multiclass primary accuracy, metrics (accuracy, log_loss), classes
("cat", "dog", "bird"); regression primary rmse, metrics (rmse, mae);
self-scored primary "score", metrics ("score",), higher_is_better {"score": True}.

write_eval_py writes a stdlib-only eval.py whose predictions mix that signal
with noise: strength=1.0 uses the signal fully, 0.0 is pure noise, so two
model dirs with different strengths make a predictable better/worse pair.
signal_predictions computes comparable predictions in-process (numpy), and
write_predictions_csv / write_predictions_npz write an /out directory by hand.
"""
from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CLASSES = ("cat", "dog", "bird")
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auroc", "log_loss", "accuracy"),
    "multiclass": ("accuracy", "log_loss"),
    "regression": ("rmse", "mae"),
}
SELF_SCORED_METRIC = "score"
# Primary metrics on a 0..1 scale get the policy's default margin; any other
# gets this one unless the caller names a margin (decision.UNIT_SCALE_METRICS).
UNIT_SCALE_METRICS = ("auroc", "average_precision", "accuracy")
DEFAULT_OFF_SCALE_MARGIN = 0.05
FEATURES_FILE = "features.csv"

_UNSET: Any = object()


def example_ids_for(n: int) -> list[str]:
    """The example ids make_benchmark uses for n examples, in labels order."""
    return [f"ex{i:05d}" for i in range(n)]


def make_benchmark(
    tmp_path: Path,
    task: str = "binary",
    n: int = 200,
    *,
    benchmark_id: str | None = None,
    seed: int = 0,
    n_features: int | None = None,
    classes: Sequence[str] | None = None,
    primary_metric: str | None = None,
    metrics: Sequence[str] | None = None,
    guardrails: Mapping[str, float] | None = None,
    non_inferiority_margin: float | None = None,
    floor: float | None = None,
    title: str | None = None,
    self_scored: bool = False,
    self_scored_example_list: bool = False,
    labels_name: str = "labels.csv",
    manifest_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write a valid benchmark directory and return its path (tmp_path / id).

    task: "binary", "multiclass" or "regression".  n: number of examples.
    seed: drives features, noise and labels (same seed -> same bytes).
    n_features: default max(3, number of classes).
    self_scored: write a self-scored manifest (metrics ("score",) unless
    given); labels.csv is then written only with self_scored_example_list=True
    and holds just the example_id column.
    manifest_overrides: merged into the manifest last; a value of None
    deletes the key (useful to build invalid manifests on purpose).
    """
    if task not in DEFAULT_METRICS:
        raise ValueError(f"unknown task {task!r}")
    if n < 1:
        raise ValueError("n must be at least 1")
    class_names = tuple(classes) if classes is not None else DEFAULT_CLASSES
    n_features = n_features if n_features is not None else max(3, len(class_names))
    benchmark_id = benchmark_id or f"{task}-{'self-' if self_scored else ''}n{n}-s{seed}"
    root = tmp_path / benchmark_id
    (root / "inputs").mkdir(parents=True)

    rng = np.random.default_rng(seed)
    features = np.round(rng.standard_normal((n, n_features)), 6)
    noise = rng.standard_normal((n, max(n_features, len(class_names))))
    ids = example_ids_for(n)
    _write_features(root / "inputs" / FEATURES_FILE, ids, features)

    manifest: dict[str, Any] = {"id": benchmark_id, "task": task}
    if title is not None:
        manifest["title"] = title
    if self_scored:
        chosen_metrics = tuple(metrics) if metrics is not None else (SELF_SCORED_METRIC,)
        manifest.update(
            self_scored=True,
            primary_metric=primary_metric or chosen_metrics[0],
            metrics=list(chosen_metrics),
            higher_is_better={metric: True for metric in chosen_metrics},
        )
        if self_scored_example_list:
            (root / labels_name).write_text("example_id\n" + "".join(f"{i}\n" for i in ids))
            manifest["labels"] = labels_name
    else:
        chosen_metrics = tuple(metrics) if metrics is not None else DEFAULT_METRICS[task]
        manifest.update(
            primary_metric=primary_metric or chosen_metrics[0],
            metrics=list(chosen_metrics),
            labels=labels_name,
        )
        if task == "multiclass":
            manifest["classes"] = list(class_names)
        labels = _labels(task, features, noise, class_names)
        (root / labels_name).write_text("example_id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels)))
    if guardrails is not None:
        manifest["guardrails"] = dict(guardrails)
    if non_inferiority_margin is not None:
        manifest["non_inferiority_margin"] = non_inferiority_margin
    elif manifest["primary_metric"] not in UNIT_SCALE_METRICS:
        # Registration refuses a primary metric off the 0..1 scale without a declared margin.
        manifest["non_inferiority_margin"] = DEFAULT_OFF_SCALE_MARGIN
    if floor is not None:
        manifest["floor"] = floor
    for key, value in (manifest_overrides or {}).items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    write_manifest(root, manifest)
    return root


def write_manifest(benchmark_dir: Path, manifest: Mapping[str, Any]) -> None:
    """(Re)write benchmark.json with stable formatting."""
    (benchmark_dir / "benchmark.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(benchmark_dir: Path) -> dict[str, Any]:
    return json.loads((benchmark_dir / "benchmark.json").read_text())


def _write_features(path: Path, ids: Sequence[str], features: np.ndarray) -> None:
    header = "example_id," + ",".join(f"x{j}" for j in range(features.shape[1]))
    rows = (example_id + "," + ",".join(f"{v:.6f}" for v in row) for example_id, row in zip(ids, features))
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def _labels(task: str, features: np.ndarray, noise: np.ndarray, classes: Sequence[str]) -> list[str]:
    if task == "binary":
        positive = (1.5 * features[:, 0] - features[:, 1] + 0.5 * noise[:, 0]) > 0
        if len(positive) >= 2 and (positive.all() or not positive.any()):
            positive[0] = not positive[0]  # both classes present whenever n >= 2
        return [str(int(p)) for p in positive]
    if task == "regression":
        return [f"{v:.6f}" for v in 2.0 * features[:, 0] - features[:, 1] + 0.3 * noise[:, 0]]
    k = len(classes)
    chosen = np.argmax(features[:, :k] + 0.5 * noise[:, :k], axis=1)
    if len(chosen) >= k:
        chosen[:k] = np.arange(k)  # every class present
    return [classes[c] for c in chosen]


def read_features(benchmark_dir: Path) -> tuple[list[str], np.ndarray]:
    """(example ids, feature matrix) from inputs/features.csv."""
    lines = (benchmark_dir / "inputs" / FEATURES_FILE).read_text().splitlines()[1:]
    cells = [line.split(",") for line in lines]
    return [c[0] for c in cells], np.array([[float(v) for v in c[1:]] for c in cells])


def signal_predictions(
    benchmark_dir: Path,
    task: str,
    *,
    strength: float = 1.0,
    seed: int = 1,
    n_classes: int = len(DEFAULT_CLASSES),
) -> np.ndarray:
    """Valid predictions, in labels order, mixing the labels' signal with noise.

    strength 1.0: the signal alone (a good model); 0.0: noise alone.
    binary: P(label = 1) in (0, 1); regression: values; multiclass: (n, K)
    probabilities whose rows sum to 1; self-scored is not covered here.
    """
    _, features = read_features(benchmark_dir)
    noise = np.random.default_rng(seed).standard_normal((features.shape[0], max(n_classes, 1)))
    if task == "binary":
        logit = strength * (1.5 * features[:, 0] - features[:, 1]) + (1 - strength) * noise[:, 0]
        return 1.0 / (1.0 + np.exp(-2.0 * logit))
    if task == "regression":
        return strength * (2.0 * features[:, 0] - features[:, 1]) + (1 - strength) * noise[:, 0]
    scores = 2.0 * (strength * features[:, :n_classes] + (1 - strength) * noise[:, :n_classes])
    scores -= scores.max(axis=1, keepdims=True)
    probabilities = np.exp(scores)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def write_predictions_csv(
    out_dir: Path,
    example_ids: Sequence[str],
    values: np.ndarray,
    columns: Sequence[str] = ("prediction",),
    *,
    name: str = "predictions.csv",
) -> Path:
    """Write `example_id,<columns...>` rows; values is (n,) or (n, len(columns))."""
    out_dir.mkdir(parents=True, exist_ok=True)
    matrix = np.asarray(values, dtype=np.float64).reshape(len(example_ids), -1)
    lines = ["example_id," + ",".join(columns)]
    lines += [example_id + "," + ",".join(repr(float(v)) for v in row) for example_id, row in zip(example_ids, matrix)]
    path = out_dir / name
    path.write_text("\n".join(lines) + "\n")
    return path


def write_predictions_npz(out_dir: Path, example_ids: Sequence[str], prediction: Any = _UNSET, **arrays: Any) -> Path:
    """Write predictions.npz with `example_id` (as str), `prediction` (if given) and any extra arrays."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {"example_id": np.array(list(example_ids), dtype=str), **arrays}
    if prediction is not _UNSET:
        contents["prediction"] = np.asarray(prediction)
    path = out_dir / "predictions.npz"
    with path.open("wb") as handle:
        np.savez(handle, **contents)
    return path


_EVAL_PY_TEMPLATE = '''\
"""Test model written by tests/benchmark_factory.py: stdlib only."""
import argparse
import csv
import math
import os
import random

TASK = {task!r}
CLASSES = {classes!r}
STRENGTH = {strength!r}
SEED = {seed!r}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    noise = random.Random(SEED)
    with open(os.path.join(args.split, "features.csv"), newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        if TASK == "self_scored":
            writer.writerow(["example_id", "score"])
        elif TASK == "multiclass":
            writer.writerow(["example_id", *CLASSES])
        else:
            writer.writerow(["example_id", "prediction"])
        for row in rows:
            example_id, x = row[0], [float(v) for v in row[1:]]
            if TASK == "binary":
                logit = STRENGTH * (1.5 * x[0] - x[1]) + (1 - STRENGTH) * noise.gauss(0, 1)
                writer.writerow([example_id, repr(1 / (1 + math.exp(-2 * logit)))])
            elif TASK == "regression":
                value = STRENGTH * (2 * x[0] - x[1]) + (1 - STRENGTH) * noise.gauss(0, 1)
                writer.writerow([example_id, repr(value)])
            elif TASK == "multiclass":
                scores = [2 * (STRENGTH * x[k] + (1 - STRENGTH) * noise.gauss(0, 1)) for k in range(len(CLASSES))]
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                total = sum(weights)
                writer.writerow([example_id, *(repr(w / total) for w in weights)])
            else:
                writer.writerow([example_id, repr(STRENGTH + 0.1 * noise.gauss(0, 1))])


if __name__ == "__main__":
    main()
'''


def write_eval_py(
    model_dir: Path,
    task: str = "binary",
    *,
    strength: float = 1.0,
    seed: int = 1,
    classes: Sequence[str] = DEFAULT_CLASSES,
) -> Path:
    """Write model_dir/eval.py (stdlib only) and return model_dir.

    task: "binary", "multiclass", "regression", or "self_scored" (writes one
    `score` column: strength plus small noise, so higher strength scores higher).
    Run as `python eval.py --split <inputs dir> --out <empty dir>`; writes
    predictions.csv for a make_benchmark benchmark of that task.
    """
    if task not in (*DEFAULT_METRICS, "self_scored"):
        raise ValueError(f"unknown task {task!r}")
    model_dir.mkdir(parents=True, exist_ok=True)
    source = _EVAL_PY_TEMPLATE.format(task=task, classes=list(classes), strength=float(strength), seed=seed)
    (model_dir / "eval.py").write_text(textwrap.dedent(source))
    return model_dir
