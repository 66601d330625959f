"""Behavioural fingerprints: how a model behaves on a benchmark, as one 256-d vector.

The fingerprint of an evaluation is a random projection of its standardised
prediction vector, so models can be searched by what they do rather than by
what their metadata claims (pgvector, HNSW, cosine distance).

Definition (version 1; changing any of it changes every stored fingerprint):

1. Flatten the predictions row-major ((n,) as is, multiclass (n, K) to n*K
   values) and standardise them to zero mean and unit variance (population
   standard deviation). Standardising makes the fingerprint blind to an
   affine rescaling of the predictions, so the cosine distance between two
   fingerprints estimates 1 - Pearson correlation of the two prediction
   vectors (Johnson-Lindenstrauss: inner products of unit vectors survive a
   random projection to 256 dimensions within a few hundredths, and nearby
   vectors stay nearby in proportion to their distance).
2. Project with a matrix S of random signs (+1/-1: Achlioptas' database-
   friendly projection, as good as a Gaussian one for JL) that depends only
   on the benchmark id and the split hash, so every model evaluated on that
   split is projected the same way. Element i of the flattened vector has
   row i of S; rows come in blocks of BLOCK_ELEMENTS, and block b is
   SHAKE-256(seed || b as 8 big-endian bytes), 32 bytes per row, bits taken
   most significant first, a set bit meaning +1. seed is SHA-256 of the JSON
   text ["model-eval-gate/fingerprint/v1", benchmark_id, split_hash]. An
   extendable hash rather than numpy's Generator: stored fingerprints must
   stay comparable with ones computed by later numpy versions, whose
   Generator distributions may change; SHAKE-256 never does. Beyond one
   scaled copy of the predictions, memory is one block of S (1024 x 256
   signs, 2 MiB), whatever the split size.
3. L2-normalise the 256 sums.

A constant prediction vector has no standardised form (zero variance). Its
fingerprint is then the normalised projection of the all-ones vector, so
every constant model on a split shares one fingerprint ("degenerate"), at
cosine distance near 1 from every non-constant one (a standardised vector is
orthogonal to the all-ones vector, and the projection nearly keeps that).

Identity is never decided by fingerprints alone: a fingerprint distance below
DUPLICATE_MAX_COSINE_DISTANCE only nominates a stored evaluation, and
exact_duplicates() then compares the stored predictions element for element.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from . import db
from .logging import get_logger

log = get_logger(__name__)

#: Length of every fingerprint; the vector(256) column in migration 0006.
DIMENSIONS = 256

#: Rows of the sign matrix generated at a time (part of the definition: block
#: b's signs come from one SHAKE-256 stream), 1024 x 256 signs = 2 MiB as float64.
BLOCK_ELEMENTS = 1024

_PROJECTION_DOMAIN = "model-eval-gate/fingerprint/v1"

#: Fingerprints closer than this (cosine distance) nominate an evaluation for
#: the exact predictions check. Identical predictions give bit-identical
#: fingerprints, whose distance pgvector computes in float32 as 0 up to ~1e-7;
#: 1e-4 (a correlation above 0.9999) leaves room for that and nominates little else.
DUPLICATE_MAX_COSINE_DISTANCE = 1e-4

#: Nearest neighbours checked exactly when looking for duplicates of a candidate.
DUPLICATE_CANDIDATES = 10

#: hnsw.ef_search for a search (SET LOCAL): the HNSW index returns at most
#: ef_search rows, and pgvector filters them (benchmark, split, excluded
#: version) only afterwards, so with a filter it may return fewer than asked.
#: The search asks the index for FETCH_FACTOR*k + FETCH_EXTRA rows (room for
#: versions with several stored evaluations) with ef_search EF_SEARCH_PER_ROW
#: times that, at least EF_SEARCH_MIN; when fewer than k distinct versions
#: come back, it repeats the search exactly (see nearest()).
EF_SEARCH_MIN = 100
EF_SEARCH_PER_ROW = 4
EF_SEARCH_MAX = 1000  # pgvector's upper limit for hnsw.ef_search
FETCH_FACTOR = 2
FETCH_EXTRA = 10


class FingerprintError(ValueError):
    """Predictions that cannot be fingerprinted (empty, or not finite numbers)."""


class SimilarityError(ValueError):
    """A similarity search that cannot be answered; the message says why."""


class UnknownVersion(SimilarityError):
    """The artifact id names no artifact."""


class NoStoredEvaluation(SimilarityError):
    """The version has no stored evaluation (on the benchmark asked for)."""


@dataclass(frozen=True, eq=False)
class Fingerprint:
    vector: np.ndarray  # float64, unit length, DIMENSIONS long
    degenerate: bool  # constant predictions: the all-ones direction, shared by every constant model


@dataclass(frozen=True)
class Neighbour:
    """A stored evaluation found by a similarity search, with its version's lineage and state."""

    artifact_id: str
    cosine_distance: float
    lineage_id: str
    version_number: int
    promotion_state: str | None  # None: an artifact with no model_versions row
    title: str
    created_at: datetime
    eval_id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id, "cosine_distance": self.cosine_distance,
            "lineage_id": self.lineage_id, "version_number": self.version_number,
            "promotion_state": self.promotion_state, "title": self.title,
            "created_at": self.created_at.isoformat(), "eval_id": self.eval_id,
        }


