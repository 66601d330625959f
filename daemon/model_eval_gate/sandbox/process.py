"""Starting bwrap, holding its sandbox until the limits are set, supervising
the run (wall time, output size, memory, cancellation) and reporting it."""
from __future__ import annotations

import json
import os
import resource
import select
import selectors
import signal
import subprocess
import threading
import time

from .command import _rlimits
from .limits import SandboxLimits, SandboxUnavailable
from .outputs import _READ_CHUNK, _output_excess
from .memory import TreeSampler, _new_run_cgroup
from .result import SandboxResult


_OUTPUT_WATCH_INTERVAL = 0.1  # seconds between host-side scans of /out (unprivileged path)
_CANCEL_POLL_INTERVAL = 0.1  # seconds between looks at the caller's cancel event
_DRAIN_GRACE_SECONDS = 2.0  # how long to wait for pipe EOF once the command is gone


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
    # ru_maxrss of the spawned tree starts from this process's own high-water
    # mark (Linux records the old mm's at exec): read after the spawn, it
    # bounds that pollution from above.
    spawner_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
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
        # ru_maxrss catches a spike between two samples, but only a figure
        # above the spawner's own peak is the model's: at or below it, it may
        # be the daemon's memory, and a memory claim compares these peaks.
        peak_memory, memory_scope = max(sampler.peak, largest if largest > spawner_peak else 0), "process_tree"
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
