"""The run's /out directory: created (a size-limited tmpfs as root), watched
for its limits, read without following links, and removed."""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import stat
import tempfile

from .limits import SandboxLimits, SandboxOutputError, SandboxUnavailable, _KIB, _MIB


_READ_CHUNK = 64 * _KIB
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MNT_DETACH, _UMOUNT_NOFOLLOW = 2, 8


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


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISLNK, "symbolic link"))
    return next((kind for test, kind in kinds if test(mode)), "special file")
