"""What each page shows, as plain JSON-ready data: the HTML page and its /api twin render the same dict.

Every function takes an open connection and reads inside one READ ONLY
transaction (web_read_only in sql/queries/web.sql): a page is a consistent
snapshot, and nothing here can write, whatever role the application uses.
Values are passed through as the gate stored them (gate_jobs.result is the
verdict's own record); only presentation helpers (orientation for the plot,
head periods of a lineage) are derived here.
"""
from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import psycopg

from .. import db, fingerprint
from . import plot

NEIGHBOURS_SHOWN = 5
QUEUE_ROWS_SHOWN = 50
DECISIONS_SHOWN = 20


class NotFound(LookupError):
    """The page's subject does not exist (HTTP 404)."""


@contextlib.contextmanager
def snapshot(conn: psycopg.Connection):
    with conn.transaction():
        db.execute(conn, "web_read_only")
        yield


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _row(row: dict | None, *, drop: tuple[str, ...] = ()) -> dict | None:
    if row is None:
        return None
    return {k: _iso(v) for k, v in row.items() if k not in drop}


# ------------------------------------------------------------------ verdict --

def _verdict_job(jobs: list[dict], job_id: int | None) -> dict | None:
    if job_id is not None:
        for job in jobs:
            if job["id"] == job_id:
                return job
        raise NotFound(f"job {job_id} is not a gate job of this version")
    return next((j for j in jobs if j["status"] == "done" and j["result"]), None)


def _neighbours(conn: psycopg.Connection, artifact_id: str, result: dict) -> dict:
    """The nearest behavioural neighbours of the evaluation the verdict scored, read-only.

    Unlike `model-eval-gate similar`, nothing is fingerprinted here: a stored
    evaluation without a fingerprint yet (older rows) is reported as such.
    """
    evaluation = (result.get("evaluations") or {}).get("candidate") or {}
    if not (result.get("benchmark_id") and result.get("split_hash") and evaluation.get("model_hash")):
        return {"available": False, "why": "the verdict has no stored candidate evaluation", "versions": []}
    row = db.fetch_one(conn, "web_candidate_fingerprint", {
        "artifact_id": artifact_id, "benchmark_id": result["benchmark_id"], "split_hash": result["split_hash"],
        "model_hash": evaluation["model_hash"]})
    if row is None or row["fingerprint"] is None:
        why = ("the evaluation was not stored (a dry run or a self-scored split)" if row is None
               else "the stored evaluation has no fingerprint yet (model-eval-gate similar fills it in)")
        return {"available": False, "why": why, "versions": []}
    found, method, _ = fingerprint.nearest(conn, row["fingerprint"], benchmark_id=result["benchmark_id"],
                                           split_hash=result["split_hash"], k=NEIGHBOURS_SHOWN,
                                           exclude_artifact_id=artifact_id)
    return {"available": True, "method": method, "why": None, "versions": [n.as_dict() for n in found]}


def _evaluation_facts(result: dict) -> list[dict]:
    facts = []
    for model in ("candidate", "parent"):
        evaluation = (result.get("evaluations") or {}).get(model)
        if evaluation:
            facts.append({"model": model, **evaluation})
    return facts


def _job_summary(job: dict) -> dict:
    result = job.get("result") or {}
    summary = _row(job, drop=("result",))
    summary.update({
        "reason_code": result.get("reason_code"), "compared_against": result.get("compared_against"),
        "head_moved": result.get("head_moved"), "timings": result.get("timings"), "timeline": result.get("timeline"),
    })
    return summary


