"""docs/model_promotion_policy.md and decision.py must state the same policy.

The document is the governance artefact people read; decision.py is what runs.
These tests parse the document's tables and worked examples and hold each one
against the code, so neither can drift without the other.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from model_eval_gate import decision
from model_eval_gate.decision import (
    MAGNITUDE_BUCKETS,
    REASON_OUTCOMES,
    TRADEOFF_KEYS,
    BenchmarkPolicy,
    Outcome,
    TradeoffEvidence,
    decide,
    parse_tradeoff_claims,
)
from model_eval_gate.stats import BootstrapResult

POLICY_PATH = Path(__file__).resolve().parents[1] / "docs" / "model_promotion_policy.md"


@pytest.fixture(scope="module")
def document() -> str:
    return POLICY_PATH.read_text(encoding="utf-8")


def section(document: str, number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## \d+\. |\Z)", document, re.S | re.M)
    assert match, f"section {number} missing from {POLICY_PATH}"
    return match.group(0)


SEPARATOR = re.compile(r"\|[-|: ]+\|")


def table_rows(text: str) -> list[list[str]]:
    """Body rows of every markdown table in text, cells stripped of whitespace and backticks."""
    rows: list[list[str]] = []
    in_body = False
    for line in text.splitlines():
        line = line.strip()
        if SEPARATOR.fullmatch(line):
            in_body = True  # the line above was the header
        elif in_body and line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
        else:
            in_body = False
    return rows


def policy_constants() -> dict[str, object]:
    """Every public scalar or sequence constant of decision.py (mappings are checked separately)."""
    return {
        name: getattr(decision, name)
        for name in dir(decision)
        if name.isupper() and not name.startswith("_") and not isinstance(getattr(decision, name), Mapping)
    }


def as_json_value(value: object) -> object:
    return json.loads(json.dumps(value))


def test_constants_table_matches_decision_module(document):
    rows = table_rows(section(document, 3))
    documented = {row[0]: json.loads(row[1]) for row in rows}
    constants = policy_constants()
    assert set(documented) == set(constants), "document and decision.py list different constants"
    for name, value in constants.items():
        assert documented[name] == as_json_value(value), f"{name}: document says {documented[name]!r}, code {value!r}"


def test_reason_code_table_matches_decision_module(document):
    rows = table_rows(section(document, 9))
    documented = {row[0]: row[1] for row in rows}
    assert documented == {code.value: outcome.value for code, outcome in REASON_OUTCOMES.items()}


def test_every_reason_code_is_explained(document):
    for row in table_rows(section(document, 9)):
        assert len(row) == 3 and row[2], f"reason code {row[0]} has no explanation"


def test_outcome_table_matches_decision_module(document):
    assert {row[0] for row in table_rows(section(document, 1))} == {outcome.value for outcome in Outcome}


def test_magnitude_table_matches_buckets(document):
    rows = table_rows(section(document, 8))
    assert [row[0] for row in rows] == [name for name, _ in MAGNITUDE_BUCKETS]
    bounds = [upper for _, upper in MAGNITUDE_BUCKETS if upper is not None]
    for (name, _), row in zip(MAGNITUDE_BUCKETS, rows):
        units = [float(u) for u in re.findall(r"(\d+(?:\.\d+)?)\u00d7", row[1])]
        assert units and all(u in bounds for u in units), f"bucket {name}: {row[1]!r}"


def test_claim_syntax_table_matches_parser(document):
    rows = [row for row in table_rows(section(document, 6)) if row[0].startswith('"')]
    assert rows, "section 6 has no claim syntax table"
    for written, _, ratio in rows:
        for claim in re.findall(r'"([^"]+)"', written):
            parsed = parse_tradeoff_claims({"latency": claim})
            assert parsed.problems == (), claim
            assert parsed.claims[0].max_ratio == pytest.approx(float(ratio)), claim


def test_evidence_table_names_every_tradeoff_key(document):
    rows = [row for row in table_rows(section(document, 6)) if row[0] in TRADEOFF_KEYS]
    assert sorted(row[0] for row in rows) == sorted(TRADEOFF_KEYS)


@pytest.mark.parametrize(
    "phrase",
    [
        "force_promote(candidate, actor, reason)",
        "world_model_improvements",
        "artifact_lifecycle_history",
        "candidate-rejected ticket",
        "`trained_by`, else\n  `created_by`",
        "tool_calls",
        "gate_jobs.result",
        "(candidate_id, parent_id)",
        "compared head's predictions",
        "holdout_queries",
        "author_releases",
        "1000 resamples",
        "100 for `run_eval_gate_quick`",
        "model_version_promoted",
    ],
)
def test_governance_topics_are_covered(document, phrase):
    assert phrase in document


# ---------------------------------------------------------------- worked examples


def comparison(metric, candidate, parent, lo, hi, higher_is_better=True):
    delta = candidate - parent
    return BootstrapResult(
        metric, higher_is_better, candidate, parent, delta, lo, hi, delta / abs(parent) if parent else None,
        1000, 1000, 42, 0.95,
    )


EXAMPLE_POLICY = BenchmarkPolicy("auroc", {"auroc": True, "ece": False}, floor=0.75, guardrails={"ece": 0.02})
EXAMPLE_ECE = comparison("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False)


def auroc_vs_parent(candidate, parent, lo, hi, ece=EXAMPLE_ECE):
    return {"auroc": comparison("auroc", candidate, parent, lo, hi), "ece": ece}


# The numbers of each worked example in section 13, fed through decide().
EXAMPLES = {
    1: lambda: decide(policy=EXAMPLE_POLICY, comparisons=auroc_vs_parent(0.834, 0.812, 0.009, 0.035)),
    2: lambda: decide(policy=EXAMPLE_POLICY, comparisons=auroc_vs_parent(0.816, 0.812, -0.003, 0.011)),
    3: lambda: decide(
        policy=EXAMPLE_POLICY,
        comparisons=auroc_vs_parent(0.806, 0.812, -0.0085, -0.0035),
        tradeoff_justification={"param_count": "-50%", "latency": "-4x", "rationale": "distilled"},
        evidence=TradeoffEvidence(
            candidate_parameter_count=11_200_000,
            parent_parameter_count=24_000_000,
            candidate_wall_seconds=3.1,
            parent_wall_seconds=11.8,
        ),
        baseline_comparisons={"auroc": comparison("auroc", 0.806, 0.809, -0.0062, 0.0001)},
        baseline_version_id="v3",
    ),
    4: lambda: decide(
        policy=EXAMPLE_POLICY,
        comparisons=auroc_vs_parent(0.801, 0.806, -0.0079, -0.0021),
        tradeoff_justification={"memory": "-30%"},
        evidence=TradeoffEvidence(candidate_peak_memory_bytes=700_000_000, parent_peak_memory_bytes=1_100_000_000),
        baseline_comparisons={"auroc": comparison("auroc", 0.801, 0.809, -0.0113, -0.0047)},
        baseline_version_id="v3",
    ),
    5: lambda: decide(
        policy=BenchmarkPolicy("rmse", {"rmse": False}, non_inferiority_margin=0.05, floor=5.0),
        comparisons={"rmse": comparison("rmse", 4.05, 4.20, -0.23, -0.07, higher_is_better=False)},
    ),
    6: lambda: decide(
        policy=EXAMPLE_POLICY,
        comparisons=auroc_vs_parent(0.809, 0.812, -0.006, 0.0005),
        tradeoff_justification={"latency": "4x"},
        evidence=TradeoffEvidence(candidate_wall_seconds=5.2, parent_wall_seconds=12.0),
    ),
    7: lambda: decide(
        policy=EXAMPLE_POLICY,
        comparisons=auroc_vs_parent(
            0.829, 0.812, 0.006, 0.028, ece=comparison("ece", 0.071, 0.041, 0.021, 0.039, higher_is_better=False)
        ),
    ),
    8: lambda: decide(policy=EXAMPLE_POLICY, is_root=True, candidate_scores={"auroc": 0.78}),
    9: lambda: decide(
        policy=BenchmarkPolicy("hit_rate", {"hit_rate": True}),
        comparisons={"hit_rate": comparison("hit_rate", 0.1, 0.0, 0.04, 0.16)},
    ),
}


def documented_examples(document: str) -> dict[int, tuple[str, str, str]]:
    found = {}
    for match in re.finditer(r"^### Example (\d+):.*?(?=^### |\Z)", section(document, 13), re.S | re.M):
        verdict = re.search(
            r"^Verdict: outcome `([a-z_]+)`, reason_code `([a-z_]+)`, magnitude `([a-z_]+)`\.$",
            match.group(0),
            re.M,
        )
        assert verdict, f"example {match.group(1)} has no 'Verdict:' line"
        found[int(match.group(1))] = verdict.groups()
    return found


def test_every_worked_example_is_reproduced_here(document):
    assert set(documented_examples(document)) == set(EXAMPLES)


@pytest.mark.parametrize("number", sorted(EXAMPLES))
def test_worked_example_verdict_matches_the_code(document, number):
    verdict = EXAMPLES[number]()
    assert documented_examples(document)[number] == (
        verdict.outcome.value,
        verdict.reason_code.value,
        verdict.magnitude,
    )


def test_example_8_second_root_is_below_floor(document):
    assert "0.70 is rejected with `below_floor`" in section(document, 13)
    verdict = decide(policy=EXAMPLE_POLICY, is_root=True, candidate_scores={"auroc": 0.70})
    assert verdict.reason_code.value == "below_floor"
