"""What a verdict can say (pure): its outcomes, its metrics' roles, and the
reason codes, each mapped to the one outcome it belongs to
(docs/model_promotion_policy.md, sections 1 and 9).
"""
from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Outcome(StrEnum):
    PROMOTE = "promote"
    PROMOTE_WITH_TRADEOFF = "promote_with_tradeoff"
    REJECT = "reject"
    ERROR = "error"
    AWAITING_CONFIRMATION = "awaiting_confirmation"


class ReasonCode(StrEnum):
    """Every machine reason a verdict can carry. REASON_OUTCOMES maps each to its outcome."""

    # promote
    IMPROVED = "improved"
    ROOT_VERSION = "root_version"
    # Recorded by force_promote(), the human override; decide() never returns it.
    FORCED_PROMOTION = "forced_promotion"
    # Recorded by confirm_promotion(), a human confirming a self-scored verdict; decide() never returns it.
    CONFIRMED_BY_HUMAN = "confirmed_by_human"
    # awaiting_confirmation: a self-scored promotion is never automatic
    SELF_REPORTED_NEEDS_CONFIRMATION = "self_reported_needs_confirmation"
    # promote_with_tradeoff
    TRADEOFF_VERIFIED = "tradeoff_verified"
    # reject
    NO_BEHAVIOURAL_CHANGE = "no_behavioural_change"
    PRIMARY_REGRESSED = "primary_regressed"
    PRIMARY_NOT_IMPROVED = "primary_not_improved"
    TRADEOFF_MALFORMED = "tradeoff_malformed"
    TRADEOFF_UNVERIFIABLE = "tradeoff_unverifiable"
    TRADEOFF_CLAIM_NOT_MET = "tradeoff_claim_not_met"
    TRADEOFF_CLAIM_TOO_SMALL = "tradeoff_claim_too_small"
    PRIMARY_INFERIOR = "primary_inferior"
    CUMULATIVE_INFERIORITY = "cumulative_inferiority"
    GUARDRAIL_VIOLATED = "guardrail_violated"
    CUMULATIVE_GUARDRAIL_LOSS = "cumulative_guardrail_loss"
    BELOW_FLOOR = "below_floor"
    # Set by the gate from policy/confirmation.py: the sealed split did not confirm a promotion.
    CONFIRMATION_FAILED = "confirmation_failed"
    # error: produced by decide() itself
    METRIC_UNDEFINED = "metric_undefined"
    INSUFFICIENT_VALID_RESAMPLES = "insufficient_valid_resamples"
    TOO_FEW_RESAMPLES = "too_few_resamples"
    # error: supplied by the caller through decide(error=..., error_code=...)
    EVALUATION_ERROR = "evaluation_error"
    BENCHMARK_NOT_FOUND = "benchmark_not_found"
    EVAL_SCRIPT_NOT_FOUND = "eval_script_not_found"
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"
    SANDBOX_FAILURE = "sandbox_failure"
    EVAL_TIMEOUT = "eval_timeout"
    INVALID_EVAL_OUTPUT = "invalid_eval_output"
    # error: holdout accounting refused the query before anything was scored
    RATE_LIMITED = "rate_limited"
    HOLDOUT_BUDGET_SPENT = "holdout_budget_spent"
    ENVIRONMENT_FAILURE = "environment_failure"
    INVALID_MODEL_DIRECTORY = "invalid_model_directory"
    MODEL_DIR_UNSAFE = "model_dir_unsafe"
    UNSANDBOXED_EVALUATION = "unsandboxed_evaluation"
    BENCHMARK_NOT_LINEAGE = "benchmark_not_lineage"
    LINEAGE_CHANGED = "lineage_changed"
    COMPARATOR_CHANGED = "comparator_changed"


_REJECT_CODES = (
    ReasonCode.NO_BEHAVIOURAL_CHANGE,
    ReasonCode.PRIMARY_REGRESSED,
    ReasonCode.PRIMARY_NOT_IMPROVED,
    ReasonCode.TRADEOFF_MALFORMED,
    ReasonCode.TRADEOFF_UNVERIFIABLE,
    ReasonCode.TRADEOFF_CLAIM_NOT_MET,
    ReasonCode.TRADEOFF_CLAIM_TOO_SMALL,
    ReasonCode.PRIMARY_INFERIOR,
    ReasonCode.CUMULATIVE_INFERIORITY,
    ReasonCode.GUARDRAIL_VIOLATED,
    ReasonCode.CUMULATIVE_GUARDRAIL_LOSS,
    ReasonCode.BELOW_FLOOR,
    ReasonCode.CONFIRMATION_FAILED,
)


_ERROR_CODES = (
    ReasonCode.METRIC_UNDEFINED,
    ReasonCode.INSUFFICIENT_VALID_RESAMPLES,
    ReasonCode.TOO_FEW_RESAMPLES,
    ReasonCode.EVALUATION_ERROR,
    ReasonCode.BENCHMARK_NOT_FOUND,
    ReasonCode.EVAL_SCRIPT_NOT_FOUND,
    ReasonCode.SANDBOX_UNAVAILABLE,
    ReasonCode.SANDBOX_FAILURE,
    ReasonCode.EVAL_TIMEOUT,
    ReasonCode.INVALID_EVAL_OUTPUT,
    ReasonCode.RATE_LIMITED,
    ReasonCode.HOLDOUT_BUDGET_SPENT,
    ReasonCode.ENVIRONMENT_FAILURE,
    ReasonCode.INVALID_MODEL_DIRECTORY,
    ReasonCode.MODEL_DIR_UNSAFE,
    ReasonCode.UNSANDBOXED_EVALUATION,
    ReasonCode.BENCHMARK_NOT_LINEAGE,
    ReasonCode.LINEAGE_CHANGED,
    ReasonCode.COMPARATOR_CHANGED,
)


REASON_OUTCOMES: Mapping[ReasonCode, Outcome] = MappingProxyType(
    {
        ReasonCode.IMPROVED: Outcome.PROMOTE,
        ReasonCode.ROOT_VERSION: Outcome.PROMOTE,
        ReasonCode.FORCED_PROMOTION: Outcome.PROMOTE,
        ReasonCode.CONFIRMED_BY_HUMAN: Outcome.PROMOTE,
        ReasonCode.SELF_REPORTED_NEEDS_CONFIRMATION: Outcome.AWAITING_CONFIRMATION,
        ReasonCode.TRADEOFF_VERIFIED: Outcome.PROMOTE_WITH_TRADEOFF,
        **{code: Outcome.REJECT for code in _REJECT_CODES},
        **{code: Outcome.ERROR for code in _ERROR_CODES},
    }
)


class MetricRole(StrEnum):
    PRIMARY = "primary"
    GUARDRAIL = "guardrail"
    SECONDARY = "secondary"