@dataclass(frozen=True)
class SimilarVersions:
    """The answer of `model-eval-gate similar`: the query version and its nearest neighbours."""

    artifact_id: str
    lineage_id: str
    version_number: int
    promotion_state: str | None
    benchmark_id: str
    split_hash: str
    k: int
    method: str  # "index" (nearest_fingerprints answered) or "exact_scan" (the fallback, see nearest())
    ef_search: int | None
    neighbours: tuple[Neighbour, ...]


# ---------------------------------------------------------------- compute --

def projection_seed(benchmark_id: str, split_hash: str) -> bytes:
    """The 32-byte seed of the sign matrix shared by every model on this benchmark split."""
    if not isinstance(benchmark_id, str) or not benchmark_id:
        raise FingerprintError(f"benchmark_id must be a non-empty string, got {benchmark_id!r}")
    if not isinstance(split_hash, str) or not split_hash:
        raise FingerprintError(f"split_hash must be a non-empty string, got {split_hash!r}")
    payload = json.dumps([_PROJECTION_DOMAIN, benchmark_id, split_hash], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).digest()


def _signs(seed: bytes, block_index: int, rows: int) -> np.ndarray:
    stream = hashlib.shake_256(seed + block_index.to_bytes(8, "big")).digest(rows * DIMENSIONS // 8)
    signs = np.unpackbits(np.frombuffer(stream, dtype=np.uint8)).reshape(rows, DIMENSIONS).astype(np.float64)
    signs *= 2.0
    signs -= 1.0
    return signs


def _project(n_values: int, block_values, seed: bytes) -> np.ndarray:
    """S^T z for the vector z whose block [start, stop) block_values(start, stop) returns."""
    total = np.zeros(DIMENSIONS)
    for block_index, start in enumerate(range(0, n_values, BLOCK_ELEMENTS)):
        stop = min(start + BLOCK_ELEMENTS, n_values)
        total += block_values(start, stop) @ _signs(seed, block_index, stop - start)
    return total


def compute_fingerprint(predictions: Any, benchmark_id: str, split_hash: str) -> Fingerprint:
    """The fingerprint of predictions (aligned to the benchmark's example order) on one split."""
    values = np.asarray(predictions, dtype=np.float64)
    if values.ndim not in (1, 2) or values.size == 0:
        raise FingerprintError(f"predictions must be a non-empty (n,) or (n, K) array, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise FingerprintError("predictions contain NaN or infinite values; they cannot be fingerprinted")
    seed = projection_seed(benchmark_id, split_hash)
    flat = np.ascontiguousarray(values).reshape(-1)  # row-major: example by example, class by class
    # Dividing by the largest magnitude first keeps the variance finite for any
    # finite input; it does not change the standardised vector.
    peak = float(np.max(np.abs(flat)))
    scaled = flat / peak if peak > 0 else flat
    mean = float(scaled.mean())
    spread = float(scaled.std())
    if spread > 0:
        projected = _project(flat.size, lambda start, stop: (scaled[start:stop] - mean) / spread, seed)
        norm = float(np.linalg.norm(projected))
        if norm > 0:
            return Fingerprint(projected / norm, degenerate=False)
    # Constant predictions (or, with probability ~2**-256, a projection that
    # cancels exactly): the direction of the all-ones vector on this split.
    projected = _project(flat.size, lambda start, stop: np.ones(stop - start), seed)
    return Fingerprint(projected / np.linalg.norm(projected), degenerate=True)


def as_array(stored: Any) -> np.ndarray:
    """A vector column's value as a float32 numpy array.

    pgvector-python's psycopg loader returns numpy arrays before 0.4 and
    pgvector.Vector objects since; both come out the same here.
    """
    if hasattr(stored, "to_numpy"):
        stored = stored.to_numpy()
    return np.asarray(stored, dtype=np.float32)


def cosine_distance(a: Any, b: Any) -> float:
    """1 - cos(a, b), as pgvector's <=> computes it (in float64 here)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(1.0 - (a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------ available --

class FingerprintsDisabled(SimilarityError):
    """pgvector is not usable in this database; the message says what a superuser or DBA must do."""


def unavailable_reason(conn: psycopg.Connection) -> str | None:
    """None when fingerprints work here; otherwise why not, and how to turn them on.

    pgvector is optional (migration 0006): without it the gate still finds
    no-op candidates exactly (byte-equal stored predictions), and only
    `similar` is unavailable.
    """
    row = db.fetch_one(conn, "fingerprints_status")
    if row["has_column"] and row["type_visible"]:
        return None
    if row["extension_schema"] and not row["type_visible"]:
        return (f"pgvector is installed in schema {row['extension_schema']}, which is not on this role's "
                f"search_path; a DBA runs: ALTER ROLE {conn.info.user} SET search_path = \"$user\", public, "
                f"{row['extension_schema']}")
    return row["detail"] or ("pgvector is not installed in this database; a superuser runs once: "
                             "CREATE EXTENSION vector; then: model-eval-gate migrate")


# ------------------------------------------------------------------ store --

def store_fingerprint(conn: psycopg.Connection, *, artifact_id: str, benchmark_id: str, split_hash: str,
                      model_hash: str, predictions: np.ndarray) -> bool:
    """Fill in the fingerprint of a stored evaluation that has none. True if it wrote one."""
    if unavailable_reason(conn):
        return False
    fingerprint = compute_fingerprint(predictions, benchmark_id, split_hash)
    row = db.fetch_one(conn, "store_fingerprint", {
        "fingerprint": fingerprint.vector, "artifact_id": artifact_id, "benchmark_id": benchmark_id,
        "split_hash": split_hash, "model_hash": model_hash,
    })
    return row is not None


def ensure_fingerprint(conn: psycopg.Connection, eval_id: int, predictions: np.ndarray, benchmark_id: str,
                       split_hash: str) -> bool:
    """Backfill one stored evaluation (e.g. a cached one from before migration 0006). True if it wrote one."""
    if unavailable_reason(conn):
        return False
    row = db.fetch_one(conn, "fingerprint_missing", {"id": eval_id})
    if row is None or not row["missing"]:
        return False
    fingerprint = compute_fingerprint(predictions, benchmark_id, split_hash)
    return db.fetch_one(conn, "set_fingerprint", {"id": eval_id, "fingerprint": fingerprint.vector}) is not None


def stored_predictions(row: dict) -> np.ndarray:
    """An eval_results row's predictions (bytea, little-endian float64) in their stored shape."""
    return np.frombuffer(row["predictions"], dtype="<f8").reshape(row["prediction_shape"])


def backfill_fingerprints(conn: psycopg.Connection, *, benchmark_id: str | None = None,
                          split_hash: str | None = None) -> int:
    """Fingerprint every stored evaluation that has none (optionally one benchmark split). Returns how many.

    One row in memory at a time: stored predictions can be large.
    """
    filled, after = 0, 0
    while True:
        ids = [r["id"] for r in db.fetch_all(conn, "evaluations_missing_fingerprint", {
            "benchmark_id": benchmark_id, "split_hash": split_hash, "after": after, "limit": 100})]
        if not ids:
            return filled
        for eval_id in ids:
            row = db.fetch_one(conn, "evaluation_predictions", {"id": eval_id})
            if row is not None:
                fingerprint = compute_fingerprint(stored_predictions(row), row["benchmark_id"], row["split_hash"])
                if db.fetch_one(conn, "set_fingerprint", {"id": eval_id, "fingerprint": fingerprint.vector}):
                    filled += 1
        after = ids[-1]


def fingerprint_of(conn: psycopg.Connection, evaluation) -> np.ndarray:
    """The fingerprint of an Evaluation: the stored one, else computed from its predictions (nothing written)."""
    if unavailable_reason(conn):
        return compute_fingerprint(evaluation.predictions, evaluation.benchmark_id, evaluation.split_hash).vector
    row = db.fetch_one(conn, "stored_fingerprint", {
        "artifact_id": evaluation.artifact_id, "benchmark_id": evaluation.benchmark_id,
        "split_hash": evaluation.split_hash, "model_hash": evaluation.model_hash})
    if row is not None and row["fingerprint"] is not None:
        return as_array(row["fingerprint"]).astype(np.float64)
    return compute_fingerprint(evaluation.predictions, evaluation.benchmark_id, evaluation.split_hash).vector


# ----------------------------------------------------------------- search --

def _neighbour(row: dict) -> Neighbour:
    # float32 rounding can make the distance of identical vectors a hair below 0.
    return Neighbour(artifact_id=row["artifact_id"], cosine_distance=max(0.0, float(row["distance"])),
                     lineage_id=row["lineage_id"], version_number=row["version_number"],
                     promotion_state=row["promotion_state"], title=row["title"], created_at=row["created_at"],
                     eval_id=row["eval_id"])


def search_plan(k: int) -> tuple[int, int]:
    """(rows asked of the HNSW index, hnsw.ef_search) for a search of k versions."""
    fetch = FETCH_FACTOR * k + FETCH_EXTRA
    return fetch, min(EF_SEARCH_MAX, max(EF_SEARCH_MIN, EF_SEARCH_PER_ROW * fetch))


def nearest(conn: psycopg.Connection, vector: Any, *, benchmark_id: str, split_hash: str, k: int,
            exclude_artifact_id: str | None = None) -> tuple[list[Neighbour], str, int | None]:
    """The k versions whose fingerprints on this split are nearest to vector, nearest first.

    One row per version (its nearest stored evaluation). Returns (neighbours,
    method, ef_search). nearest_fingerprints answers first ("index"), with
    hnsw.ef_search set for this transaction only: on a large split the
    planner serves it from the HNSW index (approximate), on a small one it may
    prefer the (benchmark_id, split_hash) btree and an exact sort. If it
    yields fewer than k versions (the split has fewer, or the index's
    candidates were mostly other splits' or repeat evaluations of one
    version), an exact scan of the split's fingerprints answers instead
    ("exact_scan"), so a search never silently lists fewer versions than it could.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise SimilarityError(f"k must be a whole number of at least 1, got {k!r}")
    query = as_array(vector)
    if query.shape != (DIMENSIONS,):
        raise SimilarityError(f"a fingerprint has {DIMENSIONS} dimensions, got shape {query.shape}")
    params = {"v": query, "benchmark_id": benchmark_id, "split_hash": split_hash, "exclude": exclude_artifact_id,
              "k": k}
    fetch, ef_search = search_plan(k)
    with conn.transaction():
        if fetch <= EF_SEARCH_MAX:
            db.execute(conn, "set_hnsw_ef_search", {"ef_search": str(ef_search)})
            rows = db.fetch_all(conn, "nearest_fingerprints", {**params, "fetch": fetch})
            if len(rows) == k:
                return [_neighbour(r) for r in rows], "index", ef_search
        rows = db.fetch_all(conn, "nearest_fingerprints_exact", params)
    return [_neighbour(r) for r in rows], "exact_scan", None


def exact_duplicates(conn: psycopg.Connection, predictions: np.ndarray, *, benchmark_id: str, split_hash: str,
                     exclude_artifact_id: str, vector: Any = None) -> list[Neighbour]:
    """Stored versions whose predictions on this split equal these exactly, earliest registered first.

    The fingerprint index nominates the DUPLICATE_CANDIDATES nearest versions;
    those within DUPLICATE_MAX_COSINE_DISTANCE are confirmed by comparing the
    stored predictions element for element. Without pgvector the split's
    stored predictions are compared byte for byte instead (identical_predictions).
    """
    if unavailable_reason(conn):
        expected = np.ascontiguousarray(predictions, dtype="<f8")
        rows = db.fetch_all(conn, "identical_predictions", {
            "benchmark_id": benchmark_id, "split_hash": split_hash, "exclude": exclude_artifact_id,
            "shape": list(expected.shape), "predictions": expected.tobytes()})
        return sorted((_neighbour(r) for r in rows), key=lambda n: (n.created_at, n.artifact_id))
    if vector is None:
        vector = compute_fingerprint(predictions, benchmark_id, split_hash).vector
    expected = np.asarray(predictions, dtype=np.float64)
    neighbours, _, _ = nearest(conn, vector, benchmark_id=benchmark_id, split_hash=split_hash,
                               k=DUPLICATE_CANDIDATES, exclude_artifact_id=exclude_artifact_id)
    confirmed = []
    for neighbour in neighbours:
        if neighbour.cosine_distance > DUPLICATE_MAX_COSINE_DISTANCE:
            break  # nearest first: nothing further can qualify
        row = db.fetch_one(conn, "evaluation_predictions", {"id": neighbour.eval_id})
        if row is not None and np.array_equal(stored_predictions(row), expected):
            confirmed.append(neighbour)
    return sorted(confirmed, key=lambda n: (n.created_at, n.artifact_id))


def similar_versions(conn: psycopg.Connection, artifact_id: str, *, k: int = 10,
                     benchmark_id: str | None = None) -> SimilarVersions:
    """The k versions that behave most like artifact_id on a benchmark (default: of its latest evaluation).

    Evaluations stored before fingerprints existed are fingerprinted first
    (derived data, written once), so the search sees every stored version.
    Raises FingerprintsDisabled (a SimilarityError) without pgvector.
    """
    reason = unavailable_reason(conn)
    if reason:
        raise FingerprintsDisabled(f"similar needs behavioural fingerprints, which are disabled here: {reason}")
    version = db.fetch_one(conn, "version_for_similarity", {"id": artifact_id})
    if version is None:
        raise UnknownVersion(f"no artifact {artifact_id!r}")
    evaluation = db.fetch_one(conn, "latest_evaluation_of", {"artifact_id": artifact_id, "benchmark_id": benchmark_id})
    if evaluation is None:
        if benchmark_id is None:
            raise NoStoredEvaluation(f"{artifact_id} has no stored evaluation: gate it first "
                                     f"(model-eval-gate gate {artifact_id})")
        elsewhere = [r["benchmark_id"]
                     for r in db.fetch_all(conn, "benchmarks_evaluated", {"artifact_id": artifact_id})]
        raise NoStoredEvaluation(
            f"{artifact_id} has no stored evaluation on benchmark {benchmark_id!r}"
            + (f"; it has evaluations on: {', '.join(elsewhere)}" if elsewhere else "; it has none on any benchmark"))
    filled = backfill_fingerprints(conn, benchmark_id=evaluation["benchmark_id"], split_hash=evaluation["split_hash"])
    if filled:
        log.info("fingerprints_backfilled", benchmark_id=evaluation["benchmark_id"], count=filled)
    if evaluation["fingerprint"] is None:  # filled just now, here or by a concurrent caller
        evaluation = db.fetch_one(conn, "latest_evaluation_of",
                                  {"artifact_id": artifact_id, "benchmark_id": evaluation["benchmark_id"]})
    neighbours, method, ef_search = nearest(
        conn, evaluation["fingerprint"], benchmark_id=evaluation["benchmark_id"],
        split_hash=evaluation["split_hash"], k=k, exclude_artifact_id=artifact_id)
    return SimilarVersions(
        artifact_id=artifact_id, lineage_id=version["lineage_id"], version_number=version["version_number"],
        promotion_state=version["promotion_state"], benchmark_id=evaluation["benchmark_id"],
        split_hash=evaluation["split_hash"], k=k, method=method, ef_search=ef_search, neighbours=tuple(neighbours))


__all__ = [
    "DIMENSIONS", "DUPLICATE_MAX_COSINE_DISTANCE", "Fingerprint", "FingerprintError", "FingerprintsDisabled",
    "Neighbour", "unavailable_reason",
    "NoStoredEvaluation", "SimilarVersions", "SimilarityError", "UnknownVersion", "as_array", "backfill_fingerprints",
    "compute_fingerprint", "cosine_distance", "ensure_fingerprint", "exact_duplicates", "fingerprint_of",
    "nearest", "projection_seed", "search_plan", "similar_versions", "store_fingerprint", "stored_predictions",
]
