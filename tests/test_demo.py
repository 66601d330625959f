"""`model-eval-gate demo` end to end: the real console entry, its own embedded PostgreSQL,
the real daemon as a subprocess, real bubblewrap. No mocks.

Plus the pieces the end-to-end run cannot pin down by itself: the demo's data
are deterministic, each eval.py computes what its fitted model says, and the
demo's own checks do flag a verdict that is not the expected one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from model_eval_gate import embedded
from model_eval_gate.benchmark import load_benchmark
from model_eval_gate.demo import datasets, scenario, training
from model_eval_gate.demo.verdicts import problems
from test_readme import assert_walkthrough_worked, run_walkthrough

REPO = Path(__file__).resolve().parents[1]
WATCHED = scenario.expected_verdicts()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # The user's MODEL_EVAL_GATE_* settings must not leak in, except one the
    # demo must ignore: a configured DSN it may never touch.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env["PYTHONPATH"] = str(REPO / "daemon")
    env["MODEL_EVAL_GATE_DSN"] = "postgresql://nobody@127.0.0.1:1/not_the_demos_database"
    return subprocess.run([sys.executable, "-m", "model_eval_gate.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def demo_home():
    # Not pytest's 0700 tmp_path: as root, the embedded server runs as its own
    # system user, which must be able to reach the data directory.
    home = Path(tempfile.mkdtemp(prefix="meg-demo-test-"))
    home.chmod(0o755)
    yield home
    embedded.stop_server(home)
    shutil.rmtree(home, ignore_errors=True)


def database_state(home: Path) -> dict:
    with psycopg.connect(embedded.ensure_server(home).dsn(), row_factory=dict_row) as conn:
        jobs = conn.execute("SELECT artifact_id, status, outcome, result->>'reason_code' AS reason_code "
                            "FROM gate_jobs ORDER BY id").fetchall()
        versions = {r["artifact_id"]: r for r in conn.execute(
            "SELECT mv.artifact_id, mv.promotion_state, a.is_latest, a.superseded_by, a.lineage_id "
            "FROM model_versions mv JOIN artifacts a ON a.id = mv.artifact_id")}
        tickets = conn.execute("SELECT artifact_id, assignee FROM tickets WHERE status = 'open'").fetchall()
        daemons = conn.execute("SELECT count(*) AS n FROM pg_stat_activity "
                               "WHERE application_name LIKE 'model-eval-gate-%'").fetchone()["n"]
    return {"jobs": jobs, "versions": versions, "tickets": tickets, "daemons": daemons}


def assert_expected_outcome(home: Path, run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    out = run.stdout
    assert f"All {len(WATCHED)} verdicts are the expected ones" in out
    for candidate in scenario.CANDIDATES:
        assert f"{candidate.label}: {candidate.artifact_id}" in out
    assert "promote (improved)" in out and "error (sandbox_failure)" in out
    assert "promote_with_tradeoff (tradeoff_verified)" in out and "reject (primary_regressed)" in out
    # Counted by the gate from weights.json (coefficients, intercept and the fitted standardisation), not metadata.
    assert "claim param_count -50%: measured 34 vs 70 (ratio 0.4857142857142857), verified" in out
    assert "UNEXPECTED" not in out and "Traceback" not in run.stderr
    # For people: it fits a terminal, explains its terms before using them, names the failed guardrail,
    # and says what the README says about each model.
    too_wide = [line for line in out.splitlines() if len(line) >= 100]
    assert too_wide == [], too_wide
    for term, explained in (("WS1", "WS1, the platform's migration"), ("is_latest", "head (is_latest = 1)"),
                            ("lifecycle", "lifecycle is the platform's state"),
                            ("biocreep", "biocreep guard (small tolerated losses")):
        assert out.index(explained) <= out.index(term) + len(explained), term
    assert "guardrail brier failed" in out
    assert "318 participants" in out and "12 covariates dropped" in out
    assert "site 3" not in out and "11 variables" not in out
    assert "Left behind in" in out and "rm -rf" in out
    # Where to look further, pointing at this home.
    assert f"export MODEL_EVAL_GATE_HOME={home}" in out and 'psql' in out and "model-eval-gate status" in out
    assert str(home / "logs" / "daemon.log") in out
    # Its closing lines say where to see the verdicts in a browser.
    assert out.rstrip().endswith("then open http://127.0.0.1:8765/")
    assert f"MODEL_EVAL_GATE_HOME={home} model-eval-gate web" in out

    state = database_state(home)
    # The demo's database was reset: one job per gated version, exactly the expected verdicts.
    assert sorted(j["artifact_id"] for j in state["jobs"]) == sorted(WATCHED)
    for job in state["jobs"]:
        want = WATCHED[job["artifact_id"]]
        assert (job["status"], job["outcome"], job["reason_code"]) == ("done", want.outcome, want.reason_code)
        assert state["versions"][job["artifact_id"]]["promotion_state"] == want.promotion_state
    assert len(state["versions"]) == 8 + len(scenario.CANDIDATES)
    lineage = [v for v in state["versions"].values() if v["lineage_id"] == scenario.AD_RISK]
    assert [v["artifact_id"] for v in lineage if v["is_latest"]] == [scenario.V3_PRUNED]
    assert state["versions"][scenario.AD_RISK]["superseded_by"] == scenario.V2
    assert state["tickets"] == [{"artifact_id": "model-ad-risk-v3-single-site", "assignee": "agent-ml-9"}]
    assert state["daemons"] == 0, "the demo must stop its daemon"
    assert not (home / "daemon.pid").exists()

    # The daemon logged JSON lines that tell each candidate's story.
    lines = [json.loads(line) for line in (home / "logs" / "daemon.log").read_text().splitlines()]
    for artifact_id, want in WATCHED.items():
        verdict = [e for e in lines if e.get("candidate_id") == artifact_id and e.get("event") == "verdict"]
        assert [e["outcome"] for e in verdict] == [want.outcome]


def assert_the_web_shows_the_demo(home: Path) -> None:
    """`model-eval-gate web` after the demo, as its closing lines say, serves the demo's verdicts."""
    import urllib.request

    from test_web import web_server

    with web_server({"MODEL_EVAL_GATE_HOME": str(home)}, home / "logs" / "web.log") as url:
        for artifact_id, want in WATCHED.items():
            with urllib.request.urlopen(f"{url}/api/verdicts/{artifact_id}", timeout=15) as response:
                verdict = json.loads(response.read())["verdict"]
            assert (verdict["outcome"], verdict["reason_code"]) == (want.outcome, want.reason_code)
        with urllib.request.urlopen(f"{url}/verdicts/{scenario.V3_PRUNED}", timeout=15) as response:
            assert 'class="forest-plot"' in response.read().decode()


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_reruns_from_scratch(demo_home, tmp_path):
    first = run_cli("demo", "--home", str(demo_home))
    assert_expected_outcome(demo_home, first)
    assert "MODEL_EVAL_GATE_DSN is set and ignored" in first.stdout
    assert (demo_home / "migration_report_ws1.md").stat().st_size > 2000

    # The README's registration walk-through, as written, on what the demo left.
    walked = run_walkthrough(demo_home, tmp_path)
    assert_walkthrough_worked(walked)

    second = run_cli("demo", "--home", str(demo_home))
    assert_expected_outcome(demo_home, second)
    assert_the_web_shows_the_demo(demo_home)

    stopped = run_cli("demo", "--stop", "--home", str(demo_home))
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the embedded PostgreSQL in {demo_home / 'pgdata'}" in stopped.stdout
    assert not (demo_home / "pgdata" / "postmaster.pid").exists()


