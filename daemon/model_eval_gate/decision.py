"""The promotion policy: turns already-computed statistics into a verdict.

Pure: no I/O, no clock, no randomness. Every threshold is a module-level
constant documented in docs/model_promotion_policy.md, and a test keeps the
document and this module in step; change both together.

The policy's vocabulary (outcomes, reason codes: policy/codes.py) and its
tradeoff-claim rules (policy/tradeoffs.py) have modules of their own; this
module applies them and re-exports their names, so `decision.X` still names
every constant the policy document lists.

Orientation: every rule works on *oriented* values, where positive means the
candidate is better. For a metric where lower is better the oriented delta is
-delta and the oriented interval is (-ci_high, -ci_low).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from model_eval_gate.policy.codes import REASON_OUTCOMES, MetricRole, Outcome, ReasonCode
from model_eval_gate.policy.inputs import DecisionInputError, _is_number, _require_finite_non_negative
from model_eval_gate.policy.tradeoffs import (  # noqa: F401 (re-exported: their constants are policy constants too)
    assess_tradeoff,
    CLAIM_TOLERANCE,
    ClaimCheck,
    ClaimStatus,
    MIN_CLAIMED_REDUCTION,
    parse_tradeoff_claims,
    ParsedTradeoff,
    TRADEOFF_KEYS,
    TRADEOFF_RATIONALE_KEY,
    TradeoffAssessment,
    TradeoffClaim,
    TradeoffEvidence,
    TradeoffProblem,
)
from model_eval_gate.statistics.delong import DeLongResult
from model_eval_gate.statistics.power import mde_from_interval
from model_eval_gate.stats import BootstrapResult

# --------------------------------------------------------------------------
# Policy constants (docs/model_promotion_policy.md, "Constants")
# --------------------------------------------------------------------------

#: Two-sided confidence level every interval the policy reads must carry.
CONFIDENCE = 0.95

#: Non-inferiority margin, in the primary metric's own units, used when a
#: benchmark declares none. Sized for metrics on a 0..1 scale (AUROC,
#: accuracy, average precision); benchmarks on other scales must declare one.
DEFAULT_NON_INFERIORITY_MARGIN = 0.01

#: Metrics on a 0..1 scale, where DEFAULT_NON_INFERIORITY_MARGIN means one
#: percentage point; a benchmark whose primary metric is any other must
#: declare its margin (benchmark registration refuses it otherwise).
UNIT_SCALE_METRICS: tuple[str, ...] = ("auroc", "average_precision", "accuracy")

#: (bucket, exclusive upper bound of the effect the interval is sure of, in
#: magnitude units): the distance of the oriented CI from zero (0 when the CI
#: contains zero) divided by the benchmark's magnitude_unit (default: its
#: non-inferiority margin). The last bucket has no upper bound.
MAGNITUDE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("negligible", 0.5),
    ("small", 2.0),
    ("moderate", 5.0),
    ("large", None),
)

#: Magnitude when the magnitude unit is 0 (a margin of 0 and no
#: magnitude_unit) and the interval excludes zero: there is no scale to size it on.
MAGNITUDE_UNDEFINED = "undefined"

#: Every compared verdict states the primary metric's minimum detectable
#: effect at this power (statistics/power.py), read off its own interval.
MDE_POWER = 0.8

#: A guardrail tolerance under this many standard errors of the guardrail's
#: delta vetoes equal candidates often (Phi(1.96 - t/SE): 15% at 3 SE, 58% at
#: 1.8 SE); the verdict warns (guardrail_warnings).
GUARDRAIL_MIN_STANDARD_ERRORS = 3.0

#: A benchmark whose primary metric or a guardrail is a rank metric (auroc,
#: average_precision) needs at least this many examples of each class to be
#: registered: below it the interval's error rate is not under control
#: (docs/model_promotion_policy.md 15.3).
MIN_RANK_CLASS_COUNT = 20

#: Fewer resamples than this make a percentile interval's ends noisy enough to
#: move the false-promotion rate (9.4% at 10 resamples, n = 200): such a
#: verdict is advisory only (run_eval_gate_quick), never binding.
MIN_BINDING_RESAMPLES = 1000

#: Magnitude when nothing was compared (root versions, errors).
MAGNITUDE_NOT_APPLICABLE = "not_applicable"

#: A metric's interval is trusted only when the metric was defined in at least
#: this fraction of resamples (e.g. AUROC is undefined on single-class resamples).
MIN_VALID_RESAMPLE_FRACTION = 0.90


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkPolicy:
    """The decision-relevant part of a benchmark's benchmark.json.

    higher_is_better gives each metric's direction; it must cover the primary
    metric and every guardrail (root versions have no BootstrapResult to say it).
    floor is a minimum for a higher-is-better primary metric, a maximum otherwise.
    guardrails maps metric -> tolerance in that metric's units.
    """

    primary_metric: str
    higher_is_better: Mapping[str, bool]
    non_inferiority_margin: float = DEFAULT_NON_INFERIORITY_MARGIN
    floor: float | None = None
    guardrails: Mapping[str, float] = field(default_factory=dict)
    # The unit magnitudes are measured in (primary metric units); None: the margin.
    magnitude_unit: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.primary_metric, str) or not self.primary_metric:
            raise DecisionInputError(f"primary_metric must be a non-empty string, got {self.primary_metric!r}")
        if not isinstance(self.higher_is_better, Mapping):
            raise DecisionInputError("higher_is_better must be a mapping of metric -> bool")
        for metric, direction in self.higher_is_better.items():
            if not isinstance(direction, bool):
                raise DecisionInputError(f"higher_is_better[{metric!r}] must be a bool, got {direction!r}")
        _require_finite_non_negative("non_inferiority_margin", self.non_inferiority_margin)
        if self.magnitude_unit is not None:
            _require_finite_non_negative("magnitude_unit", self.magnitude_unit)
        if self.floor is not None and (not _is_number(self.floor) or not math.isfinite(self.floor)):
            raise DecisionInputError(f"floor must be a finite number or None, got {self.floor!r}")
        if not isinstance(self.guardrails, Mapping):
            raise DecisionInputError("guardrails must be a mapping of metric -> tolerance")
        for metric, tolerance in self.guardrails.items():
            _require_finite_non_negative(f"guardrail tolerance for {metric!r}", tolerance)
        if self.primary_metric in self.guardrails:
            raise DecisionInputError(
                f"{self.primary_metric!r} is the primary metric and cannot also be a guardrail"
            )
        undirected = [m for m in (self.primary_metric, *self.guardrails) if m not in self.higher_is_better]
        if undirected:
            raise DecisionInputError(f"higher_is_better has no direction for {sorted(undirected)}")
        # Frozen means frozen: callers cannot mutate the policy through the mappings they passed.
        object.__setattr__(self, "higher_is_better", MappingProxyType(dict(self.higher_is_better)))
        object.__setattr__(self, "guardrails", MappingProxyType(dict(self.guardrails)))

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], higher_is_better: Mapping[str, bool]) -> "BenchmarkPolicy":
        """Build from a benchmark.json mapping (keys primary_metric, non_inferiority_margin, floor, guardrails)."""
        if "primary_metric" not in manifest:
            raise DecisionInputError("benchmark manifest has no primary_metric")
        margin = manifest.get("non_inferiority_margin")
        return cls(
            primary_metric=manifest["primary_metric"],
            higher_is_better=higher_is_better,
            non_inferiority_margin=DEFAULT_NON_INFERIORITY_MARGIN if margin is None else margin,
            floor=manifest.get("floor"),
            guardrails=manifest.get("guardrails") or {},
            magnitude_unit=manifest.get("magnitude_unit"),
        )

    @property
    def primary_higher_is_better(self) -> bool:
        return self.higher_is_better[self.primary_metric]

    @property
    def effective_magnitude_unit(self) -> float:
        return self.non_inferiority_margin if self.magnitude_unit is None else self.magnitude_unit

    def as_dict(self) -> dict[str, Any]:
        return {
            "primary_metric": self.primary_metric,
            "higher_is_better": self.primary_higher_is_better,
            "non_inferiority_margin": self.non_inferiority_margin,
            "floor": self.floor,
            "guardrails": dict(sorted(self.guardrails.items())),
            "magnitude_unit": self.effective_magnitude_unit,
        }


# --------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MetricRow:
    """One row of the metric table; raw (not oriented) values, None where undefined or absent."""

    metric: str
    role: MetricRole
    higher_is_better: bool | None
    candidate: float | None
    parent: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    relative_delta: float | None = None
    n_valid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "role": str(self.role),
            "higher_is_better": self.higher_is_better,
            "candidate": _finite_or_none(self.candidate),
            "parent": _finite_or_none(self.parent),
            "delta": _finite_or_none(self.delta),
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
            "relative_delta": _finite_or_none(self.relative_delta),
            "n_valid": self.n_valid,
        }


@dataclass(frozen=True)
class BaselineComparison:
    """The biocreep check: candidate vs the lineage's best unforced promotion that needed no tradeoff.

    is_parent is True when that baseline is the parent itself (baseline_comparisons
    was None); the check then coincides with the primary non-inferiority test.
    """

    version_id: str | None
    is_parent: bool
    metric: str
    higher_is_better: bool
    candidate: float
    baseline: float
    delta: float
    ci_low: float
    ci_high: float
    oriented_ci_low: float
    margin: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "is_parent": self.is_parent,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "oriented_ci_low": self.oriented_ci_low,
            "margin": self.margin,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and everything needed to explain and audit it.

    reason_code is the first failed check in the documented precedence order;
    failed_checks lists every failed check (empty for a promotion).
    """

    outcome: Outcome
    reason_code: ReasonCode
    reason: str
    magnitude: str
    primary_metric: str | None
    metric_table: tuple[MetricRow, ...] = ()
    failed_checks: tuple[ReasonCode, ...] = ()
    tradeoff: TradeoffAssessment | None = None
    compared_with_baseline: BaselineComparison | None = None
    policy: BenchmarkPolicy | None = None
    seed: int | None = None
    n_resamples: int | None = None
    duplicate_of: str | None = None
    error: str | None = None
    confidence: float = CONFIDENCE
    # True for a quick pre-check (run_eval_gate_quick, dry runs): never applied.
    advisory: bool = False
    # Guardrails whose tolerance is too small for this split (guardrail_warnings).
    guardrail_warnings: tuple[Mapping[str, Any], ...] = ()
    # DeLong's paired test beside the bootstrap (AUROC primary), with "agrees".
    cross_check: Mapping[str, Any] | None = None
    # The primary change detected with MDE_POWER on this split (primary units).
    minimum_detectable_effect: float | None = None
    # How the primary interval was made when not by the percentile bootstrap
    # of independent examples: {"interval", "degrees_of_freedom", "resampled"}.
    resampling: Mapping[str, Any] | None = None
    # awaiting_confirmation only: the verdict a human is asked to confirm.
    proposed_outcome: Outcome | None = None
    proposed_reason_code: ReasonCode | None = None

    @property
    def promotes(self) -> bool:
        return self.outcome in (Outcome.PROMOTE, Outcome.PROMOTE_WITH_TRADEOFF)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN, no enums, no tuples): the shape stored in audit records."""
        return {
            "outcome": str(self.outcome),
            "reason_code": str(self.reason_code),
            "reason": self.reason,
            "failed_checks": [str(code) for code in self.failed_checks],
            "magnitude": self.magnitude,
            "primary_metric": self.primary_metric,
            "metric_table": [row.as_dict() for row in self.metric_table],
            "tradeoff": None if self.tradeoff is None else self.tradeoff.as_dict(),
            "compared_with_baseline": (
                None if self.compared_with_baseline is None else self.compared_with_baseline.as_dict()
            ),
            "policy": None if self.policy is None else self.policy.as_dict(),
            "confidence": self.confidence,
            "seed": self.seed,
            "n_resamples": self.n_resamples,
            "duplicate_of": self.duplicate_of,
            "error": self.error,
            "advisory": self.advisory,
            "cross_check": None if self.cross_check is None else dict(self.cross_check),
            "guardrail_warnings": [dict(w) for w in self.guardrail_warnings],
            "minimum_detectable_effect": _finite_or_none(self.minimum_detectable_effect),
            "mde_power": MDE_POWER if self.minimum_detectable_effect is not None else None,
            "resampling": None if self.resampling is None else dict(self.resampling),
            **({"proposed": {"outcome": str(self.proposed_outcome), "reason_code": str(self.proposed_reason_code)}}
               if self.proposed_outcome is not None else {}),
        }


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Oriented:
    delta: float
    ci_low: float
    ci_high: float
    relative_delta: float | None


def _orient(result: BootstrapResult) -> _Oriented:
    if result.higher_is_better:
        return _Oriented(result.delta, result.ci_low, result.ci_high, result.relative_delta)
    relative = None if result.relative_delta is None else -result.relative_delta
    return _Oriented(-result.delta, -result.ci_high, -result.ci_low, relative)


def magnitude_bucket(oriented_ci_low: float, oriented_ci_high: float, unit: float) -> str:
    """Bucket of the effect the interval is sure of: its distance from zero, in magnitude units.

    Absolute, so the parameterisation does not matter (accuracy 0.98 -> 0.99
    and error 0.02 -> 0.01 get the same bucket), and conservative: an
    interval that contains zero is 'negligible' whatever its point estimate.
    """
    sure = max(oriented_ci_low, -oriented_ci_high, 0.0)
    if sure == 0.0:
        return MAGNITUDE_BUCKETS[0][0]
    if not unit > 0:
        return MAGNITUDE_UNDEFINED
    size = sure / unit
    for name, upper in MAGNITUDE_BUCKETS:
        if upper is None or size < upper:
            return name
    raise AssertionError("MAGNITUDE_BUCKETS must end with an unbounded bucket")  # pragma: no cover


def _direction(higher_is_better: bool | None) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def _ci_text(result: BootstrapResult) -> str:
    return f"{level_text(result.confidence)} CI [{result.ci_low:+.4g}, {result.ci_high:+.4g}]"


def level_text(confidence: float) -> str:
    """95% stays "95%"; an attempt's level keeps its digits: "99.62%", "99.99970%"."""
    percent = 100.0 * confidence
    if abs(percent - round(percent)) < 1e-9:
        return f"{round(percent)}%"
    digits = 2
    while digits < 8 and round(percent, digits) >= 100.0:
        digits += 1
    return f"{percent:.{digits}f}%"


