"""Holdout accounting in the database: record every query on a split, number each lineage's attempts.

The rules are pure and live in policy/ (multiplicity.py: the level of
attempt k; release.py: what the author is told); the statements are in
sql/queries/holdout.sql. This module connects the two: gate.py opens a
query before it scores anything on a split's labels and answers it with
the full result and the author's release. For a job the answer is written
by lifecycle.apply_result, in the transaction that applies the verdict, so
an author never sees a verdict that was not applied.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import numpy as np
import psycopg

from . import db
from .config import Settings
from .policy.multiplicity import AttemptLevel, level_for_attempt
from .policy.release import release_step_for

QUERY_KINDS = ("gate", "regate", "dry_run", "quick")

#: Share of a split's query budget after which `status` warns that the split is going stale.
FRESHNESS_WARNING_FRACTION = 0.8

#: A stored version whose fingerprint lies within this cosine distance of a
#: candidate's is named in the result as a near duplicate (operators only).
#: 1e-4 (fingerprint.DUPLICATE_MAX_COSINE_DISTANCE) nominates exact copies;
#: this looser bound catches a resubmission with jittered predictions.
NEAR_DUPLICATE_MAX_COSINE_DISTANCE = 0.01
NEAR_DUPLICATES_LISTED = 3


class HoldoutRefused(RuntimeError):
    """The split will not be queried now (rate limit or spent budget): an error verdict, nothing scored."""

    def __init__(self, reason_code: str, message: str):
        self.reason_code = reason_code
        super().__init__(message)


@dataclass(frozen=True)
class HoldoutQuery:
    """An opened query: its record id and the level its comparison is tested at (None for a root)."""

    query_id: int
    kind: str
    split_role: str
    requested_by: str
    level: AttemptLevel | None
    release_step: float
    query_budget: int
    queries_used: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id, "kind": self.kind, "split_role": self.split_role,
            "requested_by": self.requested_by, "release_step": self.release_step,
            "query_budget": self.query_budget, "queries_used": self.queries_used,
            "attempt": None if self.level is None else self.level.attempt,
            "alpha": None if self.level is None else self.level.alpha,
            "multiplicity": None if self.level is None else self.level.as_dict(),
        }


def default_query_budget(settings: Settings, n_examples: int | None) -> int:
    """A split answers at most this many queries unless its manifest declares `query_budget`."""
    if settings.holdout_query_budget > 0:
        return settings.holdout_query_budget
    return max(1000, n_examples or 0)


def query_kind(job_reason: str | None, promotion_state: str | None = None) -> str:
    """A job's query kind: a candidate's first gate after registration, or a re-ask (a re-gate)."""
    if promotion_state == "rejected":
        return "regate"
    return "gate" if job_reason in (None, "registered", "direct") else "regate"


def _check_rate(conn: psycopg.Connection, settings: Settings, *, kind: str, author: str | None,
                lineage_id: str) -> None:
    window = settings.rate_limit_window_seconds
    if window <= 0:
        return
    counts = db.fetch_one(conn, "holdout_recent_queries", {
        "author": author, "lineage_id": lineage_id, "window_seconds": window})
    registration = kind == "gate"
    noun = "registrations" if registration else "re-gates, dry runs and quick runs"
    checks = (
        ("author", author, counts["author_registrations" if registration else "author_regates"],
         settings.max_registrations_per_author if registration else settings.max_regates_per_author),
        ("lineage", lineage_id, counts["lineage_registrations" if registration else "lineage_regates"],
         settings.max_registrations_per_lineage if registration else settings.max_regates_per_lineage),
    )
    for who, name, used, limit in checks:
        if limit > 0 and name is not None and used >= limit:
            oldest = counts["oldest"] or datetime.now(timezone.utc)
            retry = (oldest + timedelta(seconds=window)).astimezone(timezone.utc).strftime("%H:%M:%SZ")
            raise HoldoutRefused(
                "rate_limited",
                f"{who} {name} has made {used} {noun} in the last {window:g} s (limit {limit}); "
                f"try again after {retry}, or ask an operator to raise MODEL_EVAL_GATE_"
                f"{'MAX_REGISTRATIONS' if registration else 'MAX_REGATES'}_PER_{who.upper()}")


def question_hash(split_hash: str, head_predictions: Any, candidate_predictions: Any) -> str:
    """Identifies a comparison by what is compared, never by ids: (split, head's predictions, candidate's)."""
    digest = hashlib.sha256(json.dumps(["model-eval-gate/holdout-question/v1", split_hash]).encode())
    for predictions in (head_predictions, candidate_predictions):
        values = np.ascontiguousarray(np.asarray(predictions, dtype="<f8"))
        digest.update(json.dumps(list(values.shape)).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def open_query(conn: psycopg.Connection, settings: Settings, *, benchmark: Any, candidate: Mapping[str, Any],
               compared_against: str | None, kind: str, requested_by: str, split_role: str = "public",
               job_id: int | None = None, job_attempt: int | None = None,
               question: str | None = None) -> HoldoutQuery:
    """Record a query against `benchmark`'s split before anything is scored on its labels.

    A comparison (compared_against set) takes the lineage's next attempt
    number on the split; a root version's query is recorded without one (it
    tests nothing against a head). A job keeps one query however often it
    is re-evaluated against a new head. A `question` (question_hash) the
    lineage asked before keeps that attempt's number: the same predictions
    against the same head get the same level and interval, and spend nothing. Raises HoldoutRefused when the
    author or lineage is over its rate limit or the split's budget is spent.
    """
    if kind not in QUERY_KINDS:
        raise ValueError(f"query kind must be one of {QUERY_KINDS}, got {kind!r}")
    n_examples = benchmark.n_examples
    split = db.fetch_one(conn, "holdout_register_split", {
        "benchmark_id": benchmark.id, "split_hash": benchmark.split_hash, "split_role": split_role,
        "n_examples": n_examples,
        "query_budget": int(benchmark.manifest.get("query_budget") or default_query_budget(settings, n_examples)),
        "release_step": release_step_for(benchmark.manifest, n_examples),
    })

    def opened(row: Mapping[str, Any], who: str) -> HoldoutQuery:
        attempt = row["attempt_number"]
        return HoldoutQuery(row["id"], kind, split_role, who, None if attempt is None else level_for_attempt(attempt),
                            split["release_step"], split["query_budget"], int(split["queries_used"]))

    if job_id is not None:
        existing = db.fetch_one(conn, "holdout_query_for_job", {
            "job_id": job_id, "job_attempt": job_attempt, "split_role": split_role})
        if existing is not None:
            return opened(existing, requested_by)
    author = candidate.get("trained_by") or candidate.get("created_by")
    if split_role == "public":  # the confirmation split is only asked for a candidate that passed
        _check_rate(conn, settings, kind=kind, author=author, lineage_id=candidate["lineage_id"])
    if int(split["queries_used"]) >= int(split["query_budget"]):
        raise HoldoutRefused(
            "holdout_budget_spent",
            f"the {split_role} split {benchmark.split_hash[:16]} of benchmark {benchmark.id} has answered "
            f"{split['queries_used']} queries, its whole budget of {split['query_budget']}; an operator must "
            "refresh it (docs/operations.md, \"Refreshing a spent split\")")
    with conn.transaction():
        attempt = None
        if compared_against is not None and question is not None:
            repeated = db.fetch_one(conn, "holdout_repeated_question", {
                "lineage_id": candidate["lineage_id"], "benchmark_id": benchmark.id,
                "split_hash": benchmark.split_hash, "split_role": split_role, "question_hash": question})
            attempt = repeated and repeated["attempt_number"]
        if compared_against is not None and attempt is None:
            attempt = db.fetch_one(conn, "holdout_next_attempt", {
                "lineage_id": candidate["lineage_id"], "benchmark_id": benchmark.id,
                "split_hash": benchmark.split_hash, "split_role": split_role})["attempts"]
        level = None if attempt is None else level_for_attempt(attempt)
        row = db.fetch_one(conn, "holdout_insert_query", {
            "benchmark_id": benchmark.id, "split_hash": benchmark.split_hash, "split_role": split_role,
            "kind": kind, "artifact_id": candidate["id"], "lineage_id": candidate["lineage_id"],
            "compared_against": compared_against, "author": author, "requested_by": requested_by,
            "job_id": job_id, "job_attempt": job_attempt, "attempt_number": attempt,
            "alpha": None if level is None else level.alpha,
            "confidence": None if level is None else level.confidence, "question_hash": question,
        })
    return HoldoutQuery(row["id"], kind, split_role, row["requested_by"], level, split["release_step"],
                        split["query_budget"], int(split["queries_used"]) + 1)


def answer_params(query_id: int, result: Mapping[str, Any], released: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of holdout_answer_query: the author's release and the operator's full answer."""
    detail = {k: v for k, v in result.items() if k not in ("evaluations", "timeline", "released")}
    return {"id": query_id, "outcome": result.get("outcome"), "reason_code": result.get("reason_code"),
            "compared_against": result.get("compared_against"),
            "released": json.dumps(released, default=str), "detail": json.dumps(detail, default=str)}


def answer_query(conn: psycopg.Connection, query_id: int, result: Mapping[str, Any],
                 released: Mapping[str, Any]) -> None:
    db.execute(conn, "holdout_answer_query", answer_params(query_id, result, released))


def split_status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Per split: queries used, promotions released, budget left, and whether it is going stale."""
    rows = db.fetch_all(conn, "holdout_split_status")
    for row in rows:
        used, budget = int(row["queries_used"]), int(row["query_budget"])
        row["budget_left"] = max(0, budget - used)
        warnings = []
        if used >= budget:
            warnings.append("budget spent: refresh the split")
        elif used >= FRESHNESS_WARNING_FRACTION * budget:
            warnings.append(f"{used / budget:.0%} of budget used: plan a refresh")
        if row["current"] is False:
            warnings.append("retired (the benchmark has a newer split)")
        row["freshness"] = "; ".join(warnings) or "fresh"
    return rows
