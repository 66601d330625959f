"""eval.py of the amyloid-beta production-clearance model (a biophysical ODE).

dA/dt = k_production - k_clearance * A - k_aggregation * A^2, integrated with
a fixed-step fourth-order Runge-Kutta from each participant's baseline level;
the rate constants are in weights.json. Predicts A at each sampled time.
"""
import os

import numpy as np
from model_io import parse_args_and_weights, read_table, write_predictions, integrate

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
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
    write_predictions(args.out, ids, prediction)


if __name__ == "__main__":
    main()
