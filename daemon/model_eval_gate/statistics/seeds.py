"""Bootstrap seeds (pure): where a comparison's resamples come from.

A seed is a SHA-256 digest of what the comparison is about, so it is stable
across processes and Python versions, fits a PostgreSQL bigint, and cannot
be re-rolled by whoever submits the candidate (docs/model_promotion_policy.md,
holdout accounting).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


_SEED_DOMAIN = "model-eval-gate/paired-bootstrap/v1"


def derive_seed(candidate_id: str, parent_id: str | None) -> int:
    """Bootstrap seed for a (candidate, parent) pair: SHA-256 based, in [0, 2**63).

    Fits a PostgreSQL bigint and a JSON number; stable across processes and
    Python versions (unlike hash()).  parent_id None (a root version) and ""
    give different seeds.
    """
    if not isinstance(candidate_id, str) or not candidate_id:
        raise ValueError(f"candidate_id must be a non-empty string, got {candidate_id!r}")
    if parent_id is not None and not isinstance(parent_id, str):
        raise ValueError(f"parent_id must be a string or None, got {parent_id!r}")
    payload = json.dumps([_SEED_DOMAIN, candidate_id, parent_id], ensure_ascii=False).encode("utf-8")
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "big") >> 1


_SPLIT_SEED_DOMAIN = "model-eval-gate/paired-bootstrap/split+reference/v1"


def derive_split_seed(split_hash: str, reference_predictions: Any) -> int:
    """Bootstrap seed of a comparison: from the split and the compared (reference) model's predictions.

    Not from any id, so a candidate resubmitted under a new id, or a sibling,
    is resampled on exactly the same draws as every other candidate compared
    with that head on that split: identical predictions get a bit-identical
    interval and near-identical ones a near-identical interval; re-rolling
    the bootstrap by re-registering is impossible.  In [0, 2**63).
    """
    if not isinstance(split_hash, str) or not split_hash:
        raise ValueError(f"split_hash must be a non-empty string, got {split_hash!r}")
    values = np.ascontiguousarray(np.asarray(reference_predictions, dtype="<f8"))
    digest = hashlib.sha256()
    digest.update(json.dumps([_SPLIT_SEED_DOMAIN, split_hash, list(values.shape)]).encode("utf-8"))
    digest.update(values.tobytes())
    return int.from_bytes(digest.digest()[:8], "big") >> 1
