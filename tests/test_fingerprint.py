"""Behavioural fingerprints: the projection itself, pgvector storage and search, the no-op gate path."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gate_world import World

from model_eval_gate import db, run_eval_gate, run_eval_gate_quick
from model_eval_gate import fingerprint as fp
from model_eval_gate.evaluate import evaluate, model_dir, model_hash, run_key_for

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------- the projection --

def _signal(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def test_a_fingerprint_is_a_deterministic_unit_vector_even_in_another_process():
    predictions = _signal(3000)
    first = fp.compute_fingerprint(predictions, "bench", "split-a")
    again = fp.compute_fingerprint(predictions.copy(), "bench", "split-a")
    assert first.vector.shape == (fp.DIMENSIONS,) and not first.degenerate
    assert np.linalg.norm(first.vector) == pytest.approx(1.0, abs=1e-12)
    assert np.array_equal(first.vector, again.vector)

    script = ("import sys, json, numpy as np; from model_eval_gate.fingerprint import compute_fingerprint; "
              "v = compute_fingerprint(np.random.default_rng(0).random(3000), 'bench', 'split-a').vector; "
              "print(json.dumps(v.tolist()))")
    # A fresh interpreter with another hash seed: nothing may depend on hash().
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon"), "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert np.array_equal(np.array(json.loads(other.stdout)), first.vector)


def test_each_benchmark_split_has_its_own_projection():
    predictions = _signal(2000)
    base = fp.compute_fingerprint(predictions, "bench", "split-a").vector
    for benchmark_id, split_hash in (("bench", "split-b"), ("other", "split-a")):
        moved = fp.compute_fingerprint(predictions, benchmark_id, split_hash).vector
        # Independent projections of one vector are nearly orthogonal (|cos| ~ 1/16).
        assert 0.7 < fp.cosine_distance(base, moved) < 1.3


def test_the_code_follows_the_documented_definition():
    """An independent, element-by-element reading of the module docstring's definition."""
    predictions = _signal(2 * fp.BLOCK_ELEMENTS + 100, seed=3)  # three blocks, the last partial
    seed = hashlib.sha256(json.dumps(["model-eval-gate/fingerprint/v1", "bench", "split-a"]).encode()).digest()
    standardised = (predictions - predictions.mean()) / predictions.std()
    total = np.zeros(fp.DIMENSIONS)
    streams = {}
    for i, value in enumerate(standardised):
        block, row = divmod(i, fp.BLOCK_ELEMENTS)
        if block not in streams:
            streams[block] = hashlib.shake_256(seed + block.to_bytes(8, "big")).digest(
                fp.BLOCK_ELEMENTS * fp.DIMENSIONS // 8)
        row_bytes = streams[block][row * 32:(row + 1) * 32]
        bits = [(byte >> (7 - j)) & 1 for byte in row_bytes for j in range(8)]
        total += value * (2 * np.array(bits, dtype=float) - 1)
    expected = total / np.linalg.norm(total)
    assert np.allclose(fp.compute_fingerprint(predictions, "bench", "split-a").vector, expected, atol=1e-12)


def test_rescaled_predictions_share_a_fingerprint_and_multiclass_is_flattened_row_major():
    predictions = _signal(1500)
    base = fp.compute_fingerprint(predictions, "b", "s").vector
    assert np.allclose(fp.compute_fingerprint(3.0 * predictions - 7.0, "b", "s").vector, base, atol=1e-12)
    huge = fp.compute_fingerprint(predictions * 1e300, "b", "s")  # no overflow in the variance
    assert np.allclose(huge.vector, base, atol=1e-9)

    probabilities = np.random.default_rng(5).dirichlet(np.ones(3), size=400)
    as_matrix = fp.compute_fingerprint(probabilities, "b", "s").vector
    assert np.array_equal(as_matrix, fp.compute_fingerprint(probabilities.reshape(-1), "b", "s").vector)
    column_major = fp.compute_fingerprint(probabilities.T.copy().reshape(-1), "b", "s").vector
    assert fp.cosine_distance(as_matrix, column_major) > 0.1


def test_cosine_distance_tracks_one_minus_correlation_so_near_duplicates_are_near():
    rng = np.random.default_rng(11)
    base = rng.standard_normal(20_000)
    base_print = fp.compute_fingerprint(base, "b", "s").vector
    previous = 0.0
    for noise in (1e-4, 1e-3, 1e-2, 0.1, 0.5):
        other = base + noise * rng.standard_normal(base.size)
        distance = fp.cosine_distance(base_print, fp.compute_fingerprint(other, "b", "s").vector)
        truth = 1.0 - np.corrcoef(base, other)[0, 1]
        # Johnson-Lindenstrauss at 256 dimensions: a near neighbour's distance is
        # kept within a modest factor of the true one (ratio ~ 1 +- 0.2).
        assert truth * 0.5 < distance < truth * 1.6, (noise, distance, truth)
        assert distance > previous  # more noise, further away
        previous = distance
    unrelated = fp.compute_fingerprint(rng.standard_normal(base.size), "b", "s").vector
    assert 0.7 < fp.cosine_distance(base_print, unrelated) < 1.3
    assert previous < 0.3  # noise 0.5 still correlates 0.9


def test_constant_predictions_share_the_degenerate_fingerprint_far_from_everything_else():
    low = fp.compute_fingerprint(np.full(700, 0.2), "b", "s")
    high = fp.compute_fingerprint(np.full(700, 0.9), "b", "s")
    assert low.degenerate and high.degenerate and np.array_equal(low.vector, high.vector)
    assert np.linalg.norm(low.vector) == pytest.approx(1.0)
    for seed in range(5):
        assert 0.7 < fp.cosine_distance(low.vector, fp.compute_fingerprint(_signal(700, seed), "b", "s").vector) < 1.3
    single = fp.compute_fingerprint(np.array([0.4]), "b", "s")
    assert single.degenerate and np.isfinite(single.vector).all()


@pytest.mark.parametrize("bad, message", [
    (np.array([]), "non-empty"),
    (np.zeros((2, 2, 2)), r"\(n,\) or \(n, K\)"),
    (np.array([0.1, np.nan]), "NaN or infinite"),
    (np.array([0.1, np.inf]), "NaN or infinite"),
])
def test_predictions_that_cannot_be_fingerprinted_are_refused(bad, message):
    with pytest.raises(fp.FingerprintError, match=message):
        fp.compute_fingerprint(bad, "b", "s")
    assert issubclass(fp.FingerprintError, ValueError)


# ---------------------------------------------------- storage and search (pgvector) --

def _store(conn, artifact_id: str, benchmark_id: str, split_hash: str, predictions: np.ndarray, *,
           model_hash: str | None = None, with_fingerprint: bool = True, run_key: str = "synthetic") -> None:
    values = np.asarray(predictions, dtype=np.float64)
    model_hash = model_hash or f"synthetic-{artifact_id}"
    db.execute(conn, "store_evaluation", {
        "artifact_id": artifact_id, "benchmark_id": benchmark_id, "split_hash": split_hash,
        "model_hash": model_hash, "predictions": values.astype("<f8").tobytes(),
        "prediction_shape": list(values.shape), "n_examples": values.shape[0], "self_reported": False,
        "sandboxed": True, "wall_seconds": 0.1, "cpu_seconds": 0.1, "peak_rss_bytes": 1 << 20,
        "peak_memory_bytes": None, "memory_scope": None, "environment_hash": "", "run_key": run_key,
    })
    if with_fingerprint:
        assert fp.store_fingerprint(conn, artifact_id=artifact_id, benchmark_id=benchmark_id,
                                    split_hash=split_hash, model_hash=model_hash, predictions=values)


@pytest.fixture
def family(settings, conn, tmp_path):
    """Versions with stored evaluations at known behavioural distances from "base"."""
    world = World(settings, conn, tmp_path, n=300)
    bench = world.benchmark
    rng = np.random.default_rng(7)
    base = np.clip(0.5 + 0.2 * rng.standard_normal(300), 0.001, 0.999)
    world.model("base")
    world.model("base-v2", parent="base")
    world.model("twin")  # a root of its own: another lineage
    world.model("cousin")
    world.model("stranger")
    world.model("unevaluated")
    _store(conn, "base", bench.id, bench.split_hash, base)
    _store(conn, "base-v2", bench.id, bench.split_hash, np.clip(base + 0.05 * rng.standard_normal(300), 0.001, 0.999))
    _store(conn, "twin", bench.id, bench.split_hash, np.clip(base + 0.002 * rng.standard_normal(300), 0.001, 0.999))
    _store(conn, "cousin", bench.id, bench.split_hash, np.clip(base + 0.15 * rng.standard_normal(300), 0.001, 0.999))
    _store(conn, "stranger", bench.id, bench.split_hash, rng.random(300))
    return world


def test_vector_columns_come_back_as_numpy_arrays_and_the_index_is_hnsw_cosine(conn, family):
    # db.connect registers pgvector's adapter: a vector column is decoded, not
    # returned as text (pgvector-python >= 0.4 gives pgvector.Vector objects,
    # which fingerprint.as_array turns into numpy arrays).
    stored = conn.execute("SELECT fingerprint FROM eval_results WHERE artifact_id = 'base'").fetchone()["fingerprint"]
    assert not isinstance(stored, str)
    array = fp.as_array(stored)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32 and array.shape == (fp.DIMENSIONS,)
    base = fp.stored_predictions(conn.execute(
        "SELECT predictions, prediction_shape FROM eval_results WHERE artifact_id = 'base'").fetchone())
    bench = family.benchmark
    assert np.array_equal(array, fp.compute_fingerprint(base, bench.id, bench.split_hash).vector.astype(np.float32))
    small = fp.as_array(conn.execute("SELECT '[1,2,3]'::vector AS v").fetchone()["v"])
    assert small.tolist() == [1.0, 2.0, 3.0]
    column = conn.execute("SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute "
                          "WHERE attrelid = 'eval_results'::regclass AND attname = 'fingerprint'").fetchone()
    assert column["type"] == "vector(256)"
    index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'eval_results_fingerprint_hnsw'").fetchone()
    assert "USING hnsw (fingerprint vector_cosine_ops)" in index["indexdef"]


def test_similar_ranks_near_duplicates_first_with_lineage_and_state(conn, family):
    found = fp.similar_versions(conn, "base", k=10)
    assert [n.artifact_id for n in found.neighbours] == ["twin", "base-v2", "cousin", "stranger"]
    distances = [n.cosine_distance for n in found.neighbours]
    assert distances == sorted(distances) and distances[0] < 1e-3 and distances[-1] > 0.5
    twin, sibling = found.neighbours[0], found.neighbours[1]
    assert (twin.lineage_id, twin.version_number, twin.promotion_state) == ("twin", 1, "candidate")
    assert (sibling.lineage_id, sibling.version_number) == ("base", 2)
    assert (found.benchmark_id, found.lineage_id) == (family.benchmark.id, "base")
    assert found.method == "exact_scan"  # four others on the split, ten asked: the index cannot fill the list

    top = fp.similar_versions(conn, "base", k=2)
    assert [n.artifact_id for n in top.neighbours] == ["twin", "base-v2"]


def test_similar_explains_what_it_cannot_answer(conn, family):
    with pytest.raises(fp.UnknownVersion, match="no artifact 'ghost'"):
        fp.similar_versions(conn, "ghost")
    with pytest.raises(fp.NoStoredEvaluation, match="unevaluated has no stored evaluation: gate it first"):
        fp.similar_versions(conn, "unevaluated")
    with pytest.raises(fp.NoStoredEvaluation,
                       match=f"on benchmark 'nope'; it has evaluations on: {family.benchmark.id}"):
        fp.similar_versions(conn, "base", benchmark_id="nope")
    with pytest.raises(fp.SimilarityError, match="k must be"):
        fp.similar_versions(conn, "base", k=0)


def test_evaluations_without_a_fingerprint_are_backfilled(conn, settings, family):
    bench = family.benchmark
    family.model("late")
    family.model("legacy")
    twin_predictions = fp.stored_predictions(conn.execute(
        "SELECT predictions, prediction_shape FROM eval_results WHERE artifact_id = 'twin'").fetchone())
    # "late" is stored as evaluate() would store its directory, "legacy" as a
    # pre-0006 row: both without fingerprints.
    _store(conn, "late", bench.id, bench.split_hash, twin_predictions,
           model_hash=model_hash(model_dir(settings, "late")), with_fingerprint=False,
           run_key=run_key_for(settings, sandboxed=True, environment_hash=""))
    _store(conn, "legacy", bench.id, bench.split_hash, twin_predictions, with_fingerprint=False)

    cached = evaluate(conn, settings, "late", bench, store=False)  # a dry run writes nothing
    assert cached.cached
    assert conn.execute("SELECT count(*) AS n FROM eval_results WHERE fingerprint IS NULL").fetchone()["n"] == 2
    evaluate(conn, settings, "late", bench)  # the first reuse that may write fills it in
    late = fp.as_array(conn.execute(
        "SELECT fingerprint FROM eval_results WHERE artifact_id = 'late'").fetchone()["fingerprint"])
    assert np.allclose(late, fp.compute_fingerprint(twin_predictions, bench.id, bench.split_hash).vector, atol=1e-7)

    found = fp.similar_versions(conn, "twin", k=2)  # fills "legacy" before searching
    assert conn.execute("SELECT count(*) AS n FROM eval_results WHERE fingerprint IS NULL").fetchone()["n"] == 0
    assert {n.artifact_id for n in found.neighbours} == {"late", "legacy"}
    assert all(n.cosine_distance < fp.DUPLICATE_MAX_COSINE_DISTANCE for n in found.neighbours)


def test_the_hnsw_index_serves_similar_on_a_few_thousand_fingerprints(conn):
    n = 3000
    rng = np.random.default_rng(2)
    # Clustered, like real model families: 60 centres, members near their centre.
    centres = rng.standard_normal((60, fp.DIMENSIONS))
    vectors = centres[rng.integers(0, 60, n)] + 0.3 * rng.standard_normal((n, fp.DIMENSIONS))
    vectors[1] = vectors[0] + 0.01 * rng.standard_normal(fp.DIMENSIONS)  # syn-1 is syn-0's near twin
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    conn.execute("INSERT INTO benchmarks (id, task, primary_metric, split_hash) VALUES ('syn', 'binary', 'auroc', 'h')")
    conn.execute("INSERT INTO artifacts (id, artifact_type, title) "
                 "SELECT 'syn-' || g, 'model', 'synthetic' FROM generate_series(0, %s) g", (n - 1,))
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO eval_results (artifact_id, benchmark_id, split_hash, model_hash, predictions, "
            "prediction_shape, n_examples, sandboxed, fingerprint) "
            "VALUES (%s, 'syn', 'h', 'm', '\\x00'::bytea, '{1}', 1, true, %s)",
            [(f"syn-{i}", vectors[i].astype(np.float32)) for i in range(n)])
    conn.execute("ANALYZE eval_results")

    fetch, ef_search = fp.search_plan(10)
    params = {"v": vectors[0].astype(np.float32), "benchmark_id": "syn", "split_hash": "h", "exclude": "syn-0",
              "k": 10, "fetch": fetch}
    with conn.transaction():
        db.execute(conn, "set_hnsw_ef_search", {"ef_search": str(ef_search)})
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute("EXPLAIN " + db.query("nearest_fingerprints"), params))
    assert "Index Scan using eval_results_fingerprint_hnsw" in plan, plan

    found = fp.similar_versions(conn, "syn-0", k=10)
    assert found.method == "index" and found.ef_search == ef_search
    assert found.neighbours[0].artifact_id == "syn-1"
    exact = db.fetch_all(conn, "nearest_fingerprints_exact", {k: v for k, v in params.items() if k != "fetch"})
    recall = len({n.artifact_id for n in found.neighbours} & {r["artifact_id"] for r in exact}) / 10
    assert recall >= 0.8, recall

    # A version evaluated many times (its directory changed), every evaluation
    # nearer than anything else: the index's candidates collapse to one or two
    # versions, so the search repeats exactly rather than return too few.
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO eval_results (artifact_id, benchmark_id, split_hash, model_hash, predictions, "
            "prediction_shape, n_examples, sandboxed, fingerprint) "
            "VALUES ('syn-5', 'syn', 'h', %s, '\\x00'::bytea, '{1}', 1, true, %s)",
            [(f"m{i}", (vectors[0] + 0.001 * rng.standard_normal(fp.DIMENSIONS)).astype(np.float32))
             for i in range(2 * fetch)])
    crowded = fp.similar_versions(conn, "syn-0", k=3)
    assert crowded.method == "exact_scan"
    assert {n.artifact_id for n in crowded.neighbours[:2]} == {"syn-5", "syn-1"}
    assert len({n.artifact_id for n in crowded.neighbours}) == 3


