""".ci/run itself: it cleans up after itself, and runs the unprivileged pass after the suite.

The real script runs against stand-ins for the slow parts (a python3 whose
`-m venv` makes a stub virtualenv, whose pip does nothing and whose pytest
only says it ran; .ci/unprivileged replaced by a recorder), so what is
tested is the script's own logic: where the venv goes, that a temporary one
is removed on exit, success or failure, and that a named one is kept.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUB_PYTHON3 = r"""#!/bin/sh
# python3 -m venv DIR: a stub virtualenv whose python records what it is asked.
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 1
mkdir -p "$3/bin"
cat > "$3/bin/activate" <<EOF
PATH="$3/bin:\$PATH"; export PATH
deactivate() { :; }
EOF
cat > "$3/bin/python" <<'EOF'
#!/bin/sh
echo "python $*" >> "$CI_TRACE"
[ "$2" = "pytest" ] && exit "${STUB_PYTEST_STATUS:-0}"
exit 0
EOF
chmod +x "$3/bin/python"
"""

RECORDER = """#!/usr/bin/env bash
echo "unprivileged pass" >> "$CI_TRACE"
"""


@pytest.fixture
def ci(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", checkout / ".ci" / "run")
    (checkout / ".ci" / "unprivileged").write_text(RECORDER)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in {"python3": STUB_PYTHON3, "bwrap": "#!/bin/sh\necho bubblewrap 0.0\n",
                       "chromium": "#!/bin/sh\nexit 0\n"}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    trace = tmp_path / "trace"

    def run(**environment: str) -> subprocess.CompletedProcess:
        env = {"PATH": f"{stubs}:/usr/bin:/bin", "TMPDIR": str(scratch), "CI_TRACE": str(trace),
               "HOME": str(tmp_path), **environment}
        return subprocess.run(["bash", str(checkout / ".ci" / "run")], env=env, capture_output=True, text=True,
                              timeout=60)

    return run, scratch, trace


def test_a_temporary_venv_is_removed_on_exit_and_the_unprivileged_pass_follows_the_suite(ci):
    run, scratch, trace = ci
    done = run()
    assert done.returncode == 0, done.stderr
    assert list(scratch.iterdir()) == []  # the venv made under TMPDIR is gone
    steps = trace.read_text().splitlines()
    assert steps[-2:] == ["python -m pytest", "unprivileged pass"]


def test_a_failing_suite_still_removes_the_venv_and_fails(ci):
    run, scratch, trace = ci
    done = run(STUB_PYTEST_STATUS="1")
    assert done.returncode == 1
    assert list(scratch.iterdir()) == []
    assert "unprivileged pass" not in trace.read_text()


def test_a_named_venv_is_reused_and_kept(ci, tmp_path):
    run, scratch, trace = ci
    venv = tmp_path / "kept-venv"
    assert run(MODEL_EVAL_GATE_CI_VENV=str(venv)).returncode == 0
    assert (venv / "bin" / "python").exists() and list(scratch.iterdir()) == []
    marker = venv / "bin" / "marker"
    marker.write_text("still here")
    assert run(MODEL_EVAL_GATE_CI_VENV=str(venv)).returncode == 0
    assert marker.read_text() == "still here"  # reused, not recreated
