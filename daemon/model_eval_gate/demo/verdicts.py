"""The demo's verdicts: how each compares with what was expected, and how they are shown.

`problems` is the demo's own check, per gated version, of the verdict and of
its effects on the database (promotion state, lineage head, improvement event,
ticket); any problem makes the demo exit non-zero. `render_table` and
`explanation` turn the stored results into what the demo prints.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .scenario import Expected

PROMOTING = ("promote", "promote_with_tradeoff")


@dataclass
class Verdict:
    """One gated version: its demo_verdicts row (sql/queries/demo.sql), what was expected, and what differs."""

    artifact_id: str
    label: str
    title: str
    expected: Expected
    row: dict[str, Any]
    problems: list[str]

    @property
    def result(self) -> dict[str, Any]:
        return self.row.get("result") or {}

    @property
    def ok(self) -> bool:
        return not self.problems


def problems(row: Mapping[str, Any], want: Expected) -> list[str]:
    """Everything about a demo_verdicts row that differs from the expected verdict and its effects."""
    if not row:
        return ["no such model version"]
    result = row.get("result") or {}
    found = []
    if row.get("job_status") != "done":
        found.append(f"gate job {row.get('job_id')} is {row.get('job_status')}, not done")
    got = (result.get("outcome"), result.get("reason_code"))
    if got != (want.outcome, want.reason_code):
        found.append(f"verdict {got[0]} ({got[1]}), expected {want.outcome} ({want.reason_code})")
    if row["promotion_state"] != want.promotion_state:
        found.append(f"promotion_state {row['promotion_state']}, expected {want.promotion_state}")
    if want.outcome in PROMOTING:
        if want.superseded_by is None and (row["is_latest"] != 1 or row["lifecycle_state"] != "active"):
            found.append(f"promoted but is_latest={row['is_latest']}, lifecycle {row['lifecycle_state']}")
        if want.superseded_by is not None and \
                (row["is_latest"], row["lifecycle_state"], row["superseded_by"]) != (0, "superseded", want.superseded_by):
            found.append(f"expected to be superseded by {want.superseded_by}, but is_latest={row['is_latest']}, "
                         f"lifecycle {row['lifecycle_state']}, superseded_by {row['superseded_by']}")
        if row["promotion_events"] != 1:
            found.append(f"{row['promotion_events']} promotion events, expected exactly 1")
        if result.get("compared_against") and row["compared_superseded_by"] != row["artifact_id"]:
            found.append(f"the version it replaced is superseded by {row['compared_superseded_by']}, not by it")
    else:
        if row["is_latest"] != 0:
            found.append("not promoted, yet is_latest = 1")
        if row["promotion_events"]:
            found.append("not promoted, yet it has a promotion event")
    if want.outcome == "reject" and row["ticket_id"] is None:
        found.append("rejected without a ticket for its author")
    if want.outcome == "error" and row["ticket_id"] is not None:
        found.append("an evaluation error opened a rejection ticket")
    return found


def _signed(value: Any) -> str:
    return f"{value:+.4f}" if isinstance(value, (int, float)) else "-"


def delta_text(metric_row: Mapping[str, Any] | None) -> str:
    """'+0.0399 [+0.0309, +0.0495]', or the value alone for a root version."""
    if not metric_row:
        return "-"
    if metric_row.get("delta") is None:
        value = metric_row.get("candidate")
        return f"{value:.4f} (no parent)" if isinstance(value, (int, float)) else "-"
    return f"{_signed(metric_row['delta'])} [{_signed(metric_row['ci_low'])}, {_signed(metric_row['ci_high'])}]"


def primary_text(metric_row: Mapping[str, Any] | None) -> str:
    return f"{metric_row['metric']} {delta_text(metric_row)}" if metric_row else "-"


def primary_row(result: Mapping[str, Any]) -> dict[str, Any]:
    return next((r for r in result.get("metric_table") or [] if r.get("role") == "primary"), {})


def render_table(verdicts: Sequence[Verdict]) -> list[str]:
    """Two lines per gated version (so that it fits a terminal): who against whom, then the numbers and the verdict."""
    rows = []
    for v in verdicts:
        result = v.result
        primary = primary_row(result)
        against = f"vs {result['compared_against']}" if result.get("compared_against") else "(root version)"
        if result.get("head_moved"):
            against += " (new head)"
        numbers = f"{primary['metric']} {delta_text(primary)}" if primary else "no metric: the evaluation failed"
        rows.append((f"{v.label}: {v.artifact_id}  {against}", numbers,
                     f"{result.get('outcome', '?')} ({result.get('reason_code', '?')})", "ok" if v.ok else "UNEXPECTED"))
    middle = max([len("primary metric: delta [95% CI]"), *(len(r[1]) for r in rows)])
    right = max([len("verdict"), *(len(r[2]) for r in rows)])
    lines = ["candidate  vs the version it is compared against",
             f"    {'primary metric: delta [95% CI]'.ljust(middle)}  verdict"]
    for who, numbers, verdict, ok in rows:
        lines += [who, f"    {numbers.ljust(middle)}  {verdict.ljust(right)}  {ok}"]
    return lines


def failed_guardrails(result: Mapping[str, Any]) -> list[str]:
    """Each guardrail metric whose interval allows a loss beyond its tolerance, with the numbers."""
    tolerances = (result.get("policy") or {}).get("guardrails") or {}
    named = []
    for row in result.get("metric_table") or []:
        tolerance = tolerances.get(row.get("metric"))
        if row.get("role") != "guardrail" or tolerance is None or row.get("ci_low") is None:
            continue
        worst = row["ci_high"] if not row.get("higher_is_better") else -row["ci_low"]
        if worst > tolerance:
            direction = "higher" if not row.get("higher_is_better") else "lower"
            named.append(f"guardrail {row['metric']} failed: {row['parent']:.4g} -> {row['candidate']:.4g}, "
                         f"up to {worst:.4g} {direction} (worse) at the 95% level, over its tolerance of "
                         f"{tolerance:g}")
    return named


def explanation(v: Verdict) -> list[str]:
    """The verdict's own sentence, then what backs it: claims checked, eval.py's last words, the ticket."""
    result, row = v.result, v.row
    lines = [result.get("reason") or "(no reason recorded)"]
    for claim in ((result.get("tradeoff") or {}).get("claims") or {}).values():
        measured = claim.get("measured") or {}
        lines.append(f"claim {claim.get('key')} {claim.get('claimed')}: measured {measured.get('candidate')} vs "
                     f"{measured.get('parent')} (ratio {measured.get('ratio')}), {claim.get('status')}")
    if "guardrail_violated" in (result.get("failed_checks") or []):
        lines += failed_guardrails(result)
    baseline = result.get("compared_with_baseline") or {}
    if baseline.get("is_parent"):
        lines.append("biocreep guard (small tolerated losses must not add up over generations): the parent "
                     "is the lineage's last promotion that needed no tradeoff, so the loss against the parent "
                     "is the whole cumulative loss, and it is within the margin")
    if result.get("stderr_tail"):
        last = [line for line in result["stderr_tail"].splitlines() if line.strip()][-1:]
        if last:
            lines.append(f"eval.py said: {last[0].strip()}")
    if row.get("ticket_id") is not None:
        lines.append(f"ticket #{row['ticket_id']} opened for {row['ticket_assignee']}")
    if v.expected.outcome == "error":
        lines.append(f"nothing changed: still {row.get('promotion_state')}, is_latest {row.get('is_latest')} "
                     "(not its lineage's head)")
    return lines
