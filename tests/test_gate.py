"""The gate end to end: real PostgreSQL, real bubblewrap, real eval.py files."""
from __future__ import annotations

import json

import pytest
from gate_world import World
from invariants import assert_lineage_invariants

from model_eval_gate import force_promote, run_eval_gate, run_eval_gate_quick
from model_eval_gate.gate import GateRefused, evaluate_and_decide
from model_eval_gate.lifecycle import HeadMoved, apply_result


@pytest.fixture
def world(settings, conn, tmp_path):
    w = World(settings, conn, tmp_path)
    w.model("root", strength=0.5, weights=1000)
    result = run_eval_gate("root", settings=settings)
    assert (result["outcome"], result["reason_code"]) == ("promote", "root_version")
    return w


def test_a_root_version_is_promoted_when_its_evaluation_succeeds(world):
    assert world.row("root")["promotion_state"] == "promoted"
    assert world.row("root")["is_latest"] == 1
    assert_lineage_invariants(world.conn)


def test_a_better_candidate_is_promoted_with_every_state_change(world):
    world.model("better", strength=0.95, parent="root")
    result = run_eval_gate("better", settings=world.settings)
    assert result["outcome"] == "promote", result["reason"]
    assert result["compared_against"] == "root"
    primary = next(r for r in result["metric_table"] if r["role"] == "primary")
    assert primary["metric"] == "auroc" and primary["ci_low"] > 0
    assert result["cross_check"]["method"] == "delong_sun_xu_2014" and result["cross_check"]["agrees"] is True
    assert result["minimum_detectable_effect"] > 0

    candidate, parent = world.row("better"), world.row("root")
    assert (candidate["is_latest"], candidate["lifecycle_state"], candidate["promotion_state"]) == (1, "active", "promoted")
    assert (parent["is_latest"], parent["lifecycle_state"], parent["superseded_by"], parent["promotion_state"]) == \
        (0, "superseded", "better", "superseded")
    event = world.conn.execute("SELECT * FROM world_model_improvements WHERE target_artifact_id = 'better'").fetchone()
    assert event["event_type"] == "model_version_promoted" and event["source_artifact_id"] == "root"
    assert event["magnitude"] in ("small", "moderate", "large")
    meta = event["detection_metadata"]
    assert meta["seed"] == result["seed"] and meta["n_resamples"] == 1000
    # Events are read by authors: the release (primary rounded to the split's step), no metric table.
    assert "metric_table" not in meta and meta["released"]["primary_value"] == pytest.approx(round(primary["candidate"] / 0.05) * 0.05)
    assert meta["attempt"] == 1 and meta["alpha"] == result["holdout"]["alpha"]
    history = world.conn.execute("SELECT * FROM artifact_lifecycle_history WHERE artifact_id = 'root' "
                                 "ORDER BY id").fetchall()
    assert [(h["from_state"], h["to_state"], h["related_artifact_id"]) for h in history] == \
        [("candidate", "active", None), ("active", "superseded", "better")]
    job = world.conn.execute("SELECT * FROM gate_jobs WHERE artifact_id = 'better'").fetchone()
    assert (job["status"], job["outcome"]) == ("done", "promote")
    assert job["result"]["metric_table"] == result["metric_table"]
    calls = world.conn.execute("SELECT status FROM tool_calls WHERE tool_name = 'run_eval_gate'").fetchall()
    assert [c["status"] for c in calls] == ["ok", "ok"]
    assert_lineage_invariants(world.conn)


def test_a_worse_candidate_is_rejected_with_a_ticket_for_its_author(world):
    world.model("worse", strength=0.0, parent="root")
    result = run_eval_gate("worse", settings=world.settings)
    assert result["outcome"] == "reject"
    assert result["reason_code"] in ("primary_regressed", "primary_not_improved")
    row = world.row("worse")
    assert (row["is_latest"], row["lifecycle_state"], row["promotion_state"]) == (0, "candidate", "rejected")
    # promotion_notes are the author's: verdict, reason code and attempt, no value computed on the labels.
    assert row["promotion_notes"].startswith(f"[reject:{result['reason_code']}]")
    assert "auroc" in row["promotion_notes"] and "CI" not in row["promotion_notes"]
    assert "attempt 1" in row["promotion_notes"]
    assert world.row("root")["promotion_state"] == "promoted"
    ticket = world.conn.execute("SELECT * FROM tickets WHERE artifact_id = 'worse'").fetchone()
    assert ticket["ticket_type"] == "candidate-rejected" and ticket["assignee"] == "agent-test"
    assert not world.conn.execute("SELECT 1 FROM world_model_improvements WHERE target_artifact_id = 'worse'").fetchone()
    assert_lineage_invariants(world.conn)


