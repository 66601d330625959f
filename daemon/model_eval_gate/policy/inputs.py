"""Input checks the policy's modules share (pure)."""
from __future__ import annotations

import math
from typing import Any


class DecisionInputError(ValueError):
    """The caller passed inputs the policy cannot be applied to (a programming error)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_finite_non_negative(name: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise DecisionInputError(f"{name} must be a finite number >= 0, got {value!r}")
