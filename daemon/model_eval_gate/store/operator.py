"""Recorded operator actions: the human decisions that change what a lineage is judged on.

An author cannot choose its benchmark or comparator; an operator can, and
every such decision is a row in operator_actions with the human who made it
and why (docs/model_promotion_policy.md section 16).
"""
from __future__ import annotations

import json

import psycopg

from .. import db
from ..benchmark import load_recorded_benchmark

_NON_HUMAN_ACTORS = ("model-eval-gate", "system", "daemon", "root", "postgres")


def require_human(actor: object, reason: object, what: str) -> tuple[str, str]:
    """(actor, reason) stripped, or ValueError: the action needs a person and a recorded reason."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError(f"{what} needs a human actor (a person's name or login)")
    name = actor.strip()
    if name.lower() in _NON_HUMAN_ACTORS or name.lower().startswith(("agent-", "agent:")):
        raise ValueError(f"{what} needs a human actor; {actor!r} is a service or agent identity")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"{what} needs a reason, recorded in the audit trail")
    return name, reason.strip()


def _record(conn: psycopg.Connection, action: str, *, actor: str, reason: str, artifact_id: str | None = None,
            lineage_id: str | None = None, details: dict | None = None) -> int:
    return db.fetch_one(conn, "record_operator_action", {
        "action": action, "artifact_id": artifact_id, "lineage_id": lineage_id,
        "details": json.dumps(details or {}, sort_keys=True), "actor": actor, "reason": reason})["id"]


def rebenchmark(conn: psycopg.Connection, lineage_id: str, benchmark_id: str, *, actor: str, reason: str) -> int:
    """Judge a lineage on another recorded benchmark from now on. Returns the operator action's id."""
    actor, reason = require_human(actor, reason, "re-benchmarking a lineage")
    if not db.fetch_one(conn, "lineage_exists", {"lineage_id": lineage_id})["present"]:
        raise LookupError(f"no model lineage {lineage_id!r} (a lineage is named by its root version's id)")
    load_recorded_benchmark(conn, benchmark_id)  # recorded, with a split hash its files still match
    with conn.transaction():
        action_id = _record(conn, "rebenchmark", actor=actor, reason=reason, lineage_id=lineage_id,
                            details={"benchmark_id": benchmark_id})
        db.execute(conn, "set_lineage_benchmark", {"lineage_id": lineage_id, "benchmark_id": benchmark_id,
                                                   "action_id": action_id})
    return action_id


def accept_reparent(conn: psycopg.Connection, artifact_id: str, *, actor: str, reason: str) -> int:
    """Accept that a version judged in one lineage is now judged in the lineage it sits in today."""
    actor, reason = require_human(actor, reason, "accepting a re-parented version")
    row = db.fetch_one(conn, "candidate_for_gate", {"id": artifact_id})
    if row is None:
        raise LookupError(f"no artifact {artifact_id!r}")
    pin = db.fetch_one(conn, "model_pin", {"artifact_id": artifact_id})
    with conn.transaction():
        action_id = _record(conn, "accept_reparent", actor=actor, reason=reason, artifact_id=artifact_id,
                            lineage_id=row["lineage_id"],
                            details={"from_lineage": pin and pin["lineage_id"], "to_lineage": row["lineage_id"]})
        db.execute(conn, "move_pin_to_lineage", {"artifact_id": artifact_id, "lineage_id": row["lineage_id"]})
    return action_id


def record_confirmation(conn: psycopg.Connection, artifact_id: str, *, actor: str, reason: str,
                        details: dict) -> int:
    """Record a human's confirmation of a self-scored promotion (inside the caller's transaction)."""
    return _record(conn, "confirm_promotion", actor=actor, reason=reason, artifact_id=artifact_id, details=details)
