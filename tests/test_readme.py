"""The README's commands, as written, so that they stay true.

The fast tests read every code block: each `model-eval-gate ...` line names a
real command with real options, and each JSON block is a registration the
schema accepts. The walk-through ("Register a version of your own") runs for
real, block as written, after the demo in tests/test_demo.py (one demo run
serves both); the only line changed is the export of the demo's home, which
points at the test's own directory.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
WALKTHROUGH_HEADING = "### Register a version of your own, on the demo's data"
HOME_EXPORT = re.compile(r"^export MODEL_EVAL_GATE_HOME=\S+.*$", re.MULTILINE)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def block_after(heading: str, language: str = "sh") -> str:
    start = README.index(heading)
    return code_blocks(README[start:], language)[0]


def command_lines() -> list[str]:
    """Every README line that runs model-eval-gate, without comments, optional [..] parts or shell pipes."""
    found = []
    for block in code_blocks(README, "sh"):
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith("model-eval-gate "):
                continue
            line = re.sub(r"\s+#.*$", "", line)
            line = re.split(r"\s(?:&&|\||;|2>)", line)[0]
            line = re.sub(r"\[[^\]]*\]", "", line)
            found.append(line.strip())
    return found


@pytest.mark.parametrize("line", command_lines())
def test_every_command_the_readme_shows_exists_with_those_options(line):
    from model_eval_gate.cli import parse_args

    words = shlex.split(line)[1:]
    try:
        parse_args(words)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"README: `{line}` is not a valid command line (exit {exc.code})")


def test_the_readme_shows_the_new_commands():
    shown = {shlex.split(line)[1] for line in command_lines()}
    assert {"db", "psql", "demo", "migrate", "register", "gate", "status", "run"} <= shown


@pytest.mark.parametrize("block", [b for b in code_blocks(README, "json") if '"metadata"' in b])
def test_every_registration_in_the_readme_is_valid(block):
    from model_eval_gate.catalog import registration_violations

    payload = json.loads(block)
    assert registration_violations(payload) == []
    assert payload.get("artifact_id"), "a registration example needs its id, to place eval.py first"


def test_the_walk_through_is_in_the_readme():
    script = block_after(WALKTHROUGH_HEADING)
    assert HOME_EXPORT.search(script), "the walk-through starts by pointing at the demo's home"
    assert "model-eval-gate register" in script and "model-eval-gate gate" in script


def cli_shim(directory: Path) -> Path:
    """A `model-eval-gate` on PATH that runs this checkout's code, installed or not."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "model-eval-gate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m model_eval_gate.cli "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def run_walkthrough(demo_home: Path, workdir: Path) -> subprocess.CompletedProcess:
    """The README's walk-through block, as written, in bash, against the demo in demo_home."""
    script = HOME_EXPORT.sub(f"export MODEL_EVAL_GATE_HOME={shlex.quote(str(demo_home))}",
                             block_after(WALKTHROUGH_HEADING), count=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_EVAL_GATE_")}
    env["PYTHONPATH"] = str(REPO / "daemon")
    env["PATH"] = f"{cli_shim(workdir)}:{env.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)


def assert_walkthrough_worked(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert out.splitlines()[0] == "model-ad-risk-v4"  # register printed the id
    assert "verdict     REJECT (no_behavioural_change" in out  # the gate's verdict, as the README says
    assert "model-ad-risk-v4 | rejected" in out  # and psql shows it recorded
    assert "Traceback" not in run.stderr


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_link_from_the_readme_and_the_docs_reaches_its_file_and_heading():
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