def test_a_smaller_non_inferior_candidate_is_promoted_with_tradeoff(world):
    # Same behaviour as its parent up to noise-free equality is "no change";
    # a slightly different but equally good model with half the parameters
    # is the tradeoff the policy allows.
    world.model("smaller", strength=0.49, parent="root", parameter_count=400, weights=400,
                tradeoff_justification={"param_count": "-50%", "rationale": "pruned"})
    result = run_eval_gate("smaller", settings=world.settings)
    assert result["outcome"] == "promote_with_tradeoff", result["reason"]
    assert result["tradeoff"]["verified"] is True
    assert world.row("smaller")["promotion_state"] == "promoted"
    assert world.row("root")["superseded_by"] == "smaller"
    event = world.conn.execute("SELECT detection_metadata FROM world_model_improvements "
                               "WHERE target_artifact_id = 'smaller'").fetchone()["detection_metadata"]
    assert event["outcome"] == "promote_with_tradeoff"
    assert_lineage_invariants(world.conn)


def test_an_unverifiable_tradeoff_claim_is_rejected(world):
    # Claims 4x fewer parameters but has the same count as its parent.
    world.model("claims", strength=0.49, parent="root", parameter_count=1000, weights=1000,
                tradeoff_justification={"param_count": "-4x"})
    result = run_eval_gate("claims", settings=world.settings)
    assert result["outcome"] == "reject"
    assert result["reason_code"] in ("tradeoff_claim_not_met", "tradeoff_unverifiable")
    assert world.row("root")["promotion_state"] == "promoted"
    assert_lineage_invariants(world.conn)


@pytest.mark.parametrize("case", ["no_benchmark", "no_eval_py", "broken_eval_py", "malformed_output"])
def test_errors_are_recorded_and_nothing_flips(world, case):
    kwargs = {
        "no_benchmark": dict(benchmark=False),
        "no_eval_py": dict(strength=None),
        "broken_eval_py": dict(eval_source="raise SystemExit('model weights not found')\n"),
        "malformed_output": dict(eval_source="import sys\nopen(sys.argv[-1] + '/predictions.csv', 'w')"
                                             ".write('example_id,prediction\\nnope,0.5\\n')\n"),
    }[case]
    if case == "no_benchmark":
        # Neither the candidate nor its parent names a benchmark.
        world.model("orphan-root", strength=0.5, benchmark=False)
        world.model("candidate", parent="orphan-root", **kwargs)
    else:
        world.model("candidate", parent="root", **kwargs)
    before_root = world.row("root")
    result = run_eval_gate("candidate", settings=world.settings)
    assert result["outcome"] == "error"
    expected = {"no_benchmark": "benchmark_not_found", "no_eval_py": "eval_script_not_found",
                "broken_eval_py": "sandbox_failure", "malformed_output": "invalid_eval_output"}[case]
    assert result["reason_code"] == expected, result["reason"]
    row = world.row("candidate")
    assert (row["promotion_state"], row["is_latest"]) == ("candidate", 0)
    assert row["promotion_notes"].startswith("[error:")
    assert world.row("root") == before_root
    assert not world.conn.execute("SELECT 1 FROM tickets WHERE artifact_id = 'candidate'").fetchone()
    job = world.conn.execute("SELECT status, outcome FROM gate_jobs WHERE artifact_id = 'candidate'").fetchone()
    assert (job["status"], job["outcome"]) == ("done", "error")
    assert_lineage_invariants(world.conn)


def test_the_same_gate_rerun_gives_the_identical_ci(world):
    world.model("again", strength=0.8, parent="root")
    first = evaluate_and_decide(world.conn, world.settings, "again", n_resamples=1000, store=False)
    second = evaluate_and_decide(world.conn, world.settings, "again", n_resamples=1000, store=False)
    assert first["seed"] == second["seed"]
    assert json.dumps(first["metric_table"]) == json.dumps(second["metric_table"])
    applied = run_eval_gate("again", settings=world.settings)
    assert json.dumps(applied["metric_table"]) == json.dumps(first["metric_table"])


HOLDOUT_TABLES = ("holdout_attempts", "holdout_queries", "holdout_splits")


def test_quick_gate_changes_no_lifecycle_state_but_is_a_recorded_query(world):
    world.model("quick", strength=0.9, parent="root")
    before = world.snapshot()
    result = run_eval_gate_quick("quick", settings=world.settings)
    assert result["outcome"] == "promote" and result["dry_run"] and result["attempt"] == 1
    assert "metric_table" not in result and "n_resamples" not in result  # the author's release only
    after = world.snapshot()
    assert {t: v for t, v in after.items() if t not in HOLDOUT_TABLES} == \
        {t: v for t, v in before.items() if t not in HOLDOUT_TABLES}
    query = world.conn.execute("SELECT * FROM holdout_queries WHERE artifact_id = 'quick'").fetchone()
    assert (query["kind"], query["attempt_number"], query["requested_by"]) == ("quick", 1, "run_eval_gate_quick")
    assert query["detail"]["n_resamples"] == 100 and query["detail"]["metric_table"]
    assert query["released"] == {k: v for k, v in result.items() if k != "dry_run"}