# -------------------------------------------------------- the no-op gate path --

def test_a_byte_different_copy_of_its_parent_is_rejected_without_a_bootstrap(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path)
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    source = (model_dir(settings, "root") / "eval.py").read_text()

    world.model("copy", parent="root", eval_source=source + "# retrained: same weights, new comment\n")
    # No lifecycle write, decides the same; the operator's view names the duplicate.
    quick = run_eval_gate_quick("copy", settings=settings, audience="operator")
    assert (quick["reason_code"], quick["duplicate_of"], quick["bootstrap_skipped"]) == \
        ("no_behavioural_change", "root", True)
    assert not conn.execute("SELECT 1 FROM eval_results WHERE artifact_id = 'copy'").fetchone()
    result = run_eval_gate("copy", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("reject", "no_behavioural_change"), result["reason"]
    assert result["bootstrap_skipped"] is True
    assert result["duplicate_of"] == "root" and "version root" in result["reason"]
    assert [d["artifact_id"] for d in result["duplicates"]] == ["root"]
    primary = next(r for r in result["metric_table"] if r["role"] == "primary")
    assert (primary["delta"], primary["ci_low"], primary["ci_high"]) == (0.0, 0.0, 0.0)
    assert primary["candidate"] == primary["parent"] is not None
    assert world.row("copy")["promotion_state"] == "rejected"
    assert world.row("root")["is_latest"] == 1
    prints = conn.execute("SELECT artifact_id, fingerprint FROM eval_results ORDER BY artifact_id").fetchall()
    assert [p["artifact_id"] for p in prints] == ["copy", "root"]
    assert np.array_equal(fp.as_array(prints[0]["fingerprint"]), fp.as_array(prints[1]["fingerprint"]))


def test_a_no_op_candidate_names_the_identical_version_in_another_lineage(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path)
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    source = (model_dir(settings, "root") / "eval.py").read_text()
    world.model("elsewhere", eval_source=source + "# published by another team\n")  # its own lineage
    assert run_eval_gate("elsewhere", settings=settings)["reason_code"] == "root_version"
    world.model("unrelated", strength=0.9)  # a third lineage that behaves differently
    assert run_eval_gate("unrelated", settings=settings)["outcome"] == "promote"

    world.model("copy", parent="root", eval_source=source + "\n\n")
    result = run_eval_gate("copy", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("reject", "no_behavioural_change")
    assert result["compared_against"] == "root"
    assert result["duplicate_of"] == "elsewhere" and "version elsewhere" in result["reason"]
    duplicates = {d["artifact_id"]: d for d in result["duplicates"]}
    assert set(duplicates) == {"root", "elsewhere"}
    assert duplicates["elsewhere"]["lineage_id"] == "elsewhere"
    assert duplicates["elsewhere"]["cosine_distance"] < fp.DUPLICATE_MAX_COSINE_DISTANCE
    job = conn.execute("SELECT result FROM gate_jobs WHERE artifact_id = 'copy'").fetchone()["result"]
    assert job["duplicate_of"] == "elsewhere"


# ------------------------------------------------------------------- the CLI --

def _cli(settings, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon"), "MODEL_EVAL_GATE_DSN": settings.dsn,
           "MODEL_EVAL_GATE_ARTIFACT_ROOT": str(settings.resolved_artifact_root),
           "MODEL_EVAL_GATE_HOME": str(settings.home)}
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_the_similar_command_prints_a_table(settings, family):
    done = _cli(settings, "similar", "base", "--k", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"versions behaving most like base (lineage base, version 1, candidate) "
                               f"on benchmark {family.benchmark.id}")
    assert lines[1].split() == ["rank", "version", "cosine", "distance", "lineage", "version", "no.", "promotion",
                                "state"]
    rows = [line.split() for line in lines[2:5]]
    assert [r[:2] for r in rows] == [["1", "twin"], ["2", "base-v2"], ["3", "cousin"]]
    assert rows[0][3:] == ["twin", "1", "candidate"] and rows[1][3:] == ["base", "2", "candidate"]
    assert float(rows[0][2]) < float(rows[1][2]) < float(rows[2][2])
    assert "cosine distance of behavioural fingerprints" in lines[5]

    missing = _cli(settings, "similar", "unevaluated")
    assert missing.returncode == 2 and "unevaluated has no stored evaluation" in missing.stderr
    unknown = _cli(settings, "similar", "ghost", "--benchmark", family.benchmark.id)
    assert unknown.returncode == 2 and "no artifact 'ghost'" in unknown.stderr
