"""The sealed confirmation split: a promotion needs the public split and the sealed one.  Pure.

A benchmark may declare `confirmation_benchmark`: the id of a second
recorded benchmark (same task, primary metric and direction) whose split is
scored only for a candidate the public split would promote, at the lineage's
own attempt level on that split, and whose numbers are never released (the
author learns "passed" or "failed"). Its use is counted like any split's.
Like Kaggle's private leaderboard, it cannot be overfitted through the gate:
nothing computed on it reaches an author but one bit per promotion
candidate, and only candidates that already passed the public split ask.
"""
from __future__ import annotations

from dataclasses import replace

from model_eval_gate.decision import Outcome, ReasonCode, Verdict

PASSED = "passed"
FAILED = "failed"


def needs_confirmation(verdict: Verdict, *, is_root: bool, declared: bool) -> bool:
    """Only a comparison the public split would promote is confirmed (a root is compared with nothing)."""
    return declared and not is_root and verdict.promotes


def apply_confirmation(public: Verdict, sealed: Verdict) -> tuple[Verdict, str]:
    """The verdict that stands, and what the author is told about the sealed split ("passed"/"failed")."""
    if sealed.promotes:
        return public, PASSED
    code = ReasonCode.CONFIRMATION_FAILED
    reason = (f"The candidate passed the public split ({public.reason_code}) but not the sealed confirmation "
              f"split ({sealed.reason_code}: {sealed.reason.rstrip('.')}), so it is rejected.")
    return replace(public, outcome=Outcome.REJECT, reason_code=code, reason=reason, failed_checks=(code,)), FAILED
