"""eval.py of a nearest-centroid cell-type classifier on marker-gene expression.

weights.json holds one centroid per class and a per-gene spread; a cell's
class probabilities are a softmax of minus half its squared standardised
distance to each centroid. Writes one probability column per class.
"""
import csv
import os

import numpy as np
from model_io import parse_args_and_weights, read_table

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    args, weights = parse_args_and_weights(__doc__, HERE)
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    x = values[:, [columns.index(name) for name in weights["features"]]] / np.array(weights["spread"])
    centroids = np.array(weights["centroids"]) / np.array(weights["spread"])
    distance = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    scores = -0.5 * distance
    scores -= scores.max(axis=1, keepdims=True)
    probability = np.exp(scores)
    probability /= probability.sum(axis=1, keepdims=True)
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", *weights["classes"]])
        writer.writerows([example_id, *(repr(float(p)) for p in row)] for example_id, row in zip(ids, probability))


if __name__ == "__main__":
    main()
