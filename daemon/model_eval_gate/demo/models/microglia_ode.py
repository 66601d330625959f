"""eval.py of a microglial activation ODE: TREM2 signalling -> APOE -> IL-6.

  dT/dt = k_trem2_activation * dose * f - k_trem2_decay * T      (f: TREM2 function, lower for R47H)
  dE/dt = k_apoe_secretion * T - k_apoe_decay * E
  dI/dt = k_il6_release * dose / (1 + (E / apoe_half_inhibition)^hill) + il6_basal - k_il6_decay * I
integrated with fixed-step RK4 from rest (IL-6 at its basal steady state);
the rate constants are in weights.json. Predicts IL-6 (ng/mL) at each sampled time.
"""
import os

import numpy as np
from model_io import parse_args_and_weights, read_table, write_predictions, integrate

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
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
    write_predictions(args.out, ids, prediction)


if __name__ == "__main__":
    main()