def test_the_parent_evaluation_is_cached_and_reused(world):
    world.model("c1", strength=0.0, parent="root")
    world.model("c2", strength=0.1, parent="root")
    first = run_eval_gate("c1", settings=world.settings)
    second = run_eval_gate("c2", settings=world.settings)
    assert first["evaluations"]["parent"]["cached"] is True  # evaluated when root itself was gated
    assert second["evaluations"]["parent"]["cached"] is True
    runs = world.conn.execute("SELECT count(*) AS n FROM eval_results WHERE artifact_id = 'root'").fetchone()["n"]
    assert runs == 1


def test_applying_the_same_verdict_twice_changes_nothing(world):
    world.model("twice", strength=0.95, parent="root")
    result = evaluate_and_decide(world.conn, world.settings, "twice", n_resamples=1000, store=True)
    assert apply_result(world.conn, result, None) is True
    before = world.snapshot()
    assert apply_result(world.conn, result, None) is False
    assert world.snapshot() == before
    assert_lineage_invariants(world.conn)


def test_a_sibling_that_won_meanwhile_makes_the_candidate_compare_with_the_new_head(world):
    world.model("sibling-a", strength=0.95, parent="root")
    world.model("sibling-b", strength=0.96, parent="root")
    stale = evaluate_and_decide(world.conn, world.settings, "sibling-b", n_resamples=1000, store=True)
    assert stale["compared_against"] == "root"
    assert run_eval_gate("sibling-a", settings=world.settings)["outcome"] == "promote"
    with pytest.raises(HeadMoved):
        apply_result(world.conn, stale, None)
    assert world.row("sibling-b")["promotion_state"] == "candidate"  # the stale verdict wrote nothing
    fresh = run_eval_gate("sibling-b", settings=world.settings)
    assert fresh["compared_against"] == "sibling-a" and fresh["head_moved"] is True
    assert_lineage_invariants(world.conn)


def test_decided_versions_are_never_regated(world):
    with pytest.raises(GateRefused, match="already promoted"):
        run_eval_gate("root", settings=world.settings)


def test_force_promote_needs_a_human_and_is_recorded(world):
    world.model("forced", strength=0.0, parent="root")
    assert run_eval_gate("forced", settings=world.settings)["outcome"] == "reject"
    for actor in ("", "  ", "agent-ml-7", "model-eval-gate"):
        with pytest.raises(ValueError, match="human actor"):
            force_promote("forced", actor, "because", settings=world.settings)
    with pytest.raises(ValueError, match="reason"):
        force_promote("forced", "Dr. Ada Lovelace", " ", settings=world.settings)
    result = force_promote("forced", "Dr. Ada Lovelace", "clinical review overrides the benchmark",
                           settings=world.settings)
    assert result["reason_code"] == "forced_promotion"
    assert world.row("forced")["promotion_state"] == "promoted"
    event = world.conn.execute("SELECT detection_metadata FROM world_model_improvements "
                               "WHERE target_artifact_id = 'forced'").fetchone()["detection_metadata"]
    assert event["forced"] is True and event["actor"] == "Dr. Ada Lovelace"
    history = world.conn.execute("SELECT actor FROM artifact_lifecycle_history WHERE artifact_id = 'root' "
                                 "AND to_state = 'superseded'").fetchone()
    assert history["actor"] == "Dr. Ada Lovelace"
    call = world.conn.execute("SELECT arguments FROM tool_calls WHERE tool_name = 'force_promote' "
                              "AND status = 'ok'").fetchone()
    assert call["arguments"]["actor"] == "Dr. Ada Lovelace"
    assert_lineage_invariants(world.conn)


def test_a_forced_promotion_never_becomes_the_biocreep_anchor(world):
    """root -> good (improved) -> weak (forced) -> cheap (tradeoff, about as good as weak): the anchor stays good.

    Before, the anchor was the lineage's latest promotion without a tradeoff,
    and a forced one counted: weak became the anchor and cheap, far below
    good, was promoted with a tradeoff.
    """
    world.model("good", strength=0.95, parent="root")
    assert run_eval_gate("good", settings=world.settings)["reason_code"] == "improved"
    world.model("weak", strength=0.45, parent="good", weights=1000)
    assert run_eval_gate("weak", settings=world.settings)["outcome"] == "reject"
    force_promote("weak", "Dr. Ada Lovelace", "needed for a site audit", settings=world.settings)
    world.model("cheap", strength=0.44, parent="weak", parameter_count=400, weights=400,
                tradeoff_justification={"param_count": "-50%"})
    result = run_eval_gate("cheap", settings=world.settings)
    assert result["biocreep_anchor"]["version_id"] == "good"
    assert [p["version_id"] for p in result["biocreep_anchor"]["plain_promotions"]] == ["good", "root"]
    assert result["reason_code"] == "cumulative_inferiority", result["reason"]
    assert result["compared_with_baseline"]["version_id"] == "good"
    assert world.row("weak")["is_latest"] == 1
    assert_lineage_invariants(world.conn)
