"""eval.py of a rule-based target ranking: weighted evidence z-scores.

Each evidence column named in weights.json is turned into a z-score across
all genes of the split; a gene's score is the weighted sum, and its
prediction is a logistic transform of the score minus the rule's threshold
(a z of 2 sits at 0.5), so the ranking is the rule's and the values lie in [0, 1].
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(os.path.join(HERE, "weights.json")) as handle:
        weights = json.load(handle)
    ids, columns, values = read_table(os.path.join(args.split, weights["inputs"]))
    score = np.zeros(len(ids))
    for name, weight in weights["evidence_weights"].items():
        column = values[:, columns.index(name)]
        score += weight * (column - column.mean()) / column.std()
    score /= sum(weights["evidence_weights"].values())
    probability = 1.0 / (1.0 + np.exp(-(score - weights["z_threshold"])))
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(p))) for example_id, p in zip(ids, probability))


if __name__ == "__main__":
    main()
