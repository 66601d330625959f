"""Benchmark directories: manifest schema, cross-field rules, labels, paths, split hash."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_factory import example_ids_for, make_benchmark, read_manifest, write_manifest
from model_eval_gate import resources
from model_eval_gate.benchmark import (
    BUILTIN_HIGHER_IS_BETTER,
    TASK_METRICS,
    BenchmarkError,
    load_benchmark,
    split_hash,
)
from model_eval_gate.evaluation.csv_tables import read_csv_table


def problems_of(path) -> list[str]:
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(path)
    return list(caught.value.problems)


def assert_one_problem_mentions(problems: list[str], *fragments: str) -> None:
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert matching, f"no problem mentions {fragments}; problems: {problems}"


def edit_manifest(bench_dir, **changes):
    manifest = read_manifest(bench_dir)
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    write_manifest(bench_dir, manifest)


# ---------------------------------------------------------------------------
# Schemas


@pytest.mark.parametrize("name", ["benchmark.json", "eval_output.json"])
def test_schema_is_valid_draft07(name):
    schema = json.loads(resources.schema_path(name).read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_every_factory_manifest_is_valid_against_the_schema(tmp_path):
    schema = json.loads(resources.schema_path("benchmark.json").read_text())
    for task in TASK_METRICS:
        jsonschema.validate(read_manifest(make_benchmark(tmp_path, task=task, n=10)), schema)
    jsonschema.validate(read_manifest(make_benchmark(tmp_path, n=10, self_scored=True)), schema)


# ---------------------------------------------------------------------------
# Loading valid benchmarks


def test_binary_benchmark_loads_with_float_labels_in_file_order(tmp_path):
    bench_dir = make_benchmark(
        tmp_path, task="binary", n=40, title="Churn", guardrails={"log_loss": 0.02},
        non_inferiority_margin=0.01, floor=0.6,
    )
    benchmark = load_benchmark(bench_dir)
    rows = list(csv.reader((bench_dir / "labels.csv").open()))[1:]
    assert benchmark.id == "binary-n40-s0"
    assert benchmark.title == "Churn"
    assert benchmark.task == "binary"
    assert benchmark.primary_metric == "auroc"
    assert benchmark.metrics == ("auroc", "log_loss", "accuracy")
    assert benchmark.guardrails == {"log_loss": 0.02}
    assert benchmark.non_inferiority_margin == 0.01
    assert benchmark.floor == 0.6
    assert benchmark.classes is None
    assert benchmark.self_scored is False
    assert benchmark.higher_is_better == {"auroc": True, "log_loss": False, "accuracy": True}
    assert benchmark.example_ids == tuple(r[0] for r in rows) == tuple(example_ids_for(40))
    assert benchmark.labels.dtype == np.float64
    np.testing.assert_array_equal(benchmark.labels, [float(r[1]) for r in rows])
    assert set(np.unique(benchmark.labels)) == {0.0, 1.0}
    assert benchmark.n_examples == 40
    assert benchmark.example_index["ex00007"] == 7
    assert benchmark.root == bench_dir.resolve()
    assert benchmark.inputs_dir == bench_dir.resolve() / "inputs"
    assert benchmark.labels_path == bench_dir.resolve() / "labels.csv"
    assert benchmark.manifest == read_manifest(bench_dir)
    assert len(benchmark.split_hash) == 64


def test_loaded_labels_are_read_only(tmp_path):
    benchmark = load_benchmark(make_benchmark(tmp_path, n=10))
    with pytest.raises(ValueError):
        benchmark.labels[0] = 0.5


def test_multiclass_labels_are_class_indices_in_manifest_order(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="multiclass", n=30, classes=("b", "a", "c"))
    benchmark = load_benchmark(bench_dir)
    names = [r[1] for r in list(csv.reader((bench_dir / "labels.csv").open()))[1:]]
    assert benchmark.classes == ("b", "a", "c")
    assert benchmark.labels.dtype == np.int64
    np.testing.assert_array_equal(benchmark.labels, [("b", "a", "c").index(n) for n in names])
    assert benchmark.higher_is_better == {"accuracy": True, "log_loss": False}


def test_regression_labels_are_floats(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="regression", n=25)
    benchmark = load_benchmark(bench_dir)
    values = [float(r[1]) for r in list(csv.reader((bench_dir / "labels.csv").open()))[1:]]
    assert benchmark.labels.dtype == np.float64
    np.testing.assert_array_equal(benchmark.labels, values)
    assert benchmark.higher_is_better == {"rmse": False, "mae": False}


def test_binary_labels_may_be_written_as_floats(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=3)
    (bench_dir / "labels.csv").write_text("example_id,label\nex00000,1.0\nex00001,0.0\nex00002,1\n")
    np.testing.assert_array_equal(load_benchmark(bench_dir).labels, [1.0, 0.0, 1.0])


def test_quoted_crlf_labels_file_reads_like_a_plain_one(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="multiclass", n=3, classes=("x, y", "z"))
    (bench_dir / "labels.csv").write_bytes(
        b'\xef\xbb\xbfexample_id,label\r\n"ex00000","x, y"\r\nex00001,z\r\n"ex00002",z\r\n'
    )
    benchmark = load_benchmark(bench_dir)
    assert benchmark.example_ids == ("ex00000", "ex00001", "ex00002")
    np.testing.assert_array_equal(benchmark.labels, [0, 1, 1])


def test_self_scored_benchmark_without_labels_has_no_example_list(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10, self_scored=True, metrics=("score", "latency_ms"),
                               manifest_overrides={"higher_is_better": {"score": True, "latency_ms": False}})
    benchmark = load_benchmark(bench_dir)
    assert benchmark.self_scored is True
    assert benchmark.metrics == ("score", "latency_ms")
    assert benchmark.higher_is_better == {"score": True, "latency_ms": False}
    assert benchmark.labels_path is None
    assert benchmark.example_ids is None
    assert benchmark.labels is None
    assert benchmark.n_examples is None


def test_self_scored_benchmark_with_example_list(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10, self_scored=True, self_scored_example_list=True)
    benchmark = load_benchmark(bench_dir)
    assert benchmark.example_ids == tuple(example_ids_for(10))
    assert benchmark.labels is None


def test_builtin_directions_cover_every_task_metric():
    assert {m for metrics in TASK_METRICS.values() for m in metrics} == set(BUILTIN_HIGHER_IS_BETTER)


# ---------------------------------------------------------------------------
# Manifest problems


def test_schema_violations_are_reported_with_json_paths(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    edit_manifest(bench_dir, id="Not A Slug!", guardrails={"log_loss": -0.1}, task="ranking", gaurdrails={})
    problems = problems_of(bench_dir)
    assert_one_problem_mentions(problems, "$.id", "does not match")
    assert_one_problem_mentions(problems, "$.guardrails.log_loss", "minimum of 0")
    assert_one_problem_mentions(problems, "$.task", "ranking")
    assert_one_problem_mentions(problems, "$:", "gaurdrails")


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    edit_manifest(bench_dir, primary_metric="rmse", metrics=["auroc", "mae"], classes=["a", "b"],
                  non_inferiority_margin=-1)
    shutil.rmtree(bench_dir / "inputs")
    (bench_dir / "labels.csv").write_text("example_id,label\na,1\na,0\n")
    problems = problems_of(bench_dir)
    assert_one_problem_mentions(problems, "$.non_inferiority_margin")
    assert_one_problem_mentions(problems, "$.primary_metric", "'rmse' is not listed in metrics")
    assert_one_problem_mentions(problems, "'mae' is not a binary metric")
    assert_one_problem_mentions(problems, "$.classes", "only a multiclass")
    assert_one_problem_mentions(problems, "inputs/ is missing")
    assert_one_problem_mentions(problems, "appear more than once", "'a'")
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(bench_dir)
    for problem in problems:
        assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("task", "metric"),
    [("binary", "rmse"), ("regression", "auroc"), ("multiclass", "brier"), ("multiclass", "auroc")],
)
def test_metric_must_be_valid_for_task(tmp_path, task, metric):
    bench_dir = make_benchmark(tmp_path, task=task, n=10)
    manifest = read_manifest(bench_dir)
    edit_manifest(bench_dir, metrics=[*manifest["metrics"], metric])
    assert_one_problem_mentions(problems_of(bench_dir), f"{metric!r} is not a {task} metric")


def test_guardrail_must_be_a_listed_secondary_metric(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    edit_manifest(bench_dir, guardrails={"auroc": 0.01, "brier": 0.01})
    problems = problems_of(bench_dir)
    assert_one_problem_mentions(problems, "$.guardrails", "'auroc' is the primary metric")
    assert_one_problem_mentions(problems, "$.guardrails", "'brier' is not listed in metrics")


def test_multiclass_needs_classes_and_says_why(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="multiclass", n=10)
    edit_manifest(bench_dir, classes=None)
    assert_one_problem_mentions(problems_of(bench_dir), "'classes' is a required property", "multiclass")


@pytest.mark.parametrize(
    ("classes", "fragment"),
    [(["only"], "too short"), (["a", "a"], "non-unique"), (["a", "example_id"], "$.classes[1]"),
     (["a", " b"], "$.classes[1]")],
)
def test_classes_are_checked(tmp_path, classes, fragment):
    bench_dir = make_benchmark(tmp_path, task="multiclass", n=10)
    edit_manifest(bench_dir, classes=classes)
    assert_one_problem_mentions(problems_of(bench_dir), fragment)


def test_gate_scored_benchmark_needs_labels(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    edit_manifest(bench_dir, labels=None)
    assert_one_problem_mentions(problems_of(bench_dir), "'labels' is a required property", "labels file")


def test_self_scored_needs_directions_for_exactly_its_metrics(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10, self_scored=True)
    edit_manifest(bench_dir, higher_is_better=None)
    assert_one_problem_mentions(problems_of(bench_dir), "'higher_is_better' is a required property")
    edit_manifest(bench_dir, metrics=["score", "speed"], higher_is_better={"score": True, "other": False})
    problems = problems_of(bench_dir)
    assert_one_problem_mentions(problems, "no direction for 'speed'")
    assert_one_problem_mentions(problems, "'other'", "not listed in metrics")


def test_higher_is_better_is_only_for_self_scored(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    edit_manifest(bench_dir, higher_is_better={"auroc": False})
    assert_one_problem_mentions(problems_of(bench_dir), "$.higher_is_better", "only a self-scored")


def test_self_scored_metric_may_not_be_called_example_id(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10, self_scored=True)
    edit_manifest(bench_dir, metrics=["score", "example_id"], higher_is_better={"score": True, "example_id": True})
    assert_one_problem_mentions(problems_of(bench_dir), "$.metrics[1]")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "invalid JSON"),
        ('{"id": "a", "id": "b"}', "'id' appears more than once"),
        ('{"floor": NaN}', "NaN is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_unparseable_manifest(tmp_path, text, fragment):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "benchmark.json").write_text(text)
    assert_one_problem_mentions(problems_of(bench_dir), "benchmark.json", fragment)


def test_missing_manifest_and_not_a_directory(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "benchmark.json").unlink()
    assert_one_problem_mentions(problems_of(bench_dir), "benchmark.json is missing")
    assert_one_problem_mentions(problems_of(bench_dir / "labels.csv"), "is not a directory")


def test_manifest_symlink_is_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "benchmark.json").rename(tmp_path / "elsewhere.json")
    (bench_dir / "benchmark.json").symlink_to(tmp_path / "elsewhere.json")
    assert_one_problem_mentions(problems_of(bench_dir), "benchmark.json is a symlink")


# ---------------------------------------------------------------------------
# inputs/ and paths


def test_inputs_must_exist_and_be_a_real_directory(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "inputs").rename(tmp_path / "real_inputs")
    (bench_dir / "inputs").symlink_to(tmp_path / "real_inputs")
    assert_one_problem_mentions(problems_of(bench_dir), "inputs/ is a symlink")
    (bench_dir / "inputs").unlink()
    (bench_dir / "inputs").write_text("not a directory")
    assert_one_problem_mentions(problems_of(bench_dir), "inputs is not a directory")


def test_symlinks_and_special_files_inside_inputs_are_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "inputs" / "nested").mkdir()
    (bench_dir / "inputs" / "nested" / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(bench_dir / "inputs" / "pipe")
    problems = problems_of(bench_dir)
    assert_one_problem_mentions(problems, "nested/passwd (symlink)", "pipe (special file)")
    with pytest.raises(BenchmarkError, match="nested/passwd"):
        split_hash(bench_dir)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ("inputs/labels.csv", "inside inputs/"),
        ("./inputs/labels.csv", "inside inputs/"),
        ("../labels.csv", "must not contain '..'"),
        ("sub/../../labels.csv", "must not contain '..'"),
        ("/etc/passwd", "must be a path relative"),
        ("nope.csv", "labels file 'nope.csv' is missing"),
    ],
)
def test_labels_path_rules(tmp_path, labels, fragment):
    bench_dir = make_benchmark(tmp_path, n=10)
    shutil.copy(bench_dir / "labels.csv", bench_dir / "inputs" / "labels.csv")
    edit_manifest(bench_dir, labels=labels)
    assert_one_problem_mentions(problems_of(bench_dir), fragment)


def test_labels_symlink_escaping_the_directory_is_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "labels.csv").rename(tmp_path / "outside.csv")
    (bench_dir / "labels.csv").symlink_to(tmp_path / "outside.csv")
    assert_one_problem_mentions(problems_of(bench_dir), "resolves outside the benchmark directory")


def test_labels_symlink_inside_the_directory_is_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "labels.csv").rename(bench_dir / "real.csv")
    (bench_dir / "labels.csv").symlink_to("real.csv")
    assert_one_problem_mentions(problems_of(bench_dir), "labels file 'labels.csv' is a symlink")


def test_labels_reached_through_a_symlinked_directory_into_inputs_is_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    shutil.copy(bench_dir / "labels.csv", bench_dir / "inputs" / "labels.csv")
    (bench_dir / "hidden").symlink_to("inputs")
    edit_manifest(bench_dir, labels="hidden/labels.csv")
    assert_one_problem_mentions(problems_of(bench_dir), "resolves inside inputs/")


def test_labels_reached_through_a_symlinked_directory_is_refused(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "real").mkdir()
    (bench_dir / "labels.csv").rename(bench_dir / "real" / "labels.csv")
    (bench_dir / "alias").symlink_to("real")
    edit_manifest(bench_dir, labels="alias/labels.csv")
    assert_one_problem_mentions(problems_of(bench_dir), "through a symlinked directory")


def test_labels_in_a_subdirectory_are_fine(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "private").mkdir()
    (bench_dir / "labels.csv").rename(bench_dir / "private" / "labels.csv")
    edit_manifest(bench_dir, labels="private/labels.csv")
    assert load_benchmark(bench_dir).labels_path == bench_dir.resolve() / "private" / "labels.csv"


# ---------------------------------------------------------------------------
# Labels contents


def write_labels(bench_dir, text: str) -> None:
    (bench_dir / "labels.csv").write_text(text)


@pytest.mark.parametrize(
    ("task", "text", "fragments"),
    [
        ("binary", "example_id,label\n", ("has no examples",)),
        ("binary", "", ("is empty",)),
        ("binary", "id,label\na,1\n", ("header must be 'example_id,label'", "'id,label'")),
        ("binary", "example_id,label\na,1\na,0\nb,1\n", ("1 example id(s) appear more than once", "'a' (rows 1, 2)")),
        ("binary", "example_id,label\na,1\n,0\n", ("1 empty example id(s)", "row 2")),
        ("binary", "example_id,label\na,1\nb,2\nc,0.5\n", ("2 binary label(s) are not 0 or 1", "'b'", "'0.5'")),
        ("binary", "example_id,label\na,yes\n", ("1 label(s) are not numbers", "'yes'")),
        ("multiclass", "example_id,label\na,cat\nb,wolf\n", ("not one of the classes", "'wolf'")),
        ("regression", "example_id,label\na,1.5\nb,nan\nc,-inf\n", ("2 regression label(s) are not finite",)),
        ("regression", "example_id,label\na,1.5\nb,1.5,2\nc\n", ("2 row(s) do not have 2 fields", "row 2 has 3", "row 3 has 1")),
        ("regression", 'example_id,label\n"a,1\n', ("malformed CSV",)),
    ],
)
def test_bad_labels_are_reported(tmp_path, task, text, fragments):
    bench_dir = make_benchmark(tmp_path, task=task, n=10)
    write_labels(bench_dir, text)
    assert_one_problem_mentions(problems_of(bench_dir), "labels file 'labels.csv'", *fragments)


def test_non_utf8_labels_are_reported(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    (bench_dir / "labels.csv").write_bytes(b"example_id,label\n\xff,1\n")
    assert_one_problem_mentions(problems_of(bench_dir), "not UTF-8")


def test_many_bad_labels_are_summarised_not_all_spelled_out(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=10)
    write_labels(bench_dir, "example_id,label\n" + "".join(f"e{i},7\n" for i in range(100)))
    [problem] = problems_of(bench_dir)
    assert "100 binary label(s) are not 0 or 1" in problem
    assert "and 95 more" in problem
    assert "e99" not in problem


def test_error_message_caps_the_number_of_problems(tmp_path):
    error = BenchmarkError(tmp_path, [f"problem {i}" for i in range(40)])
    assert isinstance(error, ValueError)
    assert len(error.problems) == 40
    assert "problem 24" in str(error) and "problem 25" not in str(error)
    assert "and 15 more problem(s)" in str(error)


# ---------------------------------------------------------------------------
# Split hash


def test_split_hash_matches_load_and_is_stable(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=50)
    first = split_hash(bench_dir)
    assert first == split_hash(bench_dir) == load_benchmark(bench_dir).split_hash
    assert len(first) == 64 and int(first, 16) >= 0


def test_split_hash_is_the_same_for_identical_content_written_in_another_order(tmp_path):
    files = {"inputs/b/z.bin": b"\x00\x01", "inputs/a.txt": b"alpha", "inputs/b/y.txt": b"why", "inputs/c": None}
    hashes = []
    for name, order in (("one", sorted(files)), ("two", sorted(files, reverse=True))):
        bench_dir = make_benchmark(tmp_path, n=5, benchmark_id=name)
        for relative in order:
            target = bench_dir / relative
            if files[relative] is None:
                target.mkdir(parents=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(files[relative])
        hashes.append(split_hash(bench_dir))
    assert hashes[0] == hashes[1]


def test_split_hash_ignores_mtimes_permissions_and_policy_fields(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=20)
    before = split_hash(bench_dir)
    os.utime(bench_dir / "labels.csv", (1, 1))
    os.utime(bench_dir / "inputs" / "features.csv", (2, 2))
    os.chmod(bench_dir / "inputs" / "features.csv", 0o600)
    edit_manifest(bench_dir, title="A new title", description="words", metrics=["auroc", "brier"],
                  guardrails={"brier": 0.1}, non_inferiority_margin=0.5, floor=0.1)
    assert split_hash(bench_dir) == before


def flip_one_label_byte(bench_dir):
    text = (bench_dir / "labels.csv").read_text()
    position = text.index("\n", text.index("\n") + 1) - 1  # last byte of the first data row
    flipped = "0" if text[position] == "1" else "1"
    (bench_dir / "labels.csv").write_text(text[:position] + flipped + text[position + 1:])


def test_split_hash_changes_when_one_label_byte_changes(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=20)
    before = split_hash(bench_dir)
    flip_one_label_byte(bench_dir)
    assert split_hash(bench_dir) != before


@pytest.mark.parametrize(
    "change",
    ["input_byte", "rename_input", "add_empty_file", "add_empty_dir", "move_between_files"],
)
def test_split_hash_changes_when_inputs_change(tmp_path, change):
    bench_dir = make_benchmark(tmp_path, n=20)
    inputs = bench_dir / "inputs"
    (inputs / "extra.txt").write_text("ab")
    before = split_hash(bench_dir)
    if change == "input_byte":
        data = bytearray((inputs / "features.csv").read_bytes())
        data[-2] = ord("0") if data[-2] != ord("0") else ord("1")
        (inputs / "features.csv").write_bytes(bytes(data))
    elif change == "rename_input":
        (inputs / "features.csv").rename(inputs / "features2.csv")
    elif change == "add_empty_file":
        (inputs / "empty").write_bytes(b"")
    elif change == "add_empty_dir":
        (inputs / "empty").mkdir()
    else:  # same bytes overall, split differently between two files
        (inputs / "extra.txt").write_text("a")
        (inputs / "extrb.txt").write_text("b")
    assert split_hash(bench_dir) != before


def test_split_hash_covers_how_labels_are_read(tmp_path):
    bench_dir = make_benchmark(tmp_path, task="multiclass", n=20, classes=("a", "b", "c"))
    before = split_hash(bench_dir)
    edit_manifest(bench_dir, classes=["b", "a", "c"])
    assert split_hash(bench_dir) != before

    binary_dir = make_benchmark(tmp_path, task="binary", n=20)
    as_binary = split_hash(binary_dir)
    edit_manifest(binary_dir, task="regression", primary_metric="rmse", metrics=["rmse"], non_inferiority_margin=0.1)
    assert split_hash(binary_dir) != as_binary


def test_split_hash_does_not_depend_on_the_labels_file_name(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=20)
    before = split_hash(bench_dir)
    (bench_dir / "labels.csv").rename(bench_dir / "answers.csv")
    edit_manifest(bench_dir, labels="answers.csv")
    assert split_hash(bench_dir) == before


def test_split_hash_of_self_scored_benchmark_without_labels(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=20, self_scored=True)
    before = split_hash(bench_dir)
    assert load_benchmark(bench_dir).split_hash == before
    (bench_dir / "inputs" / "features.csv").write_text("example_id\nx\n")
    assert split_hash(bench_dir) != before


def test_split_hash_refuses_an_invalid_benchmark(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=20)
    edit_manifest(bench_dir, labels="../escape.csv")
    with pytest.raises(BenchmarkError, match="must not contain '..'"):
        split_hash(bench_dir)


# ---------------------------------------------------------------------------
# The CSV reader: the vectorised path and the csv-module path agree

_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(_cell, min_size=width, max_size=width), max_size=8)),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_csv_reader_agrees_with_the_csv_module(rows, quoting, line_end):
    width = len(rows[0]) if rows else 1
    buffer = io.StringIO(newline="")
    csv.writer(buffer, quoting=quoting, lineterminator=line_end).writerows([[f"h{j}" for j in range(width)], *rows])
    text = buffer.getvalue()
    expected = list(csv.reader(io.StringIO(text, newline="")))
    while expected and not expected[-1]:
        expected.pop()
    expected_bad = [(i, len(row)) for i, row in enumerate(expected[1:], start=1) if len(row) != width]

    problems: list[str] = []
    table = read_csv_table(text.encode("utf-8"), problems)
    assert problems == []
    assert table.header == expected[0]
    assert table.n_rows == len(expected) - 1
    assert table.bad_rows == expected_bad
    if not expected_bad:
        assert table.columns == [[row[j] for row in expected[1:]] for j in range(width)]


@pytest.mark.parametrize("task, primary", [("regression", "rmse"), ("binary", "log_loss"), ("binary", "brier")])
def test_a_primary_metric_off_the_unit_scale_needs_a_declared_margin(tmp_path, task, primary):
    bench_dir = make_benchmark(tmp_path, task=task, n=20, primary_metric=primary,
                               metrics=[primary], manifest_overrides={"non_inferiority_margin": None})
    with pytest.raises(BenchmarkError, match=rf"non_inferiority_margin: required for primary metric '{primary}'"):
        load_benchmark(bench_dir)
    edit_manifest(bench_dir, non_inferiority_margin=0.05)
    assert load_benchmark(bench_dir).non_inferiority_margin == 0.05


def test_a_unit_scale_primary_metric_may_use_the_default_margin(tmp_path):
    assert load_benchmark(make_benchmark(tmp_path, n=20)).non_inferiority_margin is None
