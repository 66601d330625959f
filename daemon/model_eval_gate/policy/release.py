"""What an author may learn from a query on hidden labels: the release policy.  Pure.

Every number computed on a split's labels leaks information about them, and
automated authors ask without limit: a Brier score released at full
precision is linear in the labels, so a handful of probes decodes a whole
split (tests/test_holdout_attack.py plays that attack). The gate therefore
releases to authors only

* the verdict (outcome) and its reason code, with a sentence that names no
  value computed on the labels;
* the attempt number and the level it was tested at (they depend on the
  lineage's own history, not on the labels);
* for a promotion, the candidate's primary metric rounded to the split's
  release step; for a sealed confirmation split, only "passed" or "failed";
* for an evaluation error, the evaluation's own message (it concerns the
  model's run, not the labels).

Everything else (metric tables, intervals, secondary metrics, guardrails,
magnitudes, deltas) stays in the operator-only records.

The default release step follows the Ladder (Blum and Hardt, 2015): release
a score only at the resolution the split can honestly support. A metric on a
0..1 scale estimated from n examples has a standard error of order
1/sqrt(n), so finer digits are noise to the author and signal to an
attacker; the step is 1/sqrt(n) rounded down to 1, 2 or 5 times a power of
ten (n = 5000 -> 0.01, n = 300 -> 0.05). A benchmark may declare its own
`release_step` (its primary metric's units).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Mantissas the default release step is rounded down to.
RELEASE_STEP_MANTISSAS = (1.0, 2.0, 5.0)

#: Release step when the split size is unknown (self-scored benchmarks without an example list).
FALLBACK_RELEASE_STEP = 0.01

PROMOTING_OUTCOMES = ("promote", "promote_with_tradeoff")

#: Error codes whose message is about the model's own run, so the author needs it to fix the model.
EVALUATION_ERROR_CODES = (
    "evaluation_error", "benchmark_not_found", "eval_script_not_found", "sandbox_unavailable",
    "sandbox_failure", "eval_timeout", "invalid_eval_output",
    # Verdict integrity (policy section 16): about the model's directory, its
    # lineage and its comparator, never about the labels.
    "model_dir_unsafe", "unsandboxed_evaluation", "benchmark_not_lineage", "lineage_changed", "comparator_changed",
    # The model's own environment (requirements.txt, .python-version) and directory.
    "environment_failure", "invalid_model_directory",
)

# One sentence per reason code; none names a value computed on the labels.
_SENTENCES: Mapping[str, str] = {
    "improved": "Promoted: the candidate improved {metric} on the benchmark split, tested at attempt {attempt}",
    "root_version": "Promoted as the root version of its lineage",
    "forced_promotion": "Promoted by a human override (force-promote)",
    "confirmed_by_human": "Promoted: a human confirmed the promotion proposed on self-reported scores",
    "self_reported_needs_confirmation": "Awaiting confirmation: the policy would promote, but the scores are "
                                        "self-reported by the model, so a human must confirm the promotion",
    "tradeoff_verified": "Promoted with a verified tradeoff: {metric} is non-inferior within the benchmark's "
                         "margin and the claimed savings were measured",
    "no_behavioural_change": "Rejected: the candidate's predictions are identical to those of {duplicate}",
    "primary_regressed": "Rejected: the candidate is worse on {metric} than the version it was compared with",
    "primary_not_improved": "Rejected: the candidate did not show an improvement on {metric} at the level of "
                            "attempt {attempt}",
    "tradeoff_malformed": "Rejected: the tradeoff justification is malformed",
    "tradeoff_unverifiable": "Rejected: the tradeoff justification cannot be verified",
    "tradeoff_claim_not_met": "Rejected: the gate's measurements do not support the tradeoff claim",
    "tradeoff_claim_too_small": "Rejected: a tradeoff claim is smaller than the minimum reduction the policy "
                                "accepts (MIN_CLAIMED_REDUCTION)",
    "primary_inferior": "Rejected: {metric} may be worse than the non-inferiority margin allows",
    "cumulative_inferiority": "Rejected: against the lineage's best promotion without a tradeoff, {metric} may "
                              "have lost more than the margin allows",
    "guardrail_violated": "Rejected: a guardrail metric may be worse than its tolerance allows",
    "cumulative_guardrail_loss": "Rejected: against the lineage's best promotion on a guardrail metric, that "
                                 "guardrail may have lost more than its tolerance allows",
    "below_floor": "Rejected: {metric} does not meet the benchmark's floor",
    "confirmation_failed": "Rejected: the candidate passed the public split but not the sealed confirmation split",
    "metric_undefined": "Not decided: a decisive metric is undefined on the benchmark split; an operator has "
                        "the details",
    "insufficient_valid_resamples": "Not decided: the benchmark split is too small or too imbalanced for a "
                                    "decisive metric; an operator has the details",
    "too_few_resamples": "Not decided: the gate was run with fewer bootstrap resamples than a binding verdict "
                         "needs; an operator must raise MODEL_EVAL_GATE_N_RESAMPLES",
    "environment_failure": "Not decided: the model's environment (requirements.txt, .python-version) could not "
                           "be built",
    "invalid_model_directory": "Not decided: the model directory cannot be evaluated as it is",
    "rate_limited": "Not decided: too many queries against this benchmark; try again later",
    "holdout_budget_spent": "Not decided: the benchmark split has answered all the queries its budget allows; "
                            "an operator must refresh it",
}


def default_release_step(n_examples: int | None) -> float:
    """1/sqrt(n) rounded down to 1, 2 or 5 times a power of ten (the Ladder's resolution)."""
    if n_examples is None or isinstance(n_examples, bool) or not isinstance(n_examples, int) or n_examples < 1:
        return FALLBACK_RELEASE_STEP
    target = 1.0 / math.sqrt(n_examples)
    exponent = math.floor(math.log10(target))
    best = None
    for power in (exponent - 1, exponent, exponent + 1):
        for mantissa in RELEASE_STEP_MANTISSAS:
            step = mantissa * 10.0 ** power
            if step <= target * (1 + 1e-12) and (best is None or step > best):
                best = step
    return float(f"{best:.1g}")


def release_step_for(manifest: Mapping[str, Any], n_examples: int | None) -> float:
    """The benchmark's declared release_step, else the default for its size."""
    declared = manifest.get("release_step")
    if isinstance(declared, (int, float)) and not isinstance(declared, bool) and math.isfinite(declared) \
            and declared > 0:
        return float(declared)
    return default_release_step(n_examples)


def _decimals(step: float) -> int:
    """Decimal places of a multiple of step (0.05 -> 2, 0.01 -> 2, 0.002 -> 3, 5 -> 0)."""
    return max(0, -math.floor(math.log10(step) + 1e-12))


def round_to_step(value: float, step: float) -> float:
    """value rounded to the nearest multiple of step, printed without float noise."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise ValueError(f"only a finite value can be released, got {value!r}")
    if not step > 0:
        raise ValueError(f"release step must be positive, got {step!r}")
    rounded = round(value / step) * step
    return round(rounded, _decimals(step)) + 0.0


def _primary_value(result: Mapping[str, Any]) -> float | None:
    for row in result.get("metric_table") or ():
        if row.get("role") == "primary":
            value = row.get("candidate")
            return value if isinstance(value, (int, float)) and math.isfinite(value) else None
    return None


def author_sentence(result: Mapping[str, Any], attempt: int | None) -> str:
    code = str(result.get("reason_code"))
    if code in EVALUATION_ERROR_CODES and result.get("error"):  # about the model's own run: the author fixes it
        sentence = f"Not decided ({code}): {result['error']}"
        return sentence if sentence.endswith(".") else sentence + "."
    template = _SENTENCES.get(code)
    if template is None:  # a code added without a sentence: say nothing about the labels
        return f"Verdict {result.get('outcome')} ({code})."
    duplicate = result.get("duplicate_of") or "the version it was compared with"
    sentence = template.format(metric=result.get("primary_metric") or "the primary metric",
                               attempt=attempt if attempt is not None else "?", duplicate=duplicate)
    if code == "forced_promotion" and result.get("reason"):  # a person's words, not a score
        sentence = str(result["reason"])
    return sentence if sentence.endswith(".") else sentence + "."


def author_release(result: Mapping[str, Any], *, release_step: float | None,
                   attempt: int | None = None, alpha: float | None = None,
                   confirmation: str | None = None) -> dict[str, Any]:
    """The author's view of one gate result: the only thing authors' channels carry.

    `result` is the gate's full result (gate.py); `confirmation` is "passed",
    "failed" or None (no sealed split, or not reached).
    """
    outcome = str(result.get("outcome"))
    released: dict[str, Any] = {
        "candidate_id": result.get("candidate_id"),
        "compared_against": result.get("compared_against"),
        "benchmark_id": result.get("benchmark_id"),
        "outcome": outcome,
        "reason_code": str(result.get("reason_code")),
        "reason": author_sentence(result, attempt),
        "attempt": attempt,
        "alpha": alpha,
        "primary_metric": result.get("primary_metric"),
        "primary_value": None,
        "release_step": None,
        "confirmation": confirmation,
    }
    value = _primary_value(result)
    if outcome in PROMOTING_OUTCOMES and value is not None and release_step is not None:
        released["primary_value"] = round_to_step(value, release_step)
        released["release_step"] = release_step
        released["reason"] = (released["reason"].rstrip(".")
                              + f"; {released['primary_metric']} is {released['primary_value']:g} "
                                f"(released to a step of {release_step:g}).")
    if outcome == "error" and str(result.get("reason_code")) in EVALUATION_ERROR_CODES and result.get("error"):
        released["error"] = result["error"]
    return released


def sealed_release(released: Mapping[str, Any]) -> dict[str, Any]:
    """What the author learns from the sealed confirmation split: passed or failed, nothing computed on it."""
    return {"candidate_id": released.get("candidate_id"), "outcome": released.get("outcome"),
            "reason_code": released.get("reason_code"), "reason": released.get("reason"),
            "confirmation": released.get("confirmation"), "primary_metric": None, "primary_value": None,
            "release_step": None, "attempt": None, "alpha": None}


def render_author_notes(released: Mapping[str, Any]) -> str:
    """promotion_notes and ticket text for the author: the release, nothing more."""
    lines = [f"[{released['outcome']}:{released['reason_code']}] {released['reason']}"]
    if released.get("compared_against"):
        lines.append(f"compared against {released['compared_against']}")
    if released.get("attempt") is not None:
        lines.append(f"attempt {released['attempt']} of this lineage on benchmark {released.get('benchmark_id')}, "
                     f"tested at one-sided alpha {released['alpha']:.3g}")
    if released.get("confirmation"):
        lines.append(f"sealed confirmation split: {released['confirmation']}")
    return "\n".join(lines)
