"""Snapshot a model directory into content-addressed storage at registration.

`model-eval-gate snapshot SRC ID` copies every file of SRC once into
artifact_root/cas/sha256/<2 hex>/<sha256> (read-only), and builds
artifact_root/models/<ID> as a read-only tree of hard links to those
objects. The model directory then cannot change without its author having
write access to the store, identical files across versions are stored once,
and the gate's content pin (docs/model_promotion_policy.md section 16.5)
still catches any change made with such access.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .model_dirs import check_artifact_id

FILE_MODE = 0o444
DIR_MODE = 0o555


class SnapshotError(ValueError):
    """The source cannot be snapshotted (symlinks, special files, an existing model directory)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store(cas: Path, source: Path) -> Path:
    """The content-addressed object for `source`, added if the store lacks it."""
    digest = _sha256(source)
    target = cas / digest[:2] / digest
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    os.close(fd)
    shutil.copyfile(source, partial)
    os.chmod(partial, FILE_MODE)
    os.replace(partial, target)  # atomic: a concurrent snapshot of the same file finds it whole
    return target


def snapshot_model_dir(source: os.PathLike[str] | str, artifact_root: os.PathLike[str] | str, artifact_id: str) -> Path:
    """Snapshot `source` as the model directory of `artifact_id`; returns that directory."""
    check_artifact_id(artifact_id)
    source = Path(source)
    if not source.is_dir() or source.is_symlink():
        raise SnapshotError(f"{source} is not a directory")
    root = Path(artifact_root)
    destination = root / "models" / artifact_id
    if os.path.lexists(destination):
        raise SnapshotError(f"{destination} already exists; a model directory is never replaced "
                            "(register the new files as a new version)")
    files: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise SnapshotError(f"{path} is a symlink; copy the file it points to instead")
            if stat.S_ISREG(info.st_mode):
                files.append((path, path.relative_to(source)))
            elif not stat.S_ISDIR(info.st_mode):
                raise SnapshotError(f"{path} is not a regular file or directory")
    cas = root / "cas" / "sha256"
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Built beside its final place (one filesystem: hard links, atomic rename);
    # the leading dot keeps it from ever being a valid artifact id.
    building = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".snapshot-{artifact_id}-"))
    try:
        for path, relative in files:
            (building / relative).parent.mkdir(parents=True, exist_ok=True)
            os.link(_store(cas, path), building / relative)
        for dirpath, dirnames, _ in os.walk(building, topdown=False):
            os.chmod(dirpath, DIR_MODE)
        os.rename(building, destination)
    except BaseException:
        for dirpath, _, _ in os.walk(building):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(building, ignore_errors=True)
        raise
    return destination
