"""run_eval_gate: resolve -> evaluate -> bootstrap -> decide -> apply.

Every gate that writes runs as a claimed gate_jobs row, whether the daemon
claimed it or a person ran `model-eval-gate gate`: the verdict is applied in
one transaction fenced on (job, worker, attempt), so no decision is applied
twice and none by a worker that lost its lease. Evaluations run with no
transaction open.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from . import db, decision, fingerprint, holdout, stats
from .benchmark import Benchmark, BenchmarkError
from .bounded_json import UnreadableJson
from .config import Settings
from .evaluate import Evaluation, EvaluationError, evaluate
from .lease import LeaseKeeper
from .lifecycle import Fence, HeadMoved, LeaseLost, NotApplicable, apply_result
from .logging import get_logger, log_tool_call
from .policy import confirmation as confirmation_policy
from .policy import release
from .safe_text import check_reason, escape_control
from .statistics import delong

MAX_HEAD_MOVES = 3  # merge-queue style re-evaluations against a new head before giving up

_ERROR_CODES = {
    "no_eval_py": decision.ReasonCode.EVAL_SCRIPT_NOT_FOUND,
    "sandbox_unavailable": decision.ReasonCode.SANDBOX_UNAVAILABLE,
    "sandbox_failure": decision.ReasonCode.SANDBOX_FAILURE,
    "timeout": decision.ReasonCode.EVAL_TIMEOUT,
    "bad_output": decision.ReasonCode.INVALID_EVAL_OUTPUT,
    "no_benchmark": decision.ReasonCode.BENCHMARK_NOT_FOUND,
    "environment_failure": decision.ReasonCode.ENVIRONMENT_FAILURE,
    "model_dir_refused": decision.ReasonCode.INVALID_MODEL_DIRECTORY,
    "unsafe_model_dir": decision.ReasonCode.MODEL_DIR_UNSAFE,
    "unsandboxed": decision.ReasonCode.UNSANDBOXED_EVALUATION,
    "benchmark_not_lineage": decision.ReasonCode.BENCHMARK_NOT_LINEAGE,
    "lineage_changed": decision.ReasonCode.LINEAGE_CHANGED,
    "model_changed": decision.ReasonCode.COMPARATOR_CHANGED,  # only promoted versions are held to their pins
    "comparator_changed": decision.ReasonCode.COMPARATOR_CHANGED,
}


class GateRefused(ValueError):
    """The artifact cannot be gated (unknown, not a model version, or already decided)."""


class GateCancelled(RuntimeError):
    """The caller cancelled the gate (daemon shutdown) before its verdict was applied; nothing was written."""


class _EitherEvent:
    """Looks set when any of its events is: the sandbox stops for a shutdown or for a lost lease alike."""

    def __init__(self, *events):
        self._events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self._events)


@dataclass(frozen=True)
class ClaimedJob:
    job_id: int
    artifact_id: str
    attempt: int
    worker_id: str
    reason: str = "manual"

    @property
    def fence(self) -> Fence:
        return Fence(self.job_id, self.worker_id, self.attempt)


# ---------------------------------------------------------------- resolve --

def _resolve(conn: psycopg.Connection, candidate_id: str) -> dict:
    candidate = db.fetch_one(conn, "candidate_for_gate", {"id": candidate_id})
    if candidate is None:
        raise GateRefused(f"no artifact {candidate_id!r}")
    if candidate["artifact_type"] != "model" or candidate["promotion_state"] is None:
        raise GateRefused(f"{candidate_id} is not a registered model version")
    if candidate["promotion_state"] in ("promoted", "superseded"):
        raise GateRefused(f"{candidate_id} is already {candidate['promotion_state']}; "
                          "a decided promotion is never re-gated (register a new candidate)")
    heads = [h for h in db.fetch_all(conn, "lineage_head", {"lineage_id": candidate["lineage_id"]})
             if h["id"] != candidate_id]
    head = heads[0] if heads else None
    return {"candidate": candidate, "head": head}


def _lineage_benchmark_id(conn: psycopg.Connection, candidate: dict, head: dict | None) -> tuple[str | None, str]:
    """The benchmark the candidate's lineage is judged on, and where that comes from.

    An operator's re-benchmark comes first, then the lineage head's benchmark
    (or, for a lineage without a head, its parent's); only a root chooses its
    own. The candidate never overrides its lineage.
    """
    chosen = db.fetch_one(conn, "lineage_benchmark", {"lineage_id": candidate["lineage_id"]})
    if chosen is not None:
        return chosen["benchmark_id"], f"re-benchmarked by {chosen['actor']}"
    if head is not None and head.get("benchmark_id"):
        return head["benchmark_id"], f"the benchmark of the lineage head {head['id']}"
    if candidate["parent_version_id"]:
        parent = db.fetch_one(conn, "candidate_for_gate", {"id": candidate["parent_version_id"]})
        if parent and parent["benchmark_id"]:
            return parent["benchmark_id"], f"the benchmark of the parent {parent['id']}"
    return candidate["benchmark_id"], "the root version's own benchmark"


def _load_benchmark(conn: psycopg.Connection, candidate: dict, head: dict | None) -> Benchmark:
    from .benchmark import load_recorded_benchmark

    benchmark_id, source = _lineage_benchmark_id(conn, candidate, head)
    if benchmark_id is None:
        raise EvaluationError("no_benchmark", f"{candidate['id']} names no benchmark_id, and neither does its parent")
    if candidate["benchmark_id"] and candidate["benchmark_id"] != benchmark_id:
        raise EvaluationError(
            "benchmark_not_lineage",
            f"{candidate['id']} names benchmark {candidate['benchmark_id']!r}, but its lineage "
            f"{candidate['lineage_id']} is judged on {benchmark_id!r} ({source}); a candidate cannot choose its "
            "benchmark - register it without benchmark_id, or have an operator run "
            f"`model-eval-gate rebenchmark {candidate['lineage_id']} {candidate['benchmark_id']}`")
    try:
        return load_recorded_benchmark(conn, benchmark_id)
    except (LookupError, BenchmarkError, OSError) as exc:
        raise EvaluationError("no_benchmark", str(exc)) from exc


def _candidate_pin(conn: psycopg.Connection, candidate: dict) -> dict | None:
    """The candidate's pin, refusing a version first judged in another lineage (unless an operator accepted it)."""
    pin = db.fetch_one(conn, "model_pin", {"artifact_id": candidate["id"]})
    if pin is not None and pin["lineage_id"] != candidate["lineage_id"]:
        raise EvaluationError(
            "lineage_changed",
            f"{candidate['id']} was first judged in lineage {pin['lineage_id']} (against "
            f"{pin['judged_against'] or 'no head'}) and now sits in lineage {candidate['lineage_id']}; a version "
            "cannot change the comparator it is judged against - register a new version, or have an operator run "
            f"`model-eval-gate accept-reparent {candidate['id']}`")
    return pin


def _refuse_content_judged_elsewhere(conn: psycopg.Connection, candidate: dict, evaluation: Evaluation) -> None:
    """The same files, deleted and re-inserted under a new id in another lineage, are the same version."""
    other = db.fetch_one(conn, "pins_of_content_elsewhere", {
        "model_hash": evaluation.model_hash, "lineage_id": candidate["lineage_id"], "artifact_id": candidate["id"]})
    if other is None:
        return
    if db.fetch_one(conn, "accepted_reparent", {"artifact_id": candidate["id"],
                                                "lineage_id": candidate["lineage_id"]}) is not None:
        return
    raise EvaluationError(
        "lineage_changed",
        f"the files of {candidate['id']} are those of {other['artifact_id']}, already judged in lineage "
        f"{other['lineage_id']}; the same model cannot be moved to lineage {candidate['lineage_id']} to be judged "
        f"against another head - have an operator run `model-eval-gate accept-reparent {candidate['id']}` if intended")


def _pin(conn: psycopg.Connection, evaluation: Evaluation, lineage_id: str, judged_against: str | None, *,
         query: str = "pin_model") -> None:
    db.execute(conn, query, {"artifact_id": evaluation.artifact_id, "lineage_id": lineage_id,
                                   "model_hash": evaluation.model_hash, "benchmark_id": evaluation.benchmark_id,
                                   "judged_against": judged_against})


def _check_sandboxed(settings: Settings, result: dict, evaluations: list[Evaluation | None]) -> None:
    """Decide on unsandboxed evaluations only in a deployment that runs unsandboxed on purpose.

    An unsandboxed eval.py can read the labels. The cache key keeps a
    sandboxed gate from reusing such an evaluation; this is the last check
    before any verdict. With MODEL_EVAL_GATE_ALLOW_UNSANDBOXED=1 (and no
    bubblewrap) the verdict is decided but says it was unsandboxed.
    """
    unsandboxed = [e.artifact_id for e in evaluations if e is not None and not e.sandboxed]
    if not unsandboxed:
        return
    if not settings.allow_unsandboxed:
        raise EvaluationError("unsandboxed", f"the evaluation of {', '.join(unsandboxed)} was made without the "
                              "sandbox; this deployment decides only on sandboxed evaluations")
    result["unsandboxed_deployment"] = True


# ------------------------------------------------------------- statistics --

def _compare(benchmark: Benchmark, candidate: Evaluation, parent: Evaluation, *, n_resamples: int,
             seed: int, undefined: dict[str, str],
             confidence: float = decision.CONFIDENCE) -> dict[str, stats.BootstrapResult]:
    try:
        return stats.compare_on_benchmark(benchmark, candidate.predictions, parent.predictions,
                                          n_resamples=n_resamples, seed=seed, confidence=confidence)
    except stats.MetricUndefined:
        # The policy needs only the primary metric and the guardrails; an
        # undefined secondary metric is reported, not fatal. If a required
        # one is undefined this raises again and the verdict is an error.
        required = [benchmark.primary_metric, *benchmark.guardrails]
        results = stats.compare_on_benchmark(benchmark, candidate.predictions, parent.predictions,
                                             n_resamples=n_resamples, seed=seed, confidence=confidence,
                                             only=required)
        for name in benchmark.metrics:
            if name not in required:
                try:
                    results.update(stats.compare_on_benchmark(
                        benchmark, candidate.predictions, parent.predictions, n_resamples=n_resamples,
                        seed=seed, confidence=confidence, only=[name]))
                except stats.MetricUndefined as exc:
                    undefined[name] = str(exc)
        return results


def _identical_comparisons(benchmark: Benchmark, evaluation: Evaluation, *, n_resamples: int,
                           seed: int, confidence: float = decision.CONFIDENCE) -> dict[str, stats.BootstrapResult] | None:
    """The paired bootstrap against identical predictions, without drawing it.

    Both sides score the same predictions on every resample, so every
    resampled delta is exactly 0 and the interval is [0, 0] (policy 5.2);
    drawing the resamples would only confirm that. None when a metric is
    undefined on the whole split: _compare knows which of those are fatal.
    """
    try:
        scores = stats.scores_on_benchmark(benchmark, evaluation.predictions)
    except stats.MetricUndefined:
        return None
    return {
        name: stats.BootstrapResult(
            metric=name, higher_is_better=bool(benchmark.higher_is_better[name]), candidate=value, parent=value,
            delta=0.0, ci_low=0.0, ci_high=0.0, relative_delta=None if value == 0 else 0.0,
            n_resamples=n_resamples, n_valid=n_resamples, seed=seed, confidence=confidence)
        for name, value in scores.items()
    }


def _duplicate_of(conn: psycopg.Connection, result: dict, candidate: dict, evaluation: Evaluation,
                  parent_id: str) -> str:
    """The version a no-op candidate duplicates: the earliest identical one in another lineage, else its parent.

    Every stored version the fingerprint index finds with exactly these
    predictions goes into result["duplicates"].
    """
    duplicates = fingerprint.exact_duplicates(
        conn, evaluation.predictions, benchmark_id=evaluation.benchmark_id, split_hash=evaluation.split_hash,
        exclude_artifact_id=candidate["id"], vector=fingerprint.fingerprint_of(conn, evaluation))
    result["duplicates"] = [d.as_dict() for d in duplicates]
    elsewhere = [d for d in duplicates if d.lineage_id != candidate["lineage_id"]]
    return elsewhere[0].artifact_id if elsewhere else parent_id


def _flag_near_duplicates(conn: psycopg.Connection, result: dict, candidate_id: str, evaluation: Evaluation) -> None:
    """Name (for operators) the stored versions that behave almost exactly like the candidate on this split.

    A near-duplicate resubmitted under a new id is resampled on the same draws
    (stats.derive_split_seed) and gets a near-identical interval; this says
    which versions it nearly repeats (holdout.NEAR_DUPLICATE_MAX_COSINE_DISTANCE).
    """
    try:
        neighbours, _, _ = fingerprint.nearest(
            conn, fingerprint.fingerprint_of(conn, evaluation), benchmark_id=evaluation.benchmark_id,
            split_hash=evaluation.split_hash, k=holdout.NEAR_DUPLICATES_LISTED, exclude_artifact_id=candidate_id)
    except fingerprint.SimilarityError:
        return
    near = [n.as_dict() for n in neighbours if n.cosine_distance <= holdout.NEAR_DUPLICATE_MAX_COSINE_DISTANCE]
    if near:
        result["near_duplicates"] = near


def _biocreep_anchors(conn: psycopg.Connection, settings: Settings, benchmark: Benchmark, candidate: dict,
                      parent_id: str, parent_eval: Evaluation, result: dict, *, store: bool,
                      cancel) -> tuple[dict[str, str | None], dict[str, Evaluation]]:
    """The lineage's best plain promotion on this benchmark, for the primary metric and each guardrail.

    decision.biocreep_anchor per metric, over every plain, unforced promotion
    scored on the split (evaluations come from the cache after the first
    time); one that cannot be evaluated fails the gate rather than being
    skipped, since skipping could drop an anchor. Returns (metric -> anchor
    version, version -> evaluation).
    """
    rows = db.fetch_all(conn, "plain_promotions_in_lineage", {"lineage_id": candidate["lineage_id"]})
    evaluations: dict[str, Evaluation] = {parent_id: parent_eval}
    scored: list[tuple[str, dict[str, float]]] = []
    for row in rows:
        version_id = row["artifact_id"]
        if version_id == candidate["id"]:
            continue
        if version_id not in evaluations:
            # A promoted version is held to the files it was promoted with (policy 16.5).
            pin = db.fetch_one(conn, "model_pin", {"artifact_id": version_id})
            try:
                evaluations[version_id] = evaluate(conn, settings, version_id, benchmark, store=store, cancel=cancel,
                                                   pinned_hash=pin and pin["model_hash"])
            except EvaluationError as exc:
                code = "comparator_changed" if exc.reason_code == "model_changed" else exc.reason_code
                raise EvaluationError(code, f"the lineage's promotion {version_id} could not be evaluated as a "
                                            f"biocreep anchor: {exc}") from exc
            _check_sandboxed(settings, result, [evaluations[version_id]])
        try:
            scores = stats.scores_on_benchmark(benchmark, evaluations[version_id].predictions)
        except stats.MetricUndefined:
            continue
        scored.append((version_id, scores))
    anchors = {}
    for metric in (benchmark.primary_metric, *sorted(benchmark.guardrails)):
        anchors[metric] = decision.biocreep_anchor([(v, s.get(metric)) for v, s in scored],
                                                   bool(benchmark.higher_is_better[metric]))
    primary = benchmark.primary_metric
    result["biocreep_anchor"] = {"version_id": anchors[primary], "guardrail_anchors": {
        m: anchors[m] for m in sorted(benchmark.guardrails)}, "plain_promotions": [
        {"version_id": version_id, primary: scores.get(primary)} for version_id, scores in scored]}
    return anchors, evaluations


def _guardrail_standard_errors(benchmark: Benchmark, evaluation: Evaluation) -> dict[str, float]:
    """Each guardrail's expected SE on this split, from the first (root) evaluation (statistics/power.py)."""
    from .statistics.power import paired_standard_error_estimate

    task = "self_scored" if benchmark.self_scored else benchmark.task
    found = {}
    for column, name in enumerate(benchmark.metrics):
        if name not in benchmark.guardrails:
            continue
        metric = stats.metric_for(task, name, higher_is_better=bool(benchmark.higher_is_better[name]))
        predictions = evaluation.predictions
        if task == "self_scored" and np.ndim(predictions) == 2:
            predictions = np.asarray(predictions)[:, column]
        try:
            se = paired_standard_error_estimate(metric, benchmark.labels, predictions)
        except ValueError:  # a single class: the root verdict reports the metric as undefined
            continue
        if se is not None:
            found[metric.name] = se
    return found


def _policy(benchmark: Benchmark) -> decision.BenchmarkPolicy:
    return decision.BenchmarkPolicy.from_manifest(benchmark.manifest, benchmark.higher_is_better)


#: Back-to-back runs of each model for a latency claim; the claim is checked on the medians.
LATENCY_RUNS = 3
#: memory_scope values that measure the whole sandbox (OWNERSHIP.md's interface with the sandbox).
WHOLE_SANDBOX_MEMORY_SCOPES = ("cgroup", "process_tree")


def _measured_evidence(conn: psycopg.Connection, settings: Settings, justification: Any, benchmark: Benchmark,
                       cand_eval: Evaluation, parent_eval: Evaluation, result: dict, *,
                       cancel=None) -> decision.TradeoffEvidence:
    """The gate's own measurements for the claims made; never the author's metadata.

    Parameters are counted from both versions' weight files; latency is the
    median of LATENCY_RUNS alternating, uncached runs of both; memory counts
    only when both runs measured the whole sandbox. What was measured, and
    why something could not be, goes into result["measurements"].
    """
    from .evaluate import model_dir
    from .evaluation.weights import count_parameters

    claims = set(justification) if isinstance(justification, dict) else set()
    measurements: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    if "param_count" in claims:
        counts = {side: count_parameters(model_dir(settings, e.artifact_id))
                  for side, e in (("candidate", cand_eval), ("parent", parent_eval))}
        measurements["param_count"] = {side: c.as_dict() for side, c in counts.items()}
        fields.update(candidate_parameter_count=counts["candidate"].count,
                      parent_parameter_count=counts["parent"].count)
    if "latency" in claims:
        runs: dict[str, list[float]] = {"candidate": [], "parent": []}
        for _ in range(LATENCY_RUNS):
            for side, e in (("candidate", cand_eval), ("parent", parent_eval)):
                run = evaluate(conn, settings, e.artifact_id, benchmark, use_cache=False, store=False,
                               cancel=cancel, pinned_hash=e.model_hash)
                runs[side].append(run.wall_seconds)
        medians = {side: float(np.median(values)) for side, values in runs.items()}
        measurements["latency"] = {"runs": runs, "median_wall_seconds": medians}
        fields.update(candidate_wall_seconds=medians["candidate"], parent_wall_seconds=medians["parent"])
    if "memory" in claims:
        scopes = {"candidate": cand_eval.memory_scope, "parent": parent_eval.memory_scope}
        whole = all(scope in WHOLE_SANDBOX_MEMORY_SCOPES for scope in scopes.values())
        measurements["memory"] = {"memory_scope": scopes, "verifiable": whole}
        if whole:  # peak_memory_bytes, never peak_rss_bytes: that one includes the spawner's own peak
            fields.update(candidate_peak_memory_bytes=cand_eval.peak_memory_bytes,
                          parent_peak_memory_bytes=parent_eval.peak_memory_bytes)
    result["measurements"] = measurements
    return decision.TradeoffEvidence(**fields)


def _error_code(exc: EvaluationError) -> decision.ReasonCode:
    if exc.reason_code == "sandbox_failure" and "wall time" in str(exc):
        return _ERROR_CODES["timeout"]
    return _ERROR_CODES.get(exc.reason_code, decision.ReasonCode.EVALUATION_ERROR)


# What is not the candidate's verdict to give: the database (retried by the
# worker), a cancellation, a lost lease, a refused gate.
_PASSED_ON = (psycopg.Error, GateRefused, GateCancelled, LeaseLost)
MAX_STORED_ERROR_CHARS = 4000


def _stored_error(text: str) -> str:
    """An error as verdicts, notes and events store it: control characters escaped, bounded."""
    from .safe_text import truncate

    return truncate(escape_control(text), MAX_STORED_ERROR_CHARS)


def _unexpected_error(exc: BaseException, result: dict, log, stage: str) -> decision.Verdict:
    # An exhausted resource or a hostile input that no finer code names: the
    # class and message go into the verdict, the traceback into the log.
    error = _stored_error(f"{type(exc).__name__} while {stage}: {exc}")
    log.error("evaluation_crashed", reason_code=str(decision.ReasonCode.EVALUATION_ERROR), error=error,
              exc_info=exc)
    result["error"] = error
    return decision.decide(policy=None, error=error, error_code=decision.ReasonCode.EVALUATION_ERROR)


def _mark(timeline: dict[str, float] | None, event: str) -> None:
    """Note when `event` happened, as Unix time: comparable across processes on one host
    (benchmarks/bench_gate_overhead.py sets it against the INSERT's commit)."""
    if timeline is not None:
        timeline[event] = round(time.time(), 6)


def evaluate_and_decide(conn: psycopg.Connection, settings: Settings, candidate_id: str, *,
                        n_resamples: int, store: bool, cancel=None, log=None,
                        timeline: dict[str, float] | None = None, kind: str = "dry_run",
                        requested_by: str = "run_eval_gate", job: ClaimedJob | None = None) -> dict[str, Any]:
    """Everything but the lifecycle write: the result dict the lifecycle applies (or a dry run prints).

    `timeline`, if given, receives the wall-clock time of each step (see _mark).

    Every call that scores the candidate on the split's labels is a holdout
    query (holdout.py): recorded before scoring, with the lineage's attempt
    number and the level that attempt is tested at (policy/multiplicity.py);
    result["holdout"] says which, and result["released"] is what its author
    may see (policy/release.py). `kind` is "gate", "regate", "dry_run", "quick"
    or "job" (a claimed job: "regate" for a rejected candidate or a re-ask,
    else "gate"); a job's query is answered when its verdict is applied
    (lifecycle.py), any other query here.
    """
    log = log or get_logger(__name__, candidate_id=candidate_id)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    resolved = _resolve(conn, candidate_id)
    candidate, head = resolved["candidate"], resolved["head"]
    compared_against = head["id"] if head else None
    result: dict[str, Any] = {
        "candidate_id": candidate_id,
        "parent_id": candidate["parent_version_id"],
        "compared_against": compared_against,
        "head_moved": bool(candidate["parent_version_id"] and compared_against
                           and compared_against != candidate["parent_version_id"]),
        "is_root": compared_against is None,
        "lineage_id": candidate["lineage_id"],
        # What the verdict was judged against: the lineage, its head, its benchmark.
        "judged_against": {"lineage_id": candidate["lineage_id"], "head_id": compared_against, "benchmark_id": None},
        "n_resamples": n_resamples,
        "evaluations": {},
    }
    log = log.bind(parent_id=compared_against)
    timings["resolve"] = time.perf_counter() - clock

    query: holdout.HoldoutQuery | None = None
    sealed: dict[str, Any] = {}  # the confirmation split's query and what the author learns of it

    def finish(verdict: decision.Verdict) -> dict[str, Any]:
        _mark(timeline, "decided")
        verdict_dict = verdict.as_dict()
        result.update({k: v for k, v in verdict_dict.items() if k != "n_resamples" or v is not None})
        if result.get("unsandboxed_deployment"):
            result["reason"] = f"[unsandboxed deployment: model code ran without isolation] {result['reason']}"
        # The reason becomes promotion notes, history rows and events, and is
        # printed: author text in it (a rationale, a metric name) stays inert.
        result["reason"] = escape_control(result["reason"])
        result["timings"] = {k: round(v, 6) for k, v in timings.items()}
        if timeline is not None:
            result["timeline"] = timeline
        level = query.level if query is not None else None
        released = release.author_release(
            result, release_step=query.release_step if query is not None else None,
            attempt=level.attempt if level else None, alpha=level.alpha if level else None,
            confirmation=sealed.get("passed"))
        result["released"] = released
        if sealed:
            result["confirmation"]["released"] = release.sealed_release(released)
        if query is not None and job is None:
            holdout.answer_query(conn, query.query_id, result, released)
            if sealed:
                holdout.answer_query(conn, sealed["query"].query_id, result["confirmation"],
                                     result["confirmation"]["released"])
        # Logs an author may read carry the release, not the metric table
        # (that stays in gate_jobs.result and holdout_queries.detail).
        log.info("verdict", outcome=result["outcome"], reason_code=result["reason_code"],
                 reason=released["reason"], holdout_attempt=released["attempt"], alpha=released["alpha"],
                 released_primary=released["primary_value"])
        return result

    try:
        if isinstance(candidate["metadata"], UnreadableJson):
            raise EvaluationError("bad_metadata", f"the metadata of {candidate_id} cannot be read: "
                                                  f"{candidate['metadata'].problem}")
        benchmark = _load_benchmark(conn, candidate, head)
        result.update({"benchmark_id": benchmark.id, "split_hash": benchmark.split_hash,
                       "self_reported": benchmark.self_scored})
        result["judged_against"]["benchmark_id"] = benchmark.id
        _candidate_pin(conn, candidate)
        clock = time.perf_counter()
        _mark(timeline, "candidate_evaluation_started")
        log.info("evaluation_started", model="candidate", benchmark_id=benchmark.id)
        # A candidate may still change (its author fixing it before a re-gate);
        # its pin follows each verdict and freezes when it is promoted.
        cand_eval = evaluate(conn, settings, candidate_id, benchmark, use_cache=True, store=store, cancel=cancel)
        if compared_against is not None:  # a root has no comparator to choose
            _refuse_content_judged_elsewhere(conn, candidate, cand_eval)
        timings["evaluate_candidate"] = time.perf_counter() - clock
        _mark(timeline, "candidate_evaluation_finished")
        result["evaluations"]["candidate"] = cand_eval.summary()
        log.info("evaluation_finished", model="candidate", seconds=round(timings["evaluate_candidate"], 3),
                 cached=cand_eval.cached, wall_seconds=cand_eval.wall_seconds)
        parent_eval = None
        if compared_against:
            clock = time.perf_counter()
            _mark(timeline, "parent_evaluation_started")
            log.info("evaluation_started", model="parent", benchmark_id=benchmark.id)
            parent_pin = db.fetch_one(conn, "model_pin", {"artifact_id": compared_against})
            try:
                parent_eval = evaluate(conn, settings, compared_against, benchmark, store=store, cancel=cancel,
                                       pinned_hash=parent_pin and parent_pin["model_hash"])
            except EvaluationError as exc:
                code = "comparator_changed" if exc.reason_code == "model_changed" else exc.reason_code
                raise EvaluationError(code, f"the parent {compared_against} could not be evaluated: {exc}") from exc
            timings["evaluate_parent"] = time.perf_counter() - clock
            _mark(timeline, "parent_evaluation_finished")
            result["evaluations"]["parent"] = parent_eval.summary()
            log.info("evaluation_finished", model="parent", seconds=round(timings["evaluate_parent"], 3),
                     cached=parent_eval.cached, wall_seconds=parent_eval.wall_seconds)
        _check_sandboxed(settings, result, [cand_eval, parent_eval])
        if store:  # pinned at the first evaluation for a verdict; later gates hold the files to it
            _pin(conn, cand_eval, candidate["lineage_id"], compared_against, query="pin_candidate")
            if parent_eval is not None:
                _pin(conn, parent_eval, candidate["lineage_id"], None)
    except EvaluationError as exc:
        # The verdict's reason code, so that the log and the verdict name the failure alike.
        log.warning("evaluation_error", reason_code=str(_error_code(exc)), error=str(exc))
        error = _stored_error(str(exc))
        result["error"] = error
        if exc.stderr:
            result["stderr_tail"] = escape_control(exc.stderr[-2000:])
        return finish(decision.decide(policy=None, error=error, error_code=_error_code(exc)))
    except _PASSED_ON:
        raise
    except Exception as exc:  # MemoryError, RecursionError, OSError, ...: still a verdict, never a retry loop
        return finish(_unexpected_error(exc, result, log, "evaluating"))

    policy = _policy(benchmark)
    if kind == "job":
        kind = holdout.query_kind(job.reason if job else None, candidate["promotion_state"])
    try:
        query = holdout.open_query(
            conn, settings, benchmark=benchmark, candidate=candidate,
            compared_against=compared_against if parent_eval is not None else None, kind=kind,
            requested_by=requested_by, job_id=job.job_id if job else None, job_attempt=job.attempt if job else None,
            question=None if parent_eval is None else holdout.question_hash(
                benchmark.split_hash, parent_eval.predictions, cand_eval.predictions))
    except holdout.HoldoutRefused as exc:
        log.warning("holdout_refused", reason_code=exc.reason_code, error=str(exc))
        result["error"] = str(exc)
        return finish(decision.decide(policy=None, error=str(exc), error_code=exc.reason_code))
    result["holdout"] = query.as_dict()
    confidence = query.level.confidence if query.level is not None else decision.CONFIDENCE
    clock = time.perf_counter()
    _mark(timeline, "statistics_started")
    try:
        if parent_eval is None:
            scores = stats.scores_on_benchmark(benchmark, cand_eval.predictions)
            timings["statistics"] = time.perf_counter() - clock
            return finish(decision.decide(policy=policy, candidate_scores=scores, is_root=True,
                                          confidence=confidence, advisory=not store,
                                          guardrail_standard_errors=_guardrail_standard_errors(benchmark, cand_eval),
                                          self_reported=cand_eval.self_reported or benchmark.self_scored))

        # From the split and the head's predictions, never an id: resubmitting
        # the same predictions under a new id cannot re-roll the interval.
        seed = stats.derive_split_seed(benchmark.split_hash, parent_eval.predictions)
        result["seed"] = seed
        identical = bool(np.array_equal(cand_eval.predictions, parent_eval.predictions))
        undefined: dict[str, str] = {}
        comparisons = duplicate_of = None
        if identical:  # a no-op candidate: nothing to resample, but say which version it duplicates
            duplicate_of = _duplicate_of(conn, result, candidate, cand_eval, compared_against)
            comparisons = _identical_comparisons(benchmark, cand_eval, n_resamples=n_resamples, seed=seed,
                                                 confidence=confidence)
            result["bootstrap_skipped"] = comparisons is not None
        if comparisons is None:
            comparisons = _compare(benchmark, cand_eval, parent_eval, n_resamples=n_resamples, seed=seed,
                                   undefined=undefined, confidence=confidence)
            _flag_near_duplicates(conn, result, candidate_id, cand_eval)
        if undefined:
            result["undefined_metrics"] = undefined
        justification = (candidate["metadata"] or {}).get("tradeoff_justification")
        baseline_comparisons = baseline_id = None
        guardrail_baselines: dict[str, tuple[str, stats.BootstrapResult]] = {}
        # The anchors bound a tradeoff's primary loss and every promotion's guardrail loss.
        if (justification or benchmark.guardrails) and not identical:
            anchors, evaluations = _biocreep_anchors(conn, settings, benchmark, candidate, compared_against,
                                                     parent_eval, result, store=store, cancel=cancel)
            against: dict[str, dict[str, stats.BootstrapResult]] = {}

            def compared_with(version_id: str) -> dict[str, stats.BootstrapResult]:
                if version_id not in against:
                    anchor_eval = evaluations[version_id]
                    against[version_id] = _compare(
                        benchmark, cand_eval, anchor_eval, n_resamples=n_resamples, undefined={},
                        confidence=confidence, seed=stats.derive_split_seed(benchmark.split_hash,
                                                                            anchor_eval.predictions))
                return against[version_id]

            anchor_id = anchors.get(benchmark.primary_metric)
            if justification and anchor_id is not None and anchor_id not in (compared_against, candidate_id):
                baseline_id = anchor_id
                baseline_comparisons = compared_with(anchor_id)
            for name in benchmark.guardrails:
                version_id = anchors.get(name)
                if version_id is not None and version_id not in (compared_against, candidate_id):
                    found = compared_with(version_id).get(name)
                    if found is not None:
                        guardrail_baselines[name] = (version_id, found)
        timings["statistics"] = time.perf_counter() - clock
        _mark(timeline, "statistics_finished")
        evidence = _measured_evidence(conn, settings, justification, benchmark, cand_eval, parent_eval,
                                      result, cancel=cancel) if justification and not identical else None
        cross_check = None
        if not identical and not benchmark.self_scored and benchmark.primary_metric == "auroc":
            cross_check = delong.paired_delong(benchmark.labels, cand_eval.predictions, parent_eval.predictions,
                                               confidence=confidence)
        clock = time.perf_counter()
        verdict = decision.decide(
            policy=policy, comparisons=comparisons, tradeoff_justification=justification, evidence=evidence,
            baseline_comparisons=baseline_comparisons, baseline_version_id=baseline_id,
            predictions_identical=identical, duplicate_of=duplicate_of, confidence=confidence,
            advisory=not store, cross_check=cross_check, guardrail_baselines=guardrail_baselines or None,
        )
        timings["decide"] = time.perf_counter() - clock
        if confirmation_policy.needs_confirmation(verdict, is_root=False,
                                                  declared=bool(benchmark.manifest.get("confirmation_benchmark"))):
            verdict = _confirm_on_sealed_split(
                conn, settings, result, sealed, verdict, benchmark=benchmark, candidate=candidate,
                head_id=compared_against, justification=justification, evidence=evidence,
                n_resamples=n_resamples, store=store, cancel=cancel, kind=kind, requested_by=requested_by, job=job)
        if cand_eval.self_reported or benchmark.self_scored:  # after every check: a human confirms what passed them
            verdict = decision.require_confirmation(verdict)
        return finish(verdict)
    except stats.MetricUndefined as exc:
        result["error"] = _stored_error(str(exc))
        return finish(decision.decide(policy=None, error=result["error"],
                                      error_code=decision.ReasonCode.METRIC_UNDEFINED, confidence=confidence))
    except EvaluationError as exc:  # the biocreep baseline or the sealed split could not be evaluated
        result["error"] = _stored_error(str(exc))
        return finish(decision.decide(policy=None, error=result["error"], error_code=_error_code(exc)))
    except holdout.HoldoutRefused as exc:  # the sealed split's budget is spent
        result["error"] = _stored_error(str(exc))
        return finish(decision.decide(policy=None, error=result["error"], error_code=exc.reason_code))
    except _PASSED_ON:
        raise
    except Exception as exc:
        return finish(_unexpected_error(exc, result, log, "deciding"))


def _confirm_on_sealed_split(conn, settings: Settings, result: dict, sealed: dict, verdict: decision.Verdict, *,
                             benchmark: Benchmark, candidate: dict, head_id: str,
                             justification, evidence: decision.TradeoffEvidence | None, n_resamples: int,
                             store: bool, cancel, kind: str, requested_by: str,
                             job: ClaimedJob | None) -> decision.Verdict:
    """Score a candidate the public split would promote on the benchmark's sealed split (policy/confirmation.py).

    The sealed split is its own benchmark, with its own query record and the
    lineage's own attempt counter on it. The verdict that stands is the public
    one if the sealed split also promotes, else a rejection
    (confirmation_failed); the author learns only "passed" or "failed".
    Raises EvaluationError (an error verdict) when the sealed split is
    unusable. `evidence` is what the gate measured for a tradeoff claim on the
    public split (weight files, repeated runs): a property of the two models,
    so the sealed split's verdict checks the same claim against it.
    """
    from .benchmark import load_recorded_benchmark

    sealed_id = benchmark.manifest["confirmation_benchmark"]
    try:
        split = load_recorded_benchmark(conn, sealed_id)
    except (LookupError, BenchmarkError, OSError) as exc:
        raise EvaluationError("no_benchmark", f"the confirmation benchmark {sealed_id!r} of {benchmark.id}: {exc}") from exc
    if (split.task, split.primary_metric, split.self_scored) != (benchmark.task, benchmark.primary_metric,
                                                                  benchmark.self_scored):
        raise EvaluationError("no_benchmark", f"the confirmation benchmark {sealed_id} does not match {benchmark.id}: "
                                              "it must have the same task, primary metric and scoring")
    candidate_sealed = evaluate(conn, settings, candidate["id"], split, use_cache=True, store=store, cancel=cancel)
    head_pin = db.fetch_one(conn, "model_pin", {"artifact_id": head_id})
    try:
        head_sealed = evaluate(conn, settings, head_id, split, store=store, cancel=cancel,
                               pinned_hash=head_pin and head_pin["model_hash"])
    except EvaluationError as exc:
        code = "comparator_changed" if exc.reason_code == "model_changed" else exc.reason_code
        raise EvaluationError(code, f"the head {head_id} could not be evaluated on the sealed split: {exc}") from exc
    _check_sandboxed(settings, result, [candidate_sealed, head_sealed])
    query = holdout.open_query(
        conn, settings, benchmark=split, candidate=candidate, compared_against=head_id, kind=kind,
        requested_by=requested_by, split_role="confirmation", job_id=job.job_id if job else None,
        job_attempt=job.attempt if job else None,
        question=holdout.question_hash(split.split_hash, head_sealed.predictions, candidate_sealed.predictions))
    confidence = query.level.confidence
    seed = stats.derive_split_seed(split.split_hash, head_sealed.predictions)
    if np.array_equal(candidate_sealed.predictions, head_sealed.predictions):
        comparisons = _identical_comparisons(split, candidate_sealed, n_resamples=n_resamples, seed=seed,
                                             confidence=confidence)
    else:
        comparisons = None
    if comparisons is None:
        comparisons = _compare(split, candidate_sealed, head_sealed, n_resamples=n_resamples, seed=seed,
                               undefined={}, confidence=confidence)
    on_sealed = decision.decide(policy=_policy(split), comparisons=comparisons, tradeoff_justification=justification,
                                evidence=evidence, confidence=confidence, advisory=not store,
                                predictions_identical=bool(np.array_equal(candidate_sealed.predictions,
                                                                          head_sealed.predictions)))
    final, passed = confirmation_policy.apply_confirmation(verdict, on_sealed)
    sealed.update(query=query, passed=passed)
    result["confirmation"] = {
        "candidate_id": candidate["id"], "benchmark_id": split.id, "split_hash": split.split_hash,
        "split_role": "confirmation", "compared_against": head_id, "passed": passed,
        "holdout": query.as_dict(), "seed": seed, **on_sealed.as_dict(),
    }
    return final


# ------------------------------------------------------------------ apply --

def run_claimed_job(settings: Settings, job: ClaimedJob, *, n_resamples: int | None = None,
                    cancel=None, log=None, timeline: dict[str, float] | None = None,
                    conn: psycopg.Connection | None = None) -> dict[str, Any]:
    """Gate one claimed job and apply its verdict under the job's fence.

    If the lineage head moved while the candidate was evaluated (a sibling
    won), the candidate is re-evaluated against the new head, merge-queue
    style; the result's head_moved and compared_against say so.

    The result's "timeline" holds the wall-clock time of each step, starting
    with the marks the caller passes in (the daemon's "notified" and
    "claimed"); it is stored with the job, except "applied" (the commit it
    would describe), which only the returned dict carries.

    `conn`, an autocommit connection, is used (and left open) instead of a
    new one: the daemon's worker passes one it keeps from gate to gate, and
    run_eval_gate the one it claimed with, because connecting (and
    registering pgvector's types) took most of a fast gate's set-up
    (benchmarks/bench_gate_overhead.py). The lease is still renewed on a
    connection of its own.
    """
    timeline = dict(timeline or {})
    _mark(timeline, "gate_started")
    n_resamples = n_resamples or settings.n_resamples
    log = (log or get_logger(__name__)).bind(candidate_id=job.artifact_id, job_id=job.job_id,
                                             worker=job.worker_id, attempt=job.attempt)
    with contextlib.ExitStack() as resources:
        if conn is None:
            conn = resources.enter_context(db.connect(settings, autocommit=True))
        lease = resources.enter_context(LeaseKeeper(settings, job.fence, log))
        # A cancelled sandbox run looks like a failed eval.py; the check after
        # the evaluation keeps that "error" verdict from ever being applied.
        cancel_event = lease.lost if cancel is None else _EitherEvent(cancel, lease.lost)
        for round_number in range(MAX_HEAD_MOVES + 1):
            if cancel is not None and cancel.is_set():
                raise GateCancelled(f"job {job.job_id} was cancelled before its evaluation")
            result = evaluate_and_decide(conn, settings, job.artifact_id, n_resamples=n_resamples,
                                         store=True, cancel=cancel_event, log=log, timeline=timeline,
                                         kind="job", requested_by=job.worker_id, job=job)
            result.update({"job_id": job.job_id, "attempt": job.attempt, "worker_id": job.worker_id})
            if lease.lost.is_set():
                raise LeaseLost(f"job {job.job_id} lost its lease during evaluation")
            if cancel is not None and cancel.is_set():
                raise GateCancelled(f"job {job.job_id} was cancelled before its verdict was applied")
            clock = time.perf_counter()
            _mark(timeline, "apply_started")
            try:
                changed = apply_result(conn, result, job.fence)
            except HeadMoved as moved:
                log.info("head_moved", expected=moved.expected, actual=moved.actual, round=round_number + 1)
                continue
            result["timings"]["apply"] = round(time.perf_counter() - clock, 6)
            # A copy: the stored result keeps what it held when it was written.
            result["timeline"] = {**timeline, "applied": round(time.time(), 6)}
            result["applied"] = changed
            log.info("applied", outcome=result["outcome"], changed=changed,
                     apply_seconds=result["timings"]["apply"])
            return result
    raise RuntimeError(f"the lineage head of {job.artifact_id} moved {MAX_HEAD_MOVES + 1} times during evaluation")


def claim_for_artifact(conn: psycopg.Connection, settings: Settings, artifact_id: str, *, worker_id: str,
                       reason: str, requested_by: str) -> ClaimedJob:
    try:
        db.fetch_one(conn, "request_gate", {"artifact_id": artifact_id, "reason": reason, "requested_by": requested_by})
    except (psycopg.errors.CheckViolation, psycopg.errors.NoDataFound) as exc:
        raise GateRefused(exc.diag.message_primary.removeprefix("model_eval_gate: ")) from None
    row = db.fetch_one(conn, "claim_job_for_artifact", {"artifact_id": artifact_id, "worker_id": worker_id,
                                                        "lease_seconds": settings.lease_seconds})
    if row is None:
        active = db.fetch_one(conn, "active_job_for_artifact", {"artifact_id": artifact_id})
        holder = active["worker_id"] if active else "another worker"
        raise GateRefused(f"{artifact_id} is being gated right now by {holder} (job {active and active['id']})")
    return ClaimedJob(row["id"], artifact_id, row["attempt"], worker_id, row["reason"])


def _direct(settings: Settings) -> Settings:
    """Gates run outside the daemon (CLI, API) sandbox as their own uid, never a worker slot's."""
    return settings.with_(sandbox_uid=settings.direct_sandbox_uid)


def _summary(result: dict) -> dict:
    return {k: result.get(k) for k in ("candidate_id", "compared_against", "outcome", "reason_code", "job_id")}


def release_after_failure(settings: Settings, conn: psycopg.Connection | None, job: ClaimedJob,
                          exc: BaseException) -> bool:
    """Hand a job claimed in this process back to the queue after its gate failed; True if it was.

    Interrupted (Ctrl-C) or cut off from the database, the attempt is not
    counted: neither is the model's doing. Any other failure counts, so a
    gate that keeps failing ends as a failed job rather than looping. The
    release is fenced like every write of the job; when the database cannot
    be reached even for that, the lease runs out and a daemon's sweep
    requeues the job.
    """
    uncounted = isinstance(exc, KeyboardInterrupt) or db.is_connection_loss(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    params = {"job_id": job.job_id, "worker_id": job.worker_id, "attempt": job.attempt, "delay_seconds": 0,
              "count_attempt": not uncounted, "error": f"gate in {job.worker_id} failed: {type(exc).__name__}: {text}"}
    for _ in range(3):
        try:
            if conn is None or conn.closed:
                conn = db.connect(settings, autocommit=True)
            return db.fetch_one(conn, "release_job", params) is not None
        except psycopg.Error:
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.5)
    return False


@log_tool_call("run_eval_gate", summarize=_summary)
def run_eval_gate(candidate_artifact_id: str, *, settings: Settings | None = None,
                  requested_by: str = "run_eval_gate") -> dict[str, Any]:
    """Gate a candidate now, in this process, and apply the verdict. Returns the result dict.

    Whatever goes wrong after the claim (a database error, Ctrl-C, a bug),
    the job is released before the exception propagates, with its
    `job_released` attribute saying whether that worked: a failed gate
    never leaves its job `running` until a sweep finds it.
    """
    import os

    settings = _direct(settings or Settings.from_env())
    worker_id = f"{settings.worker_id}/direct-{os.getpid()}"
    with db.connect(settings, autocommit=True) as conn:
        job = claim_for_artifact(conn, settings, candidate_artifact_id, worker_id=worker_id,
                                 reason="direct", requested_by=requested_by)
        try:
            return run_claimed_job(settings, job, conn=conn)
        except LeaseLost:
            raise  # someone else holds the job now: nothing of ours to release
        except BaseException as exc:
            exc.job_released = release_after_failure(settings, conn, job, exc)
            exc.job_id = job.job_id
            raise


AUDIENCES = ("author", "operator")


def author_view(result: dict[str, Any]) -> dict[str, Any]:
    """What an author may see of a result: the release (policy/release.py), and whether anything was written."""
    view = dict(result.get("released") or release.author_release(result, release_step=None))
    for key in ("dry_run", "job_id", "applied"):
        if key in result:
            view[key] = result[key]
    return view


def _without_lifecycle_write(candidate_artifact_id: str, settings: Settings, *, n_resamples: int, kind: str,
                             requested_by: str) -> dict[str, Any]:
    settings = _direct(settings)
    with db.connect(settings, autocommit=True) as conn:
        result = evaluate_and_decide(conn, settings, candidate_artifact_id, n_resamples=n_resamples, store=False,
                                     kind=kind, requested_by=requested_by)
    result["dry_run"] = True
    return result


def _check_audience(audience: str) -> None:
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, got {audience!r}")


@log_tool_call("run_eval_gate_quick", summarize=_summary, persist=False)
def run_eval_gate_quick(candidate_artifact_id: str, *, settings: Settings | None = None,
                        n_resamples: int | None = None, requested_by: str = "run_eval_gate_quick",
                        audience: str = "author") -> dict[str, Any]:
    """The whole gate with 100 resamples and no lifecycle write: the author's advisory pre-check.

    It is still a query on the split's labels: recorded in holdout_queries,
    counted as an attempt of the lineage, and answered with the author's
    release only (audience="operator" returns the full result).
    """
    _check_audience(audience)
    settings = settings or Settings.from_env()
    result = _without_lifecycle_write(candidate_artifact_id, settings, n_resamples=n_resamples or settings.quick_resamples,
                                      kind="quick", requested_by=requested_by)
    return result if audience == "operator" else author_view(result)


# Logged under the name the user typed (`gate ID --dry-run`), not the quick gate it shares its code with.
@log_tool_call("gate --dry-run", summarize=_summary, persist=False)
def dry_run(candidate_artifact_id: str, *, settings: Settings, n_resamples: int | None = None,
            requested_by: str = "cli", audience: str = "operator") -> dict[str, Any]:
    """The full gate (default resamples) without a lifecycle write: for `gate --dry-run`. A counted query."""
    _check_audience(audience)
    result = _without_lifecycle_write(candidate_artifact_id, settings, n_resamples=n_resamples or settings.n_resamples,
                                      kind="dry_run", requested_by=requested_by)
    return result if audience == "operator" else author_view(result)


@log_tool_call("confirm_promotion", summarize=_summary)
def confirm_promotion(candidate_artifact_id: str, actor: str, reason: str, *,
                      settings: Settings | None = None) -> dict[str, Any]:
    """A human confirms the promotion a self-scored verdict proposed (outcome awaiting_confirmation).

    Applies the proposed promotion against the same head, recorded as an
    operator action with reason code confirmed_by_human; refuses when the
    last verdict is not awaiting confirmation, the head moved, or the
    candidate's files changed since they were pinned.
    """
    from .evaluate import model_hash
    from .evaluation.model_dirs import resolve_model_dir
    from .store.operator import record_confirmation, require_human

    actor, reason = require_human(actor, reason, "confirming a self-scored promotion")
    settings = settings or Settings.from_env()
    with db.connect(settings, autocommit=True) as conn:
        _resolve(conn, candidate_artifact_id)
        last = db.fetch_one(conn, "last_finished_job_for_artifact", {"artifact_id": candidate_artifact_id})
        if last is None or last["outcome"] != str(decision.Outcome.AWAITING_CONFIRMATION):
            raise GateRefused(f"{candidate_artifact_id} has no verdict awaiting confirmation "
                              f"(last verdict: {last['outcome'] if last else 'none'})")
        proposed = dict(last["result"])
        pin = db.fetch_one(conn, "model_pin", {"artifact_id": candidate_artifact_id})
        digest = model_hash(resolve_model_dir(settings.resolved_artifact_root, candidate_artifact_id))
        if pin is None or pin["model_hash"] != digest:
            raise GateRefused(f"the files of {candidate_artifact_id} changed since the verdict it awaits; re-gate it")
        result = {**proposed, "outcome": proposed["proposed"]["outcome"],
                  "reason_code": str(decision.ReasonCode.CONFIRMED_BY_HUMAN), "confirmed": True,
                  "reason": f"self-scored promotion confirmed by {actor}: {reason} (gate: {proposed['reason']})"}
        with conn.transaction():
            record_confirmation(conn, candidate_artifact_id, actor=actor, reason=reason,
                                details={"job_id": last["id"], "compared_against": proposed.get("compared_against")})
            apply_result(conn, result, None, actor=actor)
        get_logger(__name__).warning("promotion_confirmed", candidate_id=candidate_artifact_id,
                                     parent_id=result.get("compared_against"), actor=actor, reason=reason)
        return result


_NON_HUMAN_ACTORS = ("model-eval-gate", "system", "daemon", "root", "postgres")


@log_tool_call("force_promote", summarize=_summary)
def force_promote(candidate_artifact_id: str, actor: str, reason: str, *,
                  settings: Settings | None = None) -> dict[str, Any]:
    """The only override: promote a candidate over the current head, recorded with the human who did it."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("force_promote needs a human actor (a person's name or login)")
    if actor.strip().lower() in _NON_HUMAN_ACTORS or actor.strip().lower().startswith(("agent-", "agent:")):
        raise ValueError(f"force_promote needs a human actor; {actor!r} is a service or agent identity")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("force_promote needs a reason, recorded in the audit trail")
    reason = check_reason(reason)
    actor = check_reason(actor, what="actor")
    settings = settings or Settings.from_env()
    with db.connect(settings, autocommit=True) as conn:
        for _ in range(MAX_HEAD_MOVES + 1):
            resolved = _resolve(conn, candidate_artifact_id)
            active = db.fetch_one(conn, "active_job_for_artifact", {"artifact_id": candidate_artifact_id})
            if active and active["status"] == "running":
                raise GateRefused(f"{candidate_artifact_id} is being gated right now by {active['worker_id']}; "
                                  "wait for its verdict, then force-promote if you still need to")
            head = resolved["head"]
            result = {
                "candidate_id": candidate_artifact_id, "parent_id": resolved["candidate"]["parent_version_id"],
                "compared_against": head["id"] if head else None, "outcome": "promote",
                "reason_code": str(decision.ReasonCode.FORCED_PROMOTION), "magnitude": "not_applicable", "forced": True,
                "reason": f"force-promoted by {actor.strip()}: {reason.strip()}", "metric_table": [],
            }
            try:
                apply_result(conn, result, None, actor=actor.strip())
            except HeadMoved:
                continue
            db.execute(conn, "cancel_queued_jobs_for_artifact", {
                "artifact_id": candidate_artifact_id, "why": f"force-promoted by {actor.strip()}"})
            get_logger(__name__).warning("force_promoted", candidate_id=candidate_artifact_id,
                                         parent_id=result["compared_against"], actor=actor.strip(), reason=reason)
            return result
    raise RuntimeError("the lineage head kept moving; try again")


__all__ = ["run_eval_gate", "run_eval_gate_quick", "force_promote", "confirm_promotion", "GateRefused", "GateCancelled", "NotApplicable",
           "LeaseLost"]
