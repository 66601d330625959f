"""Hostile author input: metadata, registration files, reasons, ids (issue 14, items 3 and 9).

Every attack ends in a clear refusal (exit 2 with the violation, a CHECK
violation in the database) or a recorded error verdict, and the lineage keeps
working afterwards: later candidates are gated and force-promote still works.
"""
from __future__ import annotations

import json

import psycopg
import pytest
import structlog
from gate_world import World, metadata

from model_eval_gate import cli
from model_eval_gate.bounded_json import MAX_JSON_DEPTH, MAX_METADATA_BYTES, JsonLimitError, load_bounded
from model_eval_gate.catalog import MetadataValidationError, register_model
from model_eval_gate.gate import force_promote, run_eval_gate
from model_eval_gate.safe_text import MAX_REASON_CHARS, escape_control


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def _registration(**meta) -> dict:
    return {"title": "hostile", "trained_by": "agent-test", "metadata": metadata(**meta)}


@pytest.fixture(autouse=True)
def _fresh_logging():
    yield
    structlog.reset_defaults()  # cli.main points the log at this test's captured stream


@pytest.fixture
def world(settings, conn, tmp_path):
    return World(settings, conn, tmp_path, n=120)


# --- register: the file ---------------------------------------------------------------


@pytest.mark.parametrize("text, fragment", [
    ('{"title": "t", "metadata": ' + '{"x": ' * 5000 + "{}" + "}" * 5000 + "}", "nested 5002 deep"),
    ('{"title": "t", "metadata": {"parameter_count": ' + "9" * 5000 + "}}", "an integer has 5000 digits"),
    ('{"title": "t", "title": "u", "metadata": {}}', "the key 'title' appears twice"),
    ('{"title": "t", "metadata": {"parameter_count": NaN}}', "not a finite number"),
])
def test_register_refuses_hostile_files_with_exit_2_and_no_traceback(settings, conn, tmp_path, monkeypatch,
                                                                     capsys, text, fragment):
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", settings.dsn)
    path = tmp_path / "registration.json"
    path.write_text(text)
    assert cli.main(["register", str(path)]) == 2
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert conn.execute("SELECT count(*) AS n FROM model_versions").fetchone()["n"] == 0


def test_register_refuses_an_oversized_file_before_reading_it_whole(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", settings.dsn)
    path = tmp_path / "big.json"
    blob = {"k%d" % i: "v" * 90 for i in range(100_000)}  # 10 MB, 100k keys
    path.write_text(json.dumps({"title": "t", "metadata": metadata(blob=blob)}))
    assert cli.main(["register", str(path)]) == 2
    assert "over the limit of" in capsys.readouterr().err


def test_metadata_size_depth_and_rationale_are_capped_through_the_api(settings):
    cases = {
        "deep": _registration(extra=_nested(MAX_JSON_DEPTH + 5)),
        "big": _registration(blob="x" * (MAX_METADATA_BYTES + 1)),
        "rationale": _registration(tradeoff_justification={
            "param_count": {"claimed_reduction": 0.5, "max_primary_loss": 0.01}, "rationale": "r" * 4001}),
    }
    messages = {}
    for name, payload in cases.items():
        with pytest.raises(MetadataValidationError) as caught:
            register_model(payload, settings=settings)
        messages[name] = str(caught.value)
    assert f"over the limit of {MAX_JSON_DEPTH}" in messages["deep"]
    assert f"over the limit of {MAX_METADATA_BYTES} bytes" in messages["big"]
    assert "rationale" in messages["rationale"] and "too long" in messages["rationale"]


def test_bounded_loader_measures_depth_without_recursing():
    deep = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(JsonLimitError, match="nested 200000 deep"):
        load_bounded(deep, max_bytes=1 << 20)
    # Brackets inside strings are text, not nesting.
    assert load_bounded(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 40}


# --- the database's own checks --------------------------------------------------------


def _insert_artifact(conn, artifact_id: str, meta_text: str) -> None:
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, is_latest, lifecycle_state, metadata) "
                 "VALUES (%s, 'model', %s, 0, 'candidate', %s::jsonb)", (artifact_id, artifact_id, meta_text))


def test_the_database_refuses_deep_or_huge_model_metadata_from_plain_sql(conn):
    with pytest.raises(psycopg.errors.CheckViolation, match="nested more than 32 deep") as deep:
        _insert_artifact(conn, "deep", json.dumps(_nested(MAX_JSON_DEPTH + 1)))
    with pytest.raises(psycopg.errors.CheckViolation, match="over the limit of 262144") as huge:
        _insert_artifact(conn, "huge", json.dumps({"blob": "x" * MAX_METADATA_BYTES}))
    assert deep.value.diag.constraint_name == huge.value.diag.constraint_name == "artifacts_model_metadata_bounded"
    _insert_artifact(conn, "fine", json.dumps(_nested(MAX_JSON_DEPTH)))  # the limit itself is allowed
    # Other artifact types (datasets, reports) are the host's business.
    conn.execute("INSERT INTO artifacts (id, artifact_type, title, metadata) VALUES ('dataset', 'dataset', 'd', %s)",
                 (json.dumps(_nested(MAX_JSON_DEPTH + 1)),))