# ------------------------------------------------------- the demo's pieces --

def test_benchmarks_are_generated_deterministically(tmp_path):
    for spec in scenario.BENCHMARKS:
        hashes = []
        for attempt in ("a", "b"):
            directory = datasets.write_benchmark(tmp_path / attempt, spec.manifest, spec.draw(),
                                                 inputs_name=spec.inputs_name, classes=spec.classes)
            hashes.append(load_benchmark(directory).split_hash)
        assert hashes[0] == hashes[1], spec.id


@pytest.mark.parametrize("benchmark_id, group, n_groups, per_group", [
    (scenario.ABETA_BENCHMARK, "participant", 240, 9), (scenario.IL6_BENCHMARK, "culture", 200, 8)])
def test_the_clustered_benchmarks_declare_their_groups_and_are_resampled_by_group(tmp_path, benchmark_id, group,
                                                                                  n_groups, per_group):
    """A participant's samples (a culture's time points) are not independent: the bootstrap resamples whole groups."""
    from model_eval_gate import stats

    spec = next(s for s in scenario.BENCHMARKS if s.id == benchmark_id)
    table = spec.draw()
    directory = datasets.write_benchmark(tmp_path, spec.manifest, table, inputs_name=spec.inputs_name)
    benchmark = load_benchmark(directory)
    design = benchmark.resampling_design
    assert design is not None and design.grouped and design.n_units == n_groups
    assert (design.unit_sizes == per_group).all()
    np.testing.assert_array_equal(design.unit_of_example, table.column(group).astype(int))
    # The group column sits beside the labels, outside inputs/ (the inputs keep their own copy of it).
    assert (directory / "labels.csv").read_text().splitlines()[0] == f"example_id,label,{group}"
    rng = np.random.default_rng(1)
    truth = benchmark.labels
    candidate, parent = truth + rng.normal(0, 0.1, truth.size), truth + rng.normal(0, 0.1, truth.size)
    result = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=1000, seed=3)["rmse"]
    assert result.resampled == f"{n_groups} {group}s" and result.interval == "percentile"


