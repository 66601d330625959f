"""Applies a gate verdict to the database: one transaction, fenced, idempotent.

Rows are locked in id order, preconditions are re-checked under the locks,
and the job row is finished in the same transaction (the fence). A worker
that lost its lease therefore writes nothing at all: its fence update matches
no row and the whole transaction rolls back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import psycopg

from . import db, holdout
from .policy.release import author_release, render_author_notes

GATE_ACTOR = "model-eval-gate"


class LeaseLost(RuntimeError):
    """The job's lease expired or was taken over; nothing was written."""


class HeadMoved(RuntimeError):
    """The lineage head is no longer the version the candidate was compared with."""

    def __init__(self, expected: str | None, actual: str | None):
        self.expected, self.actual = expected, actual
        super().__init__(f"lineage head moved from {expected} to {actual} during evaluation")


class NotApplicable(RuntimeError):
    """The candidate is in a state no verdict may change (already decided)."""


@dataclass(frozen=True)
class Fence:
    job_id: int
    worker_id: str
    attempt: int


def render_metric_table(metric_table: list[Mapping[str, Any]]) -> str:
    lines = [f"{'metric':<20} {'candidate':>10} {'parent':>10} {'delta':>10} {'CI low':>10} {'CI high':>10}"]
    for row in metric_table:
        def fmt(key):
            value = row.get(key)
            return f"{value:>10.4f}" if isinstance(value, (int, float)) else f"{'-':>10}"
        role = row.get("role")
        name = f"{row['metric']}{' *' if role == 'primary' else ''}"
        lines.append(f"{name:<20} {fmt('candidate')} {fmt('parent')} {fmt('delta')} {fmt('ci_low')} {fmt('ci_high')}")
    return "\n".join(lines)


def _released(result: Mapping[str, Any]) -> Mapping[str, Any]:
    return result.get("released") or author_release(result, release_step=None)


def _notes(result: Mapping[str, Any]) -> str:
    """promotion_notes and the rejection ticket: written for the author, so the release only."""
    return render_author_notes(_released(result))


def operator_notes(result: Mapping[str, Any]) -> str:
    """The full-precision account of a result (for operators' eyes: gate_jobs.result holds the same)."""
    header = f"[{result['outcome']}:{result['reason_code']}] {result['reason']}"
    parts = [header]
    if result.get("compared_against"):
        parts.append(f"compared against {result['compared_against']}"
                     + (f" (parent {result['parent_id']} was superseded meanwhile)" if result.get("head_moved") else ""))
    if result.get("metric_table"):
        parts.append(render_metric_table(result["metric_table"]))
    if result.get("bootstrap_skipped"):
        parts.append("predictions identical to the compared version: every delta is exactly 0, no resampling")
    elif result.get("seed") is not None:
        parts.append(f"paired bootstrap: {result.get('n_resamples')} resamples, seed {result['seed']}, "
                     f"{int(round(100 * result.get('confidence', 0.95)))}% percentile CI")
    return "\n".join(parts)


def apply_result(conn: psycopg.Connection, result: dict[str, Any], fence: Fence | None, *,
                 actor: str = GATE_ACTOR) -> bool:
    """Apply a gate result (as built by gate.py) in one transaction.

    Returns True when state changed, False when the verdict was already in
    place (idempotent re-apply). Raises LeaseLost, HeadMoved or NotApplicable
    with nothing written.
    """
    candidate_id = result["candidate_id"]
    compared_against = result.get("compared_against")
    outcome = result["outcome"]
    with conn.transaction():
        ids = sorted({candidate_id} | ({compared_against} if compared_against else set()))
        rows = {r["id"]: r for r in db.fetch_all(conn, "lock_artifacts", {"ids": ids})}
        candidate = rows.get(candidate_id)
        if candidate is None:
            raise NotApplicable(f"{candidate_id} no longer exists")
        state = candidate["promotion_state"]

        changed = True
        if outcome in ("promote", "promote_with_tradeoff"):
            if state == "promoted":
                changed = False  # already applied: nothing to do
            elif state not in ("candidate", "rejected"):
                raise NotApplicable(f"{candidate_id} is {state}; a decided promotion is never re-applied")
            else:
                heads = db.fetch_all(conn, "current_head_locked", {"lineage_id": candidate["lineage_id"]})
                head = next((h["id"] for h in heads if h["id"] != candidate_id), None)
                if head != compared_against:
                    raise HeadMoved(compared_against, head)
                _promote(conn, result, candidate, rows.get(compared_against), actor)
        elif outcome == "reject":
            if state == "rejected" and candidate["is_latest"] == 0:
                changed = False
                # A re-gate of a rejected candidate: its author reads the latest
                # verdict's release (the same text again when re-applied).
                db.execute(conn, "set_promotion_notes", {"id": candidate_id, "notes": _notes(result)})
            elif state not in ("candidate", "rejected"):
                raise NotApplicable(f"{candidate_id} is {state}; it cannot be rejected now")
            else:
                _reject(conn, result, candidate, actor)
        else:  # error: record why, flip nothing
            if state in ("candidate", "rejected"):
                db.execute(conn, "set_promotion_notes", {"id": candidate_id, "notes": _notes(result)})
            else:
                changed = False

        query_id = (result.get("holdout") or {}).get("query_id")
        if query_id is not None and fence is not None:
            # Released in the transaction that applies it: an author never
            # sees a verdict that was not applied.
            db.execute(conn, "holdout_answer_query", holdout.answer_params(query_id, result, _released(result)))
            sealed = result.get("confirmation") or {}
            if (sealed.get("holdout") or {}).get("query_id") is not None:
                db.execute(conn, "holdout_answer_query",
                           holdout.answer_params(sealed["holdout"]["query_id"], sealed, sealed["released"]))
        if fence is not None:
            finished = db.fetch_one(conn, "fence_and_finish_job", {
                "job_id": fence.job_id, "worker_id": fence.worker_id, "attempt": fence.attempt,
                "status": "done", "outcome": outcome, "error": result.get("error"),
                "result": json.dumps(result, default=str),
            })
            if finished is None:
                # Raising inside the transaction block rolls every write back.
                raise LeaseLost(f"job {fence.job_id} attempt {fence.attempt} is no longer held by {fence.worker_id}")
    return changed


