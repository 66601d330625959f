"""The host side of a run, resolved before anything starts: the model and split
directories, the interpreter and its prefix, a model's environment, and the
helper tools (bwrap, timeout, setpriv, prlimit). Every refusal here is a
SandboxConfigError or SandboxUnavailable raised before model code runs."""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import site
import stat
import subprocess
import sys

from .limits import SandboxConfigError, SandboxUnavailable


# bwrap's own environment stays readable inside as /proc/1/environ when the
# sandbox shares its uid (the unprivileged path), so it gets nothing from ours.
_BWRAP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
_TOOL_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def bwrap_available(bwrap: str | None = None) -> bool:
    """True when a bubblewrap executable is found (at `bwrap`, or on PATH)."""
    return _find_tool("bwrap", bwrap) is not None


@dataclasses.dataclass(frozen=True)
class _Interpreter:
    executable: str  # the path run inside; its directories resolved, its last component kept
    bind_dirs: tuple[str, ...]  # real host directories bound read-only at the same path


def _resolve_inputs(model_dir: str | os.PathLike[str], split_dir: str | os.PathLike[str]) -> tuple[str, str]:
    # Binding the real path means a symlinked model or split directory cannot
    # widen what is mounted; symlinks inside resolve within the sandbox's view.
    model_real = os.path.realpath(model_dir)
    split_real = os.path.realpath(split_dir)
    if not os.path.isdir(model_real):
        raise SandboxConfigError(f"model directory {os.fspath(model_dir)} does not exist or is not a directory")
    eval_py = os.path.join(model_real, "eval.py")
    if not os.path.isfile(eval_py):
        raise SandboxConfigError(f"model directory {model_real} has no eval.py")
    if not os.path.isdir(split_real):
        raise SandboxConfigError(f"split directory {os.fspath(split_dir)} does not exist or is not a directory")
    benchmark_dir = os.path.dirname(split_real)
    if _is_within(benchmark_dir, model_real):
        raise SandboxConfigError(
            f"model directory {model_real} contains the benchmark directory {benchmark_dir}; "
            "its labels would be visible to the model"
        )
    return model_real, split_real


def _refuse_exposing_binds(interpreter: _Interpreter, model_real: str, split_real: str) -> None:
    benchmark_dir = os.path.dirname(split_real)
    for bound in (*interpreter.bind_dirs, "/usr"):
        for what, path in (("benchmark directory", benchmark_dir), ("model directory", model_real)):
            if _is_within(path, bound):
                raise SandboxConfigError(
                    f"{what} {path} lies inside {bound}, which the sandbox binds read-only for the "
                    "interpreter; move it (or the interpreter) elsewhere so labels and other models stay hidden"
                )


def _resolve_environment(environment: str | os.PathLike[str] | None, model_real: str, split_real: str) -> str | None:
    if environment is None:
        return None
    real = os.path.realpath(environment)
    if not os.path.isfile(os.path.join(real, "pyvenv.cfg")):
        raise SandboxConfigError(f"environment {os.fspath(environment)} is not a virtual environment (no pyvenv.cfg)")
    benchmark_dir = os.path.dirname(split_real)
    for what, path in (("benchmark directory", benchmark_dir), ("model directory", model_real)):
        if _is_within(path, real) or _is_within(real, path):
            raise SandboxConfigError(f"environment {real} overlaps the {what} {path}; keep environments apart")
    return real


@functools.lru_cache(maxsize=8)
def _interpreter(python: str) -> _Interpreter:
    found = python if os.path.isabs(python) else shutil.which(python)
    if not found or not os.access(found, os.X_OK) or not os.path.isfile(found):
        raise SandboxConfigError(f"interpreter {python!r} is not an executable file")
    executable = os.path.join(os.path.realpath(os.path.dirname(found)), os.path.basename(found))
    if _same_interpreter(executable, sys.executable):
        roots = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *site.getsitepackages()]
    else:
        roots = _query_interpreter_roots(executable)
    binds: list[str] = []
    for root in sorted({os.path.realpath(path) for path in roots if path}, key=len):
        if root == "/":
            raise SandboxConfigError(f"interpreter {python!r} has prefix /; binding it would expose the whole host")
        if not os.path.isdir(root) or _is_within(root, "/usr") or any(_is_within(root, b) for b in binds):
            continue
        binds.append(root)
    covered = (*binds, "/usr")
    for needed in (os.path.dirname(executable), os.path.realpath(executable)):
        if not any(_is_within(needed, tree) for tree in covered):
            raise SandboxConfigError(
                f"interpreter {python!r} resolves to {needed}, outside its prefix {binds or ['/usr']}; "
                "the sandbox would not be able to run it"
            )
    return _Interpreter(executable=executable, bind_dirs=tuple(binds))


