"""Verdict integrity (issue 10): every route by which an author could steer its own verdict, played end to end.

Real PostgreSQL, real bubblewrap. Each attacking model writes winning
predictions only when its trick works (tests/attacks.py), so a promotion
would prove the escape; each test also gates the same model without the
trick, which the gate rejects.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import psycopg
import pytest
from attacks import (ANSWERS_IN_SPLIT, LABELS_BESIDE_SPLIT, LABELS_IN_MODEL_DIR, LABELS_IN_SPLIT, NO_TRICK,
                     cheat_eval_py)
from benchmark_factory import make_benchmark, read_manifest, write_eval_py, write_manifest
from gate_world import World
from invariants import assert_lineage_invariants
from test_gate_cli import cli

from model_eval_gate import db, run_eval_gate
from model_eval_gate.benchmark import BenchmarkError, load_benchmark, record_benchmark
from model_eval_gate.catalog import MetadataValidationError, register_model_in
from model_eval_gate.evaluate import evaluate, model_dir, model_hash, run_key_for
from model_eval_gate.gate import GateRefused, confirm_promotion
from model_eval_gate.evaluation.model_dirs import UnsafeArtifactId, check_artifact_id
from model_eval_gate.store.operator import accept_reparent, rebenchmark

UNSAFE_IDS = ["", ".", "..", "./", "/etc", "own/../victim", "../../benchmarks/b/private", "-x", "a b", "é"]


@pytest.fixture
def world(settings, conn, tmp_path):
    w = World(settings, conn, tmp_path, n=120)
    w.model("root", strength=0.6)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    return w


def _control_is_rejected(world, artifact_id="control"):
    world.model(artifact_id, parent="root", eval_source=cheat_eval_py(NO_TRICK))
    result = run_eval_gate(artifact_id, settings=world.settings)
    assert result["outcome"] == "reject", result["reason"]


# -- route 1: artifact ids are path components ------------------------------------------------

def test_unsafe_artifact_ids_are_refused_where_they_enter(world, settings, conn):
    for bad in UNSAFE_IDS:
        with pytest.raises(UnsafeArtifactId, match="one safe path component"):
            check_artifact_id(bad)
        payload = {"artifact_id": bad, "title": "t", "metadata": world_metadata(), "benchmark_id": world.benchmark.id}
        with pytest.raises(MetadataValidationError, match="artifact_id"), conn.transaction():
            register_model_in(conn, payload)
        # A plain SQL insert, bypassing registration: the database refuses it.
        with pytest.raises(psycopg.errors.CheckViolation, match="path_component"), conn.transaction():
            conn.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest) VALUES (%s, 'model', 't', 0)",
                         (bad,))
            conn.execute("INSERT INTO model_versions (artifact_id, benchmark_id) VALUES (%s, %s)",
                         (bad, world.benchmark.id))
        with pytest.raises(psycopg.errors.CheckViolation, match="safe path component"):
            conn.execute("SELECT model_eval_gate_request(%s)", (bad,))
    done = cli(settings, "gate", "own/../victim")
    assert done.returncode == 2 and "one safe path component" in done.stderr and "Traceback" not in done.stderr
    assert not conn.execute("SELECT 1 FROM model_versions WHERE artifact_id NOT IN ('root')").fetchone()


def world_metadata():
    from gate_world import metadata
    return metadata()


def test_a_model_directory_symlinked_to_another_model_is_not_run(world):
    _control_is_rejected(world)
    world.model("victim", strength=0.98)  # a strong model in a lineage of its own
    world.model("attacker", parent="root", strength=None)
    os.symlink(model_dir(world.settings, "victim"), model_dir(world.settings, "attacker"))
    result = run_eval_gate("attacker", settings=world.settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "model_dir_unsafe"), result["reason"]
    assert "symlink" in result["reason"]
    assert world.row("attacker")["promotion_state"] == "candidate" and world.row("root")["is_latest"] == 1
    assert_lineage_invariants(world.conn)


def test_a_model_directory_that_is_a_benchmark_directory_is_not_run(world, settings, conn, tmp_path):
    # An operator recorded a benchmark under models/ by mistake; the attacker
    # registers the id that makes its model directory that benchmark.
    _control_is_rejected(world)
    inside = make_benchmark(settings.resolved_artifact_root / "models", n=120, benchmark_id="bench-in-models")
    shutil.copy(world.benchmark_dir / "labels.csv", inside / "labels.csv")
    shutil.copytree(world.benchmark_dir / "inputs", inside / "inputs", dirs_exist_ok=True)
    record_benchmark(conn, load_benchmark(inside))
    (inside / "eval.py").write_text(cheat_eval_py(LABELS_IN_MODEL_DIR))
    world.model("bench-in-models", parent="root", strength=None)
    result = run_eval_gate("bench-in-models", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "model_dir_unsafe"), result["reason"]
    assert "overlaps the benchmark" in result["reason"]
    assert world.row("root")["is_latest"] == 1


def test_benchmark_add_refuses_a_hard_linked_input(settings, tmp_path):
    bench = make_benchmark(tmp_path, n=40)
    os.link(bench / "labels.csv", bench / "inputs" / "leak.csv")  # the labels, visible at /split/leak.csv
    with pytest.raises(BenchmarkError, match="hard link"):
        load_benchmark(bench)
    done = cli(settings, "benchmark", "add", str(bench))
    assert done.returncode != 0 and "hard link" in (done.stdout + done.stderr)
    assert "Traceback" not in done.stderr
    assert LABELS_IN_SPLIT  # the eval.py this would have served (tests/attacks.py)


# -- route 4: unsandboxed evaluations are never reused by a sandboxed gate ---------------------

def test_an_unsandboxed_evaluation_is_not_reused_by_the_sandboxed_gate(world, settings, conn, tmp_path):
    world.model("cheat", parent="root", eval_source=cheat_eval_py(LABELS_BESIDE_SPLIT))
    # A laptop without bubblewrap, ALLOW_UNSANDBOXED=1, against the same database.
    laptop = settings.with_(allow_unsandboxed=True, bwrap_path=str(tmp_path / "no-bwrap-here"))
    leaked = evaluate(conn, laptop, "cheat", world.benchmark, store=True)
    assert leaked.sandboxed is False and not leaked.cached
    assert ((leaked.predictions > 0.5) == (world.benchmark.labels == 1)).all()  # the trick worked there

    result = run_eval_gate("cheat", settings=settings)
    assert result["evaluations"]["candidate"]["cached"] is False
    assert result["evaluations"]["candidate"]["sandboxed"] is True
    assert result["outcome"] == "reject", result["reason"]
    assert world.row("root")["is_latest"] == 1
    keys = conn.execute("SELECT sandboxed, run_key FROM eval_results WHERE artifact_id = 'cheat'").fetchall()
    assert sorted(k["sandboxed"] for k in keys) == [False, True] and len({k["run_key"] for k in keys}) == 2

    # Other run conditions are part of the key too: new limits, a new evaluation.
    relimited = evaluate(conn, settings.with_(eval_wall_seconds=settings.eval_wall_seconds + 1), "root",
                         world.benchmark, store=False)
    assert relimited.cached is False


def test_an_unsandboxed_deployment_says_so_in_its_verdict(world, settings, tmp_path):
    laptop = settings.with_(allow_unsandboxed=True, bwrap_path=str(tmp_path / "no-bwrap-here"))
    world.model("honest", parent="root", strength=0.59)
    result = run_eval_gate("honest", settings=laptop)
    assert result["unsandboxed_deployment"] is True
    assert result["reason"].startswith("[unsandboxed deployment")


def test_each_environment_keeps_its_own_stored_evaluation(world, settings, conn):
    """One model evaluated in two environments (docs/environments.md) is two stored results, each read back alone."""
    bench = world.benchmark
    keys = {env: run_key_for(settings, sandboxed=True, environment_hash=env) for env in ("", "env-a")}
    assert keys[""] != keys["env-a"]  # the environment is a run condition
    row = {"artifact_id": "root", "benchmark_id": bench.id, "split_hash": bench.split_hash, "model_hash": "files",
           "prediction_shape": [3], "n_examples": 3, "self_reported": False, "sandboxed": True,
           "wall_seconds": 0.1, "cpu_seconds": 0.1, "peak_rss_bytes": 1, "peak_memory_bytes": 1,
           "memory_scope": "process_tree"}
    for env, value in (("", 0.1), ("env-a", 0.9)):
        stored = db.fetch_one(conn, "store_evaluation", {
            **row, "environment_hash": env, "run_key": keys[env],
            "predictions": np.full(3, value, dtype="<f8").tobytes()})
        assert stored is not None, f"the {env or 'default'} environment's evaluation was not stored"
    for env, value in (("", 0.1), ("env-a", 0.9)):
        cached = db.fetch_one(conn, "cached_evaluation", {**row, "environment_hash": env, "run_key": keys[env]})
        assert np.frombuffer(cached["predictions"], dtype="<f8")[0] == value


# -- route 2: the benchmark is the lineage's ----------------------------------------------------

def test_a_candidate_cannot_choose_its_benchmark(world, settings, conn, tmp_path):
    easy = make_benchmark(tmp_path / "easy", n=120, benchmark_id="easy-bench", seed=3)
    shutil.copy(easy / "labels.csv", easy / "inputs" / "answers.csv")  # a copy, not a link: a legal (if silly) split
    record_benchmark(conn, load_benchmark(easy))
    source = cheat_eval_py(ANSWERS_IN_SPLIT)
    world.model("control", parent="root", eval_source=source)  # judged on the lineage's benchmark: no answers there
    assert run_eval_gate("control", settings=settings)["outcome"] == "reject"

    world.model("chooser", parent="root", eval_source=source + "\n", benchmark="easy-bench")
    result = run_eval_gate("chooser", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "benchmark_not_lineage"), result["reason"]
    assert "rebenchmark" in result["reason"] and world.row("root")["is_latest"] == 1

    # A benchmarks row without a split hash is never used.
    conn.execute("UPDATE benchmarks SET split_hash = NULL WHERE id = %s", (world.benchmark.id,))
    world.model("unhashed", parent="root", strength=0.9, benchmark=False)
    result = run_eval_gate("unhashed", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "benchmark_not_found")
    assert "no split hash" in result["reason"]
    record_benchmark(conn, world.benchmark)

    # An operator may re-benchmark the lineage: recorded, and then the candidate is judged there.
    with pytest.raises(ValueError, match="human actor"):
        rebenchmark(conn, "root", "easy-bench", actor="agent-7", reason="mine is better")
    action = rebenchmark(conn, "root", "easy-bench", actor="Dr. Ada Lovelace", reason="the new cohort")
    result = run_eval_gate("chooser", settings=settings)
    assert result["outcome"] == "promote" and result["judged_against"] == {
        "lineage_id": "root", "head_id": "root", "benchmark_id": "easy-bench"}
    recorded = conn.execute("SELECT action, actor, details FROM operator_actions WHERE id = %s", (action,)).fetchone()
    assert recorded["action"] == "rebenchmark" and recorded["details"] == {"benchmark_id": "easy-bench"}


# -- route 3: the comparator is the lineage's ---------------------------------------------------

def test_a_candidate_cannot_choose_its_comparator(world, settings, conn):
    world.model("weak-root", strength=0.1)  # another lineage, with a weak head
    assert run_eval_gate("weak-root", settings=settings)["outcome"] == "promote"
    world.model("mid", parent="root", strength=0.45)
    assert run_eval_gate("mid", settings=settings)["outcome"] == "reject"  # control: judged in its own lineage

    # Trick 1: re-parent the rejected candidate under the weaker head.
    conn.execute("UPDATE artifacts SET parent_version_id = 'weak-root' WHERE id = 'mid'")
    result = run_eval_gate("mid", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "lineage_changed"), result["reason"]
    # Trick 2: the same files under a new id in the weaker lineage.
    shutil.copytree(model_dir(settings, "mid"), model_dir(settings, "mid-again"))
    world.model("mid-again", parent="weak-root", strength=None)
    result = run_eval_gate("mid-again", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "lineage_changed"), result["reason"]
    assert "already judged in lineage root" in result["reason"]
    assert world.row("weak-root")["is_latest"] == 1

    # An operator can accept the move; the verdict then names the lineage and head it was judged against.
    accept_reparent(conn, "mid", actor="Dr. Ada Lovelace", reason="moved to the screening lineage")
    result = run_eval_gate("mid", settings=settings)
    assert result["outcome"] == "promote", result["reason"]
    assert result["judged_against"]["lineage_id"] == "weak-root" and result["compared_against"] == "weak-root"
    assert_lineage_invariants(conn)


# -- route 5: model files are pinned ------------------------------------------------------------

def test_pinned_model_files_cannot_change_under_a_verdict(world, settings, conn):
    world.model("worse", parent="root", strength=0.3)
    assert run_eval_gate("worse", settings=settings)["outcome"] == "reject"  # control
    pinned = conn.execute("SELECT model_hash FROM model_pins WHERE artifact_id = 'root'").fetchone()["model_hash"]

    # A candidate may be fixed and re-gated: its pin follows its verdicts until it is promoted.
    write_eval_py(model_dir(settings, "worse"), strength=0.31)
    assert run_eval_gate("worse", settings=settings)["outcome"] == "reject"
    assert conn.execute("SELECT model_hash FROM model_pins WHERE artifact_id = 'worse'").fetchone()["model_hash"] == \
        model_hash(model_dir(settings, "worse"))

    # The trick: degrade the head's code, then gate a worse candidate against it.
    write_eval_py(model_dir(settings, "root"), strength=0.0)
    world.model("worse-2", parent="root", strength=0.3)
    result = run_eval_gate("worse-2", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "comparator_changed"), result["reason"]
    assert "root" in result["reason"] and pinned[:12] in result["reason"]
    assert world.row("root")["is_latest"] == 1 and world.row("worse-2")["promotion_state"] == "candidate"


# -- route 7: self-scored promotions wait for a human --------------------------------------------

INFLATED_SCORES = """\
import argparse, csv, os
parser = argparse.ArgumentParser()
parser.add_argument("--split"); parser.add_argument("--out")
args = parser.parse_args()
with open(os.path.join(args.split, "features.csv")) as handle:
    ids = [row[0] for row in list(csv.reader(handle))[1:]]