def _promote(conn, result, candidate, parent, actor: str) -> None:
    candidate_id = candidate["id"]
    notes = _notes(result)
    # Events and history are read by authors: the release, not the metric
    # table (gate_jobs.result, found through job_id, keeps that for operators).
    released = _released(result)
    metadata = {
        "outcome": result["outcome"], "reason_code": result["reason_code"], "reason": released["reason"],
        "released": released, "job_id": result.get("job_id"),
        "attempt": released.get("attempt"), "alpha": released.get("alpha"), "seed": result.get("seed"),
        "n_resamples": result.get("n_resamples"), "confidence": result.get("confidence"),
        "benchmark_id": result.get("benchmark_id"), "split_hash": result.get("split_hash"),
        "compared_against": result.get("compared_against"), "parent_id": result.get("parent_id"),
        "tradeoff": result.get("tradeoff"), "self_reported": result.get("self_reported", False),
        "forced": result.get("forced", False), "actor": actor,
    }
    if parent is not None:
        db.execute(conn, "supersede_artifact", {"id": parent["id"], "successor": candidate_id})
        db.execute(conn, "supersede_model_version", {"id": parent["id"]})
        db.execute(conn, "set_universal_state", {"id": parent["id"], "title": parent["title"], "state": "superseded"})
        db.execute(conn, "insert_history", {
            "id": parent["id"], "from_state": parent["lifecycle_state"], "to_state": "superseded",
            "reason": f"superseded by {candidate_id}: {released['reason']}", "actor": actor,
            "related": candidate_id, "metadata": json.dumps(metadata, default=str),
        })
    # The old head is demoted before the new one is raised: the database's
    # one-latest-per-lineage index checks each row as it is updated.
    db.execute(conn, "activate_artifact", {"id": candidate_id})
    db.execute(conn, "set_model_version_state", {"id": candidate_id, "state": "promoted", "notes": notes})
    db.execute(conn, "set_universal_state", {"id": candidate_id, "title": candidate["title"], "state": "active"})
    db.execute(conn, "insert_history", {
        "id": candidate_id, "from_state": candidate["lifecycle_state"], "to_state": "active",
        "reason": released["reason"], "actor": actor, "related": parent["id"] if parent else None,
        "metadata": json.dumps(metadata, default=str),
    })
    db.execute(conn, "insert_promotion_event", {
        "target": candidate_id, "source": parent["id"] if parent else None,
        "magnitude": result.get("magnitude"), "metadata": json.dumps(metadata, default=str),
    })


def _reject(conn, result, candidate, actor: str) -> None:
    candidate_id = candidate["id"]
    notes = _notes(result)
    db.execute(conn, "park_candidate", {"id": candidate_id})
    db.execute(conn, "set_model_version_state", {"id": candidate_id, "state": "rejected", "notes": notes})
    db.execute(conn, "set_universal_state", {"id": candidate_id, "title": candidate["title"], "state": "candidate"})
    author = candidate["trained_by"] or candidate["created_by"]
    db.execute(conn, "insert_rejection_ticket", {
        "artifact_id": candidate_id, "assignee": author,
        "title": f"Candidate {candidate_id} rejected by the eval gate: {result['reason_code']}",
        "body": notes + "\n\nTo try again, register a new candidate version, or re-gate this one "
                        f"after fixing it: model-eval-gate regate {candidate_id}",
    })
