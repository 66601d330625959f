"""The label-oracle attack, played end to end through the real gate (issue 11).

An automated author wants a model that scores perfectly on a benchmark it
cannot see. Brier is linear in the labels: with predictions 0.5 everywhere
except p_i = 0.5 + eps_i on a block of examples,

    n * brier = 0.25 n + sum(eps_i^2) + sum(eps_i) - 2 * sum(eps_i * y_i),

so one released Brier score, with eps_i = 0.4 * 2**-j, is the binary
expansion of the block's labels. The attacker probes through every channel
an author has: quick runs, new sibling versions, and re-gates of a rejected
sibling with new weights; it reads only what an author can read (what the
quick run returns, promotion_notes, its rejection tickets, the promotion
events and history, and the author_releases view). Then it registers a model
that replays the decoded labels. It writes a label where it decoded one and
0.5 (no information) where it did not, so a promotion proves the escape.

Before holdout accounting, every probe leaked (full precision from quick
runs, four decimals from the notes of a rejection), the 120 labels were
decoded in 9 queries (3 of them quick runs that left no trace), and the
replay was promoted with AUROC 1.0. Now no channel releases a value computed
on the labels of a rejection, so nothing decodes and the replay is rejected;
every probe is on record as a counted query.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row
from benchmark_factory import example_ids_for, write_predictions_csv
from gate_world import World

from model_eval_gate import run_eval_gate, run_eval_gate_quick
from model_eval_gate.evaluate import model_dir

N = 120
DELTA = 0.4
QUICK_BLOCK = 30  # bits per probe when the channel gives full precision
NOTES_BLOCK = 5   # bits per probe when it gives four decimals (n * 0.5e-4 = 0.006 << 2 * 0.4 * 2**-4)

COPY_PREDICTIONS = "import shutil, sys\nshutil.copyfile('predictions.csv', sys.argv[-1] + '/predictions.csv')\n"


def _write_model(settings, artifact_id: str, predictions: np.ndarray) -> None:
    directory = model_dir(settings, artifact_id)
    write_predictions_csv(directory, example_ids_for(N), predictions)
    (directory / "eval.py").write_text(COPY_PREDICTIONS)


def _probe(block: range) -> np.ndarray:
    predictions = np.full(N, 0.5)
    for j, i in enumerate(block):
        predictions[i] = 0.5 + DELTA * 2.0 ** -j
    return predictions


def _brier_values(seen) -> list[float]:
    """Every Brier value for the candidate that an author-visible object reveals, most precise first."""
    found: list[tuple[int, float]] = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("metric") == "brier" and isinstance(value.get("candidate"), (int, float)):
                found.append((17, float(value["candidate"])))
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            if value.lstrip().startswith(("{", "[")):
                try:
                    walk(json.loads(value))
                    return
                except ValueError:
                    pass
            for match in re.finditer(r"^brier\s+(-?\d+\.(\d+))", value, re.M):
                found.append((len(match.group(2)), float(match.group(1))))

    walk(seen)
    return [v for _, v in sorted(found, key=lambda item: -item[0])]


def _decode(brier: float, block: range) -> list[int] | None:
    eps = np.array([DELTA * 2.0 ** -j for j in range(len(block))])
    twice_weighted_labels = 0.25 * N + float(np.sum(eps**2)) + float(np.sum(eps)) - N * brier
    bits = twice_weighted_labels / (2 * DELTA)  # = sum_j y_j 2**-j
    half_step = 2.0 ** -len(block)  # half the smallest weight: the rounding the channel may add
    labels = []
    for j in range(len(block)):
        weight = 2.0 ** -j
        bit = 1 if bits >= weight - half_step else 0
        bits -= bit * weight
        labels.append(bit)
    return labels if abs(bits) < half_step else None


AUTHOR_TABLES = ("artifacts", "model_versions", "tickets", "world_model_improvements", "artifact_lifecycle_history",
                 "author_releases")


@pytest.fixture
def pipeline(conn, dsn):
    """A connection as a training pipeline's role: it reads what authors read, and nothing the gate keeps."""
    role = f"attacker_{conn.info.dbname}"[:60].replace("-", "_")
    conn.execute(f"DROP ROLE IF EXISTS {role}")
    conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pipeline'")
    present = [t for t in AUTHOR_TABLES if conn.execute("SELECT to_regclass(%s) AS v", (t,)).fetchone()["v"]]
    conn.execute(f"GRANT SELECT ON {', '.join(present)} TO {role}")
    with psycopg.connect(dsn, user=role, password="pipeline", autocommit=True, row_factory=dict_row) as reader:
        yield reader
    conn.execute(f"REVOKE ALL ON {', '.join(present)} FROM {role}")
    conn.execute(f"DROP ROLE {role}")