with open(os.path.join(args.out, "predictions.csv"), "w") as handle:
    handle.write("example_id,score\\n" + "".join(f"{i},1e300\\n" for i in ids))
"""


def test_self_scored_promotions_wait_for_a_human_and_scores_are_bounded(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=60, self_scored=True, self_scored_example_list=True)
    world.task = "self_scored"
    manifest = read_manifest(world.benchmark_dir)
    manifest["score_range"] = {"score": [-1, 2]}
    write_manifest(world.benchmark_dir, manifest)
    world.benchmark = load_benchmark(world.benchmark_dir)
    record_benchmark(conn, world.benchmark)

    world.model("root", strength=0.3)
    result = run_eval_gate("root", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("awaiting_confirmation", "self_reported_needs_confirmation")
    assert world.row("root")["promotion_state"] == "candidate"
    confirm_promotion("root", "Dr. Ada Lovelace", "spot-checked the scores", settings=settings)
    assert world.row("root")["promotion_state"] == "promoted"

    world.model("inflated", parent="root", eval_source=INFLATED_SCORES)  # the trick: a score of 1e300
    result = run_eval_gate("inflated", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("error", "invalid_eval_output"), result["reason"]
    assert "score_range" in result["reason"]

    world.model("better", parent="root", strength=0.9)  # control: honestly better, still waits
    result = run_eval_gate("better", settings=settings)
    assert result["outcome"] == "awaiting_confirmation" and result["proposed"]["outcome"] == "promote"
    assert world.row("better")["promotion_state"] == "candidate" and world.row("root")["is_latest"] == 1
    with pytest.raises(ValueError, match="human actor"):
        confirm_promotion("better", "agent-7", "looks fine", settings=settings)
    done = cli(settings, "confirm", "better", "--actor", "Dr. Ada Lovelace", "--reason", "reviewed the outputs")
    assert done.returncode == 0, done.stderr
    assert world.row("better")["promotion_state"] == "promoted"
    event = conn.execute("SELECT detection_metadata FROM world_model_improvements "
                         "WHERE target_artifact_id = 'better'").fetchone()["detection_metadata"]
    assert event["reason_code"] == "confirmed_by_human" and event["actor"] == "Dr. Ada Lovelace"
    assert conn.execute("SELECT count(*) AS n FROM operator_actions WHERE action = 'confirm_promotion'"
                        ).fetchone()["n"] == 2
    with pytest.raises(GateRefused, match="already promoted"):
        confirm_promotion("better", "Dr. Ada Lovelace", "again", settings=settings)


# -- route 6: tradeoff claims are measured by the gate --------------------------------------------

def test_tradeoff_claims_are_checked_against_the_gates_own_measurements(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=120)
    world.model("root", strength=0.5, weights=1000)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"

    strengths = iter([0.499, 0.4985, 0.498, 0.4975, 0.497, 0.4965])  # near-equal, never identical

    def gate(artifact_id, claim, *, weights, parameter_count=1000):
        world.model(artifact_id, parent="root", strength=next(strengths), weights=weights,
                    parameter_count=parameter_count,
                    tradeoff_justification={**claim, "rationale": "cheaper"})
        return run_eval_gate(artifact_id, settings=settings)

    # Control: truly half the parameters, measured from its weight file -> the tradeoff holds.
    honest = gate("honest", {"param_count": "-50%"}, weights=500)
    assert honest["outcome"] == "promote_with_tradeoff", honest["reason"]
    assert honest["measurements"]["param_count"]["candidate"]["count"] == 500
    # Against the new head "honest" (500 parameters) from here on.
    tiny = gate("tiny", {"param_count": "-0.000000000000000001%"}, weights=10)
    assert tiny["reason_code"] == "tradeoff_claim_too_small", tiny["reason"]
    liar = gate("liar", {"param_count": "-50%"}, weights=500, parameter_count=10)  # metadata says 10
    assert (liar["outcome"], liar["reason_code"]) == ("reject", "tradeoff_claim_not_met"), liar["reason"]
    hidden = gate("hidden", {"param_count": "-50%"}, weights=None)  # weights nowhere the gate can count
    assert hidden["reason_code"] == "tradeoff_unverifiable"
    assert "no weight files" in hidden["measurements"]["param_count"]["candidate"]["note"]
    latency = gate("latency", {"latency": "-50%"}, weights=500)
    assert latency["reason_code"] == "tradeoff_claim_not_met", latency["reason"]
    runs = latency["measurements"]["latency"]["runs"]
    assert len(runs["candidate"]) == len(runs["parent"]) == 3
    assert world.row("honest")["is_latest"] == 1


def _ballast_model(directory, *, strength: float, megabytes: int, in_child: bool) -> None:
    """An eval.py that holds `megabytes` of touched memory while it predicts, in itself or in a forked child.

    The child is never wait()ed for: its parent learns through a pipe that the
    predictions are written and exits. A measure of the largest waited-for
    process (ru_maxrss) sees only the small parent; the whole sandbox does not.
    """
    write_eval_py(directory, strength=strength)
    (directory / "eval.py").rename(directory / "model.py")
    (directory / "eval.py").write_text(f"""
