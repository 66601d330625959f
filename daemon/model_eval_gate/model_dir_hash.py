"""The content hash of a model directory, computed under limits.

The gate hashes a model directory (the evaluation cache key) in the daemon,
before any sandbox limit applies, and the author controls the directory: a
4 GiB sparse file (8 KB on disk) cost 12.9 s of daemon CPU, a 1 TiB one
about an hour, and a FIFO would block the read forever. So:

- the directory may hold at most `max_files` entries and `max_bytes` bytes
  (apparent sizes, summed from lstat before a byte is read);
- a regular file whose allocated blocks fall more than SPARSE_SLACK_BYTES
  short of its size is refused as sparse (it costs nothing to store and
  everything to read);
- FIFOs, sockets and devices are refused (symlinks are hashed as their
  target text, never followed);
- the whole walk and read has a deadline, the evaluation's own wall limit:
  the time spent hashing is subtracted from what the sandbox then gets.

Every refusal is a ModelDirectoryRefused naming the file and the limit.
"""
from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

# Holes up to this size are ordinary (filesystems allocate in blocks, some
# preallocate or compress); more than this is a file made of nothing.
SPARSE_SLACK_BYTES = 1 << 20
_READ_CHUNK = 1 << 20


class ModelDirectoryRefused(ValueError):
    """The model directory is over a limit or holds something the gate does not read."""


@dataclass(frozen=True)
class HashLimits:
    max_bytes: int
    max_files: int
    deadline: float  # time.monotonic() past which hashing stops


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def hash_model_dir(directory: os.PathLike[str] | str, limits: HashLimits) -> str:
    """sha256 over relative paths and contents (the same digest as evaluate.model_hash), within `limits`."""
    root = Path(directory)
    entries: list[tuple[bytes, str, os.stat_result]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        if time.monotonic() > limits.deadline:
            raise ModelDirectoryRefused(f"listing the model directory {root} ran past the evaluation's wall limit")
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            relative = Path(path).relative_to(root).as_posix()
            entries.append((relative.encode(), path, info))
            if len(entries) > limits.max_files:
                raise ModelDirectoryRefused(
                    f"the model directory {root} holds more than {limits.max_files} files "
                    "(MODEL_EVAL_GATE_MODEL_MAX_FILES)")
            if stat.S_ISREG(info.st_mode):
                if info.st_size - info.st_blocks * 512 > SPARSE_SLACK_BYTES:
                    raise ModelDirectoryRefused(
                        f"{relative} in the model directory is sparse ({info.st_size} bytes, "
                        f"{info.st_blocks * 512} allocated); write the file out in full")
                total += info.st_size
                if total > limits.max_bytes:
                    raise ModelDirectoryRefused(
                        f"the model directory {root} holds more than {limits.max_bytes} bytes "
                        "(MODEL_EVAL_GATE_MODEL_MAX_BYTES)")
            elif not stat.S_ISLNK(info.st_mode) and not stat.S_ISDIR(info.st_mode):
                raise ModelDirectoryRefused(f"{relative} in the model directory is {_kind(info.st_mode)}; "
                                            "a model directory holds regular files, directories and symlinks only")
    digest = hashlib.sha256()
    for relative, path, info in entries:
        if stat.S_ISLNK(info.st_mode):
            digest.update(b"L" + relative + b"\0" + os.readlink(path).encode() + b"\0")
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        digest.update(b"F" + relative + b"\0" + str(info.st_size).encode() + b"\0")
        # O_NOFOLLOW | O_NONBLOCK: a file swapped for a symlink or a FIFO since the walk is refused, not followed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if not stat.S_ISREG(opened.st_mode) or opened.st_size != info.st_size:
                raise ModelDirectoryRefused(f"{relative.decode()} in the model directory changed while it was hashed")
            remaining = info.st_size
            while remaining > 0:
                if time.monotonic() > limits.deadline:
                    raise ModelDirectoryRefused(
                        f"hashing the model directory {root} ran past the evaluation's wall limit")
                chunk = handle.read(min(_READ_CHUNK, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
    return digest.hexdigest()