def run_eval_py(model_dir: Path, benchmark_dir: Path, out: Path) -> subprocess.CompletedProcess:
    out.mkdir()
    return subprocess.run([sys.executable, "eval.py", "--split", str(benchmark_dir / "inputs"), "--out", str(out)],
                          cwd=model_dir, capture_output=True, text=True, timeout=60)


def test_the_logistic_eval_py_computes_what_the_fitted_model_says(tmp_path):
    spec = next(s for s in scenario.BENCHMARKS if s.id == scenario.AD_BENCHMARK)
    table = spec.draw()
    benchmark_dir = datasets.write_benchmark(tmp_path / "b", spec.manifest, table, inputs_name=spec.inputs_name)
    weights = scenario.ad_risk_v2()
    model_dir = training.write_model_dir(tmp_path / "m", "logistic_regression", weights)
    assert oct(model_dir.stat().st_mode & 0o777) == "0o755"
    assert all(oct(f.stat().st_mode & 0o777) == "0o644" for f in model_dir.iterdir())
    run = run_eval_py(model_dir, benchmark_dir, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    ids, _, written = datasets.read_inputs_table(tmp_path / "out" / "predictions.csv")
    assert ids == list(table.ids)
    # The inputs file holds 6 significant digits; the in-process model sees the same rounded values.
    _, columns, inputs = datasets.read_inputs_table(benchmark_dir / "inputs" / spec.inputs_name)
    expected = training.logistic_predictions(weights, inputs[:, [columns.index(f) for f in weights["features"]]])
    np.testing.assert_allclose(written[:, 0], expected, rtol=1e-12)


def test_the_broken_export_fails_with_a_missing_weights_file(tmp_path):
    spec = next(s for s in scenario.BENCHMARKS if s.id == scenario.AD_BENCHMARK)
    benchmark_dir = datasets.write_benchmark(tmp_path / "b", spec.manifest, spec.draw(), inputs_name=spec.inputs_name)
    broken = next(c for c in scenario.CANDIDATES if c.expected.outcome == "error")
    model_dir = training.write_model_dir(tmp_path / "m", broken.template, broken.weights())
    run = run_eval_py(model_dir, benchmark_dir, tmp_path / "out")
    assert run.returncode != 0 and "weights.json" in run.stderr


def test_the_pruned_candidate_has_half_the_parameters_of_its_parent():
    pruned = next(c for c in scenario.CANDIDATES if c.artifact_id == scenario.V3_PRUNED)
    parent = next(c for c in scenario.CANDIDATES if c.artifact_id == pruned.parent_id)
    assert len(scenario.ad_risk_v3_pruned()["coefficients"]) + 1 == pruned.metadata["parameter_count"] == 12
    assert len(scenario.ad_risk_v2()["coefficients"]) + 1 == parent.metadata["parameter_count"] == 24
    assert len(scenario.ad_risk_v1()["coefficients"]) + 1 == 24  # the legacy artifact's parameter_count


def _verdict(result: dict, **row) -> dict:
    """A demo_verdicts row of a correctly promoted version, with `row` overriding."""
    base = {"artifact_id": "c", "job_status": "done", "promotion_state": "promoted", "is_latest": 1,
            "lifecycle_state": "active", "superseded_by": None, "promotion_events": 1, "ticket_id": None,
            "compared_superseded_by": "c", "result": result}
    return {**base, **row}


@pytest.mark.parametrize("row, expected, found", [
    # The daemon rejected what should have been promoted.
    (_verdict({"outcome": "reject", "reason_code": "primary_not_improved", "compared_against": "p"},
              promotion_state="rejected", is_latest=0, lifecycle_state="candidate", promotion_events=0, ticket_id=7),
     scenario.CANDIDATES[0].expected, "verdict reject (primary_not_improved)"),
    # The right verdict, but the promotion left two heads or no event.
    (_verdict({"outcome": "promote", "reason_code": "root_version", "compared_against": None}, promotion_events=0),
     scenario.ROOT_GATES[scenario.ABETA_ODE], "0 promotion events"),
    # A rejection without a ticket for its author.
    (_verdict({"outcome": "reject", "reason_code": "primary_regressed", "compared_against": "p"},
              promotion_state="rejected", is_latest=0, lifecycle_state="candidate", promotion_events=0),
     next(c.expected for c in scenario.CANDIDATES if c.expected.outcome == "reject"), "without a ticket"),
    # An error that flipped something.
    (_verdict({"outcome": "error", "reason_code": "sandbox_failure", "compared_against": "p"},
              promotion_state="candidate", promotion_events=0),
     next(c.expected for c in scenario.CANDIDATES if c.expected.outcome == "error"), "is_latest = 1"),
    # Still running when the demo looked.
    (_verdict({}, job_status="running"), scenario.ROOT_GATES[scenario.ABETA_ODE], "is running, not done"),
])
def test_the_demo_flags_a_verdict_that_is_not_the_expected_one(row, expected, found):
    found_problems = problems(row, expected)
    assert any(found in p for p in found_problems), found_problems


def test_the_expected_verdicts_pass_the_demos_checks():
    root = _verdict({"outcome": "promote", "reason_code": "root_version", "compared_against": None})
    assert problems(root, scenario.ROOT_GATES[scenario.MICROGLIA_ODE]) == []


def test_the_candidates_metadata_is_what_registration_would_accept():
    # The demo inserts with plain SQL, as a pipeline without Python would; its
    # metadata is still held to the schema register_model enforces.
    from model_eval_gate.catalog import validate_metadata

    for candidate in scenario.CANDIDATES:
        assert validate_metadata(candidate.metadata) is candidate.metadata


@pytest.mark.parametrize("with_jq", [True, False])
def test_the_look_further_hints_use_jq_only_where_it_is_installed(tmp_path, monkeypatch, with_jq):
    import io

    from model_eval_gate.config import Settings
    from model_eval_gate.demo.runner import DemoRun

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if with_jq:
        (bin_dir / "jq").write_text("#!/bin/sh\n")
        (bin_dir / "jq").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = io.StringIO()
    DemoRun(tmp_path / "home", stream=out, timeout=1, base_settings=Settings()).print_where_to_look()
    text = out.getvalue()
    assert "model-eval-gate psql -c" in text and "model-eval-gate status" in text
    assert ("jq -c" in text) is with_jq and ("grep" in text) is not with_jq
    assert max(len(line) for line in text.splitlines()) < 100
