"""eval.py of a logistic-regression risk model (the demo's AD risk lineage).

Reads the fitted coefficients from weights.json next to this file, the
cohort table from --split, and writes P(label = 1) per participant to
--out/predictions.csv. Only numpy and the standard library.
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
    z = (x - np.array(weights["mean"])) / np.array(weights["scale"])
    probability = 1.0 / (1.0 + np.exp(-(weights["intercept"] + z @ np.array(weights["coefficients"]))))
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        writer.writerows((example_id, repr(float(p))) for example_id, p in zip(ids, probability))


if __name__ == "__main__":
    main()
