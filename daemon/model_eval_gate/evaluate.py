"""Runs one model's eval.py on a benchmark split and caches the predictions.

A model's evaluation is keyed by (artifact, benchmark, split hash, model
directory hash, environment hash, run key): while neither the directory, the
split, the model's environment nor the run conditions (sandboxed or not,
interpreter and environment, limits: see evaluation/run_conditions.py) change, the stored predictions are reused, so a
parent is evaluated once however many candidates are compared with it, and an
evaluation made unsandboxed is never reused by a sandboxed gate.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from . import db, fingerprint
from .benchmark import Benchmark
from .config import Settings
from .evaluation import environments
from .evaluation.model_dirs import UnsafeArtifactId, UnsafeModelDirectory, resolve_model_dir
from .evaluation.run_conditions import run_key
from .logging import get_logger
from .model_dir_hash import HashLimits, ModelDirectoryRefused, hash_model_dir
from .sandbox.workdirs import process_work_dir

log = get_logger(__name__)

# Finished evaluations whose storing a lost connection interrupted, by cache
# key: the next evaluation of the same model on the same split (the job's
# retry, in this process) stores and uses it instead of running eval.py again.
_UNSTORED: dict[tuple[str, ...], "Evaluation"] = {}
_UNSTORED_KEEP = 32
STORE_RETRY_SECONDS = 20.0


class EvaluationError(RuntimeError):
    """An evaluation that cannot produce predictions; reason_code says which kind."""

    def __init__(self, reason_code: str, message: str, *, stderr: str | None = None):
        self.reason_code = reason_code
        self.stderr = stderr
        super().__init__(message)


@dataclass(frozen=True, eq=False)
class Evaluation:
    artifact_id: str
    benchmark_id: str
    split_hash: str
    model_hash: str
    predictions: np.ndarray  # aligned to the benchmark's example order
    example_ids: tuple[str, ...] | None
    self_reported: bool
    sandboxed: bool
    wall_seconds: float | None
    cpu_seconds: float | None
    peak_rss_bytes: int | None
    cached: bool
    timings: dict = field(default_factory=dict)
    environment: dict | None = None  # the model's declared environment: hash, python, built or cache hit

    @property
    def environment_hash(self) -> str:
        """'' for the default interpreter, else the declared environment's content address."""
        return (self.environment or {}).get("hash", "")
    # The whole sandbox's peak and how it was measured (SandboxResult.memory_scope):
    # only "cgroup" and "process_tree" are whole-sandbox figures.
    peak_memory_bytes: int | None = None
    memory_scope: str = "largest_process"

    def summary(self) -> dict:
        return {
            "artifact_id": self.artifact_id, "model_hash": self.model_hash, "cached": self.cached,
            "sandboxed": self.sandboxed, "wall_seconds": self.wall_seconds, "cpu_seconds": self.cpu_seconds,
            "peak_rss_bytes": self.peak_rss_bytes, "peak_memory_bytes": self.peak_memory_bytes,
            "memory_scope": self.memory_scope, "n_examples": int(self.predictions.shape[0]),
            "self_reported": self.self_reported, **({"timings": self.timings} if self.timings else {}),
            **({"environment": self.environment} if self.environment else {}),
        }


def model_dir(settings: Settings, artifact_id: str) -> Path:
    """Where a model's files live (unchecked: evaluate() resolves it with resolve_model_dir first)."""
    return settings.resolved_artifact_root / "models" / artifact_id


def model_hash(directory: Path) -> str:
    """sha256 over relative paths and contents; symlinks hash their target text, never followed."""
    digest = hashlib.sha256()
    root = Path(directory)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix().encode()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                digest.update(b"L" + relative + b"\0" + os.readlink(path).encode() + b"\0")
            elif stat.S_ISREG(info.st_mode):
                digest.update(b"F" + relative + b"\0" + str(info.st_size).encode() + b"\0")
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
    return digest.hexdigest()


def _limits(settings: Settings, wall_seconds: float | None = None):
    from .sandbox import SandboxLimits

    return SandboxLimits(
        wall_seconds=settings.eval_wall_seconds if wall_seconds is None else wall_seconds,
        cpu_seconds=settings.eval_cpu_seconds,
        address_space_bytes=settings.eval_memory_bytes,
        max_processes=settings.eval_max_processes,
        max_output_bytes=settings.eval_max_output_bytes,
        memory_bytes=settings.eval_sandbox_memory_bytes,
    )