def _change_text(result: BootstrapResult, role: str = "Primary metric") -> str:
    return (
        f"{role} {result.metric} went from {result.parent:.4g} to {result.candidate:.4g} "
        f"(delta {result.delta:+.4g}, {_ci_text(result)}, {_direction(result.higher_is_better)})"
    )


def _relative_text(oriented: _Oriented, magnitude: str) -> str:
    if oriented.relative_delta is None or not math.isfinite(oriented.relative_delta):
        return f"relative change undefined because the parent scored 0, magnitude {magnitude}"
    return f"relative change {oriented.relative_delta:+.2%}, magnitude {magnitude}"


def _meets_floor(value: float, floor: float | None, higher_is_better: bool) -> bool:
    if floor is None:
        return True
    return value >= floor if higher_is_better else value <= floor


def _floor_text(metric: str, value: float, floor: float, higher_is_better: bool) -> str:
    bound = "a minimum" if higher_is_better else "a maximum"
    return (
        f"The candidate's {metric} of {value:.4g} does not meet the benchmark floor of {floor:.4g} "
        f"({bound}, {_direction(higher_is_better)})"
    )


def _also(failed: list[ReasonCode]) -> str:
    rest = [str(code) for code in failed[1:]]
    return f"; also failed: {', '.join(rest)}" if rest else ""


