"""Run one model's eval.py inside a bubblewrap sandbox under resource limits.

This is the only place untrusted model code runs. The command inside is
always `python eval.py --split /split --out /out` with the model directory
read-only at /model (the working directory), the benchmark's inputs read-only
at /split and one fresh, size-bounded, writable directory at /out. Nothing
else of the host is visible except the system software the interpreter needs.

docs/sandbox.md explains the threat model and what every option defends
against; the short version of the moving parts:

- bwrap holds its sandbox process (on --block-fd, reporting its pid on
  --info-fd) after setting up the namespaces and mounts and before it runs
  anything in them; the runner sets the CPU, address-space, process-count,
  file-size and core limits on it with prlimit(2) and only then lets it go,
  so PID 1 and everything under it inherit them. No Python preexec_fn (not
  safe in a multi-threaded daemon) and no exec of util-linux `prlimit` in
  front of bwrap, which cost about 1 ms per run (docs/performance.md); the
  unsandboxed path still runs under `prlimit`.
- As root, bwrap runs without a user namespace and `setpriv` switches the
  command to a dedicated unprivileged uid/gid, so the model is never host
  uid 0; /out is then a size-limited tmpfs mounted on the host. As any other
  user, bwrap uses an unprivileged user namespace and /out is bounded by a
  host-side watch of its total size.
- PID 1 inside the sandbox's PID namespace is coreutils' `timeout`, which
  reaps the command so its CPU time and peak RSS reach our os.wait4, and which
  bwrap's --die-with-parent can always kill.
- The wall-time limit kills bwrap's process group; the death of bwrap kills
  PID 1, and the death of PID 1 takes every process in the namespace with it.

Requires Linux >= 5.3 (pidfd), bubblewrap >= 0.8 and util-linux's setpriv
(and prlimit, for unsandboxed runs only).

The modules, one job each: resolve (the host paths, interpreter and tools a
run needs, refused before anything starts), command (bubblewrap's command
line and the rlimits), seccomp (the syscall filter), process (start, hold,
supervise and report one run), memory (whole-sandbox memory: cgroup or
sampled process tree), outputs (the /out directory), limits and result (the
types), workdirs (work directories and their leftovers). This module holds
run_eval_py, which puts them together.
"""
from __future__ import annotations

import os
import sys
import threading

import structlog

from ..config import DEFAULT_SANDBOX_UID
from .command import (ENV_MOUNT, MODEL_MOUNT, OUT_MOUNT, SPLIT_MOUNT, _bwrap_argv, _prlimit_argv, _sandbox_env,
                      _seccomp_filter_fd)
from .limits import SandboxConfigError, SandboxLimits, SandboxOutputError, SandboxUnavailable
from .memory import memory_measurement
from .outputs import _create_out_dir, discard_output, read_output_file
from .process import _run
from .resolve import (_BWRAP_ENV, _check_readable_by, _interpreter, _refuse_exposing_binds, _resolve_environment,
                      _resolve_inputs, _resolve_tools, bwrap_available)
from .result import SandboxResult

__all__ = [
    "ENV_MOUNT", "MODEL_MOUNT", "OUT_MOUNT", "SPLIT_MOUNT", "SandboxConfigError", "SandboxLimits", "SandboxOutputError",
    "SandboxResult", "SandboxUnavailable", "bwrap_available", "discard_output", "memory_measurement",
    "read_output_file", "run_eval_py",
]

_log = structlog.get_logger(__name__)


