"""eval.py of a boosted-stumps classifier (gradient boosting of depth-1 trees).

weights.json holds the base score and one [feature, threshold, left, right]
per stump; the log-odds are the base score plus every stump's leaf value.
Writes P(label = 1) per example to --out/predictions.csv. Only numpy.
"""
import os

import numpy as np
from model_io import parse_args_and_weights, read_table, write_predictions

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    x = values[:, [columns.index(name) for name in weights["features"]]]
    log_odds = np.full(len(ids), float(weights["base_score"]))
    for feature, threshold, left, right in weights["stumps"]:
        log_odds += np.where(x[:, int(feature)] <= threshold, left, right)
    probability = 1.0 / (1.0 + np.exp(-log_odds))
    write_predictions(args.out, ids, probability)


if __name__ == "__main__":
    main()