def verdict(conn: psycopg.Connection, artifact_id: str, *, job_id: int | None = None) -> dict:
    """A version's verdict (its latest decided job, or `job_id`), with everything needed to understand it."""
    with snapshot(conn):
        version = db.fetch_one(conn, "web_version", {"id": artifact_id})
        if version is None:
            raise NotFound(f"no artifact {artifact_id!r}")
        jobs = db.fetch_all(conn, "web_jobs_of_version", {"id": artifact_id})
        job = _verdict_job(jobs, job_id)
        forced = db.fetch_one(conn, "web_forced_promotion", {"id": artifact_id})
        tickets = db.fetch_all(conn, "web_tickets_of_version", {"id": artifact_id})
        result = dict(job["result"] or {}) if job else {}
        neighbours = (_neighbours(conn, artifact_id, result) if result.get("outcome") not in (None, "error")
                      else {"available": False, "why": "no evaluation was scored", "versions": []})
    metadata = version.get("metadata") or {}
    rows = plot.forest_rows(result.get("metric_table") or [], result.get("policy"),
                            result.get("compared_with_baseline"))
    return {
        "version": _row(version, drop=("metadata",)),
        "tradeoff_justification": metadata.get("tradeoff_justification"),
        "parameter_count": metadata.get("parameter_count"),
        "verdict": None if not result else {
            "job_id": job["id"], "finished_at": _iso(job["finished_at"]), "decided_by": job["worker_id"],
            "outcome": result.get("outcome"), "reason_code": result.get("reason_code"),
            "reason": result.get("reason"), "magnitude": result.get("magnitude"),
            "failed_checks": result.get("failed_checks") or [],
            "compared_against": result.get("compared_against"), "parent_id": result.get("parent_id"),
            "head_moved": bool(result.get("head_moved")), "is_root": bool(result.get("is_root")),
            "benchmark_id": result.get("benchmark_id"), "split_hash": result.get("split_hash"),
            "self_reported": bool(result.get("self_reported")),
            "primary_metric": result.get("primary_metric"), "policy": result.get("policy"),
            "metric_table": result.get("metric_table") or [],
            "undefined_metrics": result.get("undefined_metrics") or {},
            "seed": result.get("seed"), "n_resamples": result.get("n_resamples"),
            "confidence": result.get("confidence"), "bootstrap_skipped": bool(result.get("bootstrap_skipped")),
            "tradeoff": result.get("tradeoff"), "compared_with_baseline": result.get("compared_with_baseline"),
            "duplicate_of": result.get("duplicate_of"), "duplicates": result.get("duplicates") or [],
            "evaluations": _evaluation_facts(result), "timings": result.get("timings"),
            "error": result.get("error"), "stderr_tail": result.get("stderr_tail"),
            # Whatever later work adds to a result (a query budget, a minimum
            # detectable effect) is kept for the JSON twin, if not yet drawn.
            "extra": {k: v for k, v in result.items() if k in ("query_budget", "holdout", "mde",
                                                                 "minimum_detectable_effect")},
        },
        "forest_plot": [row.__dict__ for row in rows],
        "forced_promotion": None if forced is None else {
            "at": _iso(forced["created_at"]), "over": forced["source_artifact_id"],
            "actor": (forced["detection_metadata"] or {}).get("actor"),
            "reason": (forced["detection_metadata"] or {}).get("reason"),
        },
        "neighbours": neighbours,
        "tickets": [_row(t) for t in tickets],
        "jobs": [_job_summary(j) for j in jobs],
    }


# ------------------------------------------------------------------ lineage --