def _validate_comparisons(
    comparisons: Mapping[str, BootstrapResult], policy: BenchmarkPolicy, what: str, required: tuple[str, ...],
    confidence: float = CONFIDENCE,
) -> None:
    if not isinstance(comparisons, Mapping):
        raise DecisionInputError(f"{what} must be a mapping of metric -> BootstrapResult")
    for name, result in comparisons.items():
        if not isinstance(result, BootstrapResult):
            raise DecisionInputError(f"{what}[{name!r}] is {type(result).__name__}, not BootstrapResult")
        if result.metric != name:
            raise DecisionInputError(f"{what}[{name!r}] describes metric {result.metric!r}")
        if not isinstance(result.n_resamples, int) or result.n_resamples < 1:
            raise DecisionInputError(f"{what}[{name!r}].n_resamples must be a positive int, got {result.n_resamples!r}")
        if not isinstance(result.n_valid, int) or not 0 <= result.n_valid <= result.n_resamples:
            raise DecisionInputError(
                f"{what}[{name!r}].n_valid must lie in 0..{result.n_resamples}, got {result.n_valid!r}"
            )
        if not math.isclose(result.confidence, confidence, rel_tol=1e-12):
            raise DecisionInputError(
                f"{what}[{name!r}] has confidence {result.confidence}; this decision is made at {confidence}"
            )
        if math.isfinite(result.ci_low) and math.isfinite(result.ci_high) and result.ci_low > result.ci_high:
            raise DecisionInputError(f"{what}[{name!r}] has ci_low {result.ci_low} > ci_high {result.ci_high}")
        if all(math.isfinite(v) for v in (result.candidate, result.parent, result.delta)) and not math.isclose(
            result.delta, result.candidate - result.parent, rel_tol=1e-9, abs_tol=1e-9
        ):
            raise DecisionInputError(
                f"{what}[{name!r}].delta {result.delta} is not candidate - parent "
                f"({result.candidate} - {result.parent})"
            )
        expected = policy.higher_is_better.get(name)
        if expected is not None and expected != result.higher_is_better:
            raise DecisionInputError(
                f"{what}[{name!r}] says higher_is_better={result.higher_is_better}, the benchmark says {expected}"
            )
    missing = [m for m in required if m not in comparisons]
    if missing:
        raise DecisionInputError(f"{what} lacks the benchmark's metric(s) {missing}")


def _undefined_problem(result: BootstrapResult, against: str) -> tuple[ReasonCode, str] | None:
    """Why a metric the policy acts on cannot be trusted, or None when it can."""
    undefined_points = [
        name for name in ("candidate", "parent") if not math.isfinite(getattr(result, name))
    ]
    if undefined_points:
        return (
            ReasonCode.METRIC_UNDEFINED,
            f"Metric {result.metric} is undefined for the {' and '.join(undefined_points)} on the full split "
            f"(comparison against {against}), so no decision can be made",
        )
    if result.n_valid < MIN_VALID_RESAMPLE_FRACTION * result.n_resamples:
        return (
            ReasonCode.INSUFFICIENT_VALID_RESAMPLES,
            f"Metric {result.metric} was defined in only {result.n_valid} of {result.n_resamples} bootstrap resamples "
            f"(comparison against {against}; at least {MIN_VALID_RESAMPLE_FRACTION:.0%} required), "
            f"so its confidence interval cannot be trusted",
        )
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return (
            ReasonCode.METRIC_UNDEFINED,
            f"Metric {result.metric} has no finite confidence interval (comparison against {against}), "
            f"so no decision can be made",
        )
    return None


