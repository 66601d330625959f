"""Artifact ids as path components, and model directories the gate may run.

An artifact id becomes `artifact_root/models/<id>`, so an id is a path
component and must be exactly one safe one: `..`, `.`, `""`, an absolute path
or `own/../victim` would bind another model's code, the whole models/ tree or
a benchmark's labels. The same rule is enforced where ids enter (registration
schema, CLI, NOTIFY) and by the database itself (migration 0012), so a plain
SQL insert cannot bypass it.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

# Same pattern as schemas/model_registration.json $.artifact_id and the SQL
# CHECK of migration 0012: starts alphanumeric, so never "." or "..", and
# holds no "/" (one component).
ARTIFACT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
_ARTIFACT_ID = re.compile(ARTIFACT_ID_PATTERN)


class UnsafeArtifactId(ValueError):
    """An artifact id that is not one safe path component."""


class UnsafeModelDirectory(ValueError):
    """A model directory the gate refuses to run: outside models/, a symlink, or overlapping a benchmark."""


def is_safe_artifact_id(value: object) -> bool:
    return isinstance(value, str) and _ARTIFACT_ID.fullmatch(value) is not None


def check_artifact_id(value: object) -> str:
    """The id itself, or UnsafeArtifactId with the cause and the rule."""
    if not is_safe_artifact_id(value):
        raise UnsafeArtifactId(
            f"artifact id {value!r} is not one safe path component: use 1-200 characters from "
            "A-Z a-z 0-9 _ . : -, starting with a letter or digit (no '/', never '.' or '..')")
    return value  # type: ignore[return-value]


def _overlaps(a: str, b: str) -> bool:
    """True when either path is the other or lies inside it."""
    common = os.path.commonpath([a, b])
    return common == a or common == b


def resolve_model_dir(artifact_root: Path, artifact_id: str, *,
                      protected: Iterable[os.PathLike[str] | str] = ()) -> Path:
    """The model directory of `artifact_id`, checked before any of its code runs.

    It must be a real directory (not a symlink) directly under
    artifact_root/models/, and must neither contain nor lie inside any of
    `protected` (benchmark directories and labels files). Raises
    UnsafeArtifactId or UnsafeModelDirectory.
    """
    check_artifact_id(artifact_id)
    models = Path(os.path.realpath(Path(artifact_root) / "models"))
    directory = models / artifact_id
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return directory  # the caller reports the missing eval.py
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeModelDirectory(
            f"model directory {directory} is a symlink (to {os.readlink(directory)!r}); the gate runs only a real "
            "directory under models/ - copy the model's files there instead")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeModelDirectory(f"model directory {directory} is not a directory")
    real = os.path.realpath(directory)
    if os.path.dirname(real) != str(models):
        raise UnsafeModelDirectory(f"model directory {directory} resolves to {real}, not directly under {models}")
    for path in protected:
        other = os.path.realpath(path)
        if _overlaps(real, other):
            raise UnsafeModelDirectory(
                f"model directory {real} overlaps the benchmark path {other}; a model directory may neither "
                "contain nor lie inside a benchmark directory or labels file")
    return directory