def _same_interpreter(executable: str, current: str) -> bool:
    if not current:
        return False
    return executable == os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))


def _query_interpreter_roots(executable: str) -> list[str]:
    code = (
        "import site, sys\n"
        "print('\\n'.join([sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *site.getsitepackages()]))"
    )
    try:
        completed = subprocess.run(
            [executable, "-I", "-c", code], capture_output=True, text=True, timeout=60, env=_BWRAP_ENV, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxConfigError(f"interpreter {executable} cannot be queried for its prefix: {exc}") from exc
    if completed.returncode != 0:
        raise SandboxConfigError(
            f"interpreter {executable} failed to report its prefix (status {completed.returncode}): "
            f"{completed.stderr.strip()[-500:]}"
        )
    return [line for line in completed.stdout.splitlines() if line.strip()]


def _check_readable_by(path: str, uid: int, gid: int, what: str) -> None:
    info = os.stat(path)
    needed = 0o5 if stat.S_ISDIR(info.st_mode) else 0o4
    if info.st_uid == uid:
        granted = (info.st_mode >> 6) & 0o7
    elif info.st_gid == gid:
        granted = (info.st_mode >> 3) & 0o7
    else:
        granted = info.st_mode & 0o7
    if granted & needed != needed:
        raise SandboxConfigError(
            f"{what} {path} is not readable by the sandbox uid {uid} (mode {stat.filemode(info.st_mode)}, "
            f"owner {info.st_uid}:{info.st_gid}); make it readable by others or by group {gid}"
        )


def _is_within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


@dataclasses.dataclass(frozen=True)
class _Tools:
    prlimit: str | None  # only unsandboxed: bwrap's sandbox gets its limits through _LimitHold
    bwrap: str | None  # None: running unsandboxed, as explicitly allowed
    timeout: str | None
    setpriv: str | None  # only as root


def _resolve_tools(bwrap: str | None, *, root_mode: bool, allow_unsandboxed: bool) -> _Tools:
    bwrap_path = _find_tool("bwrap", bwrap)
    if bwrap_path is None:
        if not allow_unsandboxed:
            where = f" at {bwrap}" if bwrap else " on PATH"
            raise SandboxUnavailable(
                f"bubblewrap (bwrap) not found{where}: install it (e.g. `apt install bubblewrap`); "
                "evaluating model code without a sandbox needs an explicit allow_unsandboxed=True"
            )
        prlimit = _find_tool("prlimit", None)
        if prlimit is None:
            raise SandboxUnavailable(
                "prlimit (util-linux) not found on PATH; it applies the resource limits of an unsandboxed run")
        return _Tools(prlimit=prlimit, bwrap=None, timeout=None, setpriv=None)
    timeout = _tool_inside_usr("timeout", "timeout (coreutils)", "it is the sandbox's PID 1")
    setpriv = None
    if root_mode:
        setpriv = _tool_inside_usr("setpriv", "setpriv (util-linux)", "as root it switches the model to the sandbox uid")
    return _Tools(prlimit=None, bwrap=bwrap_path, timeout=timeout, setpriv=setpriv)


def _tool_inside_usr(name: str, label: str, why: str) -> str:
    # The sandbox sees the host's /usr only, so helpers that run inside must live there.
    tool = _find_tool(name, None)
    if tool is None:
        raise SandboxUnavailable(f"{label} not found on PATH; {why}")
    if not _is_within(os.path.realpath(tool), "/usr"):
        raise SandboxUnavailable(f"{label} at {tool} is outside /usr, so the sandbox cannot run it; {why}")
    return tool


# Tools found, per (name, PATH): searching PATH for three tools on every run
# cost about 0.1 ms of the sandbox's start-up (docs/performance.md).
_found_tools: dict[tuple[str, str | None], str] = {}


def _find_tool(name: str, explicit: str | None) -> str | None:
    if explicit is not None:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    key = (name, os.environ.get("PATH"))
    found = _found_tools.get(key)
    if found is not None and os.access(found, os.X_OK):  # still there: no search
        return found
    found = shutil.which(name) or shutil.which(name, path=_TOOL_SEARCH_PATH)
    if found is not None:
        _found_tools[key] = found
    else:
        _found_tools.pop(key, None)
    return found