def _comparison_table(policy: BenchmarkPolicy, comparisons: Mapping[str, BootstrapResult]) -> tuple[MetricRow, ...]:
    def row(result: BootstrapResult, role: MetricRole) -> MetricRow:
        return MetricRow(
            result.metric,
            role,
            result.higher_is_better,
            result.candidate,
            result.parent,
            result.delta,
            result.ci_low,
            result.ci_high,
            result.relative_delta,
            result.n_valid,
        )

    guardrails = sorted(policy.guardrails)
    secondary = sorted(m for m in comparisons if m != policy.primary_metric and m not in policy.guardrails)
    return (
        row(comparisons[policy.primary_metric], MetricRole.PRIMARY),
        *(row(comparisons[m], MetricRole.GUARDRAIL) for m in guardrails),
        *(row(comparisons[m], MetricRole.SECONDARY) for m in secondary),
    )


def _validate_scores(candidate_scores: Mapping[str, float], policy: BenchmarkPolicy) -> None:
    if not isinstance(candidate_scores, Mapping):
        raise DecisionInputError("candidate_scores must be a mapping of metric -> value")
    for name, value in candidate_scores.items():
        if not _is_number(value):
            raise DecisionInputError(f"candidate_scores[{name!r}] must be a number, got {value!r}")
    if policy.primary_metric not in candidate_scores:
        raise DecisionInputError(f"candidate_scores lacks the primary metric {policy.primary_metric!r}")


def _scores_table(policy: BenchmarkPolicy, candidate_scores: Mapping[str, float]) -> tuple[MetricRow, ...]:
    def role(metric: str) -> MetricRole:
        if metric == policy.primary_metric:
            return MetricRole.PRIMARY
        return MetricRole.GUARDRAIL if metric in policy.guardrails else MetricRole.SECONDARY

    order = sorted(candidate_scores, key=lambda m: (list(MetricRole).index(role(m)), m))
    return tuple(
        MetricRow(m, role(m), policy.higher_is_better.get(m), candidate_scores[m]) for m in order
    )


def _verdict(code: ReasonCode, reason: str, **fields: Any) -> Verdict:
    # Templates start with a capitalised word (metric names are identifiers and keep their case).
    sentence = reason if reason.endswith((".", "!", "?")) else reason + "."
    return Verdict(outcome=REASON_OUTCOMES[code], reason_code=code, reason=sentence, **fields)


# --------------------------------------------------------------------------
# The biocreep anchor
# --------------------------------------------------------------------------


def biocreep_anchor(plain_promotions: Any, higher_is_better: bool) -> str | None:
    """The version the biocreep guard compares a tradeoff candidate with (policy section 7).

    `plain_promotions` is (version_id, primary point estimate on this
    benchmark) for every promotion of the lineage that needed no tradeoff and
    was not forced, newest first. The anchor is the best of them, the newest
    among equals: anchoring on the latest one instead lets alternating
    tradeoffs and small real gains walk the lineage down a margin at a time.
    None when there is none (a lineage backfilled without such promotions).
    """
    best_id, best_score = None, None
    for version_id, score in plain_promotions:
        if not _is_number(score) or not math.isfinite(score):
            continue
        better = best_score is None or (score > best_score if higher_is_better else score < best_score)
        if better:
            best_id, best_score = version_id, score
    return best_id


# --------------------------------------------------------------------------
# decide
# --------------------------------------------------------------------------


def decide(
    *,
    policy: BenchmarkPolicy | None,
    comparisons: Mapping[str, BootstrapResult] | None = None,
    candidate_scores: Mapping[str, float] | None = None,
    is_root: bool = False,
    tradeoff_justification: Any = None,
    evidence: TradeoffEvidence | None = None,
    baseline_comparisons: Mapping[str, BootstrapResult] | None = None,
    baseline_version_id: str | None = None,
    predictions_identical: bool = False,
    duplicate_of: str | None = None,
    error: str | None = None,
    error_code: ReasonCode | str = ReasonCode.EVALUATION_ERROR,
    confidence: float = CONFIDENCE,
    advisory: bool = False,
    cross_check: DeLongResult | None = None,
    guardrail_standard_errors: Mapping[str, float] | None = None,
    guardrail_baselines: Mapping[str, tuple[str | None, BootstrapResult]] | None = None,
    self_reported: bool = False,
) -> Verdict:
    """Apply the promotion policy (docs/model_promotion_policy.md) to computed statistics.

    confidence is the two-sided level every interval in comparisons carries:
    CONFIDENCE for a single test, or the level holdout multiplicity assigns
    to this attempt (policy/multiplicity.py); the verdict records it.

    error short-circuits everything else. Otherwise a root version needs
    candidate_scores and a non-root version needs comparisons (candidate vs
    parent). baseline_comparisons is the candidate vs the biocreep anchor
    (biocreep_anchor: the lineage's best promotion that needed no tradeoff
    and was not forced); None means that anchor is the parent.
    advisory marks a quick pre-check that is never applied; a binding verdict
    (advisory False) needs at least MIN_BINDING_RESAMPLES resamples.
    self_reported (scores the model reported itself) turns a promotion into
    awaiting_confirmation (require_confirmation).
    Raises DecisionInputError for inputs that break this contract.
    """
    if not _is_number(confidence) or not 0.0 < confidence < 1.0:
        raise DecisionInputError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    verdict = _decide(policy, comparisons, candidate_scores, is_root, tradeoff_justification, evidence,
                      baseline_comparisons, baseline_version_id, predictions_identical, duplicate_of, error,
                      error_code, confidence, advisory, guardrail_baselines)
    if guardrail_standard_errors and is_root and verdict.outcome is not Outcome.ERROR:
        # A root version's evaluation is the first on the split: its spread says what the guardrails can test.
        warnings = guardrail_warnings(policy, guardrail_standard_errors, confidence=confidence)
        if warnings:
            verdict = _warned(verdict, warnings, "future comparisons on this split")
    if cross_check is not None and comparisons is not None and verdict.outcome is not Outcome.ERROR:
        verdict = _with_cross_check(verdict, comparisons[policy.primary_metric], cross_check, confidence)
    verdict = replace(verdict, confidence=confidence, advisory=advisory)
    return require_confirmation(verdict) if self_reported else verdict


