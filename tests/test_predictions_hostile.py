"""Hostile predictions files: parsing stays linear and bounded (issue 14, item 1).

The long version with figures is benchmarks/bench_predictions_parse.py; here
each attack is played once at a size that runs in well under a second, and
the assertions are the bounds themselves: refused before or while reading,
within a budget, with a message that says why.
"""
from __future__ import annotations

import io
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from benchmark_factory import make_benchmark, write_predictions_csv
from gate_world import World

from model_eval_gate import predictions
from model_eval_gate.benchmark import load_benchmark
from model_eval_gate.gate import run_eval_gate
from model_eval_gate.predictions import PredictionsError, read_predictions

MAX_BYTES = 64 << 20


def problems_of(out_dir, benchmark) -> list[str]:
    with pytest.raises(PredictionsError) as caught:
        read_predictions(out_dir, benchmark, max_bytes=MAX_BYTES)
    return list(caught.value.problems)


@pytest.fixture
def binary(tmp_path):
    return load_benchmark(make_benchmark(tmp_path / "bench", task="binary", n=50))


@pytest.fixture
def out(tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_a_40000_column_header_is_refused_before_it_is_split(tmp_path, out):
    # Large enough a benchmark that the file's size alone does not give it away.
    binary = load_benchmark(make_benchmark(tmp_path / "bench5000", task="binary", n=5000))
    header = ",".join(["example_id", "prediction"] + [f"c{i}" for i in range(40_000)])
    (out / "predictions.csv").write_text(header + "\n" + "ex00000,0.5" + ",0" * 40_000 + "\n")
    started = time.process_time()
    [problem] = problems_of(out, binary)
    assert time.process_time() - started < 0.5
    assert "header is longer than the" in problem and "not read further" in problem


def test_a_header_of_4_million_cells_costs_no_more(binary, out):
    (out / "predictions.csv").write_bytes(b"example_id,prediction" + b",x" * 4_000_000 + b"\n")
    started = time.process_time()
    problems = problems_of(out, binary)
    assert time.process_time() - started < 0.5
    assert "header is longer than the" in problems[0] or "one row per example of benchmark" in problems[0]


def test_more_rows_than_the_benchmark_stop_the_parse(binary, out):
    ids = [binary.example_ids[i % 50] for i in range(5000)]
    write_predictions_csv(out, ids, np.full(5000, 0.5))
    [problem] = problems_of(out, binary)
    assert "one row per example of benchmark" in problem  # refused from its size, unread


def test_rows_just_past_the_count_still_name_the_strangers(binary, out):
    ids = list(binary.example_ids) + [f"stranger{i}" for i in range(60)]
    write_predictions_csv(out, ids, np.full(len(ids), 0.5))
    problems = problems_of(out, binary)
    assert any("60 example id(s) are not in benchmark" in p and "stranger0" in p for p in problems)


def test_a_row_longer_than_any_valid_row_is_refused(binary, out):
    rows = [f"{example_id},0.5" for example_id in binary.example_ids]
    rows[10] = "x" * 5000 + ",0.5"
    (out / "predictions.csv").write_text("example_id,prediction\n" + "\n".join(rows[:20]) + "\n")
    [problem] = problems_of(out, binary)
    assert "row 11 is longer than the" in problem


def test_crlf_files_longer_than_a_chunk_parse(tmp_path):
    from model_eval_gate.predictions_csv import CHUNK_BYTES

    n = 3 * CHUNK_BYTES // 16  # several chunks of ~16-byte rows
    benchmark = load_benchmark(make_benchmark(tmp_path / "crlf", task="binary", n=n))
    out_dir = tmp_path / "out-crlf"
    out_dir.mkdir()
    values = np.random.default_rng(2).random(n).round(6)
    (out_dir / "predictions.csv").write_bytes(("example_id,prediction\r\n" + "".join(
        f"{i},{v}\r\n" for i, v in zip(benchmark.example_ids, values))).encode())
    assert (out_dir / "predictions.csv").stat().st_size > 2 * CHUNK_BYTES
    np.testing.assert_array_equal(read_predictions(out_dir, benchmark, max_bytes=MAX_BYTES).values, values)


def test_memory_stays_within_3x_the_file_whatever_the_ids(tmp_path):
    n = 40_000
    benchmark = load_benchmark(make_benchmark(tmp_path / "big", task="binary", n=n))
    benchmark.example_index_bytes, benchmark.longest_example_id_bytes  # the benchmark's cost, not the parse's
    longest = benchmark.longest_example_id_bytes
    unknown = ["z" * (longest - len(str(i))) + str(i) for i in range(n)]  # as long as the longest real id
    for name, ids in (("valid", list(benchmark.example_ids)), ("unknown", unknown)):
        out_dir = tmp_path / f"out-{name}"
        out_dir.mkdir()
        write_predictions_csv(out_dir, ids, np.random.default_rng(0).random(n))
        size = (out_dir / "predictions.csv").stat().st_size
        tracemalloc.start()
        try:
            read_predictions(out_dir, benchmark, max_bytes=MAX_BYTES)
        except PredictionsError as exc:
            assert name == "unknown" and f"{n} example id(s) are not in benchmark" in exc.problems[0]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # 3x the file, plus one chunk's working set (cells of 128 KiB, index arrays)
        assert peak <= 3 * size + (1 << 20), (name, peak, size)


def test_an_npy_header_claiming_a_terabyte_is_refused_before_np_load(binary, out):
    def npy(shape: tuple[int, ...], dtype: str, payload: bytes) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
        return buffer.getvalue() + payload

    with zipfile.ZipFile(out / "predictions.npz", "w") as archive:
        archive.writestr("example_id.npy", npy((10**12,), "<U8", b""))
        archive.writestr("prediction.npy", npy((50,), "<f8", np.zeros(50).tobytes()))
    problems = problems_of(out, binary)
    assert any("declares shape (1000000000000,)" in p and "stores 0 bytes" in p for p in problems)


def test_parsing_runs_under_a_time_budget(binary, out, monkeypatch):
    write_predictions_csv(out, binary.example_ids, np.full(50, 0.5))
    monkeypatch.setattr(predictions, "PARSE_BASE_SECONDS", -1.0)
    [problem] = problems_of(out, binary)
    assert "took longer than its time budget" in problem


HEADER_BOMB = """
import os, sys
out = sys.argv[sys.argv.index("--out") + 1]
with open(os.path.join(out, "predictions.csv"), "w") as handle:
    handle.write(",".join(["example_id", "prediction"] + ["c%d" % i for i in range(400000)]) + "\\n")
"""


def test_the_gate_gives_a_header_bomb_an_error_verdict_and_serves_the_next(settings, conn, tmp_path):
    world = World(settings, conn, tmp_path, n=100)
    world.model("root", strength=0.5)
    assert run_eval_gate("root", settings=settings)["outcome"] == "promote"
    world.model("bomb", parent="root", eval_source=HEADER_BOMB)
    started = time.monotonic()
    result = run_eval_gate("bomb", settings=settings)
    assert time.monotonic() - started < 10
    assert (result["outcome"], result["reason_code"]) == ("error", "invalid_eval_output")
    assert "takes at most" in result["reason"]  # refused from its size alone, unread
    world.model("honest", strength=0.95, parent="root")
    assert run_eval_gate("honest", settings=settings)["outcome"] == "promote"
