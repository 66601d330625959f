"""The biocreep anchor: the best plain promotion, so tradeoffs cannot walk a lineage down (policy section 7).

The scenario of issue 12: alternating a tradeoff that costs 0.008 AUROC
(within the 0.01 margin of its parent) and a real gain of +0.003. Anchored
on the latest plain promotion every step passes and the lineage ends 2.5
margins below its root; anchored on the best plain promotion the cumulative
loss stays within one margin. The comparisons are built from the known true
AUROC of each version with a narrow interval (the policy logic is under test;
the intervals themselves are tested in test_stats.py and
test_statistics_resampling.py).
"""
from __future__ import annotations

from model_eval_gate import decision
from model_eval_gate.decision import BenchmarkPolicy, TradeoffEvidence, biocreep_anchor, decide
from model_eval_gate.stats import BootstrapResult

POLICY = BenchmarkPolicy("auroc", {"auroc": True}, non_inferiority_margin=0.01)
HALF_WIDTH = 0.0015  # a large benchmark: the interval is narrow


def comparison(candidate: float, other: float) -> dict[str, BootstrapResult]:
    delta = candidate - other
    return {"auroc": BootstrapResult("auroc", True, candidate, other, delta, delta - HALF_WIDTH,
                                     delta + HALF_WIDTH, delta / other, 1000, 1000, 7, 0.95)}


def walk(anchor_rule, steps: int = 20):
    """Alternate tradeoff (-0.008) and gain (+0.003) candidates; return the head's true AUROC after each step."""
    root = 0.85
    versions = {"v0": root}
    plain = ["v0"]  # plain promotions, oldest first
    head, trajectory, verdicts = "v0", [], []
    for step in range(1, steps + 1):
        name = f"v{step}"
        tradeoff = step % 2 == 1
        value = versions[head] + (-0.008 if tradeoff else 0.003)
        kwargs = {}
        if tradeoff:
            anchor = anchor_rule([(v, versions[v]) for v in reversed(plain)])
            kwargs = dict(tradeoff_justification={"param_count": "-50%"},
                          evidence=TradeoffEvidence(candidate_parameter_count=400, parent_parameter_count=1000))
            if anchor != head:
                kwargs.update(baseline_comparisons=comparison(value, versions[anchor]), baseline_version_id=anchor)
        verdict = decide(policy=POLICY, comparisons=comparison(value, versions[head]), **kwargs)
        verdicts.append(verdict)
        if verdict.promotes:
            versions[name] = value
            head = name
            if verdict.reason_code is decision.ReasonCode.IMPROVED:
                plain.append(name)
        trajectory.append(versions[head])
    return root, trajectory, verdicts


def latest_plain(promotions):
    return promotions[0][0]


def test_anchoring_on_the_latest_plain_promotion_walks_the_lineage_down():
    root, trajectory, verdicts = walk(latest_plain)
    assert all(v.promotes for v in verdicts)
    assert root - trajectory[-1] >= 0.025 - 1e-9  # 2.5 margins below the root: the defect of issue 12


def test_the_best_plain_promotion_bounds_the_cumulative_loss_to_one_margin():
    root, trajectory, verdicts = walk(lambda promotions: biocreep_anchor(promotions, True))
    assert min(trajectory) >= root - POLICY.non_inferiority_margin - 1e-9
    stopped = [v for v in verdicts if v.reason_code is decision.ReasonCode.CUMULATIVE_INFERIORITY]
    assert stopped and stopped[0].compared_with_baseline.version_id == "v0"


def test_biocreep_anchor_picks_the_best_and_the_newest_among_equals():
    assert biocreep_anchor([("v5", 0.80), ("v3", 0.84), ("v1", 0.84), ("v0", 0.83)], True) == "v3"
    assert biocreep_anchor([("v5", 1.2), ("v3", 1.1), ("v0", 1.3)], False) == "v3"
    assert biocreep_anchor([("v2", float("nan")), ("v1", 0.7)], True) == "v1"
    assert biocreep_anchor([], True) is None


GUARDED = BenchmarkPolicy("auroc", {"auroc": True, "brier": False}, non_inferiority_margin=0.01,
                          guardrails={"brier": 0.005})


def brier(candidate: float, other: float) -> BootstrapResult:
    delta = candidate - other
    return BootstrapResult("brier", False, candidate, other, delta, delta - HALF_WIDTH / 3, delta + HALF_WIDTH / 3,
                           delta / other, 1000, 1000, 7, 0.95)


def guarded_walk(with_anchor: bool, steps: int = 10):
    """Each candidate gains +0.004 AUROC and costs 0.004 Brier (within the 0.005 tolerance of its parent)."""
    auroc_of, brier_of = {"v0": 0.85}, {"v0": 0.15}
    head, verdicts = "v0", []
    for step in range(1, steps + 1):
        name = f"v{step}"
        a, b = auroc_of[head] + 0.004, brier_of[head] + 0.004
        comparisons = {**comparison(a, auroc_of[head]), "brier": brier(b, brier_of[head])}
        kwargs = {}
        # The guardrail's own anchor: the plain promotion with the best (lowest) Brier.
        anchor = biocreep_anchor([(v, brier_of[v]) for v in reversed(list(brier_of))], False)
        if with_anchor and anchor != head:
            kwargs = dict(guardrail_baselines={"brier": (anchor, brier(b, brier_of[anchor]))})
        verdict = decide(policy=GUARDED, comparisons=comparisons, **kwargs)
        verdicts.append(verdict)
        if verdict.promotes:
            auroc_of[name], brier_of[name] = a, b
            head = name
    return brier_of, verdicts


def test_guardrail_loss_accumulates_when_checked_against_the_parent_only():
    brier_of, verdicts = guarded_walk(with_anchor=False)
    assert all(v.promotes for v in verdicts)
    assert max(brier_of.values()) - brier_of["v0"] >= 0.04 - 1e-9  # eight tolerances worse


def test_the_anchor_bounds_the_cumulative_guardrail_loss():
    brier_of, verdicts = guarded_walk(with_anchor=True)
    assert max(brier_of.values()) - brier_of["v0"] <= GUARDED.guardrails["brier"] + 1e-9
    stopped = [v for v in verdicts if v.reason_code is decision.ReasonCode.CUMULATIVE_GUARDRAIL_LOSS]
    assert stopped and "guardrail brier" in stopped[0].reason