def _head_periods(versions: list[dict], history: list[dict]) -> list[dict]:
    """Who was the lineage's head when: from each promotion (a history row to 'active') to the next.

    A head the gate never promoted (a legacy version the backfill adopted)
    is the head from its registration until the first promotion.
    """
    promotions = [h for h in history if h["to_state"] == "active"]
    periods: list[dict] = []
    legacy_heads = [v for v in versions if v["is_latest"] == 1 and not any(p["artifact_id"] == v["id"]
                                                                           for p in promotions)]
    if not promotions and legacy_heads:
        head = legacy_heads[0]
        return [{"artifact_id": head["id"], "since": _iso(head["created_at"]), "until": None,
                 "by": head["created_by"], "how": "registered as the head (no gate promotion recorded)",
                 "forced": False}]
    first = promotions[0] if promotions else None
    if first is not None and first.get("related_artifact_id"):
        previous = next((v for v in versions if v["id"] == first["related_artifact_id"]), None)
        if previous is not None and not any(p["artifact_id"] == previous["id"] for p in promotions):
            periods.append({"artifact_id": previous["id"], "since": _iso(previous["created_at"]),
                            "until": _iso(first["created_at"]), "by": previous["created_by"],
                            "how": "the head before the gate's first promotion", "forced": False})
    for index, promotion in enumerate(promotions):
        following = promotions[index + 1] if index + 1 < len(promotions) else None
        metadata = promotion.get("metadata") or {}
        periods.append({
            "artifact_id": promotion["artifact_id"], "since": _iso(promotion["created_at"]),
            "until": _iso(following["created_at"]) if following else None, "by": promotion["actor"],
            "how": "force-promoted" if metadata.get("forced") else
                   f"{metadata.get('outcome') or 'promote'} ({metadata.get('reason_code') or 'no reason recorded'})",
            "forced": bool(metadata.get("forced")),
        })
    return periods


def _timeline(versions: list[dict], history: list[dict], verdicts: list[dict]) -> list[dict]:
    events: list[dict] = []
    for v in versions:
        events.append({"at": v["created_at"], "artifact_id": v["id"], "event": "registered",
                       "detail": f"version {v['version_number']}"
                                 + (f" of {v['parent_version_id']}" if v["parent_version_id"] else " (root)"),
                       "by": v["trained_by"] or v["created_by"]})
    for h in history:
        metadata = h.get("metadata") or {}
        if h["to_state"] == "active":
            kind = "force-promoted" if metadata.get("forced") else "promoted"
        elif h["to_state"] == "superseded":
            kind = "superseded"
        else:
            kind = h["to_state"]
        events.append({"at": h["created_at"], "artifact_id": h["artifact_id"], "event": kind,
                       "detail": h["reason"], "by": h["actor"], "related": h["related_artifact_id"],
                       "reason_code": metadata.get("reason_code")})
    for j in verdicts:
        if j["status"] == "failed":
            events.append({"at": j["finished_at"], "artifact_id": j["artifact_id"], "event": "gate failed",
                           "detail": j["error"], "by": j["worker_id"], "job_id": j["id"]})
        elif j["outcome"] in ("reject", "error"):
            events.append({"at": j["finished_at"], "artifact_id": j["artifact_id"],
                           "event": "rejected" if j["outcome"] == "reject" else "gate error",
                           "detail": j["reason"], "by": j["worker_id"], "job_id": j["id"],
                           "reason_code": j["reason_code"]})
    events.sort(key=lambda e: (e["at"] is None, e["at"] or datetime.min))
    return [{k: _iso(v) for k, v in e.items()} for e in events]


def _primary_over_time(promotions: list[dict], versions: list[dict]) -> dict:
    numbers = {v["id"]: v["version_number"] for v in versions}
    points, metric, direction = [], None, None
    for p in promotions:
        meta = p["detection_metadata"] or {}
        table = p.get("metric_table") or p.get("last_measured_table") or []
        primary = next((r for r in table if r.get("role") == "primary"), None)
        if primary is None:
            continue
        if metric is None:
            metric, direction = primary["metric"], primary.get("higher_is_better")
        if primary["metric"] != metric:
            continue  # another benchmark's metric: not on this axis
        points.append({"label": p["artifact_id"], "short": f"v{numbers.get(p['artifact_id'], '?')}",
                       "value": primary.get("candidate"), "when": _iso(p["created_at"]),
                       "forced": bool(meta.get("forced")), "benchmark_id": meta.get("benchmark_id")})
    return {"metric": metric, "higher_is_better": direction, "points": points}


