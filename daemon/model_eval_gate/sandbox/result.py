"""What one sandboxed run did (SandboxResult)."""
from __future__ import annotations

import dataclasses

from .outputs import discard_output


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
