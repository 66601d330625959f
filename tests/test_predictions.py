"""Reading eval.py's output: layouts per task, alignment, and every rejection."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

from benchmark_factory import (
    make_benchmark,
    signal_predictions,
    write_eval_py,
    write_predictions_csv,
    write_predictions_npz,
)
from model_eval_gate import resources
from model_eval_gate.benchmark import load_benchmark
from model_eval_gate.predictions import (
    PROBABILITY_SUM_TOLERANCE,
    PredictionsError,
    check_same_examples,
    read_predictions,
)

MAX_BYTES = 1 << 20
N = 30


@pytest.fixture
def binary(tmp_path):
    return load_benchmark(make_benchmark(tmp_path, task="binary", n=N))


@pytest.fixture
def regression(tmp_path):
    return load_benchmark(make_benchmark(tmp_path, task="regression", n=N))


@pytest.fixture
def multiclass(tmp_path):
    return load_benchmark(make_benchmark(tmp_path, task="multiclass", n=N, classes=("cat", "dog", "bird")))


@pytest.fixture
def out(tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def read(out_dir, benchmark, **kwargs):
    return read_predictions(out_dir, benchmark, max_bytes=kwargs.pop("max_bytes", MAX_BYTES), **kwargs)


def problems_of(out_dir, benchmark, **kwargs) -> list[str]:
    with pytest.raises(PredictionsError) as caught:
        read(out_dir, benchmark, **kwargs)
    for problem in caught.value.problems:
        assert problem in str(caught.value)
    return list(caught.value.problems)


def assert_one_problem_mentions(problems: list[str], *fragments: str) -> None:
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, f"no problem mentions {fragments}; problems: {problems}"


def probabilities(n: int, k: int, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).random((n, k)) + 0.05
    return raw / raw.sum(axis=1, keepdims=True)


def write_csv_text(out_dir, text: str) -> None:
    (out_dir / "predictions.csv").write_text(text)


# ---------------------------------------------------------------------------
# Valid output, every task and both formats


def test_binary_csv_is_aligned_to_benchmark_order(binary, out):
    values = np.linspace(0.0, 1.0, N)
    order = np.random.default_rng(3).permutation(N)
    ids = [binary.example_ids[i] for i in order]
    write_predictions_csv(out, ids, values[order])
    predictions = read(out, binary)
    assert predictions.example_ids == binary.example_ids
    assert predictions.columns == ("prediction",)
    assert predictions.source == "predictions.csv"
    assert predictions.self_reported is False
    assert predictions.values.shape == (N,) and predictions.values.dtype == np.float64
    np.testing.assert_array_equal(predictions.values, values)
    np.testing.assert_array_equal(predictions.column("prediction"), values)
    with pytest.raises(ValueError):
        predictions.values[0] = 0.5


def test_header_columns_may_come_in_any_order_with_spaces(binary, out):
    lines = ["prediction , example_id"] + [f"0.25,{example_id}" for example_id in binary.example_ids]
    write_csv_text(out, "\r\n".join(lines) + "\r\n")
    np.testing.assert_array_equal(read(out, binary).values, np.full(N, 0.25))


def test_regression_csv_accepts_any_finite_value(regression, out):
    values = np.linspace(-1e6, 1e6, N)
    write_predictions_csv(out, regression.example_ids, values)
    np.testing.assert_array_equal(read(out, regression).values, values)


def test_multiclass_csv_columns_are_reordered_to_the_benchmark_classes(multiclass, out):
    expected = probabilities(N, 3)  # columns: cat, dog, bird
    permuted_columns = ["bird", "cat", "dog"]
    write_predictions_csv(out, multiclass.example_ids, expected[:, [2, 0, 1]], columns=permuted_columns)
    predictions = read(out, multiclass)
    assert predictions.columns == ("cat", "dog", "bird")
    assert predictions.values.shape == (N, 3)
    np.testing.assert_array_equal(predictions.values, expected)
    np.testing.assert_array_equal(predictions.column("dog"), expected[:, 1])


def test_multiclass_npz_in_benchmark_order(multiclass, out):
    expected = probabilities(N, 3)
    write_predictions_npz(out, multiclass.example_ids, expected)
    predictions = read(out, multiclass)
    assert predictions.source == "predictions.npz"
    np.testing.assert_array_equal(predictions.values, expected)


def test_multiclass_npz_with_a_classes_array_is_reordered(multiclass, out):
    expected = probabilities(N, 3)
    write_predictions_npz(out, multiclass.example_ids, expected[:, [1, 2, 0]], classes=np.array(["dog", "bird", "cat"]))
    np.testing.assert_array_equal(read(out, multiclass).values, expected)


def test_binary_and_regression_npz(binary, regression, tmp_path):
    for benchmark, values in ((binary, np.linspace(0, 1, N)), (regression, np.linspace(-5, 5, N))):
        out_dir = tmp_path / f"out-{benchmark.task}"
        order = np.arange(N)[::-1]
        write_predictions_npz(out_dir, [benchmark.example_ids[i] for i in order], values[order].astype(np.float32))
        np.testing.assert_allclose(read(out_dir, benchmark).values, values, rtol=1e-6)


def test_npz_integer_example_ids_are_read_as_text(tmp_path, out):
    bench_dir = make_benchmark(tmp_path, task="regression", n=4)
    (bench_dir / "labels.csv").write_text("example_id,label\n10,1\n11,2\n12,3\n13,4\n")
    benchmark = load_benchmark(bench_dir)
    np.savez(out / "predictions.npz", example_id=np.array([13, 12, 11, 10]), prediction=np.array([4, 3, 2, 1]))
    predictions = read(out, benchmark)
    assert predictions.example_ids == ("10", "11", "12", "13")
    np.testing.assert_array_equal(predictions.values, [1.0, 2.0, 3.0, 4.0])


def self_scored_benchmark(tmp_path, example_list: bool):
    bench_dir = make_benchmark(
        tmp_path, n=N, self_scored=True, self_scored_example_list=example_list, metrics=("score", "seconds"),
        manifest_overrides={"higher_is_better": {"score": True, "seconds": False}},
    )
    return load_benchmark(bench_dir)


def test_self_scored_csv_with_example_list(tmp_path, out):
    benchmark = self_scored_benchmark(tmp_path, example_list=True)
    values = np.column_stack([np.linspace(0, 1, N), np.linspace(5, 6, N)])
    write_predictions_csv(out, benchmark.example_ids[::-1], values[::-1][:, [1, 0]], columns=["seconds", "score"])
    predictions = read(out, benchmark)
    assert predictions.self_reported is True
    assert predictions.columns == ("score", "seconds")
    assert predictions.example_ids == benchmark.example_ids
    np.testing.assert_array_equal(predictions.values, values)
    np.testing.assert_array_equal(predictions.column("seconds"), values[:, 1])


def test_self_scored_npz_without_example_list_is_sorted_by_id(tmp_path, out):
    benchmark = self_scored_benchmark(tmp_path, example_list=False)
    ids = ["c", "a", "b"]
    np.savez(out / "predictions.npz", example_id=np.array(ids), score=np.array([3.0, 1.0, 2.0]),
             seconds=np.array([30.0, 10.0, 20.0]))
    predictions = read(out, benchmark)
    assert predictions.example_ids == ("a", "b", "c")
    np.testing.assert_array_equal(predictions.values, [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])


def test_check_same_examples(tmp_path):
    benchmark = self_scored_benchmark(tmp_path, example_list=False)
    outputs = []
    for name, ids in (("one", ["a", "b"]), ("two", ["b", "a"]), ("three", ["a", "c"])):
        out_dir = tmp_path / name
        write_predictions_csv(out_dir, ids, np.ones((2, 2)), columns=["score", "seconds"])
        outputs.append(read(out_dir, benchmark))
    check_same_examples(outputs[0], outputs[1])
    with pytest.raises(PredictionsError) as caught:
        check_same_examples(outputs[0], outputs[2])
    assert_one_problem_mentions(list(caught.value.problems), "only in the first output", "'b'")
    assert_one_problem_mentions(list(caught.value.problems), "only in the second output", "'c'")


def test_probability_rows_within_tolerance_are_kept_exactly(multiclass, out):
    values = probabilities(N, 3)
    values[:, 0] += PROBABILITY_SUM_TOLERANCE / 2
    write_predictions_npz(out, multiclass.example_ids, values)
    np.testing.assert_array_equal(read(out, multiclass).values, values)


def test_custom_reader_is_used_and_its_errors_are_reported(binary, out):
    write_predictions_csv(out, binary.example_ids, np.full(N, 0.5))
    calls = []

    def recording_reader(out_dir, name, max_bytes):
        calls.append((str(out_dir), name, max_bytes))
        return (out_dir / name).read_bytes()

    read(out, binary, read_file=recording_reader, max_bytes=12345)
    assert calls == [(str(out), "predictions.csv", 12345)]

    def refusing_reader(out_dir, name, max_bytes):
        raise ValueError("refused by policy")

    assert_one_problem_mentions(problems_of(out, binary, read_file=refusing_reader),
                                "cannot read predictions.csv", "refused by policy")


def test_factory_models_run_and_the_stronger_one_is_more_accurate(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="binary", n=300)
    benchmark = load_benchmark(bench_dir)
    accuracies = []
    for strength in (1.0, 0.0):
        model_dir = write_eval_py(tmp_path / f"model-{strength}", task="binary", strength=strength)
        out_dir = tmp_path / f"out-{strength}"
        out_dir.mkdir()
        subprocess.run([sys.executable, str(model_dir / "eval.py"), "--split", str(bench_dir / "inputs"),
                        "--out", str(out_dir)], check=True, env={}, timeout=60)
        predictions = read(out_dir, benchmark)
        accuracies.append(np.mean((predictions.values > 0.5) == benchmark.labels))
    assert accuracies[0] > 0.8 > 0.65 > accuracies[1]
    in_process = signal_predictions(bench_dir, "binary", strength=1.0)
    assert np.mean((in_process > 0.5) == benchmark.labels) == accuracies[0]


# ---------------------------------------------------------------------------
# Which file


def test_no_output_file_names_what_is_there(binary, out):
    (out / "preds.csv").write_text("x")
    assert_one_problem_mentions(problems_of(out, binary), "neither predictions.csv nor predictions.npz",
                                "'preds.csv'")


def test_both_output_files_are_ambiguous(binary, out):
    write_predictions_csv(out, binary.example_ids, np.full(N, 0.5))
    write_predictions_npz(out, binary.example_ids, np.full(N, 0.5))
    assert_one_problem_mentions(problems_of(out, binary), "both predictions.csv and predictions.npz")


def test_symlinked_output_is_refused(binary, out, tmp_path):
    write_predictions_csv(tmp_path, binary.example_ids, np.full(N, 0.5), name="real.csv")
    (out / "predictions.csv").symlink_to(tmp_path / "real.csv")
    assert_one_problem_mentions(problems_of(out, binary), "cannot read predictions.csv", "symlink")


def test_fifo_and_directory_outputs_are_refused(binary, out):
    os.mkfifo(out / "predictions.csv")
    assert_one_problem_mentions(problems_of(out, binary), "not a regular file")
    os.unlink(out / "predictions.csv")
    (out / "predictions.npz").mkdir()
    assert_one_problem_mentions(problems_of(out, binary), "predictions.npz", "not a regular file")


def test_output_over_the_size_cap_is_refused(binary, out):
    path = write_predictions_csv(out, binary.example_ids, np.full(N, 0.5))
    size = path.stat().st_size
    assert read(out, binary, max_bytes=size).n_examples == N
    assert_one_problem_mentions(problems_of(out, binary, max_bytes=size - 1), "over the", f"{size - 1}-byte")


def test_npz_that_inflates_over_the_cap_is_refused(binary, out):
    np.savez_compressed(out / "predictions.npz", example_id=np.array(binary.example_ids),
                        prediction=np.zeros(N), padding=np.zeros(200_000))
    size = (out / "predictions.npz").stat().st_size
    problems = problems_of(out, binary, max_bytes=size * 2)
    assert_one_problem_mentions(problems, "uncompressed", "over the")


# ---------------------------------------------------------------------------
# CSV problems


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ("predictions.csv is empty",)),
        ("id,prediction\na,0.5\n", ("header lacks column(s) 'example_id'", "header has unexpected column(s) 'id'")),
        ("example_id,prediction,extra\n", ("unexpected column(s) 'extra'", "header must be 'example_id,prediction'")),
        ("example_id,prediction,prediction\n", ("header repeats column(s) 'prediction'",)),
        ('example_id,prediction\n"a,0.5\n', ("malformed CSV",)),
    ],
)
def test_csv_structure_problems(binary, out, text, fragments):
    write_csv_text(out, text)
    problems = problems_of(out, binary)
    for fragment in fragments:
        assert_one_problem_mentions(problems, fragment)


def test_wrong_field_count_names_rows(binary, out):
    rows = [f"{example_id},0.5" for example_id in binary.example_ids]
    rows[3] += ",0.1"
    rows[7] = ""
    write_csv_text(out, "example_id,prediction\n" + "\n".join(rows) + "\n")
    assert_one_problem_mentions(problems_of(out, binary), "2 row(s) do not have 2 fields", "row 4 has 3",
                                "row 8 has 0")


def test_non_utf8_csv(binary, out):
    (out / "predictions.csv").write_bytes(b"example_id,prediction\n\xfe,0.5\n")
    assert_one_problem_mentions(problems_of(out, binary), "not UTF-8")


def test_unparseable_numbers_name_rows_and_cells(binary, out):
    values = [str(0.5)] * N
    values[2], values[9] = "abc", ""
    write_csv_text(out, "example_id,prediction\n" + "".join(f"{i},{v}\n" for i, v in zip(binary.example_ids, values)))
    assert_one_problem_mentions(problems_of(out, binary), "column 'prediction': 2 value(s) are not numbers",
                                "row 3 (example_id 'ex00002', value 'abc')", "row 10")


def test_multiclass_header_must_name_every_class(multiclass, out):
    write_predictions_csv(out, multiclass.example_ids, probabilities(N, 3), columns=["cat", "dog", "horse"])
    problems = problems_of(out, multiclass)
    assert_one_problem_mentions(problems, "lacks column(s) 'bird'")
    assert_one_problem_mentions(problems, "unexpected column(s) 'horse'")


# ---------------------------------------------------------------------------
# Values


def test_nan_and_inf_are_rejected(regression, out):
    values = np.zeros(N)
    values[[1, 4]] = [np.nan, np.inf]
    write_predictions_csv(out, regression.example_ids, values)
    assert_one_problem_mentions(problems_of(out, regression), "2 example(s) have NaN or infinite values",
                                "row 2 (example_id 'ex00001')", "row 5")


def test_binary_probabilities_outside_unit_interval(binary, out):
    values = np.full(N, 0.5)
    values[[0, 5]] = [1.5, -0.1]
    write_predictions_npz(out, binary.example_ids, values)
    assert_one_problem_mentions(problems_of(out, binary), "2 example(s) have probabilities outside [0, 1]",
                                "index 0 (example_id 'ex00000', value 1.5)", "index 5")


def test_multiclass_rows_must_sum_to_one(multiclass, out):
    values = probabilities(N, 3)
    values[6] = [0.5, 0.5, 0.5]
    values[8, 0] += 3 * PROBABILITY_SUM_TOLERANCE
    values[9] = [1.2, -0.1, -0.1]
    write_predictions_csv(out, multiclass.example_ids, values, columns=["cat", "dog", "bird"])
    problems = problems_of(out, multiclass)
    assert_one_problem_mentions(problems, "2 example(s) have class probabilities that do not sum to 1",
                                "row 7 (example_id 'ex00006', value 1.5)", "row 9")
    assert_one_problem_mentions(problems, "1 example(s) have probabilities outside [0, 1]", "row 10")


# ---------------------------------------------------------------------------
# Example ids


def test_missing_ids_are_named_with_a_count(binary, out):
    write_predictions_csv(out, binary.example_ids[:20], np.full(20, 0.5))
    [problem] = problems_of(out, binary)
    assert f"10 of the benchmark's {N} example ids are missing" in problem
    assert "'ex00020', 'ex00021', 'ex00022', 'ex00023', 'ex00024', and 5 more" in problem


def test_unknown_and_duplicate_ids(binary, out):
    ids = list(binary.example_ids) + ["stranger", "ex00003"]
    write_predictions_csv(out, ids, np.full(len(ids), 0.5))
    problems = problems_of(out, binary)
    assert_one_problem_mentions(problems, "1 example id(s) are not in benchmark", "row 31 (example_id 'stranger')")
    assert_one_problem_mentions(problems, "1 example id(s) appear more than once", "'ex00003' (rows 4, 32)")


def test_npz_duplicate_ids_are_located_by_index(binary, out):
    ids = list(binary.example_ids)
    ids[5] = ids[2]
    write_predictions_npz(out, ids, np.full(N, 0.5))
    problems = problems_of(out, binary)
    assert_one_problem_mentions(problems, "'ex00002' (indexes 2, 5)")
    assert_one_problem_mentions(problems, "1 of the benchmark's 30 example ids are missing", "'ex00005'")


def test_all_problems_are_reported_together(binary, out):
    ids = list(binary.example_ids[:-1]) + ["stranger"]
    values = np.full(N, 0.5)
    values[0] = np.nan
    write_predictions_csv(out, ids, values)
    problems = problems_of(out, binary)
    assert len(problems) == 3
    assert_one_problem_mentions(problems, "NaN")
    assert_one_problem_mentions(problems, "not in benchmark")
    assert_one_problem_mentions(problems, "missing", "'ex00029'")


def test_self_scored_without_list_rejects_duplicates_and_empty_output(tmp_path, out):
    benchmark = self_scored_benchmark(tmp_path, example_list=False)
    write_predictions_csv(out, ["a", "a", ""], np.ones((3, 2)), columns=["score", "seconds"])
    problems = problems_of(out, benchmark)
    assert_one_problem_mentions(problems, "'a' (rows 1, 2)")
    assert_one_problem_mentions(problems, "empty example id(s): row 3")
    write_csv_text(out, "example_id,score,seconds\n")
    assert_one_problem_mentions(problems_of(out, benchmark), "no examples")


def test_self_scored_values_must_be_finite_and_columns_named(tmp_path, out):
    benchmark = self_scored_benchmark(tmp_path, example_list=True)
    values = np.ones((N, 2))
    values[3, 1] = np.inf
    write_predictions_csv(out, benchmark.example_ids, values, columns=["score", "seconds"])
    assert_one_problem_mentions(problems_of(out, benchmark), "1 example(s) have NaN or infinite values", "row 4")
    write_predictions_csv(out, benchmark.example_ids, values[:, 0], columns=["score"])
    assert_one_problem_mentions(problems_of(out, benchmark), "lacks column(s) 'seconds'")


# ---------------------------------------------------------------------------
# npz problems


def test_npz_shape_problems(binary, multiclass, tmp_path):
    cases = [
        (binary, np.full((N, 1), 0.5), "must have shape (30,)"),
        (binary, np.full(N - 1, 0.5), "must have shape (30,)"),
        (multiclass, probabilities(N, 2), "must have shape (30, 3)"),
        (binary, np.array(["0.5"] * N), "must be numeric"),
    ]
    for number, (benchmark, prediction, fragment) in enumerate(cases):
        out_dir = tmp_path / f"case{number}"
        write_predictions_npz(out_dir, benchmark.example_ids, prediction)
        assert_one_problem_mentions(problems_of(out_dir, benchmark), "array 'prediction'", fragment)


def test_npz_array_names_must_match_exactly(binary, out):
    np.savez(out / "predictions.npz", example_id=np.array(binary.example_ids), predictions=np.full(N, 0.5))
    problems = problems_of(out, binary)
    assert_one_problem_mentions(problems, "lacks array(s) 'prediction'")
    assert_one_problem_mentions(problems, "unexpected array(s) 'predictions'")


def test_npz_object_arrays_are_refused(binary, out):
    ids = np.array(list(binary.example_ids), dtype=object)
    np.savez(out / "predictions.npz", example_id=ids, prediction=np.full(N, 0.5))
    assert_one_problem_mentions(problems_of(out, binary), "array 'example_id' cannot be loaded", "allow_pickle")


def test_npz_example_ids_must_be_one_dimensional_text(binary, tmp_path):
    for number, ids in enumerate([np.array(binary.example_ids).reshape(N, 1), np.arange(N, dtype=float)]):
        out_dir = tmp_path / f"case{number}"
        out_dir.mkdir()
        np.savez(out_dir / "predictions.npz", example_id=ids, prediction=np.full(N, 0.5))
        assert_one_problem_mentions(problems_of(out_dir, binary), "array 'example_id' must")


def test_npz_classes_array_must_hold_the_benchmark_classes(multiclass, out):
    write_predictions_npz(out, multiclass.example_ids, probabilities(N, 3), classes=np.array(["cat", "dog", "cow"]))
    assert_one_problem_mentions(problems_of(out, multiclass), "array 'classes' must", "'cow'")


def test_corrupt_npz(binary, out):
    (out / "predictions.npz").write_bytes(b"this is not a zip archive")
    assert_one_problem_mentions(problems_of(out, binary), "not an .npz archive")
    np.save(out / "predictions.npy", np.zeros(3))
    (out / "predictions.npy").rename(out / "predictions.npz")
    assert_one_problem_mentions(problems_of(out, binary), "not an .npz archive")


# ---------------------------------------------------------------------------
# The documented contract (schemas/eval_output.json)


def output_document(out_dir, task: str) -> dict:
    """Render an output directory as the JSON document eval_output.json describes."""
    if (out_dir / "predictions.csv").exists():
        with (out_dir / "predictions.csv").open(newline="") as handle:
            rows = [{k: (v if k == "example_id" else float(v)) for k, v in row.items()} for row in csv.DictReader(handle)]
        return {"file": "predictions.csv", "task": task, "rows": rows}
    with np.load(out_dir / "predictions.npz") as archive:
        ids = archive["example_id"].tolist()
        prediction = archive["prediction"]
    if prediction.ndim == 1:
        rows = [{"example_id": i, "prediction": float(p)} for i, p in zip(ids, prediction)]
    else:
        rows = [{"example_id": i, **{f"c{k}": float(p) for k, p in enumerate(row)}} for i, row in zip(ids, prediction)]
    return {"file": "predictions.npz", "task": task, "rows": rows}


def test_eval_output_schema_accepts_valid_outputs_and_rejects_invalid_ones(binary, multiclass, tmp_path):
    schema = json.loads(resources.schema_path("eval_output.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    good_csv = tmp_path / "good_csv"
    write_predictions_csv(good_csv, binary.example_ids, np.full(N, 0.5))
    good_npz = tmp_path / "good_npz"
    write_predictions_npz(good_npz, multiclass.example_ids, probabilities(N, 3))
    for out_dir, benchmark, task in ((good_csv, binary, "binary"), (good_npz, multiclass, "multiclass")):
        read(out_dir, benchmark)
        validator.validate(output_document(out_dir, task))

    bad = tmp_path / "bad"
    values = np.full(N, 0.5)
    values[0] = 1.5
    write_predictions_csv(bad, binary.example_ids, values)
    assert problems_of(bad, binary)
    assert not validator.is_valid(output_document(bad, "binary"))
    assert validator.is_valid(output_document(bad, "regression"))
    assert not validator.is_valid({"file": "predictions.csv", "task": "binary", "rows": [{"prediction": 0.5}]})
    assert not validator.is_valid({"file": "predictions.json", "task": "binary", "rows": []})
