"""eval.py of a microglial activation ODE: TREM2 signalling -> APOE -> IL-6.

  dT/dt = k_trem2_activation * dose * f - k_trem2_decay * T      (f: TREM2 function, lower for R47H)
  dE/dt = k_apoe_secretion * T - k_apoe_decay * E
  dI/dt = k_il6_release * dose / (1 + (E / apoe_half_inhibition)^hill) + il6_basal - k_il6_decay * I
integrated with fixed-step RK4 from rest (IL-6 at its basal steady state);
the rate constants are in weights.json. Predicts IL-6 (ng/mL) at each sampled time.
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
    r = weights["rates"]
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    culture = values[:, columns.index("culture")].astype(int)
    cultures, row_of_culture = np.unique(culture, return_inverse=True)
    dose = np.zeros(len(cultures))
    function = np.zeros(len(cultures))
    dose[row_of_culture] = values[:, columns.index("amyloid_dose_um")]
    function[row_of_culture] = np.where(values[:, columns.index("trem2_r47h")] > 0, weights["r47h_trem2_function"], 1.0)
    times, time_index = np.unique(values[:, columns.index("time_h")], return_inverse=True)

    def derivative(y):
        trem2, apoe, il6 = y[:, 0], y[:, 1], y[:, 2]
        inhibition = 1.0 + (np.clip(apoe, 0, None) / r["apoe_half_inhibition"]) ** r["hill"]
        return np.column_stack([
            r["k_trem2_activation"] * dose * function - r["k_trem2_decay"] * trem2,
            r["k_apoe_secretion"] * trem2 - r["k_apoe_decay"] * apoe,
            r["k_il6_release"] * dose / inhibition + r["il6_basal"] - r["k_il6_decay"] * il6,
        ])

    start = np.column_stack([np.zeros(len(cultures)), np.zeros(len(cultures)),
                             np.full(len(cultures), r["il6_basal"] / r["k_il6_decay"])])
    trajectory = integrate(derivative, start, times, weights["step_h"])  # (times, cultures, species)
    prediction = trajectory[time_index, row_of_culture, 2]
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(p))) for example_id, p in zip(ids, prediction))


if __name__ == "__main__":
    main()
