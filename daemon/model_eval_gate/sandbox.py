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
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import json
import math
import os
import resource
import select
import selectors
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time

import structlog

from .config import DEFAULT_SANDBOX_UID
from .sandbox_memory import RunCgroup, TreeSampler, detect_cgroup_parent, prepare_cgroup_parent

_log = structlog.get_logger(__name__)

MODEL_MOUNT = "/model"
SPLIT_MOUNT = "/split"
OUT_MOUNT = "/out"
ENV_MOUNT = "/env"  # a model's own environment (evaluation/environments.py), read-only

_KIB = 1024
_MIB = 1024 * _KIB
_GIB = 1024 * _MIB

# bwrap's own environment stays readable inside as /proc/1/environ when the
# sandbox shares its uid (the unprivileged path), so it gets nothing from ours.
_BWRAP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_TOOL_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Top-level system directories: symlinks into /usr on merged-/usr systems.
_SYSTEM_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The only /etc entries the dynamic loader and the interpreter read (Debian's
# shared BLAS/LAPACK resolve through /etc/alternatives); nothing naming users,
# hosts or credentials.
_ETC_ENTRIES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")

_READ_CHUNK = 64 * _KIB
_OUTPUT_WATCH_INTERVAL = 0.1  # seconds between host-side scans of /out (unprivileged path)
_CANCEL_POLL_INTERVAL = 0.1  # seconds between looks at the caller's cancel event
_DRAIN_GRACE_SECONDS = 2.0  # how long to wait for pipe EOF once the command is gone
_BACKSTOP_GRACE_SECONDS = 10.0  # PID 1's own deadline, past the runner's wall limit

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH, _UMOUNT_NOFOLLOW = 2, 8


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here (bubblewrap or a helper tool is missing, or mounting is not permitted)."""


class SandboxConfigError(ValueError):
    """A run was asked for with inputs the sandbox must refuse (bad limits, missing or unsafe paths)."""


class SandboxOutputError(ValueError):
    """An output file cannot be read safely: missing, not a regular file, a symlink, or too large."""


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. The defaults suit production evaluations.

    cpu_seconds, address_space_bytes and max_file_bytes bound each process;
    max_processes bounds the processes and threads of the sandbox's uid;
    max_output_bytes and max_output_files bound /out as a whole;
    max_capture_bytes bounds what is kept of stdout and of stderr each;
    memory_bytes bounds the whole sandbox's memory (a per-run cgroup's
    memory.max where cgroups are delegated, else the sampled process tree:
    sandbox_memory.py).
    """

    wall_seconds: float = 1800.0
    cpu_seconds: int = 3600
    address_space_bytes: int = 8 * _GIB
    max_processes: int = 256
    max_file_bytes: int = 1 * _GIB
    max_output_bytes: int = 512 * _MIB
    max_output_files: int = 1000
    tmp_bytes: int = 512 * _MIB
    max_capture_bytes: int = 256 * _KIB
    memory_bytes: int = 8 * _GIB

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            allowed = (int, float) if field.name == "wall_seconds" else (int,)
            if isinstance(value, bool) or not isinstance(value, allowed):
                kind = "a number" if field.name == "wall_seconds" else "an integer"
                raise SandboxConfigError(f"SandboxLimits.{field.name} must be {kind}, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise SandboxConfigError(f"SandboxLimits.{field.name} must be positive and finite, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """What one run did.

    ok is True only when the command exited with status 0 within every limit.
    exit_code is the command's exit status (a command killed by signal N
    shows as 128+N, which is how the sandbox's PID 1 reports it), or None
    when the runner killed it (wall time or output limit). error says why ok is False, in words. stdout and stderr are
    capped; a marker shows where bytes were dropped. cpu_seconds and
    peak_rss_bytes cover the processes reaped inside the tree (lower bounds
    when the runner had to kill it). out_dir is the host directory that was
    /out: read it with read_output_file, then release it with
    discard_output (or use the result as a context manager).
    """

    ok: bool
    exit_code: int | None
    error: str | None
    stdout: str
    stderr: str
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    out_dir: str
    sandboxed: bool = True
    # The whole sandbox's peak memory and how it was measured: "cgroup"
    # (memory.peak of the run's own cgroup), "process_tree" (the peak of a
    # sampled sum over every process, memfds included) or "largest_process"
    # (ru_maxrss of the largest process only: not a whole-sandbox figure).
    peak_memory_bytes: int | None = None
    memory_scope: str = "largest_process"
    setup_failed: bool = False  # bubblewrap could not build the sandbox (from its status channel): nothing of the model ran

    def __enter__(self) -> SandboxResult:
        return self

    def __exit__(self, *exc_info: object) -> None:
        discard_output(self.out_dir)


def bwrap_available(bwrap: str | None = None) -> bool:
    """True when a bubblewrap executable is found (at `bwrap`, or on PATH)."""
    return _find_tool("bwrap", bwrap) is not None


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


def read_output_file(out_dir: str | os.PathLike[str], name: str, max_bytes: int) -> bytes:
    """The bytes of the regular file `name` directly inside `out_dir`, at most max_bytes.

    Symlinks are never followed (neither the file nor out_dir itself), FIFOs
    and devices are refused without blocking, and the file is opened relative
    to a directory descriptor so nothing can redirect the lookup. Raises
    SandboxOutputError naming the problem.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise SandboxOutputError(f"output file name {name!r} must be a plain file name inside the output directory")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise SandboxOutputError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
    out_path = os.fspath(out_dir)
    try:
        dir_fd = os.open(out_path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SandboxOutputError(f"output directory {out_path} cannot be opened: {exc.strerror}") from exc
    try:
        try:
            fd = os.open(
                name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                dir_fd=dir_fd,
            )
        except FileNotFoundError as exc:
            raise SandboxOutputError(f"eval.py did not write {name} in the output directory") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SandboxOutputError(f"{name} in the output directory is a symbolic link, not a file") from exc
            raise SandboxOutputError(f"{name} in the output directory cannot be opened: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxOutputError(f"{name} in the output directory is a {_file_kind(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise SandboxOutputError(f"{name} is {info.st_size} bytes, over the {max_bytes}-byte limit")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # one byte past the cap reveals a file that grew after fstat
        while remaining > 0:
            chunk = os.read(fd, min(remaining, _MIB))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise SandboxOutputError(f"{name} is over the {max_bytes}-byte limit")
    return data


def discard_output(out_dir: str | os.PathLike[str]) -> None:
    """Remove a run's output directory (unmounting its tmpfs first). Idempotent."""
    path = os.fspath(out_dir)
    if os.path.ismount(path):
        _unmount(path)
    if os.path.lexists(path):
        _remove_tree(path)


# --- inputs and the interpreter -------------------------------------------------


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


# --- the command line ---------------------------------------------------------------


def _sandbox_env(interpreter_bin: str) -> dict[str, str]:
    return {
        "PATH": f"{interpreter_bin}:{_SYSTEM_PATH}",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        # One BLAS/OpenMP thread: thread pools would hit the process limit
        # (threads count) and reserve address space per thread.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _rlimits(limits: SandboxLimits) -> list[tuple[int, tuple[int, int]]]:
    # The CPU hard limit sits one second above the soft one: SIGXCPU first
    # (a clear cause of death), SIGKILL if the signal is ignored.
    return [
        (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1)),
        (resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes)),
        (resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes)),
        (resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]


def _prlimit_argv(prlimit: str, limits: SandboxLimits) -> list[str]:
    """The same limits as _rlimits, set by util-linux prlimit before it execs the (unsandboxed) command."""
    names = {resource.RLIMIT_CPU: "cpu", resource.RLIMIT_AS: "as", resource.RLIMIT_NPROC: "nproc",
             resource.RLIMIT_FSIZE: "fsize", resource.RLIMIT_CORE: "core"}
    return [prlimit, *(f"--{names[which]}={soft}:{hard}" for which, (soft, hard) in _rlimits(limits)), "--"]


@functools.lru_cache(maxsize=1)
def _system_mounts() -> tuple[str, ...]:
    argv = ["--ro-bind", "/usr", "/usr"]
    for path in _SYSTEM_TOP_LEVEL:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", os.path.realpath(path), path]
    argv += ["--perms", "0755", "--dir", "/etc"]
    for path in _ETC_ENTRIES:
        argv += ["--ro-bind-try", os.path.realpath(path), path]
    return tuple(argv)


def _bwrap_argv(
    tools: _Tools,
    command: list[str],
    env: dict[str, str],
    interpreter: _Interpreter,
    model_real: str,
    split_real: str,
    out_dir: str,
    limits: SandboxLimits,
    sandbox_uid: int,
    sandbox_gid: int,
    root_mode: bool,
    seccomp_fd: int | None = None,
    environment_real: str | None = None,
) -> list[str]:
    argv = [tools.bwrap]
    if root_mode:
        # No user namespace: the uid switch below makes the model a genuinely
        # unprivileged host uid, which a user namespace mapping uid 0 would not.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    # No kernel keyring (a channel between runs of one uid) and no nested user
    # namespace, on both paths; see seccomp.py.
    # run_eval_py always passes one; only benchmarks/bench_sandbox_startup.py
    # builds a command line without it.
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += _system_mounts()
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    # bwrap creates missing parents of a mount point owner-only (as root that
    # would hide an interpreter under /root/.pyenv from the sandbox uid), so
    # they are made explicitly, world-searchable.
    made = {"/usr", "/etc", "/proc", "/dev", "/tmp"}
    for source in interpreter.bind_dirs:
        parent = ""
        for part in source.strip("/").split("/")[:-1]:
            parent += "/" + part
            if parent not in made and not any(_is_within(parent, tree) for tree in ("/usr", "/proc", "/dev")):
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", source, source]
        made.add(source)
    argv += ["--ro-bind", model_real, MODEL_MOUNT, "--ro-bind", split_real, SPLIT_MOUNT, "--bind", out_dir, OUT_MOUNT]
    if environment_real:
        argv += ["--ro-bind", environment_real, ENV_MOUNT]
    # /dev is a tmpfs owned by the sandbox's uid on the unprivileged path:
    # read-only, it cannot become unbounded scratch space (device nodes still work).
    argv += ["--remount-ro", "/", "--remount-ro", "/proc", "--remount-ro", "/dev", "--chdir", MODEL_MOUNT]
    # PID 1 is coreutils' timeout instead of bwrap's own init: bwrap's monitor
    # does not reap its init, so the command's CPU time and peak RSS would
    # never reach our wait4; timeout reaps the command and bwrap reaps
    # timeout. It stays uid 0 (root mode), so bwrap's --die-with-parent signal
    # may still reach it: the kernel refuses a parent-death signal from a
    # capability-less root bwrap to a uid-65534 process, which is why the
    # command itself cannot be PID 1. Its deadline is only a backstop for a
    # daemon that stopped supervising; the runner's own wall limit fires first.
    backstop = f"{limits.wall_seconds + _BACKSTOP_GRACE_SECONDS:g}"
    argv += ["--as-pid-1"]
    if root_mode:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    argv += [tools.timeout, "--signal=KILL", backstop]
    if root_mode:
        argv += [
            tools.setpriv, f"--reuid={sandbox_uid}", f"--regid={sandbox_gid}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--",
        ]
    return argv + command


@functools.lru_cache(maxsize=1)
def _cgroup_parent() -> tuple[str | None, str]:
    parent, why = detect_cgroup_parent()
    if parent is not None:
        problem = prepare_cgroup_parent(parent)
        if problem is not None:
            return None, problem
    return parent, why


def memory_measurement() -> tuple[str, str]:
    """How sandboxed runs' memory is bounded and measured here: ("cgroup" or "process_tree", why)."""
    parent, why = _cgroup_parent()
    return ("cgroup" if parent is not None else "process_tree"), why


def _new_run_cgroup(limits: SandboxLimits) -> RunCgroup | None:
    parent, _ = _cgroup_parent()
    if parent is None:
        return None
    try:
        return RunCgroup(parent, limits.memory_bytes, limits.max_processes)
    except OSError as exc:
        _log.warning("sandbox.cgroup_unavailable", parent=parent, error=str(exc),
                     consequence="this run's memory is sampled over its process tree instead")
        return None


def _seccomp_filter_fd() -> int:
    from .seccomp import SeccompUnsupported, filter_fd

    try:
        return filter_fd()
    except SeccompUnsupported as exc:
        raise SandboxUnavailable(str(exc)) from exc


# --- the output directory -------------------------------------------------------------


def _create_out_dir(
    work_dir: str | os.PathLike[str] | None, limits: SandboxLimits, owner: tuple[int, int], *, bounded_by_tmpfs: bool
) -> str:
    parent = os.fspath(work_dir) if work_dir is not None else tempfile.gettempdir()
    out_dir = tempfile.mkdtemp(prefix="model-eval-out-", dir=parent)
    if not bounded_by_tmpfs:
        return out_dir
    # One page and one inode of headroom past the limits let an overflow show
    # up as a total over the limit, exactly as on the unprivileged path.
    page = os.sysconf("SC_PAGE_SIZE")
    size = -(-limits.max_output_bytes // page) * page + page
    options = f"size={size},nr_inodes={limits.max_output_files + 2},mode=0700,uid={owner[0]},gid={owner[1]}"
    try:
        _mount_tmpfs(out_dir, options)
    except OSError as exc:
        os.rmdir(out_dir)
        raise SandboxUnavailable(
            f"cannot mount a size-limited tmpfs on the output directory {out_dir}: {exc.strerror} "
            "(running as root without CAP_SYS_ADMIN?)"
        ) from exc
    return out_dir


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _mount_tmpfs(target: str, options: str) -> None:
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if _libc().mount(b"model-eval-out", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _unmount(target: str) -> None:
    if _libc().umount2(os.fsencode(target), _MNT_DETACH | _UMOUNT_NOFOLLOW) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _remove_tree(path: str) -> None:
    try:
        shutil.rmtree(path)
    except PermissionError:
        # The model may have taken permissions away from its own directories.
        _restore_dir_permissions(path)
        shutil.rmtree(path)


def _restore_dir_permissions(top: str) -> None:
    # Only called once nothing runs in the tree any more; lstat keeps chmod
    # off symlinks, which would otherwise redirect it to a host path.
    pending = [top]
    while pending:
        directory = pending.pop()
        if not stat.S_ISDIR(os.lstat(directory).st_mode):
            continue
        os.chmod(directory, 0o700)
        with os.scandir(directory) as entries:
            pending.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))


def _output_excess(out_dir: str, limits: SandboxLimits, *, final: bool) -> str | None:
    """Why /out is over its limits, or None. Sizes are apparent sizes (sparse files count in full)."""
    total_bytes = 0
    entries = 0
    pending = [out_dir]
    while pending:
        directory = pending.pop()
        try:
            scanner = os.scandir(directory)
        except PermissionError:
            if not final:
                # Fail closed: a directory the watch cannot read could hide
                # gigabytes (mkdir d; chmod 0300 d; write away), so the run ends.
                relative = os.path.relpath(directory, out_dir)
                return f"output directory holds {relative!r}, which the runner cannot read (permissions removed)"
            _restore_dir_permissions(directory)
            scanner = os.scandir(directory)
        except FileNotFoundError:
            continue
        with scanner:
            for entry in scanner:
                entries += 1
                if entries > limits.max_output_files:
                    return f"output directory exceeded {limits.max_output_files} files"
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
                else:
                    total_bytes += info.st_size
                    if total_bytes > limits.max_output_bytes:
                        return f"output directory exceeded {limits.max_output_bytes} bytes"
    return None


# --- running and supervising -------------------------------------------------------------


class _CappedStream:
    """Keeps the head and the tail of a stream within a byte budget, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0

    def feed(self, data: bytes) -> None:
        self._total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            excess = len(self._tail) - self._tail_limit
            if excess > 0:
                del self._tail[:excess]

    def text(self) -> str:
        dropped = self._total - len(self._head) - len(self._tail)
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if dropped:
            text = f"{head}\n[... {dropped} bytes truncated by the sandbox runner ...]\n{tail}"
        else:
            text = head + tail
        # PostgreSQL text cannot hold NUL, and the caller stores this.
        return text.replace("\x00", "\ufffd")


class _LimitHold:
    """Keeps bwrap's sandbox process waiting until the runner has set its rlimits.

    bwrap writes its child's pid to --info-fd right after creating it, and
    the child blocks on --block-fd once the namespaces and mounts are ready,
    before it execs PID 1: nothing of the model has run yet. prlimit(2) on
    that pid bounds PID 1 and everything it starts; one byte on the block fd
    then lets it go. The block fd is never closed while the child may still
    wait on it, except after the child was killed: end-of-file would release
    it without limits.
    """

    def __init__(self, limits: SandboxLimits):
        self._limits = limits
        self._info_read, self._info_write = os.pipe()
        self._block_read, self._block_write = os.pipe()
        # bwrap's own status channel: {"exit-code": N} appears only once the
        # command it set up has run and exited. Whether set-up failed is read
        # from here, never from stderr, which the model writes too.
        self._status_read, self._status_write = os.pipe()
        os.set_blocking(self._status_read, False)

    def argv(self, bwrap_argv: list[str]) -> list[str]:
        return [bwrap_argv[0], "--info-fd", str(self._info_write), "--block-fd", str(self._block_read),
                "--json-status-fd", str(self._status_write), *bwrap_argv[1:]]

    @property
    def child_fds(self) -> tuple[int, int, int]:
        return (self._info_write, self._block_read, self._status_write)

    def spawned(self) -> None:
        """Drop our copies of bwrap's ends (bwrap closes its own before PID 1 runs)."""
        for fd in (self._info_write, self._block_read, self._status_write):
            os.close(fd)
        self._info_write = self._block_read = self._status_write = -1

    def command_ran(self) -> bool:
        """True when bwrap reported the exit of the command it set up; call once bwrap is reaped."""
        data = b""
        while len(data) < _READ_CHUNK:
            try:
                chunk = os.read(self._status_read, _READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        for line in data.splitlines():
            try:
                if "exit-code" in json.loads(line):
                    return True
            except (ValueError, TypeError):
                continue
        return False

    def release(self, group: int, deadline: float, cancel: threading.Event | None,
                on_child=None) -> str | None:
        """Set the limits and let the sandbox run. Returns why it must be killed instead, if it must.

        When bwrap failed before or while creating its sandbox, nothing is
        released and its exit status and stderr tell the caller why.
        """
        reported = self._reported_pid(deadline, cancel)
        if not isinstance(reported, int):
            return reported
        try:
            for which, value in _rlimits(self._limits):
                resource.prlimit(reported, which, value)
            if on_child is not None:
                on_child(reported)  # e.g. into the run's cgroup, before anything of the model runs
        except ProcessLookupError:
            return None  # it died during its set-up: bwrap says why
        except OSError as exc:
            _kill_group(group)
            raise SandboxUnavailable(f"cannot set the sandbox's resource limits: {exc.strerror}") from exc
        try:
            os.write(self._block_write, b"x")
        except BrokenPipeError:
            pass  # it died during its set-up: bwrap says why
        return None

    def _reported_pid(self, deadline: float, cancel: threading.Event | None) -> int | str | None:
        data = b""
        while True:
            now = time.monotonic()
            if now >= deadline:
                return f"wall time limit of {self._limits.wall_seconds} s exceeded"
            if cancel is not None and cancel.is_set():
                return "cancelled by the caller"
            ready, _, _ = select.select([self._info_read], [], [], min(deadline - now, _CANCEL_POLL_INTERVAL))
            if not ready:
                continue
            chunk = os.read(self._info_read, _READ_CHUNK)
            if not chunk:
                break
            data += chunk
        if not data:
            return None  # bwrap stopped before creating its sandbox
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxUnavailable(f"bwrap reported no sandbox pid on --info-fd: {data[:200]!r}") from exc

    def close(self) -> None:
        """Close what is left; call only once the sandbox is gone (reaped or killed)."""
        for fd in (self._info_read, self._info_write, self._block_read, self._block_write,
                   self._status_read, self._status_write):
            if fd >= 0:
                os.close(fd)
        self._info_read = self._info_write = self._block_read = self._block_write = -1
        self._status_read = self._status_write = -1


def _run(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    limits: SandboxLimits,
    out_dir: str,
    *,
    sandboxed: bool,
    watch_output: bool,
    cancel: threading.Event | None,
    extra_fds: tuple[int, ...] = (),
) -> SandboxResult:
    hold = _LimitHold(limits) if sandboxed else None
    cgroup = _new_run_cgroup(limits) if sandboxed else None
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            hold.argv(argv) if hold is not None else argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            pass_fds=(*hold.child_fds, *extra_fds) if hold is not None else (),
            start_new_session=True,  # its own process group, killed as one; no controlling terminal
            env=env,
            cwd=cwd,
        )
    except BaseException:
        if hold is not None:
            hold.close()  # nothing was started, so nothing waits on the block fd
        if cgroup is not None:
            cgroup.remove()
        raise
    if hold is not None:
        hold.spawned()
    sampler = TreeSampler(process.pid) if sandboxed and cgroup is None else None
    streams = {process.stdout.fileno(): _CappedStream(limits.max_capture_bytes),
               process.stderr.fileno(): _CappedStream(limits.max_capture_bytes)}
    killed_because: str | None = None
    try:
        if hold is not None:
            if cgroup is not None:
                cgroup.add(process.pid)
            killed_because = hold.release(process.pid, started + limits.wall_seconds, cancel,
                                          on_child=cgroup.add if cgroup is not None else None)
        with selectors.DefaultSelector() as selector:
            for fd in streams:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            exit_fd = os.pidfd_open(process.pid)
            selector.register(exit_fd, selectors.EVENT_READ)
            try:
                if killed_because is None:
                    killed_because = _wait_for_exit(
                        selector, exit_fd, streams, started, limits, out_dir, watch_output, cancel, sampler
                    )
            finally:
                selector.unregister(exit_fd)
                os.close(exit_fd)
            if killed_because is not None:
                _kill_group(process.pid)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            _drain(selector, streams, time.monotonic() + _DRAIN_GRACE_SECONDS)
            setup_failed = hold is not None and killed_because is None and not hold.command_ran()
    finally:
        if process.returncode is None:  # interrupted before the command was reaped
            _kill_group(process.pid)
            process.wait()
        if hold is not None:
            hold.close()  # only now: the sandbox is reaped, so no end-of-file can release it unlimited
        process.stdout.close()
        process.stderr.close()
        if cgroup is not None:
            cgroup_peak, cgroup_oom = cgroup.peak(), cgroup.oom_killed()
            cgroup.remove()
    wall_seconds = time.monotonic() - started
    stdout, stderr = (stream.text() for stream in streams.values())
    cpu_seconds = usage.ru_utime + usage.ru_stime
    if killed_because is None and setup_failed:
        # Nothing of the model ran, so stderr is bubblewrap's own.
        first_line = stderr.strip().split("\n", 1)[0] or f"bwrap exited with status {process.returncode}"
        exit_code, error = process.returncode, f"sandbox setup failed: {first_line}"
    elif killed_because is None:
        killed_because = _output_excess(out_dir, limits, final=True)
        exit_code: int | None = process.returncode
        error = killed_because or _describe_exit(process.returncode, stderr, cpu_seconds, limits, sandboxed=sandboxed)
    else:
        exit_code, error = None, killed_because
    if cgroup is not None and cgroup_oom and killed_because is None:
        error = f"memory limit of {limits.memory_bytes} bytes exceeded (the run's cgroup was OOM-killed)"
    largest = usage.ru_maxrss * 1024
    if cgroup is not None and cgroup_peak is not None:
        peak_memory, memory_scope = cgroup_peak, "cgroup"
    elif sampler is not None:
        peak_memory, memory_scope = max(sampler.peak, largest), "process_tree"
    else:
        peak_memory, memory_scope = largest, "largest_process"
    return SandboxResult(
        ok=error is None,
        exit_code=exit_code,
        error=error,
        stdout=stdout,
        stderr=stderr,
        wall_seconds=wall_seconds,
        cpu_seconds=cpu_seconds,
        peak_rss_bytes=usage.ru_maxrss * 1024,
        out_dir=out_dir,
        sandboxed=sandboxed,
        peak_memory_bytes=peak_memory,
        memory_scope=memory_scope,
        setup_failed=setup_failed,
    )


def _wait_for_exit(
    selector: selectors.BaseSelector,
    exit_fd: int,
    streams: dict[int, _CappedStream],
    started: float,
    limits: SandboxLimits,
    out_dir: str,
    watch_output: bool,
    cancel: threading.Event | None,
    sampler: TreeSampler | None = None,
) -> str | None:
    """Pump the pipes until the process exits; return why it must be killed instead, if it must."""
    deadline = started + limits.wall_seconds
    next_watch = started + _OUTPUT_WATCH_INTERVAL
    while True:
        now = time.monotonic()
        if now >= deadline:
            return f"wall time limit of {limits.wall_seconds} s exceeded"
        if cancel is not None and cancel.is_set():
            return "cancelled by the caller"
        if sampler is not None and sampler.due(now):
            held = sampler.sample()
            if held > limits.memory_bytes:
                return (f"memory limit of {limits.memory_bytes} bytes exceeded "
                        f"(the sandbox's processes held {held} bytes)")
            now = time.monotonic()
        if watch_output and now >= next_watch:
            excess = _output_excess(out_dir, limits, final=False)
            if excess is not None:
                return excess
            next_watch = now + _OUTPUT_WATCH_INTERVAL
        timeout = deadline - now
        if watch_output:
            timeout = min(timeout, max(next_watch - now, 0.0))
        if cancel is not None:
            timeout = min(timeout, _CANCEL_POLL_INTERVAL)
        if sampler is not None:
            timeout = min(timeout, max(sampler.next_at() - now, 0.0))
        for key, _ in selector.select(timeout):
            if key.fd == exit_fd:
                return None
            _read_into(selector, key.fd, streams[key.fd])


def _drain(selector: selectors.BaseSelector, streams: dict[int, _CappedStream], deadline: float) -> None:
    # In the sandbox every writer is dead once bwrap is (PID namespace), so
    # EOF comes at once; the grace only matters for unsandboxed runs whose
    # children escaped the process group.
    while selector.get_map():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for key, _ in selector.select(remaining):
            _read_into(selector, key.fd, streams[key.fd])


def _read_into(selector: selectors.BaseSelector, fd: int, stream: _CappedStream) -> None:
    try:
        data = os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return
    if data:
        stream.feed(data)
    else:
        selector.unregister(fd)


def _kill_group(pid: int) -> None:
    # bwrap's --die-with-parent and the PID namespace take the sandbox down
    # with the process group; unsandboxed, only the group itself is reachable.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _describe_exit(returncode: int, stderr: str, cpu_seconds: float, limits: SandboxLimits, *, sandboxed: bool) -> str | None:
    if returncode == 0:
        return None
    if not sandboxed:
        first_line = stderr.lstrip().split("\n", 1)[0]
        if returncode in (1, 126, 127) and first_line.startswith("prlimit: "):
            return f"sandbox setup failed: {first_line}"
    signum = None
    if returncode < 0:
        signum = -returncode
    elif sandboxed and returncode > 128:
        signum = returncode - 128  # bwrap reports a command killed by signal N as status 128+N
    try:
        name = signal.Signals(signum).name if signum is not None else None
    except ValueError:
        name = None
    if name is None:
        reason = f"exited with status {returncode}"
        if "MemoryError" in stderr:
            reason += f" (MemoryError: address space limit of {limits.address_space_bytes} bytes?)"
        return reason
    if signum == signal.SIGXCPU:
        return f"killed by signal SIGXCPU: cpu time limit of {limits.cpu_seconds} s exceeded"
    if signum == signal.SIGXFSZ:
        return f"killed by signal SIGXFSZ: file size limit of {limits.max_file_bytes} bytes exceeded"
    if signum == signal.SIGKILL:
        hint = "cpu time limit?" if cpu_seconds >= limits.cpu_seconds else "out of memory?"
        return f"killed by signal SIGKILL ({hint})"
    return f"killed by signal {name}"


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISLNK, "symbolic link"))
    return next((kind for test, kind in kinds if test(mode)), "special file")