def _plan_environment(settings: Settings, directory: Path) -> environments.EnvironmentPlan | None:
    try:
        return environments.plan_environment(directory, environments.BuildSettings.from_settings(settings))
    except environments.ModelEnvironmentError as exc:
        raise EvaluationError("environment_failure", f"the model's environment: {exc}") from exc


def _build_environment(settings: Settings, plan: environments.EnvironmentPlan, artifact_id: str) -> environments.Environment:
    try:
        return environments.ensure_environment(plan, environments.BuildSettings.from_settings(settings))
    except environments.ModelEnvironmentError as exc:
        raise EvaluationError("environment_failure", f"the environment of {artifact_id} could not be built: {exc}",
                              stderr=exc.log_tail) from exc


def _check_score_range(benchmark: Benchmark, values: np.ndarray, artifact_id: str) -> None:
    """Self-reported values must lie in the benchmark's declared score_range (a model cannot report 1e300)."""
    declared = benchmark.manifest.get("score_range") if benchmark.self_scored else None
    if not declared:
        return
    columns = values.reshape(values.shape[0], -1)
    for index, metric in enumerate(benchmark.metrics):
        if metric not in declared or index >= columns.shape[1]:
            continue
        low, high = declared[metric]
        outside = np.flatnonzero((columns[:, index] < low) | (columns[:, index] > high))
        if outside.size:
            raise EvaluationError(
                "bad_output", f"eval.py of {artifact_id} reported {metric} = {float(columns[outside[0], index])!r} for "
                f"example {benchmark.example_ids[outside[0]] if benchmark.example_ids else outside[0]}, outside the "
                f"benchmark's declared score_range [{low}, {high}] ({outside.size} values outside)")


def run_key_for(settings: Settings, *, sandboxed: bool, environment_hash: str) -> str:
    """The run-conditions part of the cache key for a run under these settings, in this environment.

    The configured limits, not the wall time left after hashing: the run key
    names the conditions a deployment chose, which hashing does not change.
    """
    return run_key(sandboxed=sandboxed, python=settings.sandbox_python, limits=_limits(settings),
                   environment_hash=environment_hash)


def _from_cache(row, benchmark: Benchmark, artifact_id: str, digest: str) -> Evaluation:
    values = np.frombuffer(row["predictions"], dtype="<f8").reshape(row["prediction_shape"]).copy()
    values.setflags(write=False)
    return Evaluation(
        artifact_id=artifact_id, benchmark_id=benchmark.id, split_hash=benchmark.split_hash,
        model_hash=digest, predictions=values, example_ids=benchmark.example_ids,
        self_reported=row["self_reported"], sandboxed=row["sandboxed"],
        wall_seconds=row["wall_seconds"], cpu_seconds=row["cpu_seconds"],
        peak_rss_bytes=row["peak_rss_bytes"], cached=True,
        environment={"hash": row["environment_hash"], "cache_hit": True} if row["environment_hash"] else None,
        peak_memory_bytes=row["peak_memory_bytes"] if row["memory_scope"] else row["peak_rss_bytes"],
        memory_scope=row["memory_scope"] or "largest_process",
    )


