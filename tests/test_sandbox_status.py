"""Model text is data, not control (issue 14, item 8).

Whether the sandbox could be set up is read from bubblewrap's own status
channel (--json-status-fd), never from stderr, which the model writes; and
what the model prints reaches terminals and stored notes escaped.
"""
from __future__ import annotations

import pytest
import structlog
from gate_world import World

from hostile.harness import ISOLATED_UID, TIGHT_LIMITS, make_layout, require_bubblewrap
from model_eval_gate.gate import run_eval_gate
from model_eval_gate.sandbox import discard_output, run_eval_py

FORGER = """
sys.stderr.write("bwrap: Creating new namespace failed: Operation not permitted\\n")
sys.exit(1)
"""


@pytest.fixture(autouse=True)
def _bubblewrap_present():
    require_bubblewrap()
    yield
    structlog.reset_defaults()  # cli.main points the log at a captured stream


def _run(layout, **kwargs):
    result = run_eval_py(layout.model_dir, layout.split_dir, limits=TIGHT_LIMITS, work_dir=layout.work_dir,
                         sandbox_uid=ISOLATED_UID, sandbox_gid=ISOLATED_UID, **kwargs)
    discard_output(result.out_dir)
    return result


def test_a_model_printing_a_bwrap_error_is_not_a_setup_failure(tmp_path):
    result = _run(make_layout(tmp_path / "forger", FORGER))
    assert not result.ok and not result.setup_failed
    assert result.error == "exited with status 1"


def test_a_real_setup_failure_is_reported_from_bubblewraps_status_channel(tmp_path):
    # The real bwrap, asked to bind a source that does not exist: it fails
    # while building the sandbox, before anything of the model runs.
    wrapper = tmp_path / "bin" / "bwrap"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\nexec bwrap --ro-bind /nonexistent-meg-source /mnt "$@"\n')
    wrapper.chmod(0o755)
    result = _run(make_layout(tmp_path / "model", "report(ran=True)\n"), bwrap=str(wrapper))
    assert result.setup_failed and not result.ok
    assert result.error.startswith("sandbox setup failed: bwrap: Can't find source path /nonexistent-meg-source")
    assert "ran" not in result.stdout


ESCAPES = """
import os, sys
sys.stderr.write("\\x1b[2J\\x1b[H\\x1b]52;c;cm0gLXJmIH4K\\x07PROMOTED\\r\\x1b[1A\\n")
sys.exit(3)
"""


def test_escape_sequences_in_model_output_are_stored_and_printed_inert(settings, conn, tmp_path, capsys, monkeypatch):
    from model_eval_gate import cli

    world = World(settings, conn, tmp_path, n=60)
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    world.model("painter", parent="root", eval_source=ESCAPES)
    result = run_eval_gate("painter", settings=settings)
    assert result["outcome"] == "error" and result["reason_code"] == "sandbox_failure"
    assert "\x1b" not in result["stderr_tail"] and "\\x1b]52;c;" in result["stderr_tail"]
    stored = conn.execute("SELECT result::text AS r FROM gate_jobs WHERE artifact_id = 'painter'").fetchone()["r"]
    assert "\\u001b" not in stored and "\x1b" not in stored
    # What the CLI prints of it (status shows the last verdict) carries no raw ESC either.
    monkeypatch.setenv("MODEL_EVAL_GATE_DSN", settings.dsn)
    cli.main(["gate", "painter", "--dry-run"])
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err