def require_confirmation(verdict: Verdict) -> Verdict:
    """A promotion decided on self-reported scores, turned into one that waits for a human (policy 16.6).

    Any other verdict is returned unchanged. Callers that run further checks
    on a would-be promotion (the sealed confirmation split) apply this last.
    """
    if not verdict.promotes:
        return verdict
    return replace(
        verdict, outcome=Outcome.AWAITING_CONFIRMATION, reason_code=ReasonCode.SELF_REPORTED_NEEDS_CONFIRMATION,
        reason=(f"{verdict.reason.rstrip('.')}; but the scores are self-reported by the model, so a human must "
                "confirm the promotion (model-eval-gate confirm, or force-promote)."),
        proposed_outcome=verdict.outcome, proposed_reason_code=verdict.reason_code)


def _with_cross_check(verdict: Verdict, primary: BootstrapResult, delong: DeLongResult,
                      confidence: float) -> Verdict:
    """Record DeLong's test beside the bootstrap and flag a verdict where they disagree on the decision.

    Both are read the same way: the candidate's AUROC is significantly
    better when the lower end of the two-sided interval at the policy's
    confidence (the attempt's level under holdout accounting) is above
    zero. The bootstrap decides; a disagreement is
    recorded and said, never acted on.
    """
    if not isinstance(delong, DeLongResult):
        raise DecisionInputError(f"cross_check must be a DeLongResult, got {type(delong).__name__}")
    if not math.isclose(delong.confidence, confidence, rel_tol=1e-12):
        raise DecisionInputError(f"cross_check has confidence {delong.confidence}; this decision is made at {confidence}")
    by_bootstrap = _orient(primary).ci_low > 0
    by_delong = (delong.ci_low if primary.higher_is_better else -delong.ci_high) > 0
    record = {**delong.as_dict(), "bootstrap_significant": by_bootstrap, "delong_significant": by_delong,
              "agrees": by_bootstrap == by_delong}
    if by_bootstrap == by_delong:
        return replace(verdict, cross_check=record)
    z = "undefined" if delong.z is None else f"{delong.z:+.3g}"
    note = (f"DeLong's paired test disagrees with the bootstrap on whether the change is significant "
            f"(z = {z}, p = {delong.p_value:.3g}, {level_text(confidence)} CI [{delong.ci_low:+.4g}, {delong.ci_high:+.4g}]); "
            f"the bootstrap decides and the disagreement is recorded")
    return replace(verdict, reason=f"{verdict.reason} {note}.", cross_check=record)


def _decide(policy, comparisons, candidate_scores, is_root, tradeoff_justification, evidence, baseline_comparisons,
            baseline_version_id, predictions_identical, duplicate_of, error, error_code, confidence,
            advisory, guardrail_baselines=None) -> Verdict:
    if error is not None:
        return _decide_error(policy, error, error_code)
    if not isinstance(policy, BenchmarkPolicy):
        raise DecisionInputError("policy (a BenchmarkPolicy) is required unless error is given")
    if is_root and comparisons is not None:
        raise DecisionInputError("a root version has no parent to compare with; pass candidate_scores, not comparisons")
    if not is_root and candidate_scores is not None:
        raise DecisionInputError("candidate_scores is for root versions; a version with a parent needs comparisons")
    if is_root and baseline_comparisons is not None:
        raise DecisionInputError("a root version has no baseline to compare with")
    if comparisons is not None:
        _validate_comparisons(
            comparisons, policy, "comparisons", (policy.primary_metric, *sorted(policy.guardrails)), confidence
        )
    if candidate_scores is not None:
        _validate_scores(candidate_scores, policy)
    if comparisons is not None and not advisory and not predictions_identical:
        drawn = min(r.n_resamples for r in (*comparisons.values(), *(baseline_comparisons or {}).values()))
        if drawn < MIN_BINDING_RESAMPLES:
            code = ReasonCode.TOO_FEW_RESAMPLES
            return _verdict(
                code,
                f"The intervals were computed from {drawn} bootstrap resamples; a binding verdict needs at least "
                f"{MIN_BINDING_RESAMPLES} (set MODEL_EVAL_GATE_N_RESAMPLES to {MIN_BINDING_RESAMPLES} or more, "
                f"or use the advisory quick check), so nothing was decided",
                magnitude=MAGNITUDE_NOT_APPLICABLE, primary_metric=policy.primary_metric,
                failed_checks=(code,), policy=policy, n_resamples=drawn,
            )
    if predictions_identical:
        return _decide_identical(policy, comparisons, candidate_scores, duplicate_of)
    if is_root:
        return _decide_root(policy, candidate_scores)
    if comparisons is None:
        raise DecisionInputError("comparisons (candidate vs parent) are required for a version with a parent")
    verdict = _decide_against_parent(
        policy, comparisons, tradeoff_justification, evidence, baseline_comparisons, baseline_version_id,
        guardrail_baselines,
    )
    verdict = _with_guardrail_warnings(verdict, policy, comparisons)
    return _with_resampling_note(_with_power_note(verdict, comparisons[policy.primary_metric]),
                                 comparisons[policy.primary_metric])


def _with_guardrail_warnings(verdict: Verdict, policy: BenchmarkPolicy,
                             comparisons: Mapping[str, BootstrapResult]) -> Verdict:
    """Warn about guardrails this split cannot test at their tolerance (SE read off each guardrail's interval)."""
    from model_eval_gate.statistics.intervals import normal_quantile, t_quantile

    if verdict.outcome is Outcome.ERROR:
        return verdict
    standard_errors, dfs = {}, {}
    confidence = comparisons[policy.primary_metric].confidence  # every interval of a decision shares it
    for name in policy.guardrails:
        result = comparisons[name]
        if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
            continue
        q = (normal_quantile(0.5 + result.confidence / 2) if result.degrees_of_freedom is None
             else t_quantile(0.5 + result.confidence / 2, result.degrees_of_freedom))
        standard_errors[name] = (result.ci_high - result.ci_low) / (2 * q)
        dfs[name] = result.degrees_of_freedom
    warnings = guardrail_warnings(policy, standard_errors, dfs, confidence)
    return _warned(verdict, warnings, "this split") if warnings else verdict


