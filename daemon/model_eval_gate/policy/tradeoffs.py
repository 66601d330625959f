"""Tradeoff claims (pure): what a candidate's tradeoff_justification may claim,
how a claim is parsed, and how it is checked against what the gate measured.

A candidate worse on its primary metric may still be promoted with a
tradeoff when it claims, and the gate verifies, that it is cheaper: fewer
parameters (counted from its weight files), lower latency (the median of
repeated runs) or less whole-sandbox memory. docs/model_promotion_policy.md,
section 6, is the rule; decision.py applies the assessment made here.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .codes import ReasonCode
from .inputs import _require_finite_non_negative

#: The only claims a tradeoff_justification may make; each is verified by the gate.
TRADEOFF_KEYS: tuple[str, ...] = ("param_count", "latency", "memory")

#: The one free-text key allowed beside the claims; never verified, only recorded.
TRADEOFF_RATIONALE_KEY = "rationale"

#: A claim is verified when measured candidate/parent ratio <= claimed ratio * (1 + this).
CLAIM_TOLERANCE = 0.10

#: The smallest reduction a tradeoff claim may claim ("-10%", "1.12x"): a
#: cheaper-by-a-hair claim would otherwise buy a worse model a promotion.
MIN_CLAIMED_REDUCTION = 0.10


class ClaimStatus(StrEnum):
    VERIFIED = "verified"
    NOT_MET = "not_met"
    UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class TradeoffEvidence:
    """What the gate itself measured or read, to check tradeoff claims against.

    Parameter counts are measured from each version's weight files
    (evaluation/weights.py), never read from metadata; wall seconds are the
    median of repeated back-to-back sandboxed runs of both versions; peak
    memory counts only when measured over the whole sandbox (memory_scope
    "cgroup" or "process_tree"). None means "not available", which makes a
    claim that needs it unverifiable.
    """

    candidate_parameter_count: int | None = None
    parent_parameter_count: int | None = None
    candidate_wall_seconds: float | None = None
    parent_wall_seconds: float | None = None
    candidate_peak_memory_bytes: int | None = None
    parent_peak_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "candidate_parameter_count",
            "parent_parameter_count",
            "candidate_wall_seconds",
            "parent_wall_seconds",
            "candidate_peak_memory_bytes",
            "parent_peak_memory_bytes",
        ):
            value = getattr(self, name)
            if value is not None:
                _require_finite_non_negative(name, value)


# Which evidence verifies which claim, and how to name it in a sentence.
_CLAIM_EVIDENCE: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "param_count": ("candidate_parameter_count", "parent_parameter_count", "parameter count"),
        "latency": ("candidate_wall_seconds", "parent_wall_seconds", "eval wall seconds"),
        "memory": ("candidate_peak_memory_bytes", "parent_peak_memory_bytes", "whole-sandbox peak memory bytes"),
    }
)
if tuple(_CLAIM_EVIDENCE) != TRADEOFF_KEYS:  # pragma: no cover - guards an edit to one and not the other
    raise ImportError("every TRADEOFF_KEYS entry needs a source of evidence in _CLAIM_EVIDENCE")


@dataclass(frozen=True)
class TradeoffClaim:
    """One well-formed, allowlisted claim: candidate/parent must be at most max_ratio."""

    key: str
    text: str
    max_ratio: float


@dataclass(frozen=True)
class TradeoffProblem:
    """Why (part of) a justification cannot be used. key is None for the justification as a whole."""

    key: str | None
    reason_code: ReasonCode
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "reason_code": str(self.reason_code), "message": self.message}


@dataclass(frozen=True)
class ParsedTradeoff:
    claims: tuple[TradeoffClaim, ...]
    rationale: str | None
    problems: tuple[TradeoffProblem, ...]


_CLAIM_PATTERN = re.compile(r"^([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|x|X|\u00d7)$")


def _parse_claim(key: str, value: Any) -> TradeoffClaim | TradeoffProblem:
    def malformed(message: str) -> TradeoffProblem:
        return TradeoffProblem(key, ReasonCode.TRADEOFF_MALFORMED, message)

    if not isinstance(value, str):
        return malformed(f"claim {key}={value!r} must be a string such as '-50%' or '4x'")
    match = _CLAIM_PATTERN.match(value.strip().replace("\u2212", "-"))
    if match is None:
        return malformed(f"claim {key}={value!r} is not of the form '-50%', '4x' or '-4x'")
    sign, number_text, unit = match.groups()
    number = float(number_text)
    if unit == "%":
        if sign != "-":
            return malformed(
                f"claim {key}={value!r}: a percentage must be a reduction with a leading minus, e.g. '-50%'"
            )
        if not 0 < number < 100:
            return malformed(f"claim {key}={value!r}: a percentage reduction must lie strictly between 0% and 100%")
        return _at_least_minimum(TradeoffClaim(key, value, 1.0 - number / 100.0))
    if sign == "+":
        return malformed(f"claim {key}={value!r} is ambiguous: write '4x' or '-4x' for four times smaller")
    if not number > 1:
        return malformed(f"claim {key}={value!r}: a reduction factor must be greater than 1")
    return _at_least_minimum(TradeoffClaim(key, value, 1.0 / number))


def _at_least_minimum(claim: TradeoffClaim) -> TradeoffClaim | TradeoffProblem:
    reduction = 1.0 - claim.max_ratio
    if reduction + 1e-12 < MIN_CLAIMED_REDUCTION:
        return TradeoffProblem(
            claim.key, ReasonCode.TRADEOFF_CLAIM_TOO_SMALL,
            f"claim {claim.key}={claim.text!r} claims a {100 * reduction:.4g}% reduction; the policy accepts "
            f"only claims of at least {100 * MIN_CLAIMED_REDUCTION:.4g}%")
    return claim


def parse_tradeoff_claims(justification: Any) -> ParsedTradeoff:
    """Split a metadata.tradeoff_justification into well-formed claims, its rationale and its problems.

    Never raises on bad content: every problem is returned with its reason code
    so that the verdict can explain it to the author.
    """
    if not isinstance(justification, Mapping):
        return ParsedTradeoff(
            (),
            None,
            (
                TradeoffProblem(
                    None,
                    ReasonCode.TRADEOFF_MALFORMED,
                    f"tradeoff_justification must be an object of claims, got {type(justification).__name__}",
                ),
            ),
        )
    claims: list[TradeoffClaim] = []
    problems: list[TradeoffProblem] = []
    rationale: str | None = None
    for key in sorted(justification, key=str):
        value = justification[key]
        if key == TRADEOFF_RATIONALE_KEY:
            if isinstance(value, str):
                rationale = value
            else:
                problems.append(
                    TradeoffProblem(
                        key, ReasonCode.TRADEOFF_MALFORMED, f"rationale must be text, got {type(value).__name__}"
                    )
                )
        elif key not in TRADEOFF_KEYS:
            problems.append(
                TradeoffProblem(
                    str(key),
                    ReasonCode.TRADEOFF_UNVERIFIABLE,
                    f"claim {key!r} is not one the gate can verify (allowed: {', '.join(TRADEOFF_KEYS)})",
                )
            )
        else:
            parsed = _parse_claim(key, value)
            (claims if isinstance(parsed, TradeoffClaim) else problems).append(parsed)
    if not claims and not any(p.key in TRADEOFF_KEYS for p in problems):
        problems.append(
            TradeoffProblem(
                None,
                ReasonCode.TRADEOFF_UNVERIFIABLE,
                f"tradeoff_justification makes no verifiable claim (allowed: {', '.join(TRADEOFF_KEYS)})",
            )
        )
    return ParsedTradeoff(tuple(claims), rationale, tuple(problems))


@dataclass(frozen=True)
class ClaimCheck:
    """A claim checked against evidence: measured_ratio = candidate_value / parent_value."""

    key: str
    claimed: str
    claimed_max_ratio: float
    allowed_max_ratio: float
    candidate_value: float | None
    parent_value: float | None
    measured_ratio: float | None
    status: ClaimStatus
    note: str

    @property
    def verified(self) -> bool:
        return self.status is ClaimStatus.VERIFIED

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "claimed": self.claimed,
            "claimed_max_ratio": self.claimed_max_ratio,
            "allowed_max_ratio": self.allowed_max_ratio,
            "measured": {"candidate": self.candidate_value, "parent": self.parent_value, "ratio": self.measured_ratio},
            "verified": self.verified,
            "status": str(self.status),
            "note": self.note,
        }


def _check_claim(claim: TradeoffClaim, evidence: TradeoffEvidence | None) -> ClaimCheck:
    candidate_field, parent_field, label = _CLAIM_EVIDENCE[claim.key]
    candidate_value = None if evidence is None else getattr(evidence, candidate_field)
    parent_value = None if evidence is None else getattr(evidence, parent_field)
    allowed = claim.max_ratio * (1.0 + CLAIM_TOLERANCE)

    def check(status: ClaimStatus, ratio: float | None, note: str) -> ClaimCheck:
        return ClaimCheck(
            claim.key, claim.text, claim.max_ratio, allowed, candidate_value, parent_value, ratio, status, note
        )

    missing = [who for who, value in (("candidate", candidate_value), ("parent", parent_value)) if value is None]
    if missing:
        return check(ClaimStatus.UNVERIFIABLE, None, f"no {label} measured for the {' or '.join(missing)}")
    if parent_value == 0:
        return check(ClaimStatus.UNVERIFIABLE, None, f"the parent's {label} is 0, so no reduction can be measured")
    ratio = candidate_value / parent_value
    if ratio <= allowed:
        return check(
            ClaimStatus.VERIFIED,
            ratio,
            f"{label} ratio {ratio:.4g} is within the allowed {allowed:.4g} (claimed {claim.max_ratio:.4g})",
        )
    return check(
        ClaimStatus.NOT_MET,
        ratio,
        f"{label} ratio {ratio:.4g} exceeds the allowed {allowed:.4g} (claimed {claim.max_ratio:.4g})",
    )


@dataclass(frozen=True)
class TradeoffAssessment:
    rationale: str | None
    checks: tuple[ClaimCheck, ...]
    problems: tuple[TradeoffProblem, ...]

    @property
    def verified(self) -> bool:
        return not self.problems and bool(self.checks) and all(c.verified for c in self.checks)

    @property
    def failure_codes(self) -> tuple[ReasonCode, ...]:
        """Reason codes of everything that keeps the tradeoff from being verified, in precedence order."""
        found = {p.reason_code for p in self.problems}
        found |= {ReasonCode.TRADEOFF_UNVERIFIABLE for c in self.checks if c.status is ClaimStatus.UNVERIFIABLE}
        found |= {ReasonCode.TRADEOFF_CLAIM_NOT_MET for c in self.checks if c.status is ClaimStatus.NOT_MET}
        order = (ReasonCode.TRADEOFF_MALFORMED, ReasonCode.TRADEOFF_CLAIM_TOO_SMALL, ReasonCode.TRADEOFF_UNVERIFIABLE,
                 ReasonCode.TRADEOFF_CLAIM_NOT_MET)
        return tuple(code for code in order if code in found)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "rationale": self.rationale,
            "claims": {c.key: c.as_dict() for c in self.checks},
            "problems": [p.as_dict() for p in self.problems],
        }


def assess_tradeoff(justification: Any, evidence: TradeoffEvidence | None) -> TradeoffAssessment:
    """Parse a tradeoff_justification and verify each claim against the gate's own evidence."""
    parsed = parse_tradeoff_claims(justification)
    return TradeoffAssessment(
        parsed.rationale, tuple(_check_claim(c, evidence) for c in parsed.claims), parsed.problems
    )
