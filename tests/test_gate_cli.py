"""The gate's command line, and the gate across every task kind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmark_factory import make_benchmark, write_manifest, read_manifest
from gate_world import World
from invariants import assert_lineage_invariants

from model_eval_gate import run_eval_gate
from model_eval_gate.gate import confirm_promotion

ROOT = Path(__file__).resolve().parents[1]


def cli(settings, *args, check=False):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "daemon"), "MODEL_EVAL_GATE_DSN": settings.dsn,
           "MODEL_EVAL_GATE_ARTIFACT_ROOT": str(settings.resolved_artifact_root),
           "MODEL_EVAL_GATE_HOME": str(settings.home)}
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=check)


def test_benchmark_add_records_a_valid_directory_and_lists_every_problem_of_a_bad_one(settings, conn, tmp_path):
    good = make_benchmark(tmp_path, task="multiclass", n=50)
    done = cli(settings, "benchmark", "add", str(good))
    assert done.returncode == 0, done.stderr
    assert "recorded benchmark multiclass-n50-s0" in done.stdout
    row = conn.execute("SELECT task, primary_metric, split_hash, path FROM benchmarks").fetchone()
    assert row["task"] == "multiclass" and len(row["split_hash"]) == 64 and row["path"] == str(good.resolve())
    assert "updated benchmark" in cli(settings, "benchmark", "add", str(good)).stdout

    bad = make_benchmark(tmp_path / "bad", task="binary", n=20)
    manifest = read_manifest(bad)
    manifest.update(primary_metric="rmse", guardrails={"nope": -1})
    write_manifest(bad, manifest)
    refused = cli(settings, "benchmark", "add", str(bad))
    assert refused.returncode == 2
    assert "rmse" in refused.stderr and "guardrails" in refused.stderr
    assert conn.execute("SELECT count(*) AS n FROM benchmarks").fetchone()["n"] == 1


def test_gate_prints_the_metric_table_and_the_verdict(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path)
    world.model("root", strength=0.5)
    assert cli(settings, "gate", "root").returncode == 0
    world.model("v2", strength=0.95, parent="root")

    dry = cli(settings, "gate", "v2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: no lifecycle change; the query was recorded and counted" in dry.stdout
    assert world.row("v2")["promotion_state"] == "candidate"

    done = cli(settings, "gate", "v2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "candidate", "parent", "delta", "CI", "low", "CI", "high"]
    assert any(line.startswith("auroc *") for line in lines)
    assert any(line.startswith("verdict     PROMOTE (improved") for line in lines)
    assert world.row("v2")["promotion_state"] == "promoted"

    again = cli(settings, "gate", "v2", "--json")
    assert again.returncode == 2 and "already promoted" in again.stderr


def test_gate_json_and_error_exit_code(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path)
    world.model("broken", eval_source="import sys\nsys.exit(3)\n")
    done = cli(settings, "gate", "broken", "--json")
    assert done.returncode == 3
    result = json.loads(done.stdout)
    assert result["outcome"] == "error" and result["reason_code"] == "sandbox_failure"
    assert "status 3" in result["reason"]


def test_force_promote_cli(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path)
    world.model("root", strength=0.5)
    run_eval_gate("root", settings=settings)
    world.model("worse", strength=0.0, parent="root")
    assert cli(settings, "gate", "worse").returncode == 0
    refused = cli(settings, "force-promote", "worse", "--actor", "agent-7", "--reason", "x")
    assert refused.returncode == 2 and "human actor" in refused.stderr
    done = cli(settings, "force-promote", "worse", "--actor", "grace", "--reason", "reviewed by hand")
    assert done.returncode == 0, done.stderr
    assert world.row("worse")["promotion_state"] == "promoted"
    assert_lineage_invariants(conn)


@pytest.mark.parametrize("task, extra", [
    ("regression", {}),
    ("multiclass", {}),
    ("self_scored", {"self_scored": True, "self_scored_example_list": True}),
])
def test_every_task_kind_is_gated(settings, conn, tmp_path, task, extra):
    world = World(settings, conn, tmp_path, task="binary" if task == "self_scored" else task, n=300, **extra)
    world.task = task
    def gate_and_confirm(artifact_id):
        # A self-scored promotion waits for a human (policy section 16.6).
        result = run_eval_gate(artifact_id, settings=settings)
        if task == "self_scored":
            assert result["outcome"] == "awaiting_confirmation", result["reason"]
            assert result["proposed"]["outcome"] == "promote"
            result = {**confirm_promotion(artifact_id, "Dr. Ada Lovelace", "scores checked", settings=settings),
                      "self_reported": result["self_reported"]}
        return result

    world.model("root", strength=0.3)
    assert gate_and_confirm("root")["outcome"] == "promote"
    world.model("better", strength=0.95, parent="root")
    result = gate_and_confirm("better")
    assert result["outcome"] == "promote", result["reason"]
    assert result["self_reported"] is (task == "self_scored")
    if task == "self_scored":
        event = conn.execute("SELECT detection_metadata FROM world_model_improvements "
                             "WHERE target_artifact_id = 'better'").fetchone()["detection_metadata"]
        assert event["self_reported"] is True
    assert_lineage_invariants(conn)
