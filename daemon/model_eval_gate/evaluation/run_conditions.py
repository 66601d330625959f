"""The conditions of a sandbox run that can change its result: part of the evaluation cache key.

A stored evaluation is reused only under the same conditions: sandboxed or
not (an unsandboxed run can read the labels), the interpreter and the
packages it imports, and the resource limits. The split hash and the model's
content hash are keyed separately (their own columns of eval_results).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
from importlib import metadata


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _own_environment() -> tuple[str, ...]:
    """name==version of every distribution this interpreter can import (what eval.py sees)."""
    return tuple(sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                         if d.metadata['Name']}))


def interpreter_identity(python: str | None) -> dict:
    """What identifies the interpreter a model runs under: its binary's hash, version and environment."""
    executable = os.path.realpath(python or sys.executable)
    info = os.stat(executable)
    identity = {"executable": executable, "sha256": _file_digest(executable, info.st_size, info.st_mtime_ns)}
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        identity["version"] = sys.version
        identity["prefix"] = sys.prefix
        identity["distributions"] = list(_own_environment())
    else:
        # Another interpreter: its venv configuration is what we can read without running it.
        cfg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(python))), "pyvenv.cfg")
        if os.path.isfile(cfg):
            with open(cfg, "rb") as handle:
                identity["pyvenv_cfg"] = hashlib.sha256(handle.read()).hexdigest()
    return identity


def run_key(*, sandboxed: bool, python: str | None, limits, environment_hash: str = "") -> str:
    """A sha256 over everything but split and model that decides what a run can produce.

    environment_hash is the model's declared environment ('' for the default
    interpreter; evaluation/environments.py): its packages are what eval.py
    imports, so two environments never share a stored result.
    """
    conditions = {
        "sandboxed": bool(sandboxed),
        "interpreter": interpreter_identity(python),
        "environment": environment_hash,
        "limits": dataclasses.asdict(limits),
    }
    return hashlib.sha256(json.dumps(conditions, sort_keys=True, default=str).encode()).hexdigest()
