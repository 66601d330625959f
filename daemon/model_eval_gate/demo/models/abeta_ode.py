"""eval.py of the amyloid-beta production-clearance model (a biophysical ODE).

dA/dt = k_production - k_clearance * A - k_aggregation * A^2, integrated with
a fixed-step fourth-order Runge-Kutta from each participant's baseline level;
the rate constants are in weights.json. Predicts A at each sampled time.
"""
import argparse
import csv
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def read_table(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return [r[0] for r in rows[1:]], rows[0][1:], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def integrate(derivative, state, times, step):
    """State at each of the ascending times, starting from t = 0 (RK4, vectorised over rows)."""
    out, t, y = [], 0.0, state.copy()
    for target in times:
        while t < target - 1e-12:
            h = min(step, target - t)
            k1 = derivative(y)
            k2 = derivative(y + 0.5 * h * k1)
            k3 = derivative(y + 0.5 * h * k2)
            k4 = derivative(y + h * k3)
            y = y + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
            t += h
        out.append(y.copy())
    return np.array(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(HERE, "weights.json")) as handle:
        weights = json.load(handle)
    rates = weights["rates"]
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    participant = values[:, columns.index("participant")].astype(int)
    time_h = values[:, columns.index("time_h")]
    baseline = values[:, columns.index("abeta_baseline_ng_ml")]
    people, row_of_person = np.unique(participant, return_inverse=True)
    start = np.zeros(len(people))
    start[row_of_person] = baseline
    times, time_index = np.unique(time_h, return_inverse=True)

    def derivative(a):
        return rates["k_production"] - rates["k_clearance"] * a - rates["k_aggregation"] * a ** 2

    trajectory = integrate(derivative, start, times, weights["step_h"])  # (times, people)
    prediction = trajectory[time_index, row_of_person]
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(p))) for example_id, p in zip(ids, prediction))


if __name__ == "__main__":
    main()
