"""eval.py of a boosted-stumps classifier (gradient boosting of depth-1 trees).

weights.json holds the base score and one [feature, threshold, left, right]
per stump; the log-odds are the base score plus every stump's leaf value.
Writes P(label = 1) per example to --out/predictions.csv. Only numpy.
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
    x = values[:, [columns.index(name) for name in weights["features"]]]
    log_odds = np.full(len(ids), float(weights["base_score"]))
    for feature, threshold, left, right in weights["stumps"]:
        log_odds += np.where(x[:, int(feature)] <= threshold, left, right)
    probability = 1.0 / (1.0 + np.exp(-log_odds))
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(p))) for example_id, p in zip(ids, probability))


if __name__ == "__main__":
    main()