def _author_channels(reader, artifact_id: str, quick_result=None) -> list:
    """Everything an author may read about one of its candidates, read as the pipeline's role."""
    seen: list = [quick_result] if quick_result is not None else []
    seen += [r["promotion_notes"] for r in reader.execute(
        "SELECT promotion_notes FROM model_versions WHERE artifact_id = %s", (artifact_id,))]
    seen += [r["body"] for r in reader.execute("SELECT body FROM tickets WHERE artifact_id = %s", (artifact_id,))]
    seen += [r["detection_metadata"] for r in reader.execute(
        "SELECT detection_metadata FROM world_model_improvements WHERE target_artifact_id = %s", (artifact_id,))]
    seen += [r["metadata"] for r in reader.execute(
        "SELECT metadata FROM artifact_lifecycle_history WHERE artifact_id = %s", (artifact_id,))]
    if reader.execute("SELECT to_regclass('author_releases') AS v").fetchone()["v"]:
        seen += [dict(r) for r in reader.execute("SELECT * FROM author_releases WHERE artifact_id = %s",
                                                  (artifact_id,))]
    return seen


@pytest.fixture
def world(settings, conn, tmp_path):
    w = World(settings, conn, tmp_path, n=N, metrics=("auroc", "brier"))
    w.model("root", strength=0.1)  # a weak head: a replay of the labels beats it by far
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    return w


def _labels_of(world) -> np.ndarray:
    return np.asarray(world.benchmark.labels, dtype=int)


def test_the_label_oracle_attack_decodes_nothing_and_its_replay_is_rejected(world, pipeline):
    settings, conn = world.settings, world.conn
    decoded: dict[int, int] = {}
    queries = 0

    def learn(block: range, seen) -> None:
        for brier in _brier_values(seen):
            labels = _decode(brier, block)
            if labels is not None:
                decoded.update(zip(block, labels))
                return

    # 1. Quick runs: the advisory pre-check, full precision before the fix.
    position = 0
    for k in range(3):
        block = range(position, position + QUICK_BLOCK)
        world.model(f"probe-q{k}", strength=None, parent="root")
        _write_model(settings, f"probe-q{k}", _probe(block))
        learn(block, _author_channels(pipeline, f"probe-q{k}", run_eval_gate_quick(f"probe-q{k}", settings=settings)))
        position += QUICK_BLOCK
        queries += 1
    # 2. New siblings, gated; their rejections speak through the notes and tickets.
    for k in range(3):
        block = range(position, position + NOTES_BLOCK)
        world.model(f"probe-s{k}", strength=None, parent="root")
        _write_model(settings, f"probe-s{k}", _probe(block))
        run_eval_gate(f"probe-s{k}", settings=settings)
        learn(block, _author_channels(pipeline, f"probe-s{k}"))
        position += NOTES_BLOCK
        queries += 1
    # 3. Re-gates of a rejected sibling with new weights (a new model hash).
    for k in range(3):
        block = range(position, position + NOTES_BLOCK)
        _write_model(settings, "probe-s0", _probe(block))
        run_eval_gate("probe-s0", settings=settings)
        learn(block, _author_channels(pipeline, "probe-s0"))
        position += NOTES_BLOCK
        queries += 1
    assert position == N and queries == 9

    # 4. The replay: a decoded label where it has one, no information elsewhere.
    replay = np.array([0.99 if decoded.get(i) == 1 else 0.01 if decoded.get(i) == 0 else 0.5 for i in range(N)])
    world.model("replay", strength=None, parent="root")
    _write_model(settings, "replay", replay)
    result = run_eval_gate("replay", settings=settings)

    truth = _labels_of(world)
    correct = sum(decoded.get(i) == truth[i] for i in range(N))
    assert result["outcome"] == "reject", (
        f"the replay escaped: {correct}/{N} labels decoded in {queries} queries, verdict {result['reason_code']}")
    assert correct == 0 and not decoded, f"{len(decoded)} labels decoded from author-visible channels"

    # Every probe, quick runs included, is a recorded and counted query.
    rows = conn.execute("SELECT artifact_id, kind, attempt_number FROM holdout_queries ORDER BY id").fetchall()
    kinds = [(r["artifact_id"], r["kind"]) for r in rows]
    assert kinds[0] == ("root", "gate")
    assert [k for _, k in kinds].count("quick") == 3
    assert [a for a, k in kinds if k == "regate"] == ["probe-s0"] * 3
    assert kinds[-1] == ("replay", "gate")
    assert [r["attempt_number"] for r in rows[1:]] == list(range(1, queries + 2))


def test_control_the_replay_of_the_true_labels_is_promoted(world):
    """The replay is a winning model when the labels are right: a promotion above is proof of an escape."""
    truth = _labels_of(world)
    world.model("oracle", strength=None, parent="root")
    _write_model(world.settings, "oracle", np.where(truth == 1, 0.99, 0.01))
    assert run_eval_gate("oracle", settings=world.settings)["outcome"] == "promote"


def test_control_a_replay_of_guessed_labels_is_rejected(world):
    rng = np.random.default_rng(7)
    world.model("guess", strength=None, parent="root")
    _write_model(world.settings, "guess", np.where(rng.integers(0, 2, N) == 1, 0.99, 0.01))
    assert run_eval_gate("guess", settings=world.settings)["outcome"] == "reject"