def run_eval_py(
    model_dir: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    *,
    limits: SandboxLimits = SandboxLimits(),
    work_dir: str | os.PathLike[str] | None = None,
    python: str | None = None,
    sandbox_uid: int = DEFAULT_SANDBOX_UID,
    sandbox_gid: int = DEFAULT_SANDBOX_UID,
    allow_unsandboxed: bool = False,
    bwrap: str | None = None,
    argv_extra: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
    environment: str | os.PathLike[str] | None = None,
) -> SandboxResult:
    """Run `python eval.py --split /split --out /out` for one model, sandboxed.

    `environment`, if given, is a virtual environment built on `python` (its
    base interpreter): it is bound read-only at /env and eval.py runs with
    /env/bin/python, so the model sees its own packages and nothing of the
    daemon's. The environment's interpreter is never run on the host.

    Creates a fresh output directory under `work_dir` (default: the system
    temporary directory); the caller reads it and then calls discard_output.
    Raises SandboxUnavailable when bubblewrap (or setpriv, timeout) is missing,
    unless allow_unsandboxed is True, which runs eval.py directly under the
    same rlimits and logs a warning on every run. Raises SandboxConfigError for
    unusable inputs. Everything the model does is reported in the result.
    Setting `cancel` (e.g. on daemon shutdown) kills the run within 0.1 s;
    the result then says "cancelled".
    """
    if not isinstance(limits, SandboxLimits):
        raise SandboxConfigError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
    argv_extra = tuple(argv_extra)
    if not all(isinstance(arg, str) for arg in argv_extra):
        raise SandboxConfigError(f"argv_extra must hold strings only, got {argv_extra!r}")
    if sandbox_uid == 0 or sandbox_gid == 0:
        raise SandboxConfigError("sandbox_uid and sandbox_gid must not be 0: the model would run as host root")
    root_mode = os.geteuid() == 0

    model_real, split_real = _resolve_inputs(model_dir, split_dir)
    interpreter = _interpreter(python or sys.executable)
    _refuse_exposing_binds(interpreter, model_real, split_real)
    environment_real = _resolve_environment(environment, model_real, split_real)

    tools = _resolve_tools(bwrap, root_mode=root_mode, allow_unsandboxed=allow_unsandboxed)
    sandboxed = tools.bwrap is not None
    if not sandboxed:
        _log.warning(
            "sandbox.unsandboxed_run",
            model_dir=model_real,
            reason="bubblewrap not found and allow_unsandboxed=True: model code runs without isolation",
        )
    if sandboxed and root_mode:
        _check_readable_by(model_real, sandbox_uid, sandbox_gid, "model directory")
        _check_readable_by(os.path.join(model_real, "eval.py"), sandbox_uid, sandbox_gid, "eval.py")
        _check_readable_by(split_real, sandbox_uid, sandbox_gid, "split directory")
        owner = (sandbox_uid, sandbox_gid)
    else:
        owner = (os.getuid(), os.getgid())
    out_dir = _create_out_dir(work_dir, limits, owner, bounded_by_tmpfs=root_mode)
    seccomp_fd = None
    try:
        if sandboxed:
            inside = os.path.join(ENV_MOUNT, "bin", "python") if environment_real else interpreter.executable
            env = _sandbox_env(os.path.dirname(inside))
            command = [inside, "eval.py", "--split", SPLIT_MOUNT, "--out", OUT_MOUNT, *argv_extra]
            seccomp_fd = _seccomp_filter_fd()
            argv = _bwrap_argv(
                tools, command, env, interpreter, model_real, split_real, out_dir,
                limits, sandbox_uid, sandbox_gid, root_mode, seccomp_fd, environment_real,
            )
            spawn_env, cwd = _BWRAP_ENV, "/"
        else:
            host = os.path.join(environment_real, "bin", "python") if environment_real else interpreter.executable
            env = _sandbox_env(os.path.dirname(host))
            argv = [host, "eval.py", "--split", split_real, "--out", out_dir, *argv_extra]
            spawn_env, cwd = env, model_real
        if not sandboxed:
            argv = _prlimit_argv(tools.prlimit, limits) + argv
        return _run(argv, spawn_env, cwd, limits, out_dir, sandboxed=sandboxed, watch_output=not root_mode,
                    cancel=cancel, extra_fds=(seccomp_fd,) if seccomp_fd is not None else ())
    except BaseException:
        discard_output(out_dir)
        raise
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
