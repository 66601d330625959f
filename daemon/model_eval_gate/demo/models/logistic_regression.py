"""eval.py of a logistic-regression risk model (the demo's AD risk lineage).

Reads the fitted coefficients from weights.json next to this file, the
cohort table from --split, and writes P(label = 1) per participant to
--out/predictions.csv. Only numpy and the standard library.
"""
import os

import numpy as np
from model_io import parse_args_and_weights, read_table, write_predictions

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    x = values[:, [columns.index(name) for name in weights["features"]]]
    z = (x - np.array(weights["mean"])) / np.array(weights["scale"])
    probability = 1.0 / (1.0 + np.exp(-(weights["intercept"] + z @ np.array(weights["coefficients"]))))
    write_predictions(args.out, ids, probability)


if __name__ == "__main__":
    main()