def evaluate(conn: psycopg.Connection, settings: Settings, artifact_id: str, benchmark: Benchmark, *,
             use_cache: bool = True, store: bool = True, cancel=None, pinned_hash: str | None = None) -> Evaluation:
    """Evaluate one model on one benchmark, from the cache when possible.

    `pinned_hash`, if given, is the content hash a promoted version's
    directory was pinned with: a directory that no longer hashes to it is not
    run (EvaluationError "model_changed").

    `conn` must be in autocommit mode: no transaction is held open while the
    sandbox runs. `cancel`, if given, is a threading.Event that kills the run.
    """
    from .predictions import PredictionsError, read_predictions
    from .sandbox import SandboxConfigError, SandboxOutputError, SandboxUnavailable, bwrap_available, run_eval_py

    protected = [benchmark.root, *([benchmark.labels_path] if benchmark.labels_path else []),
                 *(row["path"] for row in db.fetch_all(conn, "recorded_benchmark_paths", {}))]
    try:
        directory = resolve_model_dir(settings.resolved_artifact_root, artifact_id, protected=protected)
    except (UnsafeArtifactId, UnsafeModelDirectory) as exc:
        raise EvaluationError("unsafe_model_dir", str(exc)) from exc
    if not (directory / "eval.py").is_file():
        raise EvaluationError("no_eval_py", f"no eval.py for {artifact_id} at {directory / 'eval.py'}")
    # Hashing is part of the evaluation's wall time: what it takes, the sandbox does not get.
    hash_started = time.monotonic()
    try:
        digest = hash_model_dir(directory, HashLimits(
            max_bytes=settings.model_max_bytes, max_files=settings.model_max_files,
            deadline=hash_started + settings.eval_wall_seconds))
    except ModelDirectoryRefused as exc:
        raise EvaluationError("model_dir_refused", f"cannot evaluate {artifact_id}: {exc}") from exc
    if pinned_hash is not None and digest != pinned_hash:
        raise EvaluationError("model_changed", f"the files of {artifact_id} changed since they were pinned by the verdict "
                              f"that promoted it (content hash {pinned_hash[:12]}... is now {digest[:12]}...); "
                              "restore them, or register the changed files as a new version")
    wall_left = math.floor((settings.eval_wall_seconds - (time.monotonic() - hash_started)) * 1000) / 1000
    if wall_left <= 0:
        raise EvaluationError("model_dir_refused", f"hashing the model directory of {artifact_id} used up the "
                                                   f"{settings.eval_wall_seconds} s wall limit")
    plan = _plan_environment(settings, directory)
    environment_hash = plan.key if plan else ""
    expect_sandboxed = bwrap_available(settings.bwrap_path)
    conditions = run_key_for(settings, sandboxed=expect_sandboxed, environment_hash=environment_hash)
    cacheable = benchmark.example_ids is not None  # self-scored runs without an id list are not reused
    key = (artifact_id, benchmark.id, benchmark.split_hash, digest, environment_hash, conditions)
    kept = _UNSTORED.get(key)
    if kept is not None and use_cache:
        if store:
            _store(conn, settings, kept)  # raises while the database is still away: kept for the next try
        log.info("evaluation_recovered", artifact_id=artifact_id, benchmark_id=benchmark.id,
                 why="finished before a database outage; not run again")
        return kept
    if use_cache and cacheable:
        row = db.fetch_one(conn, "cached_evaluation", {
            "artifact_id": artifact_id, "benchmark_id": benchmark.id,
            "split_hash": benchmark.split_hash, "model_hash": digest, "environment_hash": environment_hash,
            "sandboxed": expect_sandboxed, "run_key": conditions,
        })
        if row is not None:
            cached = _from_cache(row, benchmark, artifact_id, digest)
            if store:  # rows stored before fingerprints existed get theirs on first reuse
                fingerprint.ensure_fingerprint(conn, row["id"], cached.predictions, benchmark.id, benchmark.split_hash)
            return cached

    # Built outside the evaluation's wall limit, under its own (docs/environments.md).
    environment = _build_environment(settings, plan, artifact_id) if plan else None
    # Under this process's own locked directory, so that a daemon started after
    # this one is killed mid-run can tell the leftovers are dead (sandbox/workdirs.py).
    work_dir = Path(tempfile.mkdtemp(prefix="meg-eval-", dir=process_work_dir(settings.work_dir)))
    try:
        started = time.perf_counter()
        try:
            result = run_eval_py(
                directory, benchmark.inputs_dir, limits=_limits(settings, wall_left), work_dir=work_dir,
                bwrap=settings.bwrap_path,
                python=environment.interpreter.executable if environment else settings.sandbox_python,
                environment=environment.path if environment else None,
                sandbox_uid=settings.sandbox_uid,
                sandbox_gid=settings.sandbox_gid, allow_unsandboxed=settings.allow_unsandboxed,
                cancel=cancel,
            )
        except SandboxUnavailable as exc:
            raise EvaluationError("sandbox_unavailable", str(exc)) from exc
        except SandboxConfigError as exc:
            raise EvaluationError("sandbox_failure", f"cannot sandbox {artifact_id}: {exc}") from exc
        run_seconds = time.perf_counter() - started
        # The result owns /out (a mounted tmpfs when root): release it whatever happens.
        with result:
            if result.setup_failed:  # bubblewrap said so on its status channel: not the model's doing
                raise EvaluationError("sandbox_unavailable", f"the sandbox for {artifact_id} could not be set up: "
                                                             f"{result.error}")
            if not result.ok:
                raise EvaluationError("sandbox_failure", f"eval.py of {artifact_id} failed: {result.error}",
                                      stderr=result.stderr)
            try:
                predictions = read_predictions(result.out_dir, benchmark, max_bytes=settings.eval_max_output_bytes)
            except (PredictionsError, SandboxOutputError) as exc:
                raise EvaluationError("bad_output", f"eval.py of {artifact_id} wrote unusable output: {exc}") from exc
            _check_score_range(benchmark, predictions.values, artifact_id)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    evaluation = Evaluation(
        artifact_id=artifact_id, benchmark_id=benchmark.id, split_hash=benchmark.split_hash,
        model_hash=digest, predictions=predictions.values, example_ids=predictions.example_ids,
        self_reported=predictions.self_reported, sandboxed=result.sandboxed,
        wall_seconds=result.wall_seconds, cpu_seconds=result.cpu_seconds,
        peak_rss_bytes=result.peak_rss_bytes, cached=False,
        timings={"sandbox_seconds": round(run_seconds, 6),
                 **({"environment_seconds": round(environment.build_seconds, 6)} if environment else {})},
        environment=environment.summary() if environment else None,
        peak_memory_bytes=result.peak_memory_bytes, memory_scope=result.memory_scope,
    )
    # Keyed by how it actually ran (what _store keys it by), not how it was expected to.
    key = (artifact_id, benchmark.id, benchmark.split_hash, digest, environment_hash,
           run_key_for(settings, sandboxed=evaluation.sandboxed, environment_hash=environment_hash))
    if store and cacheable:
        _UNSTORED[key] = evaluation
        while len(_UNSTORED) > _UNSTORED_KEEP:
            _UNSTORED.pop(next(iter(_UNSTORED)))
        _store(conn, settings, evaluation)
    return evaluation