def _warned(verdict: Verdict, warnings: tuple[dict[str, Any], ...], where: str) -> Verdict:
    notes = "; ".join(
        f"guardrail {w['metric']}'s tolerance {w['tolerance']:.4g} is only {w['tolerance_in_standard_errors']:.2g} "
        f"standard errors on {where}, so an exactly equal candidate is vetoed about "
        f"{w['equal_candidate_veto_probability']:.0%} of the time" for w in warnings)
    return replace(verdict, reason=f"{verdict.reason} Warning: {notes}.", guardrail_warnings=warnings)


def _with_power_note(verdict: Verdict, primary: BootstrapResult) -> Verdict:
    """State the minimum detectable effect, so 'not significant' differs from 'cannot be seen here'."""
    if verdict.outcome is Outcome.ERROR or not (math.isfinite(primary.ci_low) and math.isfinite(primary.ci_high)):
        return verdict
    mde = mde_from_interval(primary.ci_low, primary.ci_high, primary.confidence, df=primary.degrees_of_freedom,
                            power=MDE_POWER)
    note = (f"At {MDE_POWER:.0%} power this split detects a {primary.metric} change of about {mde:.3g} or more"
            f" (minimum detectable effect)")
    return replace(verdict, reason=f"{verdict.reason} {note}.", minimum_detectable_effect=mde)


def _with_resampling_note(verdict: Verdict, primary: BootstrapResult) -> Verdict:
    """Say in the verdict how the interval was made when it was not the plain percentile bootstrap."""
    if primary.interval == "percentile" and primary.resampled == "examples":
        return verdict
    note = f"Resamples drew {primary.resampled}"
    if primary.interval == "few_groups_t":
        note += (f"; with so few groups the interval is a t interval on {primary.degrees_of_freedom} degrees of "
                 f"freedom, not a percentile interval")
    elif primary.interval == "few_positives_t":
        note += (f"; with so few examples of one class the interval is a t interval on "
                 f"{primary.degrees_of_freedom} degrees of freedom and power is low")
    elif primary.interval == "normal_tail":
        note += ("; at this level too few resamples lie beyond the percentile ends, so the interval's ends are "
                 "the normal tail of the resampled deltas (mean -/+ z x standard deviation)")
    elif primary.interval != "percentile":
        note += f"; the interval is {primary.interval}"
    resampling = {"interval": primary.interval, "degrees_of_freedom": primary.degrees_of_freedom,
                  "resampled": primary.resampled}
    return replace(verdict, reason=f"{verdict.reason} {note}.", resampling=resampling)


def _decide_error(policy: BenchmarkPolicy | None, error: str, error_code: ReasonCode | str) -> Verdict:
    if not isinstance(error, str) or not error.strip():
        raise DecisionInputError("error must be a non-empty description of what failed")
    try:
        code = ReasonCode(error_code)
    except ValueError:
        raise DecisionInputError(f"error_code {error_code!r} is not a known reason code") from None
    if REASON_OUTCOMES[code] is not Outcome.ERROR:
        raise DecisionInputError(f"error_code {code.value!r} is not an error reason code")
    return _verdict(
        code,
        f"Evaluation failed ({code.value}): {error.strip()}; nothing was decided",
        magnitude=MAGNITUDE_NOT_APPLICABLE,
        primary_metric=None if policy is None else policy.primary_metric,
        failed_checks=(code,),
        policy=policy,
        error=error.strip(),
    )


def _decide_identical(
    policy: BenchmarkPolicy,
    comparisons: Mapping[str, BootstrapResult] | None,
    candidate_scores: Mapping[str, float] | None,
    duplicate_of: str | None,
) -> Verdict:
    if comparisons is not None:
        table = _comparison_table(policy, comparisons)
        primary = comparisons[policy.primary_metric]
        seed, n_resamples = primary.seed, primary.n_resamples
    else:
        table = () if candidate_scores is None else _scores_table(policy, candidate_scores)
        seed = n_resamples = None
    other = f"version {duplicate_of}" if duplicate_of else "its parent"
    code = ReasonCode.NO_BEHAVIOURAL_CHANGE
    return _verdict(
        code,
        f"The candidate's predictions are exactly identical to those of {other}, "
        f"so it changes no behaviour and is rejected",
        magnitude=MAGNITUDE_BUCKETS[0][0],
        primary_metric=policy.primary_metric,
        metric_table=table,
        failed_checks=(code,),
        policy=policy,
        seed=seed,
        n_resamples=n_resamples,
        duplicate_of=duplicate_of,
    )


def _decide_root(policy: BenchmarkPolicy, candidate_scores: Mapping[str, float] | None) -> Verdict:
    if candidate_scores is None:
        raise DecisionInputError("a root version needs candidate_scores (metric -> value)")
    metric = policy.primary_metric
    table = _scores_table(policy, candidate_scores)
    value = candidate_scores[metric]
    common = dict(
        magnitude=MAGNITUDE_NOT_APPLICABLE, primary_metric=metric, metric_table=table, policy=policy
    )
    if not math.isfinite(value):
        code = ReasonCode.METRIC_UNDEFINED
        return _verdict(
            code,
            f"Root version: {metric} is undefined on the benchmark split, so no decision can be made",
            failed_checks=(code,),
            **common,
        )
    higher = policy.primary_higher_is_better
    if not _meets_floor(value, policy.floor, higher):
        code = ReasonCode.BELOW_FLOOR
        return _verdict(
            code,
            f"{_floor_text(metric, value, policy.floor, higher)}, so this root version is rejected",
            failed_checks=(code,),
            **common,
        )
    floor_note = "no floor is declared" if policy.floor is None else f"this meets the floor of {policy.floor:.4g}"
    return _verdict(
        ReasonCode.ROOT_VERSION,
        f"Root version with no parent: {metric} is {value:.4g} ({_direction(higher)}) and {floor_note}, "
        f"so it is promoted",
        **common,
    )