def lineage(conn: psycopg.Connection, lineage_or_artifact_id: str) -> dict:
    """A lineage (named by its root or by any of its versions) as a timeline."""
    with snapshot(conn):
        row = db.fetch_one(conn, "web_lineage_of", {"id": lineage_or_artifact_id})
        if row is None:
            raise NotFound(f"no lineage or version {lineage_or_artifact_id!r}")
        lineage_id = row["lineage_id"]
        versions = db.fetch_all(conn, "web_lineage_versions", {"lineage_id": lineage_id})
        history = db.fetch_all(conn, "web_lineage_history", {"lineage_id": lineage_id})
        verdicts = db.fetch_all(conn, "web_lineage_verdicts", {"lineage_id": lineage_id})
        promotions = db.fetch_all(conn, "web_lineage_promotions", {"lineage_id": lineage_id})
    # Forced promotions keep no metric table; a gate promotion does.
    over_time = _primary_over_time(promotions, versions)
    head = next((v["id"] for v in versions if v["is_latest"] == 1), None)
    return {
        "lineage_id": lineage_id, "head": head,
        "versions": [_row(v) for v in versions],
        "head_periods": _head_periods(versions, history),
        "timeline": _timeline(versions, history, verdicts),
        "primary_metric_over_time": over_time,
    }


# -------------------------------------------------------------------- queue --

def queue(conn: psycopg.Connection) -> dict:
    with snapshot(conn):
        counts = db.fetch_one(conn, "status_queue")
        queued = db.fetch_all(conn, "web_queued_jobs", {"limit": QUEUE_ROWS_SHOWN})
        running = db.fetch_all(conn, "status_running")
        failed = db.fetch_all(conn, "status_failed", {"limit": QUEUE_ROWS_SHOWN})
        daemons = db.fetch_all(conn, "web_connected_daemons")
        decisions = db.fetch_all(conn, "status_decisions", {"limit": DECISIONS_SHOWN})
    return {
        "queued": {"due": counts["due"], "waiting": counts["waiting"],
                   "next_run_after": _iso(counts["next_run_after"]), "jobs": [_row(r) for r in queued]},
        "running": [_row(r) for r in running],
        "failed": {"total": failed[0]["total"] if failed else 0, "jobs": [_row(r, drop=("total",)) for r in failed]},
        "daemons": [_row(r) for r in daemons],
        "decisions": [_row(r) for r in decisions],
    }


# --------------------------------------------------------------- benchmarks --

def benchmarks(conn: psycopg.Connection) -> dict:
    from .. import holdout

    with snapshot(conn):
        rows = db.fetch_all(conn, "web_benchmarks")
        splits = holdout.split_status(conn)
    out = []
    for row in rows:
        manifest = row["manifest"] or {}
        out.append({
            **_row(row, drop=("manifest",)),
            "description": manifest.get("description"),
            "metrics": manifest.get("metrics") or [row["primary_metric"]],
            "guardrails": manifest.get("guardrails") or {},
            "non_inferiority_margin": manifest.get("non_inferiority_margin"),
            "floor": manifest.get("floor"),
            "self_scored": bool(manifest.get("self_scored")),
            "classes": manifest.get("classes"),
        })
    return {"benchmarks": out, "holdout_splits": [_row(s) for s in splits]}


# -------------------------------------------------------------------- index --

def index(conn: psycopg.Connection) -> dict:
    with snapshot(conn):
        lineages = db.fetch_all(conn, "web_lineages")
        decisions = db.fetch_all(conn, "status_decisions", {"limit": DECISIONS_SHOWN})
        counts = db.fetch_one(conn, "status_queue")
        running = db.fetch_all(conn, "status_running")
    return {
        "lineages": [_row(r) for r in lineages],
        "decisions": [_row(r) for r in decisions],
        "queue": {"queued": counts["due"] + counts["waiting"], "running": len(running)},
    }
