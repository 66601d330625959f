"""Parameter counts measured from weight files, with no model code run (evaluation/weights.py)."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

from model_eval_gate.evaluation.weights import MAX_SOURCE_BYTES, count_parameters


def _safetensors(path, shapes):
    header = {name: {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 0]} for name, shape in shapes.items()}
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def _torch_state_dict(path, shapes, monkeypatch, extra=None):
    """A zip-format torch.save() file built without torch: the same pickle opcodes, the same class names."""
    utils = types.ModuleType("torch._utils")
    torch = types.ModuleType("torch")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Tensor:
        def __init__(self, key, shape):
            self.key, self.shape = key, shape

        def __reduce__(self):
            return (_rebuild_tensor_v2, (("storage", FloatStorage, self.key, "cpu", int(np.prod(self.shape))), 0,
                                         self.shape, (1,) * len(self.shape), False, {}))

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return obj if isinstance(obj, tuple) and obj and obj[0] == "storage" else None

    state = {name: Tensor(str(i), shape) for i, (name, shape) in enumerate(shapes.items())}
    if extra is not None:
        state["extra"] = extra
    buffer = io.BytesIO()
    Writer(buffer, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/version", "3\n")


def test_every_supported_format_is_counted(tmp_path, monkeypatch):
    (tmp_path / "eval.py").write_text("print('hi')\n")
    _safetensors(tmp_path / "model.safetensors", {"w": (3, 4), "b": (4,)})           # 16
    np.save(tmp_path / "head.npy", np.zeros((2, 5)))                                  # 10
    np.savez(tmp_path / "extra.npz", a=np.zeros(7), b=np.zeros((1, 3)))               # 10
    (tmp_path / "config.json").write_text(json.dumps({"coef": [0.1, 0.2], "bias": 1, "on": True, "name": "x"}))  # 3
    _torch_state_dict(tmp_path / "encoder.pt", {"layer.weight": (4, 2), "layer.bias": (4,)}, monkeypatch)  # 12
    counted = count_parameters(tmp_path)
    assert counted.count == 16 + 10 + 10 + 3 + 12, counted
    assert dict(counted.files) == {"model.safetensors": 16, "head.npy": 10, "extra.npz": 10, "config.json": 3,
                                   "encoder.pt": 12}


def test_what_cannot_be_counted_is_unverifiable_and_never_runs(tmp_path, monkeypatch):
    def fresh(name):
        directory = tmp_path / name
        directory.mkdir()
        (directory / "eval.py").write_text("pass\n")
        return directory

    assert "no weight files" in count_parameters(fresh("none")).note
    odd = fresh("odd")
    (odd / "weights.bin").write_bytes(b"\0" * 64)
    assert count_parameters(odd).count is None and "no format" in count_parameters(odd).note
    objects = fresh("objects")
    np.save(objects / "w.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "Python objects" in count_parameters(objects).note
    linked = fresh("linked")
    os.symlink("/etc/passwd", linked / "w.npy")
    assert "not a regular file" in count_parameters(linked).note
    big = fresh("big")
    (big / "weights_as_code.py").write_text("W = [" + "0.0," * (MAX_SOURCE_BYTES // 4 + 1) + "]\n")
    assert "literals" in count_parameters(big).note

    # A pickle that would run code if unpickled normally: refused, and it does not run.
    evil = fresh("evil")
    marker = tmp_path / "pwned"
    _torch_state_dict(evil / "model.pt", {"w": (2,)}, monkeypatch, extra=_Evil(str(marker)))
    counted = count_parameters(evil)
    assert counted.count is None and "system, which a plain state dict does not" in counted.note, counted
    assert not marker.exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
