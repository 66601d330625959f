"""What a sandboxed run may use (SandboxLimits) and the errors the sandbox raises."""
from __future__ import annotations

import dataclasses
import math


_KIB = 1024
_MIB = 1024 * _KIB
_GIB = 1024 * _MIB


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
    sandbox/memory.py).
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
