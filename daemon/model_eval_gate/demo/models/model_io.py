"""What every demo eval.py shares, shipped next to it in each model directory.

A model directory is self-contained (the sandbox binds only it), so this file
is copied in beside eval.py rather than imported from the package; `python
eval.py` finds it because the script's own directory comes first on sys.path.
"""
import argparse
import csv
import json
import os

import numpy as np


def parse_args_and_weights(description, model_dir):
    """Parse --split/--out and read weights.json from the model directory."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(model_dir, "weights.json")) as handle:
        return args, json.load(handle)


def read_table(path):
    """(example ids, column names, float matrix) of a CSV whose first column is the id."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return [r[0] for r in rows[1:]], rows[0][1:], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def write_predictions(out_dir, ids, values):
    """One value per example: predictions.csv with header example_id,prediction."""
    with open(os.path.join(out_dir, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(v))) for example_id, v in zip(ids, values))


def integrate(derivative, state, times, step):
    """Integrate d(state)/dt = derivative(state) from t=0 with fixed-step RK4, vectorised over rows.

    Returns the state at each of the ascending times (the last step before a
    time is shortened to land on it).
    """
    out = np.empty((len(times), *np.shape(state)))
    t, y = 0.0, np.asarray(state, dtype=float).copy()
    for index, target in enumerate(times):
        while t < target - 1e-12:
            h = min(step, target - t)
            k1 = derivative(y)
            k2 = derivative(y + 0.5 * h * k1)
            k3 = derivative(y + 0.5 * h * k2)
            k4 = derivative(y + h * k3)
            y = y + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
            t += h
        out[index] = y
    return out
