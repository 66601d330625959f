"""Whole-sandbox memory: a per-run cgroup where one is delegated, else a sampled sum over the process tree.

RLIMIT_AS bounds each process's address space, not the sandbox: a model that
forks holds the limit many times over, and memfd pages a process writes but
never maps are in no address space at all (3 GiB held under a 2 GiB
RLIMIT_AS). Two measures of the whole, by what the deployment allows:

- "cgroup": the run gets a cgroup v2 of its own below the daemon's delegated
  one (systemd Delegate=yes), with memory.max = SandboxLimits.memory_bytes,
  memory.swap.max = 0 and pids.max = max_processes; the kernel enforces them
  and memory.peak is the run's exact peak (tmpfs and memfd pages included).
- "process_tree": otherwise the runner samples every process below bwrap
  (the PID namespace keeps them there) every SAMPLE_INTERVAL: anonymous and
  shared-memory RSS of each, plus the allocated size of every memfd or
  deleted file any of them holds open, counted once. The peak of the sums is
  reported, and a sum over memory_bytes kills the run. Between two samples a
  fast allocator can overshoot; pages mapped and also held open as an fd are
  counted twice (an upper bound).

"largest_process" (ru_maxrss of the largest process) is what remains for an
unsandboxed run, and is not a whole-sandbox figure.
"""
from __future__ import annotations

import functools
import os
import time

import structlog

from .limits import SandboxLimits

_log = structlog.get_logger(__name__)

SAMPLE_INTERVAL = 0.1
# Sampling may take at most this share of a core: with thousands of
# processes and descriptors the interval stretches instead.
MAX_SAMPLING_SHARE = 0.05
_STATUS_FIELDS = (b"RssAnon:", b"RssShmem:")


def tree_pids(root: int) -> list[int]:
    """root and every descendant, through /proc/<pid>/task/<tid>/children."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                    pending.extend(int(child) for child in handle.read().split())
            except (OSError, ValueError):
                continue
    return found


def _process_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
    except OSError:
        return 0
    total = 0
    for line in status.splitlines():
        if line.startswith(_STATUS_FIELDS):
            total += int(line.split()[1]) * 1024
    return total


def _held_files(pid: int, seen: dict[tuple[int, int], int]) -> None:
    """memfds and deleted files held open: pages in no address space."""
    directory = f"/proc/{pid}/fd"
    try:
        descriptors = os.listdir(directory)
    except OSError:
        return
    for fd in descriptors:
        path = f"{directory}/{fd}"
        try:
            target = os.readlink(path)
        except OSError:
            continue
        if not (target.startswith("/memfd:") or target.endswith(" (deleted)")):
            continue
        try:
            info = os.stat(path)
        except OSError:
            continue
        seen.setdefault((info.st_dev, info.st_ino), info.st_blocks * 512)


class TreeSampler:
    """The peak, over samples, of the memory held by a process tree."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.peak = 0
        self.samples = 0
        self._next = 0.0

    def due(self, now: float) -> bool:
        return now >= self._next

    def next_at(self) -> float:
        return self._next

    def sample(self) -> int:
        started = time.monotonic()
        held: dict[tuple[int, int], int] = {}
        total = 0
        for pid in tree_pids(self.root_pid):
            total += _process_rss(pid)
            _held_files(pid, held)
        total += sum(held.values())
        self.peak = max(self.peak, total)
        self.samples += 1
        cost = time.monotonic() - started
        self._next = time.monotonic() + max(SAMPLE_INTERVAL, cost / MAX_SAMPLING_SHARE)
        return total


# --- cgroup v2 ---------------------------------------------------------------------------


def _cgroup2_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if "-" in fields and fields[fields.index("-") + 1] == "cgroup2":
                    return fields[4]
    except OSError:
        return None
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup") as cgroups:
            for line in cgroups:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        return None
    return None


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def detect_cgroup_parent() -> tuple[str | None, str]:
    """(the delegated cgroup to create per-run cgroups in, or None; why, in words)."""
    mount = _cgroup2_mount()
    if mount is None:
        return None, "no cgroup v2 hierarchy is mounted"
    own = _own_cgroup()
    if own is None:
        return None, "this process belongs to no cgroup v2"
    parent = os.path.join(mount, own.lstrip("/"))
    try:
        controllers = set(_read(os.path.join(parent, "cgroup.controllers")).split())
    except OSError as exc:
        return None, f"cannot read {parent}/cgroup.controllers: {exc.strerror}"
    missing = sorted({"memory", "pids"} - controllers)
    if missing:
        return None, (f"the cgroup v2 hierarchy at {mount} does not offer the {' and '.join(missing)} "
                      f"controller(s) to {own} (held by cgroup v1, or not delegated)")
    if not os.access(parent, os.W_OK) or not os.access(os.path.join(parent, "cgroup.procs"), os.W_OK):
        return None, f"{parent} is not writable by this process (run the daemon with systemd Delegate=yes)"
    return parent, f"per-run cgroups under {parent}"


def prepare_cgroup_parent(parent: str) -> str | None:
    """Enable memory and pids for per-run children; None when ready, else why not.

    A cgroup that hands controllers to its children may hold no processes
    itself, so this process (and whatever shares its cgroup) moves to a leaf
    `daemon` first.
    """
    try:
        enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
        if {"memory", "pids"} <= enabled:
            return None
        leaf = os.path.join(parent, "daemon")
        os.makedirs(leaf, exist_ok=True)
        for pid in _read(os.path.join(parent, "cgroup.procs")).split():
            try:
                _write(os.path.join(leaf, "cgroup.procs"), pid)
            except ProcessLookupError:
                continue
        _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +pids")
    except OSError as exc:
        return f"cannot delegate memory and pids below {parent}: {exc.strerror or exc}"
    return None


class RunCgroup:
    """One run's cgroup: memory.max, memory.swap.max 0, pids.max, and its peak."""

    def __init__(self, parent: str, memory_bytes: int, max_processes: int):
        self.path = os.path.join(parent, f"run-{os.getpid()}-{time.monotonic_ns()}")
        os.mkdir(self.path)
        try:
            _write(os.path.join(self.path, "memory.max"), str(memory_bytes))
            if os.path.exists(os.path.join(self.path, "memory.swap.max")):
                _write(os.path.join(self.path, "memory.swap.max"), "0")
            if os.path.exists(os.path.join(self.path, "memory.oom.group")):
                _write(os.path.join(self.path, "memory.oom.group"), "1")  # an OOM kill takes the whole run
            _write(os.path.join(self.path, "pids.max"), str(max_processes))
        except OSError:
            self.remove()
            raise

    def add(self, pid: int) -> None:
        _write(os.path.join(self.path, "cgroup.procs"), str(pid))

    def peak(self) -> int | None:
        try:
            return int(_read(os.path.join(self.path, "memory.peak")))
        except (OSError, ValueError):
            return None  # kernels before 5.19 have no memory.peak

    def oom_killed(self) -> bool:
        try:
            events = dict(line.split() for line in _read(os.path.join(self.path, "memory.events")).splitlines())
        except (OSError, ValueError):
            return False
        return int(events.get("oom_kill", 0)) > 0

    def remove(self) -> None:
        deadline = time.monotonic() + 2.0
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return  # a leftover cgroup; remove_leftovers-style clean-up is the parent's deletion
                try:
                    _write(os.path.join(self.path, "cgroup.kill"), "1")
                except OSError:
                    pass
                time.sleep(0.05)


# --- the deployment's cgroups, found once per process ----------------------------


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