def _decide_against_parent(
    policy: BenchmarkPolicy,
    comparisons: Mapping[str, BootstrapResult],
    tradeoff_justification: Any,
    evidence: TradeoffEvidence | None,
    baseline_comparisons: Mapping[str, BootstrapResult] | None,
    baseline_version_id: str | None,
    guardrail_baselines: Mapping[str, tuple[str | None, BootstrapResult]] | None = None,
) -> Verdict:
    metric = policy.primary_metric
    primary = comparisons[metric]
    margin = policy.non_inferiority_margin
    common: dict[str, Any] = dict(
        primary_metric=metric,
        metric_table=_comparison_table(policy, comparisons),
        policy=policy,
        seed=primary.seed,
        n_resamples=primary.n_resamples,
    )

    for name in (metric, *sorted(policy.guardrails)):
        problem = _undefined_problem(comparisons[name], "the parent")
        if problem is not None:
            code, reason = problem
            return _verdict(code, reason, magnitude=MAGNITUDE_NOT_APPLICABLE, failed_checks=(code,), **common)

    oriented = _orient(primary)
    magnitude = magnitude_bucket(oriented.ci_low, oriented.ci_high, policy.effective_magnitude_unit)
    common["magnitude"] = magnitude
    improved = oriented.delta >= 0 and oriented.ci_low > 0
    violations = [
        (name, comparisons[name], tolerance)
        for name, tolerance in sorted(policy.guardrails.items())
        if _guardrail_vetoes(comparisons[name], tolerance)
    ]
    floor_met = _meets_floor(primary.candidate, policy.floor, primary.higher_is_better)
    offers_tradeoff = tradeoff_justification is not None and not (
        isinstance(tradeoff_justification, Mapping) and len(tradeoff_justification) == 0
    )
    on_tradeoff_path = offers_tradeoff and not improved

    # Each failed check contributes (code, clause); the first is the verdict's reason_code.
    failures: list[tuple[ReasonCode, str]] = []
    assessment: TradeoffAssessment | None = None
    baseline: BaselineComparison | None = None
    if on_tradeoff_path:
        assessment = assess_tradeoff(tradeoff_justification, evidence)
        baseline_or_error = _biocreep_check(policy, primary, oriented, baseline_comparisons, baseline_version_id)
        if isinstance(baseline_or_error, tuple):
            code, reason = baseline_or_error
            fields = {**common, "magnitude": MAGNITUDE_NOT_APPLICABLE}
            return _verdict(code, reason, failed_checks=(code,), tradeoff=assessment, **fields)
        baseline = baseline_or_error
        failures += _tradeoff_failures(primary, oriented, margin, assessment, baseline)
    elif not improved:
        failures.append(_primary_failure(primary, oriented))

    if violations:
        name, result, tolerance = violations[0]
        more = f" (and {len(violations) - 1} more guardrail(s))" if len(violations) > 1 else ""
        why = (f"the whole interval shows the candidate is worse (a tolerance of 0 means 'not significantly "
               f"worse')" if tolerance == 0 else
               f"the candidate may be worse by up to {-_orient(result).ci_low:.4g}, more than its tolerance of "
               f"{tolerance:.4g}")
        failures.append((ReasonCode.GUARDRAIL_VIOLATED, f"{_change_text(result, 'Guardrail')}: {why}{more}"))
    failures += _cumulative_guardrail_failures(policy, guardrail_baselines, primary.confidence)
    if not floor_met:
        failures.append(
            (ReasonCode.BELOW_FLOOR, _floor_text(metric, primary.candidate, policy.floor, primary.higher_is_better))
        )

    failed = [code for code, _ in failures]
    if failures:
        return _verdict(
            failed[0],
            f"{failures[0][1]}, so the candidate is rejected{_also(failed)}",
            failed_checks=tuple(failed),
            tradeoff=assessment,
            compared_with_baseline=baseline,
            **common,
        )
    relative = _relative_text(oriented, magnitude)
    if not on_tradeoff_path:
        return _verdict(
            ReasonCode.IMPROVED,
            f"{_change_text(primary)}: the interval excludes zero in the candidate's favour ({relative}), "
            f"so the candidate is promoted",
            **common,
        )
    claims = ", ".join(
        f"{c.key} {c.claimed} (measured ratio {c.measured_ratio:.4g})" for c in assessment.checks
    )
    anchor = (
        "the parent"
        if baseline.is_parent
        else f"the parent and baseline version {baseline.version_id or '(unnamed)'}"
    )
    return _verdict(
        ReasonCode.TRADEOFF_VERIFIED,
        f"{_change_text(primary)}: non-inferior to {anchor} within the margin of {margin:.4g}, "
        f"and the tradeoff claims {claims} were verified, so the candidate is promoted with a tradeoff",
        tradeoff=assessment,
        compared_with_baseline=baseline,
        **common,
    )


def _cumulative_guardrail_failures(
    policy: BenchmarkPolicy, guardrail_baselines: Mapping[str, tuple[str | None, BootstrapResult]] | None,
    confidence: float,
) -> list[tuple[ReasonCode, str]]:
    """Each guardrail tested against its own anchor too, so its loss cannot accumulate across promotions.

    `guardrail_baselines` maps a guardrail to (version, candidate vs that
    version): the lineage's plain, unforced promotion with the best value of
    that guardrail (biocreep_anchor applied to the guardrail). A guardrail
    missing there, or undefined against its anchor, is not checked again (it
    was checked against the parent).
    """
    if not guardrail_baselines:
        return []
    losses = []
    for name, tolerance in sorted(policy.guardrails.items()):
        if name not in guardrail_baselines:
            continue
        version_id, result = guardrail_baselines[name]
        _validate_comparisons({name: result}, policy, "guardrail_baselines", (), confidence)
        if _undefined_problem(result, "its anchor") is None and _guardrail_vetoes(result, tolerance):
            losses.append((name, version_id, result, tolerance))
    if not losses:
        return []
    name, version_id, result, tolerance = losses[0]
    more = f" (and {len(losses) - 1} more guardrail(s))" if len(losses) > 1 else ""
    return [(
        ReasonCode.CUMULATIVE_GUARDRAIL_LOSS,
        f"Against version {version_id or '(unnamed)'}, the lineage's best {name} among promotions without a "
        f"tradeoff, guardrail {name} delta is {result.delta:+.4g} ({level_text(confidence)} CI [{result.ci_low:+.4g}, "
        f"{result.ci_high:+.4g}]): the loss accumulated since then may reach {-_orient(result).ci_low:.4g}, more "
        f"than its tolerance of {tolerance:.4g}{more}",
    )]


def _guardrail_vetoes(result: BootstrapResult, tolerance: float) -> bool:
    """Non-inferiority within the tolerance; a tolerance of 0 means "not significantly worse".

    A literal zero-tolerance non-inferiority test would veto an exactly equal
    candidate 97.5% of the time (its interval always reaches below zero), so
    t = 0 vetoes only when the whole oriented interval is below zero.
    """
    oriented = _orient(result)
    return oriented.ci_high < 0 if tolerance == 0 else oriented.ci_low < -tolerance