def test_the_database_refuses_a_megabyte_request_reason(world, conn):
    world.model("root", strength=0.5)
    with pytest.raises(psycopg.errors.CheckViolation, match="at most 1000 characters"):
        conn.execute("SELECT model_eval_gate_request('root', %s, 'agent')", ("r" * (MAX_REASON_CHARS + 1),))


def test_a_legacy_row_nested_5000_deep_does_not_break_its_lineage(world, conn):
    """A head whose metadata predates the CHECK: later candidates and force-promote still work."""
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=world.settings)["outcome"] == "promote"
    deep = "[" * 5000 + "]" * 5000
    conn.execute("ALTER TABLE artifacts DISABLE TRIGGER artifacts_model_metadata_bounded")  # as before 0010
    conn.execute("UPDATE artifacts SET metadata = jsonb_build_object('legacy', %s::jsonb) WHERE id = 'root'", (deep,))
    world.model("deep-candidate", strength=0.9, parent="root")
    conn.execute("UPDATE artifacts SET metadata = jsonb_build_object('legacy', %s::jsonb) "
                 "WHERE id = 'deep-candidate'", (deep,))
    conn.execute("ALTER TABLE artifacts ENABLE TRIGGER artifacts_model_metadata_bounded")

    broken = run_eval_gate("deep-candidate", settings=world.settings)
    assert broken["outcome"] == "error" and broken["reason_code"] == "evaluation_error"
    assert "cannot be read" in broken["reason"] and "nested too deep" in broken["reason"]

    world.model("next", strength=0.95, parent="root")
    assert run_eval_gate("next", settings=world.settings)["outcome"] == "promote"
    world.model("forced", strength=0.6, parent="next")
    assert force_promote("forced", "Ada Lovelace", "hotfix", settings=world.settings)["outcome"] == "promote"


# --- exceptions become verdicts ---------------------------------------------------------


def test_an_os_error_in_the_worker_path_is_an_error_verdict(world, conn, tmp_path):
    """ENAMETOOLONG (an artifact id or root too long for the filesystem) ends as a verdict, not 3 retries."""
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=world.settings)["outcome"] == "promote"
    world.model("candidate", strength=0.9, parent="root")
    unreachable = world.settings.with_(artifact_root=tmp_path / ("a" * 300))
    result = run_eval_gate("candidate", settings=unreachable)
    assert (result["outcome"], result["reason_code"]) == ("error", "evaluation_error")
    assert "OSError" in result["reason"] and "File name too long" in result["reason"]
    job = conn.execute("SELECT status, attempt FROM gate_jobs WHERE artifact_id = 'candidate' "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    assert (job["status"], job["attempt"]) == ("done", 1)
    world.model("after", strength=0.95, parent="root")
    assert run_eval_gate("after", settings=world.settings)["outcome"] == "promote"


# --- reasons and text -----------------------------------------------------------------


def test_force_promote_and_regate_refuse_huge_or_controlling_reasons(world, conn, settings, monkeypatch, capsys):
    world.model("root", strength=0.5)
    with pytest.raises(ValueError, match="over the limit of 1000"):
        force_promote("root", "Ada Lovelace", "x" * 5_000_000, settings=settings)
    with pytest.raises(ValueError, match="control characters"):
        force_promote("root", "Ada Lovelace", "ok\x1b]52;c;cm0gLXJmIH4=\x07", settings=settings)
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", settings.dsn)
    assert cli.main(["regate", "root", "--reason", "r" * 5_000_000]) == 2
    err = capsys.readouterr().err
    assert "over the limit of 1000" in err and len(err) < 2000


def test_escape_control_keeps_text_readable_and_inert():
    hostile = "ok\x1b[2K\rPROMOTE \x1b]52;c;Zm9v\x07 \u202eevil\x9b31m\n\tnext"
    escaped = escape_control(hostile)
    assert escaped == "ok\\x1b[2K\\x0dPROMOTE \\x1b]52;c;Zm9v\\x07 \\u202eevil\\x9b31m\n\tnext"
    assert escape_control(escaped) == escaped


def test_the_cli_escapes_what_it_prints(capsys):
    from model_eval_gate.safe_text import EscapingStream
    import sys

    stream = EscapingStream(sys.stdout)
    print("id \x1b[31mred\x1b[0m", file=stream)
    assert capsys.readouterr().out == "id \\x1b[31mred\\x1b[0m\n"


def test_log_lines_carry_at_most_a_bounded_value(capsys):
    from model_eval_gate.logging import configure_logging, get_logger

    configure_logging("info", stream=None)
    get_logger("test").info("request", reason="r" * 5_000_000)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(line) < 3000 and "characters truncated" in line