def _store(conn: psycopg.Connection, settings: Settings, evaluation: Evaluation) -> None:
    """Store a finished evaluation, through reconnects: eval.py's minutes are not thrown away for a blip.

    On the caller's connection first; if that connection is lost, on fresh
    ones for up to STORE_RETRY_SECONDS. If the database stays away, the
    evaluation stays in _UNSTORED and the error propagates (the worker hands
    the job back without counting the attempt; its retry finds it there).
    """
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

    params = {
        "artifact_id": evaluation.artifact_id, "benchmark_id": evaluation.benchmark_id,
        "split_hash": evaluation.split_hash, "model_hash": evaluation.model_hash,
        "predictions": np.ascontiguousarray(evaluation.predictions, dtype="<f8").tobytes(),
        "prediction_shape": list(evaluation.predictions.shape), "n_examples": int(evaluation.predictions.shape[0]),
        "self_reported": evaluation.self_reported, "sandboxed": evaluation.sandboxed,
        "wall_seconds": evaluation.wall_seconds, "cpu_seconds": evaluation.cpu_seconds,
        "peak_rss_bytes": evaluation.peak_rss_bytes, "environment_hash": evaluation.environment_hash,
        "peak_memory_bytes": evaluation.peak_memory_bytes, "memory_scope": evaluation.memory_scope,
        "run_key": run_key_for(settings, sandboxed=evaluation.sandboxed, environment_hash=evaluation.environment_hash),
    }
    key = (evaluation.artifact_id, evaluation.benchmark_id, evaluation.split_hash, evaluation.model_hash,
           evaluation.environment_hash, params["run_key"])
    target = {"conn": conn}

    def store_once() -> None:
        connection = target["conn"]
        if connection is None or connection.closed:
            connection = target["conn"] = db.connect(settings, autocommit=True)
        try:
            stored = db.fetch_one(connection, "store_evaluation", params)
            # A second statement, not part of the insert: a crash between the two
            # leaves the fingerprint NULL, and the next cache hit fills it in.
            # By id: rows of the same model under other run conditions hold
            # other predictions.
            if stored is not None:
                fingerprint.ensure_fingerprint(connection, stored["id"], evaluation.predictions,
                                               evaluation.benchmark_id, evaluation.split_hash)
        except Exception as exc:
            if db.is_connection_loss(exc):
                if connection is not conn:
                    connection.close()
                target["conn"] = None
                log.warning("evaluation_store_retry", artifact_id=evaluation.artifact_id, error=str(exc).strip())
            raise

    try:
        for attempt in Retrying(retry=retry_if_exception(db.is_connection_loss),
                                wait=wait_exponential_jitter(multiplier=0.5, max=5.0),
                                stop=stop_after_delay(STORE_RETRY_SECONDS), reraise=True):
            with attempt:
                store_once()
    except Exception as exc:
        if not db.is_connection_loss(exc):  # not an outage: nothing to keep it for
            _UNSTORED.pop(key, None)
        raise
    finally:
        if target["conn"] is not None and target["conn"] is not conn:
            target["conn"].close()
    _UNSTORED.pop(key, None)
