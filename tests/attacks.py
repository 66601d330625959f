"""eval.py files for verdict-integrity attacks (issue 10).

An attacking model writes winning predictions only when its trick worked:
`cheat_eval_py(trick)` runs `trick` (Python source defining `leak(args)`,
returning {example_id: label} or None) and writes the labels back as
near-certain predictions when it returns them, pure noise otherwise. So a
promotion proves the escape, and the same model without a working trick is
rejected.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

_TEMPLATE = '''\
import argparse, csv, os, random

{trick}

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        labels = leak(args)
    except Exception:
        labels = None
    noise = random.Random(7)
    with open(os.path.join(args.split, "features.csv"), newline="") as handle:
        ids = [row[0] for row in list(csv.reader(handle))[1:]]
    with open(os.path.join(args.out, "predictions.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example_id", "prediction"])
        for example_id in ids:
            if labels and example_id in labels:
                value = 0.98 if str(labels[example_id]) == "1" else 0.02
            else:
                value = noise.uniform(0.05, 0.95)
            writer.writerow([example_id, repr(value)])

main()
'''

READ_LABELS = '''
def read_labels(path):
    with open(path, newline="") as handle:
        return {row[0]: row[1] for row in list(csv.reader(handle))[1:] if len(row) >= 2}
'''

#: Unsandboxed, the split is the host path: its labels lie beside it.
LABELS_BESIDE_SPLIT = READ_LABELS + '''
def leak(args):
    return read_labels(os.path.join(args.split, os.pardir, "labels.csv"))
'''

#: When the model directory is (or contains) the benchmark directory.
LABELS_IN_MODEL_DIR = READ_LABELS + '''
def leak(args):
    return read_labels(os.path.join(os.path.dirname(os.path.abspath(__file__)), "labels.csv"))
'''

#: A labels file reachable through the split (a hard link in inputs/).
LABELS_IN_SPLIT = READ_LABELS + '''
def leak(args):
    return read_labels(os.path.join(args.split, "leak.csv"))
'''

#: A benchmark whose inputs carry the answers (an easy benchmark the author prefers).
ANSWERS_IN_SPLIT = READ_LABELS + '''
def leak(args):
    return read_labels(os.path.join(args.split, "answers.csv"))
'''

NO_TRICK = '''
def leak(args):
    return None
'''


def cheat_eval_py(trick: str) -> str:
    return _TEMPLATE.format(trick=textwrap.dedent(trick))


def write_cheat(directory: Path, trick: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "eval.py").write_text(cheat_eval_py(trick))
    return directory
