"""The sandbox's command line: bubblewrap's namespaces and mounts, the
environment inside, and the rlimits (the same values for the unsandboxed
prlimit path). docs/sandbox.md says what each option defends against."""
from __future__ import annotations

import functools
import os
import resource

from .limits import SandboxLimits, SandboxUnavailable
from .resolve import _Interpreter, _Tools, _is_within


MODEL_MOUNT = "/model"
SPLIT_MOUNT = "/split"
OUT_MOUNT = "/out"
ENV_MOUNT = "/env"  # a model's own environment (evaluation/environments.py), read-only
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


# Top-level system directories: symlinks into /usr on merged-/usr systems.
_SYSTEM_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


# The only /etc entries the dynamic loader and the interpreter read (Debian's
# shared BLAS/LAPACK resolve through /etc/alternatives); nothing naming users,
# hosts or credentials.
_ETC_ENTRIES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
_BACKSTOP_GRACE_SECONDS = 10.0  # PID 1's own deadline, past the runner's wall limit


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


def _seccomp_filter_fd() -> int:
    from .seccomp import SeccompUnsupported, filter_fd

    try:
        return filter_fd()
    except SeccompUnsupported as exc:
        raise SandboxUnavailable(str(exc)) from exc
