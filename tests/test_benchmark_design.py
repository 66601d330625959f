"""A benchmark declares how its examples are resampled: groups and strata (manifest `resampling`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_factory import make_benchmark, signal_predictions

from model_eval_gate import stats
from model_eval_gate.benchmark import BenchmarkError, load_benchmark, split_hash


def declare(bench_dir, resampling, *, labels_columns=None, groups_file=None):
    """Add `resampling` to the manifest; extra label columns or a groups file, as given."""
    manifest_path = bench_dir / "benchmark.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["resampling"] = resampling
    manifest_path.write_text(json.dumps(manifest))
    lines = (bench_dir / "labels.csv").read_text().splitlines()
    if labels_columns:
        header = lines[0] + "".join(f",{name}" for name in labels_columns)
        rows = [line + "".join(f",{fn(i)}" for fn in labels_columns.values()) for i, line in enumerate(lines[1:])]
        (bench_dir / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    if groups_file:
        name, columns = groups_file
        ids = [line.split(",")[0] for line in lines[1:]]
        body = [",".join([example_id, *(str(fn(i)) for fn in columns.values())]) for i, example_id in enumerate(ids)]
        (bench_dir / name).write_text("\n".join([",".join(["example_id", *columns]), *reversed(body)]) + "\n")


def test_group_column_in_the_labels_file(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=200)
    before = split_hash(bench_dir)
    declare(bench_dir, {"group_column": "donor"}, labels_columns={"donor": lambda i: f"d{i // 10}"})
    benchmark = load_benchmark(bench_dir)
    design = benchmark.resampling_design
    assert design.grouped and design.n_units == 20 and design.describe() == "20 donors"
    assert split_hash(bench_dir) != before  # the labels file's bytes changed
    candidate = signal_predictions(bench_dir, "binary", strength=0.9)
    parent = signal_predictions(bench_dir, "binary", strength=0.5)
    result = stats.compare_on_benchmark(benchmark, candidate, parent, n_resamples=200, seed=1)["auroc"]
    assert result.interval == "few_groups_t" and result.degrees_of_freedom == 19


def test_groups_and_strata_in_a_separate_file_are_aligned_by_id_and_hashed(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=120)
    declare(bench_dir, {"group_column": "patient", "strata_column": "site", "file": "design.csv"},
            groups_file=("design.csv", {"patient": lambda i: f"p{i // 4}", "site": lambda i: "ab"[(i // 4) % 2]}))
    benchmark = load_benchmark(bench_dir)
    design = benchmark.resampling_design
    assert (design.n_units, design.n_strata) == (30, 2)
    # The file was written in reverse order: the design follows the labels' order.
    assert list(design.unit_of_example[:8]) == [0, 0, 0, 0, 1, 1, 1, 1]
    first = split_hash(bench_dir)
    text = (bench_dir / "design.csv").read_text().replace(",p0,", ",p1,")
    (bench_dir / "design.csv").write_text(text)
    assert split_hash(bench_dir) != first


def test_label_stratified_benchmark(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=100)
    declare(bench_dir, {"stratify_by_label": True})
    benchmark = load_benchmark(bench_dir)
    assert benchmark.resampling_design.describe() == "100 examples within label classes"
    result = stats.compare_on_benchmark(benchmark, signal_predictions(bench_dir, "binary", strength=0.9),
                                        signal_predictions(bench_dir, "binary", strength=0.4), n_resamples=100, seed=2)
    assert result["auroc"].n_valid == 100


@pytest.mark.parametrize("resampling, columns, groups_file, fragment", [
    ({"group_column": "donor"}, None, None, "header must be 'example_id,label,donor'"),
    ({"group_column": "donor", "strata_column": "donor"}, None, None, "must differ"),
    ({"file": "g.csv"}, None, None, "no group_column"),
    ({"group_column": "donor", "stratify_by_label": True}, {"donor": lambda i: i // 5}, None,
     "declare strata_column instead"),
    ({"group_column": "donor", "strata_column": "site"},
     {"donor": lambda i: i // 5, "site": lambda i: i % 2}, None, "same for every example"),
    ({"group_column": "donor", "file": "inputs/g.csv"}, None, None, "where models would see it"),
    ({"group_column": "donor", "file": "g.csv"}, None, None, "groups file 'g.csv' is missing"),
    ({"group_column": "label"}, None, None, "$.resampling.group_column"),
])
def test_unusable_designs_are_refused_with_the_cause(tmp_path, resampling, columns, groups_file, fragment):
    bench_dir = make_benchmark(tmp_path, n=60)
    declare(bench_dir, resampling, labels_columns=columns, groups_file=groups_file)
    with pytest.raises(BenchmarkError) as raised:
        load_benchmark(bench_dir)
    assert fragment in str(raised.value)


def test_groups_file_must_cover_exactly_the_labelled_examples(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=40)
    declare(bench_dir, {"group_column": "donor", "file": "g.csv"}, groups_file=("g.csv", {"donor": lambda i: i // 4}))
    lines = (bench_dir / "g.csv").read_text().splitlines()
    (bench_dir / "g.csv").write_text("\n".join(lines[:-1] + ["stranger,3"]) + "\n")
    with pytest.raises(BenchmarkError, match="1 labelled example.*no row.*1 row.*'stranger'"):
        load_benchmark(bench_dir)


def test_a_benchmark_without_a_design_is_unchanged(tmp_path):
    bench_dir = make_benchmark(tmp_path, n=50)
    benchmark = load_benchmark(bench_dir)
    assert benchmark.resampling_design is None
    y = benchmark.labels
    assert np.isin(y, [0, 1]).all()
