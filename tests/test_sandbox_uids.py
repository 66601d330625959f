"""CLI and API gates never share a sandbox uid with the daemon's workers (issue 14, item 5).

RLIMIT_NPROC counts per uid host-wide: a fork bomb in a worker slot's model
used to turn an innocent CLI-gated candidate's verdict into sandbox_failure,
because `model-eval-gate gate` ran models as the same uid as slot 0 (65534,
which host services share as `nobody`).
"""
from __future__ import annotations

import os

import pytest
from gate_world import World

from model_eval_gate.config import (
    DEFAULT_DIRECT_SANDBOX_UID,
    DEFAULT_SANDBOX_UID,
    ConfigError,
    Settings,
)
from model_eval_gate.gate import run_eval_gate, run_eval_gate_quick

ROOT_MODE = os.geteuid() == 0
WHO_AM_I = "import os, sys\nsys.exit(f'uid={os.getuid()}')\n"


def test_the_defaults_are_a_dedicated_block_not_nobody():
    settings = Settings()
    assert 65534 not in (settings.sandbox_uid, settings.sandbox_gid, settings.direct_sandbox_uid)
    assert settings.sandbox_uid == DEFAULT_SANDBOX_UID
    assert settings.direct_sandbox_uid == DEFAULT_DIRECT_SANDBOX_UID
    daemon_block = range(settings.sandbox_uid - 999, settings.sandbox_uid + 1)  # up to 1000 workers
    assert settings.direct_sandbox_uid not in daemon_block


@pytest.mark.parametrize("environ, fragment", [
    ({"MODEL_EVAL_GATE_WORKERS": "4", "MODEL_EVAL_GATE_DIRECT_SANDBOX_UID": str(DEFAULT_SANDBOX_UID - 2)},
     "lies in the daemon's block"),
    ({"MODEL_EVAL_GATE_SANDBOX_UID": "2", "MODEL_EVAL_GATE_WORKERS": "3"}, "never root"),
    ({"MODEL_EVAL_GATE_DIRECT_SANDBOX_UID": "0"}, "never root"),
])
def test_overlapping_or_root_uids_are_refused(environ, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(environ)


def test_cli_and_api_gates_run_as_the_direct_uid(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=60)
    world.model("root", eval_source=WHO_AM_I)
    applied = run_eval_gate("root", settings=settings)
    quick = run_eval_gate_quick("root", settings=settings, audience="operator")  # the author view keeps no stderr
    expected = settings.direct_sandbox_uid if ROOT_MODE else os.getuid()
    for result in (applied, quick):
        assert result["outcome"] == "error"
        assert result["stderr_tail"].strip().endswith(f"uid={expected}"), result["stderr_tail"]
