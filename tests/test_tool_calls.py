"""log_tool_call audits every call in tool_calls; configure_logging writes one JSON object per line."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import structlog

from model_eval_gate import register_model
from model_eval_gate.catalog import MetadataValidationError, backfill
from model_eval_gate.config import Settings
from model_eval_gate.logging import configure_logging, get_logger, log_tool_call


class ScoringFailed(ValueError):
    pass


@log_tool_call("score_model", summarize=lambda score: {"score": score})
def score_model(name: str, weights: dict, *, settings: Settings, fail: bool = False) -> float:
    if fail:
        raise ScoringFailed(f"cannot score {name}")
    return sum(weights.values())


@log_tool_call("summary_breaks", summarize=lambda result: result["missing"])
def summary_breaks(*, settings: Settings) -> dict:
    return {"value": 7}


def audit_rows(conn, tool_name: str) -> list[dict]:
    return conn.execute("SELECT * FROM tool_calls WHERE tool_name = %s ORDER BY id", (tool_name,)).fetchall()


def test_an_ok_call_is_recorded_with_its_arguments_duration_and_summary(conn, settings):
    assert score_model("ad-risk", {"a": 0.5, "b": 0.25}, settings=settings) == 0.75
    [row] = audit_rows(conn, "score_model")
    assert row["status"] == "ok" and row["error"] is None
    assert row["arguments"] == {"name": "ad-risk", "weights": {"a": 0.5, "b": 0.25}}  # settings is not recorded
    assert row["result_summary"] == {"score": 0.75}
    assert row["duration_ms"] >= 0 and row["started_at"] is not None


def test_an_error_call_is_recorded_and_the_error_still_raised(conn, settings):
    with pytest.raises(ScoringFailed, match="cannot score ad-risk"):
        score_model("ad-risk", {}, settings=settings, fail=True)
    [row] = audit_rows(conn, "score_model")
    assert row["status"] == "error"
    assert row["error"] == "ScoringFailed: cannot score ad-risk"
    assert row["arguments"] == {"name": "ad-risk", "weights": {}, "fail": True}
    assert row["result_summary"] is None and row["duration_ms"] >= 0


def test_arguments_json_cannot_carry_are_still_audited(conn, settings):
    with pytest.raises(ScoringFailed):
        score_model("nul\x00name", {"nan": math.nan, "path": Path("/x")}, settings=settings, fail=True)
    [row] = audit_rows(conn, "score_model")
    assert row["arguments"]["name"] == "nul\\u0000name"
    assert row["arguments"]["weights"] == {"nan": "nan", "path": "PosixPath('/x')"}
    assert "\\u0000" in row["error"]


def test_a_failing_summary_does_not_cost_the_caller_its_result(conn, settings):
    assert summary_breaks(settings=settings) == {"value": 7}
    [row] = audit_rows(conn, "summary_breaks")
    assert row["status"] == "ok"
    assert row["result_summary"] == {"summary_failed": "KeyError: 'missing'"}


def test_an_unreachable_audit_database_never_breaks_the_tool(tmp_path):
    unreachable = Settings(dsn=f"postgresql://nobody@/none?host={tmp_path}", home=tmp_path)
    assert score_model("x", {"a": 1.0}, settings=unreachable) == 1.0


def test_register_model_is_audited_both_ways(conn, settings):
    metadata = {"model_family": "rule_based", "framework": "python", "parameter_count": 0,
                "training_data": "Open Targets", "evaluation_dataset": "OT-AD", "evaluation_metrics": {"ndcg": 0.4}}
    artifact_id = register_model({"title": "ranker", "metadata": metadata}, settings=settings)
    with pytest.raises(MetadataValidationError):
        register_model({"title": "ranker", "metadata": {}}, settings=settings)
    ok, error = audit_rows(conn, "register_model")
    assert ok["status"] == "ok" and ok["result_summary"] == {"artifact_id": artifact_id}
    assert ok["arguments"]["payload"]["metadata"] == metadata
    assert error["status"] == "error" and error["error"].startswith("MetadataValidationError: invalid model registration")
    assert "$.metadata.framework" in error["error"]


def test_backfill_is_audited(conn, settings, tmp_path):
    report = tmp_path / "report.md"
    outcome = backfill(settings=settings, report_path=report, load_fixture=True)
    [row] = audit_rows(conn, "backfill")
    assert row["status"] == "ok"
    assert row["arguments"] == {"report_path": repr(report), "load_fixture": True}
    assert row["result_summary"] == {"adopted": outcome.adopted, "report": str(report.resolve())}


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    yield stream
    structlog.reset_defaults()  # later tests must not write into this stream


def test_configure_logging_writes_one_json_object_per_line(log_stream):
    configure_logging("info", stream=log_stream)
    log = get_logger("model_eval_gate.test", worker="w1")
    log.info("gate_started", candidate_id="model-2", parent_id="model-1", note="two\nlines")
    log.debug("not_shown")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("gate_failed", candidate_id="model-2")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    started, failed = (json.loads(line) for line in lines)
    assert started["event"] == "gate_started" and started["level"] == "info"
    assert (started["candidate_id"], started["parent_id"], started["worker"], started["note"]) == \
           ("model-2", "model-1", "w1", "two\nlines")
    assert started["ts"].endswith("Z")
    assert failed["level"] == "error" and "ValueError: boom" in failed["exception"]


def test_configure_logging_filters_below_its_level(log_stream):
    configure_logging("warning", stream=log_stream)
    get_logger().info("quiet")
    get_logger().warning("loud")
    assert [json.loads(line)["event"] for line in log_stream.getvalue().splitlines()] == ["loud"]
