"""Parameter counts measured from a model directory's weight files, without running model code.

A tradeoff claim on param_count is checked against what the gate measures
here, never against the author's metadata. Every file in the directory must
be either a weight file in a format the gate can count (safetensors, .npy,
.npz, a zip-format PyTorch state dict, JSON numbers) or small source/text;
anything else could hold weights the count would miss, and makes the count
unverifiable. Parsing reads headers and structure only: numpy arrays with
object dtype, pickles of anything but a plain state dict, and symlinks are
refused, so no author code or pickled object ever runs.

Weights hidden as literals in source files cannot be told apart from code;
the total size of source files is therefore capped (MAX_SOURCE_BYTES).
"""
from __future__ import annotations

import collections
import json
import math
import os
import pickle
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Source and text files the count ignores, up to this many bytes in total.
MAX_SOURCE_BYTES = 256 * 1024
SOURCE_SUFFIXES = frozenset({".py", ".md", ".txt", ".rst", ".cfg", ".toml", ".ini", ".yaml", ".yml"})
WEIGHT_SUFFIXES = frozenset({".safetensors", ".npy", ".npz", ".pt", ".pth", ".json"})
MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024


class Unverifiable(ValueError):
    """The directory's parameters cannot be counted from its files; the message says why."""


@dataclass(frozen=True)
class ParameterCount:
    count: int | None  # None: unverifiable
    note: str
    files: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict:
        return {"count": self.count, "note": self.note, "files": dict(self.files)}


def _numel(shape) -> int:
    return int(math.prod(int(d) for d in shape))


def count_safetensors(path: Path) -> int:
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise Unverifiable(f"{path.name} is too short to be safetensors")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES:
            raise Unverifiable(f"{path.name} declares a {length}-byte header, over the limit")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise Unverifiable(f"{path.name} has no safetensors header")
    return sum(_numel(entry["shape"]) for key, entry in header.items() if key != "__metadata__")


def _npy_numel(handle, name: str) -> int:
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(handle)  # the header only, never the data
    if dtype.hasobject:
        raise Unverifiable(f"{name} holds Python objects (a pickle), not numbers")
    return _numel(shape)


def count_npy(path: Path) -> int:
    with open(path, "rb") as handle:
        return _npy_numel(handle, path.name)


def count_npz(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        total = 0
        for member in archive.namelist():
            with archive.open(member) as handle:
                total += _npy_numel(handle, f"{path.name}:{member}")
        return total


class _Tensor:
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = tuple(shape)


class _Storage:
    def __init__(self, name: str):
        self.name = name


def _rebuild_tensor(storage, offset, size, *_rest):
    return _Tensor(size)


def _rebuild_parameter(data, *_rest):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Reads a torch.save() state dict's structure; refuses every class a plain state dict does not use."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and (name.endswith("Storage") or name in ("float32", "float16", "bfloat16", "float64",
                                                                        "int64", "int32", "int8", "uint8", "bool")):
            return _Storage(name)
        raise Unverifiable(f"the pickle uses {module}.{name}, which a plain state dict does not")

    def persistent_load(self, pid):
        return pid  # ('storage', type, key, location, numel): a reference, never loaded


def _count_tensors(value, depth: int = 0) -> int:
    if depth > 50:
        raise Unverifiable("the state dict nests too deeply")
    if isinstance(value, _Tensor):
        return _numel(value.shape)
    if isinstance(value, dict):
        return sum(_count_tensors(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_count_tensors(v, depth + 1) for v in value)
    return 0


def count_torch(path: Path) -> int:
    if not zipfile.is_zipfile(path):
        raise Unverifiable(f"{path.name} is a legacy (non-zip) PyTorch file; save it with torch.save's default format")
    with zipfile.ZipFile(path) as archive:
        pickles = [m for m in archive.namelist() if m.endswith("data.pkl")]
        if len(pickles) != 1:
            raise Unverifiable(f"{path.name} has no single data.pkl: not a torch.save() file")
        with archive.open(pickles[0]) as handle:
            try:
                state = _StateDictUnpickler(handle).load()
            except Unverifiable:
                raise
            except Exception as exc:
                raise Unverifiable(f"{path.name} is not a readable state dict: {exc}") from None
    return _count_tensors(state)


def count_json(path: Path) -> int:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise Unverifiable(f"{path.name} is over {MAX_JSON_BYTES} bytes")

    def numbers(value) -> int:
        if isinstance(value, bool):
            return 0
        if isinstance(value, (int, float)):
            return 1
        if isinstance(value, dict):
            return sum(numbers(v) for v in value.values())
        if isinstance(value, list):
            return sum(numbers(v) for v in value)
        return 0

    return numbers(json.loads(path.read_text()))


_COUNTERS = {".safetensors": count_safetensors, ".npy": count_npy, ".npz": count_npz,
             ".pt": count_torch, ".pth": count_torch, ".json": count_json}


def count_parameters(directory: os.PathLike[str] | str) -> ParameterCount:
    """The number of parameters stored in a model directory's weight files, or why it cannot be known."""
    root = Path(directory)
    counted: list[tuple[str, int]] = []
    source_bytes = 0
    try:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                path = Path(dirpath) / name
                relative = path.relative_to(root).as_posix()
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    raise Unverifiable(f"{relative} is not a regular file")
                suffix = path.suffix.lower()
                if suffix in _COUNTERS:
                    try:
                        counted.append((relative, _COUNTERS[suffix](path)))
                    except Unverifiable:
                        raise
                    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, struct.error) as exc:
                        raise Unverifiable(f"{relative} cannot be read as {suffix} weights: {exc}") from None
                elif suffix in SOURCE_SUFFIXES or name in ("LICENSE", "README"):
                    source_bytes += info.st_size
                else:
                    raise Unverifiable(f"{relative} is in no format the gate can count, and could hold weights")
    except Unverifiable as exc:
        return ParameterCount(None, str(exc))
    if source_bytes > MAX_SOURCE_BYTES:
        return ParameterCount(None, f"{source_bytes} bytes of source files (over {MAX_SOURCE_BYTES}) could hide "
                                    "weights as literals")
    if not counted:
        return ParameterCount(None, "no weight files (safetensors, .npy, .npz, .pt, .json) to count")
    total = sum(n for _, n in counted)
    return ParameterCount(total, f"{total} parameters in {len(counted)} weight file(s)", tuple(counted))