def guardrail_warnings(policy: BenchmarkPolicy, standard_errors: Mapping[str, float],
                       degrees_of_freedom: Mapping[str, int | None] | None = None,
                       confidence: float = CONFIDENCE) -> tuple[dict[str, Any], ...]:
    """Guardrails whose tolerance is under GUARDRAIL_MIN_STANDARD_ERRORS standard errors of their delta.

    Such a guardrail vetoes an exactly equal candidate with probability about
    Phi(q - t / SE), q the two-sided quantile of `confidence` (1.96 for a
    single test, more at a later holdout attempt): 58% for the demo's brier
    tolerance of 0.005 at n = 4000 and 95%. Each record names the metric,
    tolerance, SE, the tolerance in SEs and that probability.
    """
    from model_eval_gate.statistics.intervals import normal_cdf, normal_quantile, t_cdf, t_quantile

    warnings = []
    for name, tolerance in sorted(policy.guardrails.items()):
        se = standard_errors.get(name)
        if se is None or not math.isfinite(se) or se <= 0 or tolerance == 0:
            continue
        if tolerance >= GUARDRAIL_MIN_STANDARD_ERRORS * se:
            continue
        df = (degrees_of_freedom or {}).get(name)
        q = normal_quantile(0.5 + confidence / 2) if df is None else t_quantile(0.5 + confidence / 2, df)
        veto = normal_cdf(q - tolerance / se) if df is None else t_cdf(q - tolerance / se, df)
        warnings.append({"metric": name, "tolerance": tolerance, "standard_error": se,
                         "tolerance_in_standard_errors": tolerance / se, "equal_candidate_veto_probability": veto})
    return tuple(warnings)


def _primary_failure(primary: BootstrapResult, oriented: _Oriented) -> tuple[ReasonCode, str]:
    """Why a candidate that offers no tradeoff is not an improvement."""
    if oriented.ci_high < 0:
        return ReasonCode.PRIMARY_REGRESSED, f"{_change_text(primary)}: the whole interval shows the candidate is worse"
    why = (
        "the point estimate favours the parent"
        if oriented.ci_low > 0
        else "the interval does not exclude zero in the candidate's favour"
    )
    return ReasonCode.PRIMARY_NOT_IMPROVED, f"{_change_text(primary)}: {why} and no tradeoff justification was given"


def _tradeoff_failures(
    primary: BootstrapResult,
    oriented: _Oriented,
    margin: float,
    assessment: TradeoffAssessment,
    baseline: BaselineComparison,
) -> list[tuple[ReasonCode, str]]:
    """Failed checks of the tradeoff path other than guardrails and floor, in precedence order."""
    failures = [(code, _tradeoff_failure_text(code, assessment)) for code in assessment.failure_codes]
    if oriented.ci_low < -margin:
        failures.append(
            (
                ReasonCode.PRIMARY_INFERIOR,
                f"{_change_text(primary)}: the candidate may be worse by up to {-oriented.ci_low:.4g}, "
                f"more than the non-inferiority margin of {margin:.4g}",
            )
        )
    # A baseline that is the parent was just tested above; failing it again would double-count.
    if not baseline.is_parent and not baseline.passed:
        failures.append(
            (
                ReasonCode.CUMULATIVE_INFERIORITY,
                f"Against baseline version {baseline.version_id or '(unnamed)'}, the lineage's best promotion "
                f"without a tradeoff, {primary.metric} delta is {baseline.delta:+.4g} "
                f"({level_text(primary.confidence)} CI [{baseline.ci_low:+.4g}, {baseline.ci_high:+.4g}]): the cumulative "
                f"loss may reach {-baseline.oriented_ci_low:.4g}, more than the non-inferiority margin "
                f"of {margin:.4g}",
            )
        )
    return failures


def _tradeoff_failure_text(code: ReasonCode, assessment: TradeoffAssessment) -> str:
    if code is ReasonCode.TRADEOFF_CLAIM_NOT_MET:
        details = [f"{c.key} {c.claimed}: {c.note}" for c in assessment.checks if c.status is ClaimStatus.NOT_MET]
        return f"The tradeoff claim(s) are not met by the gate's measurements ({'; '.join(details)})"
    details = [p.message for p in assessment.problems if p.reason_code is code]
    if code is ReasonCode.TRADEOFF_UNVERIFIABLE:
        details += [
            f"{c.key} {c.claimed}: {c.note}" for c in assessment.checks if c.status is ClaimStatus.UNVERIFIABLE
        ]
        return f"The tradeoff justification cannot be verified ({'; '.join(details)})"
    if code is ReasonCode.TRADEOFF_CLAIM_TOO_SMALL:
        return f"The tradeoff claim(s) are below the minimum reduction ({'; '.join(details)})"
    return f"The tradeoff justification is malformed ({'; '.join(details)})"


def _biocreep_check(
    policy: BenchmarkPolicy,
    primary: BootstrapResult,
    oriented: _Oriented,
    baseline_comparisons: Mapping[str, BootstrapResult] | None,
    baseline_version_id: str | None,
) -> BaselineComparison | tuple[ReasonCode, str]:
    margin = policy.non_inferiority_margin
    if baseline_comparisons is None:
        return BaselineComparison(
            baseline_version_id,
            True,
            primary.metric,
            primary.higher_is_better,
            primary.candidate,
            primary.parent,
            primary.delta,
            primary.ci_low,
            primary.ci_high,
            oriented.ci_low,
            margin,
            oriented.ci_low >= -margin,
        )
    _validate_comparisons(baseline_comparisons, policy, "baseline_comparisons", (policy.primary_metric,),
                          primary.confidence)
    result = baseline_comparisons[policy.primary_metric]
    problem = _undefined_problem(result, f"baseline version {baseline_version_id or '(unnamed)'}")
    if problem is not None:
        return problem
    oriented_baseline = _orient(result)
    return BaselineComparison(
        baseline_version_id,
        False,
        result.metric,
        result.higher_is_better,
        result.candidate,
        result.parent,
        result.delta,
        result.ci_low,
        result.ci_high,
        oriented_baseline.ci_low,
        margin,
        oriented_baseline.ci_low >= -margin,
    )
