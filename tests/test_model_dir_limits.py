"""Hashing a model directory is bounded (issue 14, item 2): size, files, sparse and special files, time."""
from __future__ import annotations

import os
import time

import pytest
from gate_world import World

from model_eval_gate.evaluate import model_dir, model_hash
from model_eval_gate.gate import run_eval_gate
from model_eval_gate.model_dir_hash import HashLimits, ModelDirectoryRefused, hash_model_dir

GIB = 1 << 30


def limits(**changes) -> HashLimits:
    values = {"max_bytes": 64 << 20, "max_files": 100, "deadline": time.monotonic() + 60, **changes}
    return HashLimits(**values)


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "eval.py").write_text("print('hi')\n")
    (path / "sub").mkdir()
    (path / "sub" / "weights.bin").write_bytes(os.urandom(4096))
    os.symlink("sub/weights.bin", path / "link")
    return path


def test_the_bounded_hash_equals_the_plain_one(directory):
    assert hash_model_dir(directory, limits()) == model_hash(directory)


def test_a_4_gib_sparse_file_is_refused_at_once(directory):
    with open(directory / "huge.bin", "wb") as handle:
        handle.truncate(4 * GIB)
    started = time.process_time()
    with pytest.raises(ModelDirectoryRefused, match="huge.bin in the model directory is sparse"):
        hash_model_dir(directory, limits(max_bytes=1 << 50))
    assert time.process_time() - started < 0.5


def test_a_fifo_is_refused_without_blocking(directory):
    os.mkfifo(directory / "sub" / "pipe")
    with pytest.raises(ModelDirectoryRefused, match="sub/pipe in the model directory is a FIFO"):
        hash_model_dir(directory, limits())


def test_file_count_and_total_size_are_capped(directory):
    for i in range(20):
        (directory / f"f{i}").write_bytes(b"x" * 100_000)
    with pytest.raises(ModelDirectoryRefused, match="more than 10 files"):
        hash_model_dir(directory, limits(max_files=10))
    with pytest.raises(ModelDirectoryRefused, match="more than 1000000 bytes"):
        hash_model_dir(directory, limits(max_bytes=1_000_000))


def test_hashing_stops_at_the_deadline(directory):
    (directory / "big.bin").write_bytes(os.urandom(8 << 20))
    with pytest.raises(ModelDirectoryRefused, match="ran past the evaluation's wall limit"):
        hash_model_dir(directory, limits(deadline=time.monotonic() - 1))


def test_the_gate_refuses_hostile_directories_with_a_verdict_and_serves_the_next(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=100)
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"

    world.model("sparse", strength=0.9, parent="root")
    with open(model_dir(settings, "sparse") / "weights.bin", "wb") as handle:
        handle.truncate(64 * GIB)
    world.model("slow-to-hash", strength=0.9, parent="root")
    (model_dir(settings, "slow-to-hash") / "weights.bin").write_bytes(os.urandom(64 << 20))

    started = time.monotonic()
    sparse = run_eval_gate("sparse", settings=settings)
    assert time.monotonic() - started < 10
    assert (sparse["outcome"], sparse["reason_code"]) == ("error", "invalid_model_directory")
    assert "weights.bin in the model directory is sparse" in sparse["reason"]

    # Hashing counts against the evaluation's wall limit: 64 MiB cannot be hashed in 5 ms.
    slow = run_eval_gate("slow-to-hash", settings=settings.with_(eval_wall_seconds=0.005))
    assert (slow["outcome"], slow["reason_code"]) == ("error", "invalid_model_directory")
    assert "wall limit" in slow["reason"]

    world.model("honest", strength=0.95, parent="root")
    assert run_eval_gate("honest", settings=settings)["outcome"] == "promote"
