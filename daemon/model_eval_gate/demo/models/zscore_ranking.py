"""eval.py of a rule-based target ranking: weighted evidence z-scores.

Each evidence column named in weights.json is turned into a z-score across
all genes of the split; a gene's score is the weighted sum, and its
prediction is a logistic transform of the score minus the rule's threshold
(a z of 2 sits at 0.5), so the ranking is the rule's and the values lie in [0, 1].
"""
import os

import numpy as np
from model_io import parse_args_and_weights, read_table, write_predictions

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    score = np.zeros(len(ids))
    for name, weight in weights["evidence_weights"].items():
        column = values[:, columns.index(name)]
        score += weight * (column - column.mean()) / column.std()
    score /= sum(weights["evidence_weights"].values())
    probability = 1.0 / (1.0 + np.exp(-(score - weights["z_threshold"])))
    write_predictions(args.out, ids, probability)


if __name__ == "__main__":
    main()
