"""Where evaluations keep their files, and removing what dead processes left there.

Every process that evaluates (the daemon, a CLI gate) works in one directory
of its own under the work root (MODEL_EVAL_GATE_WORK_DIR, default the system
temporary directory): `model-eval-gate-<pid>-<random>/`, holding an
exclusively flock()ed `owner.lock` for as long as the process lives. The
kernel drops the lock when the process dies, however it dies, so a directory
whose lock can be taken belongs to nobody: its runs' output directories (as
root, mounted tmpfs) are left over from a process that was killed mid-run.
remove_leftovers, called by the daemon at start, unmounts and removes
those, and never touches a directory whose owner is alive, so several
daemons and CLI gates can share one work root.
"""
from __future__ import annotations

import atexit
import fcntl
import functools
import os
import stat
import tempfile
from pathlib import Path

PREFIX = "model-eval-gate-"
LOCK_NAME = "owner.lock"

_MNT_DETACH = 2


def work_root(configured: os.PathLike[str] | str | None) -> Path:
    return Path(configured) if configured is not None else Path(tempfile.gettempdir())


@functools.lru_cache(maxsize=None)
def _process_dir(root: str, pid: int) -> tuple[Path, int]:
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{pid}-", dir=root_path))
    directory.chmod(0o700)  # bwrap binds each /out from here; the sandbox uid never walks this path
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    atexit.register(_release, directory, fd)
    return directory, fd  # the descriptor stays open (and locked) for the life of the process


def _release(directory: Path, fd: int) -> None:
    # A clean exit leaves nothing: the runs inside were discarded already.
    try:
        (directory / LOCK_NAME).unlink()
        directory.rmdir()
    except OSError:
        pass  # something is left: the next daemon's start removes it
    finally:
        os.close(fd)


def process_work_dir(configured: os.PathLike[str] | str | None) -> Path:
    """This process's own, locked directory under the work root (created on first use)."""
    directory, _ = _process_dir(str(work_root(configured).resolve()), os.getpid())
    return directory


def remove_leftovers(configured: os.PathLike[str] | str | None) -> list[str]:
    """Unmount and remove the work directories of processes that are gone; returns what was removed."""
    root = work_root(configured)
    removed: list[str] = []
    try:
        candidates = sorted(root.glob(PREFIX + "*"))
    except OSError:
        return removed
    for directory in candidates:
        try:
            info = os.lstat(directory)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue  # not ours to judge
        try:
            fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None  # a directory made but not yet locked, or a half-removed one: only if old
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
            elif not _older_than(info, 60.0):
                continue
            _unmount_below(directory)
            _remove_tree(directory)
            removed.append(str(directory))
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def _older_than(info: os.stat_result, seconds: float) -> bool:
    import time

    return time.time() - info.st_mtime > seconds


def _mount_points_below(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    points = []
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                point = line.split()[4].encode().decode("unicode_escape")  # \040 for spaces
                if point.startswith(prefix):
                    points.append(point)
    except OSError:
        return []
    return sorted(points, key=len, reverse=True)  # deepest first


def _unmount_below(directory: Path) -> None:
    points = _mount_points_below(directory)
    if not points:
        return
    from .outputs import _unmount  # the runner's own umount2(MNT_DETACH | UMOUNT_NOFOLLOW)

    for point in points:
        try:
            _unmount(point)
        except OSError:
            pass  # rmtree below then reports what is still there


def _remove_tree(path: Path) -> None:
    from .outputs import _remove_tree as remove  # restores permissions the model took away, then removes

    remove(str(path))
