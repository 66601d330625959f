"""Fitting the demo's models with numpy, and writing their model directories.

What a training pipeline would hand over: a directory with a real `eval.py`
(one of the templates in demo/models/) and the fitted parameters it reads
(`weights.json`). The fits are deterministic (no random state beyond the data).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import sigmoid

WEIGHTS_FILE = "weights.json"
TEMPLATES = ("logistic_regression", "boosted_stumps", "nearest_centroid", "abeta_ode", "microglia_ode",
             "zscore_ranking")


def fit_logistic_regression(values: np.ndarray, labels: np.ndarray, features: Sequence[str], *,
                            l2: float = 1.0, iterations: int = 50) -> dict[str, Any]:
    """L2-penalised logistic regression on standardised features, by Newton's method.

    The penalty is l2/2 * |coefficients|^2 (the intercept is not penalised),
    as scikit-learn's C = 1/l2. Returns the weights file's content.
    """
    mean, scale = values.mean(axis=0), values.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    design = np.column_stack([np.ones(len(labels)), (values - mean) / scale])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = sigmoid(design @ beta)
        gradient = design.T @ (p - labels) + penalty * beta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return {"kind": "logistic_regression", "features": list(features), "mean": mean.tolist(),
            "scale": scale.tolist(), "intercept": float(beta[0]), "coefficients": beta[1:].tolist()}


def logistic_predictions(weights: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """What logistic_regression.py computes, in-process (for tests and for checking a fit)."""
    z = (values - np.asarray(weights["mean"])) / np.asarray(weights["scale"])
    return sigmoid(weights["intercept"] + z @ np.asarray(weights["coefficients"]))


def fit_boosted_stumps(values: np.ndarray, labels: np.ndarray, features: Sequence[str], *,
                       rounds: int = 80, learning_rate: float = 0.3, n_thresholds: int = 16) -> dict[str, Any]:
    """Gradient boosting of depth-1 trees on the logistic loss (Newton leaf values).

    Candidate thresholds are quantiles of each feature. Returns the weights
    file's content: a base score and one [feature, threshold, left, right]
    per stump (left when value <= threshold).
    """
    prevalence = float(np.clip(labels.mean(), 1e-6, 1 - 1e-6))
    base = float(np.log(prevalence / (1 - prevalence)))
    score = np.full(len(labels), base)
    quantiles = np.linspace(0, 1, n_thresholds + 2)[1:-1]
    thresholds = [np.unique(np.quantile(values[:, j], quantiles)) for j in range(values.shape[1])]
    stumps = []
    for _ in range(rounds):
        p = sigmoid(score)
        gradient, curvature = labels - p, p * (1 - p)
        best = None
        for j, cuts in enumerate(thresholds):
            left = values[:, j][:, None] <= cuts[None, :]  # (n, cuts)
            g_left, h_left = gradient @ left, curvature @ left
            g_right, h_right = gradient.sum() - g_left, curvature.sum() - h_left
            gain = g_left ** 2 / (h_left + 1.0) + g_right ** 2 / (h_right + 1.0)
            k = int(np.argmax(gain))
            if best is None or gain[k] > best[0]:
                best = (gain[k], j, float(cuts[k]), g_left[k] / (h_left[k] + 1.0), g_right[k] / (h_right[k] + 1.0))
        _, j, cut, left_value, right_value = best
        stump = [j, cut, learning_rate * float(left_value), learning_rate * float(right_value)]
        stumps.append(stump)
        score += np.where(values[:, j] <= cut, stump[2], stump[3])
    return {"kind": "boosted_stumps", "features": list(features), "base_score": base, "stumps": stumps}


def fit_nearest_centroid(values: np.ndarray, labels: np.ndarray, features: Sequence[str],
                         classes: Sequence[str]) -> dict[str, Any]:
    """Per-class centroids and a shared per-feature spread; probabilities from a softmax of -distance^2/2."""
    centroids = np.array([values[labels == k].mean(axis=0) for k in range(len(classes))])
    residual = values - centroids[labels.astype(int)]
    spread = residual.std(axis=0)
    return {"kind": "nearest_centroid", "features": list(features), "classes": list(classes),
            "centroids": centroids.tolist(), "spread": np.where(spread > 0, spread, 1.0).tolist()}


def template_source(template: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"no eval.py template {template!r} (known: {', '.join(TEMPLATES)})")
    return importlib_resources.files("model_eval_gate.demo").joinpath("models", f"{template}.py").read_text()


def write_model_dir(directory: Path, template: str, weights: Mapping[str, Any] | None) -> Path:
    """(Re)write a model directory: eval.py from the template and, unless None, weights.json.

    Mode 0755 for the directory and 0644 for the files: the sandbox runs
    eval.py as an unprivileged user. weights=None leaves the weights out, as a
    broken export would.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    eval_py = directory / "eval.py"
    eval_py.write_text(template_source(template))
    eval_py.chmod(0o644)
    # The helpers every eval.py imports travel with it: the sandbox binds only this directory.
    helpers = directory / "model_io.py"
    helpers.write_text(importlib_resources.files("model_eval_gate.demo").joinpath("models", "model_io.py").read_text())
    helpers.chmod(0o644)
    if weights is not None:
        weights_path = directory / WEIGHTS_FILE
        weights_path.write_text(json.dumps(weights, indent=1) + "\n")
        weights_path.chmod(0o644)
    return directory