import os, runpy, time
HERE = os.path.dirname(os.path.abspath(__file__))

def work():
    ballast = b"x" * ({megabytes} << 20)  # written, so resident
    runpy.run_path(os.path.join(HERE, "model.py"), run_name="__main__")
    time.sleep(1.2)  # held long enough for a sampled measure to see it on a loaded machine
    return len(ballast)

if {in_child!r}:
    done_r, done_w = os.pipe()
    if os.fork() == 0:
        os.close(done_r)
        work()
        os.write(done_w, b"1")
        os._exit(0)
    os.close(done_w)
    os.read(done_r, 1)  # never wait(): the child is left for the sandbox to reap
else:
    work()
""")


def test_memory_claims_are_checked_against_the_whole_sandbox(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=120)
    _ballast_model(model_dir(settings, "heavy"), strength=0.5, megabytes=160, in_child=False)
    world.model("heavy", strength=None)
    head = run_eval_gate("heavy", settings=settings)
    assert head["outcome"] == "promote"
    assert head["evaluations"]["candidate"]["peak_memory_bytes"] > 160 << 20, head["evaluations"]["candidate"]

    def candidate(artifact_id, strength, megabytes, *, in_child):
        _ballast_model(model_dir(settings, artifact_id), strength=strength, megabytes=megabytes, in_child=in_child)
        world.model(artifact_id, parent="heavy", strength=None,
                    tradeoff_justification={"memory": "-50%", "rationale": "smaller buffers"})

    # Where only the largest process can be measured (an unsandboxed
    # deployment), a memory claim is unverifiable, never trusted.
    candidate("laptop", 0.499, 20, in_child=False)
    laptop = settings.with_(allow_unsandboxed=True, bwrap_path=str(tmp_path / "no-bwrap-here"))
    unmeasured = run_eval_gate("laptop", settings=laptop)
    assert unmeasured["reason_code"] == "tradeoff_unverifiable", unmeasured["reason"]
    assert unmeasured["measurements"]["memory"]["memory_scope"]["candidate"] == "largest_process"

    # The attack: the same 160 MiB, moved into a child nobody waits for.
    candidate("forker", 0.4985, 160, in_child=True)
    forked = run_eval_gate("forker", settings=settings)
    scopes = forked["measurements"]["memory"]["memory_scope"]
    assert set(scopes.values()) <= {"cgroup", "process_tree"}, scopes
    assert (forked["outcome"], forked["reason_code"]) == ("reject", "tradeoff_claim_not_met"), forked["reason"]
    assert forked["evaluations"]["candidate"]["peak_memory_bytes"] > 160 << 20
    assert world.row("heavy")["is_latest"] == 1

    # Control: really a fraction of the memory -> the tradeoff is verified.
    candidate("light", 0.498, 20, in_child=False)
    light = run_eval_gate("light", settings=settings)
    assert light["outcome"] == "promote_with_tradeoff", (light["reason"], light["evaluations"])


def test_a_snapshot_is_a_read_only_content_addressed_model_directory(world, settings, tmp_path):
    source = write_eval_py(tmp_path / "trained" / "run-17", strength=0.9)
    np.save(source / "weights.npy", np.zeros(10))
    done = cli(settings, "snapshot", str(source), "snap")
    assert done.returncode == 0, done.stderr
    directory = model_dir(settings, "snap")
    assert model_hash(directory) == model_hash(source)
    for path in (directory / "eval.py", directory / "weights.npy"):
        info = path.stat()
        assert info.st_mode & 0o777 == 0o444 and info.st_nlink == 2  # the store's object and this name
    assert directory.stat().st_mode & 0o777 == 0o555
    assert cli(settings, "snapshot", str(source), "snap").returncode == 2  # never replaced
    os.symlink("/etc/passwd", source / "link")
    refused = cli(settings, "snapshot", str(source), "snap-2")
    assert refused.returncode == 2 and "symlink" in refused.stderr
    world.model("snap", parent="root", strength=None)
    assert run_eval_gate("snap", settings=settings)["outcome"] == "promote"
