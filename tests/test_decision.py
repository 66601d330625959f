"""The promotion policy (decision.py): every rule, reason code and edge case, plus properties."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_eval_gate import decision
from model_eval_gate.decision import (
    CLAIM_TOLERANCE,
    CONFIDENCE,
    DEFAULT_NON_INFERIORITY_MARGIN,
    MAGNITUDE_BUCKETS,
    MAGNITUDE_NOT_APPLICABLE,
    MAGNITUDE_UNDEFINED,
    MIN_VALID_RESAMPLE_FRACTION,
    REASON_OUTCOMES,
    TRADEOFF_KEYS,
    BenchmarkPolicy,
    ClaimStatus,
    DecisionInputError,
    MetricRole,
    Outcome,
    ReasonCode,
    TradeoffEvidence,
    assess_tradeoff,
    decide,
    magnitude_bucket,
    parse_tradeoff_claims,
)
from model_eval_gate.stats import BootstrapResult

R = ReasonCode


def result(
    metric: str,
    candidate: float,
    parent: float,
    ci_low: float,
    ci_high: float,
    *,
    higher_is_better: bool = True,
    n_resamples: int = 1000,
    n_valid: int | None = None,
    seed: int = 1234,
    confidence: float = CONFIDENCE,
    delta: float | None = None,
) -> BootstrapResult:
    computed_delta = candidate - parent if delta is None else delta
    relative = computed_delta / abs(parent) if parent != 0 and math.isfinite(parent) else None
    return BootstrapResult(
        metric=metric,
        higher_is_better=higher_is_better,
        candidate=candidate,
        parent=parent,
        delta=computed_delta,
        ci_low=ci_low,
        ci_high=ci_high,
        relative_delta=relative,
        n_resamples=n_resamples,
        n_valid=n_resamples if n_valid is None else n_valid,
        seed=seed,
        confidence=confidence,
    )


def mirror(r: BootstrapResult) -> BootstrapResult:
    """The same comparison expressed for the negated metric with the opposite direction."""
    return BootstrapResult(
        metric=r.metric,
        higher_is_better=not r.higher_is_better,
        candidate=-r.candidate,
        parent=-r.parent,
        delta=(-r.candidate) - (-r.parent),
        ci_low=-r.ci_high,
        ci_high=-r.ci_low,
        relative_delta=None if r.relative_delta is None else -r.relative_delta,
        n_resamples=r.n_resamples,
        n_valid=r.n_valid,
        seed=r.seed,
        confidence=r.confidence,
    )


AUROC_POLICY = BenchmarkPolicy(
    primary_metric="auroc",
    higher_is_better={"auroc": True, "ece": False},
    floor=0.75,
    guardrails={"ece": 0.02},
)
ECE_OK = result("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False)
PLAIN_POLICY = BenchmarkPolicy(primary_metric="auroc", higher_is_better={"auroc": True})


def auroc(candidate: float, parent: float, lo: float, hi: float, **kw) -> BootstrapResult:
    return result("auroc", candidate, parent, lo, hi, **kw)


def with_guardrail(primary: BootstrapResult, ece: BootstrapResult = ECE_OK, **extra) -> dict:
    return {"auroc": primary, "ece": ece, **extra}


IMPROVED = auroc(0.834, 0.812, 0.009, 0.035)
NOT_SIGNIFICANT = auroc(0.816, 0.812, -0.003, 0.011)
SLIGHTLY_WORSE = auroc(0.806, 0.812, -0.0085, -0.0035)
GOOD_EVIDENCE = TradeoffEvidence(
    candidate_parameter_count=11_200_000,
    parent_parameter_count=24_000_000,
    candidate_wall_seconds=3.1,
    parent_wall_seconds=11.8,
    candidate_peak_memory_bytes=700_000_000,
    parent_peak_memory_bytes=1_100_000_000,
)
GOOD_CLAIMS = {"param_count": "-50%", "latency": "-4x", "rationale": "distilled"}


def json_round_trip(verdict) -> dict:
    return json.loads(json.dumps(verdict.as_dict(), allow_nan=False))


# ---------------------------------------------------------------- policy inputs


class TestBenchmarkPolicy:
    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"primary_metric": ""}, "primary_metric"),
            ({"primary_metric": None}, "primary_metric"),
            ({"non_inferiority_margin": -0.01}, "non_inferiority_margin"),
            ({"non_inferiority_margin": float("nan")}, "non_inferiority_margin"),
            ({"non_inferiority_margin": float("inf")}, "non_inferiority_margin"),
            ({"non_inferiority_margin": True}, "non_inferiority_margin"),
            ({"non_inferiority_margin": "0.01"}, "non_inferiority_margin"),
            ({"floor": float("nan")}, "floor"),
            ({"floor": "0.7"}, "floor"),
            ({"guardrails": {"ece": -0.1}}, "ece"),
            ({"guardrails": {"ece": float("nan")}}, "ece"),
            ({"guardrails": {"auroc": 0.1}}, "cannot also be a guardrail"),
            ({"guardrails": {"brier": 0.1}}, "brier"),
            ({"guardrails": ["ece"]}, "guardrails"),
            ({"higher_is_better": {}}, "auroc"),
            ({"higher_is_better": {"auroc": 1}}, "bool"),
        ],
    )
    def test_rejects_bad_policy(self, kwargs, message):
        base = {"primary_metric": "auroc", "higher_is_better": {"auroc": True, "ece": False}}
        with pytest.raises(DecisionInputError, match=message):
            BenchmarkPolicy(**{**base, **kwargs})

    def test_decision_input_error_is_a_value_error(self):
        assert issubclass(DecisionInputError, ValueError)

    def test_is_immune_to_later_mutation_of_its_inputs(self):
        directions = {"auroc": True, "ece": False}
        guardrails = {"ece": 0.02}
        policy = BenchmarkPolicy("auroc", directions, guardrails=guardrails)
        directions["auroc"] = False
        guardrails["ece"] = 5.0
        assert policy.primary_higher_is_better is True
        assert policy.guardrails["ece"] == 0.02
        with pytest.raises(TypeError):
            policy.guardrails["ece"] = 1.0  # type: ignore[index]

    def test_default_margin(self):
        assert PLAIN_POLICY.non_inferiority_margin == DEFAULT_NON_INFERIORITY_MARGIN

    def test_zero_margin_is_allowed(self):
        assert BenchmarkPolicy("auroc", {"auroc": True}, non_inferiority_margin=0).non_inferiority_margin == 0

    def test_from_manifest_reads_every_policy_field(self):
        policy = BenchmarkPolicy.from_manifest(
            {
                "id": "b1",
                "primary_metric": "rmse",
                "non_inferiority_margin": 0.05,
                "floor": 5.0,
                "guardrails": {"mae": 0.1},
                "magnitude_unit": 0.2,
            },
            {"rmse": False, "mae": False},
        )
        assert policy.as_dict() == {
            "primary_metric": "rmse",
            "higher_is_better": False,
            "non_inferiority_margin": 0.05,
            "floor": 5.0,
            "guardrails": {"mae": 0.1},
            "magnitude_unit": 0.2,
        }

    def test_from_manifest_defaults(self):
        policy = BenchmarkPolicy.from_manifest({"primary_metric": "auroc"}, {"auroc": True})
        assert policy.non_inferiority_margin == DEFAULT_NON_INFERIORITY_MARGIN
        assert policy.floor is None and dict(policy.guardrails) == {}

    def test_from_manifest_requires_primary_metric(self):
        with pytest.raises(DecisionInputError, match="primary_metric"):
            BenchmarkPolicy.from_manifest({"floor": 0.5}, {"auroc": True})


class TestTradeoffEvidence:
    @pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "100"])
    def test_rejects_bad_values(self, bad):
        with pytest.raises(DecisionInputError, match="candidate_parameter_count"):
            TradeoffEvidence(candidate_parameter_count=bad)

    def test_all_absent_is_valid(self):
        assert TradeoffEvidence().parent_wall_seconds is None


# ---------------------------------------------------------------- tradeoff claims


class TestParseTradeoffClaims:
    @pytest.mark.parametrize(
        "text, ratio",
        [
            ("-50%", 0.5),
            ("-12.5%", 0.875),
            ("-99%", 0.01),
            ("\u221250%", 0.5),
            (" -50 % ", 0.5),
            ("-4x", 0.25),
            ("4x", 0.25),
            ("4X", 0.25),
            ("4\u00d7", 0.25),
            ("2.5x", 0.4),
            ("1.5x", 1 / 1.5),
        ],
    )
    def test_well_formed_claims(self, text, ratio):
        parsed = parse_tradeoff_claims({"latency": text})
        assert parsed.problems == ()
        assert len(parsed.claims) == 1
        assert parsed.claims[0].key == "latency" and parsed.claims[0].text == text
        assert parsed.claims[0].max_ratio == pytest.approx(ratio)

    @pytest.mark.parametrize(
        "value, message",
        [
            ("50%", "leading minus"),
            ("+50%", "leading minus"),
            ("-0%", "between 0% and 100%"),
            ("-100%", "between 0% and 100%"),
            ("-150%", "between 0% and 100%"),
            ("+4x", "ambiguous"),
            ("1x", "greater than 1"),
            ("0.5x", "greater than 1"),
            ("-4", "of the form"),
            ("four times smaller", "of the form"),
            ("", "of the form"),
            (4, "must be a string"),
            (-0.5, "must be a string"),
            (None, "must be a string"),
        ],
    )
    def test_malformed_claims(self, value, message):
        parsed = parse_tradeoff_claims({"memory": value})
        assert parsed.claims == ()
        assert len(parsed.problems) == 1
        problem = parsed.problems[0]
        assert problem.key == "memory" and problem.reason_code is R.TRADEOFF_MALFORMED
        assert message in problem.message

    def test_keys_outside_the_allowlist_are_unverifiable(self):
        parsed = parse_tradeoff_claims({"param_count": "-50%", "carbon": "-90%", "accuracy": "+1%"})
        assert [c.key for c in parsed.claims] == ["param_count"]
        assert {(p.key, p.reason_code) for p in parsed.problems} == {
            ("carbon", R.TRADEOFF_UNVERIFIABLE),
            ("accuracy", R.TRADEOFF_UNVERIFIABLE),
        }

    def test_rationale_is_recorded_not_a_claim(self):
        parsed = parse_tradeoff_claims({"latency": "4x", "rationale": "pruned heads"})
        assert parsed.rationale == "pruned heads"
        assert [c.key for c in parsed.claims] == ["latency"]

    def test_rationale_must_be_text(self):
        parsed = parse_tradeoff_claims({"latency": "4x", "rationale": ["a"]})
        assert [(p.key, p.reason_code) for p in parsed.problems] == [("rationale", R.TRADEOFF_MALFORMED)]

    def test_a_justification_without_claims_is_unverifiable(self):
        parsed = parse_tradeoff_claims({"rationale": "trust me"})
        assert parsed.claims == ()
        assert [(p.key, p.reason_code) for p in parsed.problems] == [(None, R.TRADEOFF_UNVERIFIABLE)]

    @pytest.mark.parametrize("justification", ["-50%", ["param_count"], 3])
    def test_a_non_object_justification_is_malformed(self, justification):
        parsed = parse_tradeoff_claims(justification)
        assert [(p.key, p.reason_code) for p in parsed.problems] == [(None, R.TRADEOFF_MALFORMED)]

    def test_all_allowlisted_keys_parse(self):
        parsed = parse_tradeoff_claims({key: "-50%" for key in TRADEOFF_KEYS})
        assert sorted(c.key for c in parsed.claims) == sorted(TRADEOFF_KEYS)


class TestAssessTradeoff:
    def test_each_claim_is_checked_against_its_own_evidence(self):
        evidence = TradeoffEvidence(
            candidate_parameter_count=90,
            parent_parameter_count=100,
            candidate_wall_seconds=1.0,
            parent_wall_seconds=10.0,
            candidate_peak_memory_bytes=500,
            parent_peak_memory_bytes=1000,
        )
        assessment = assess_tradeoff({"param_count": "-50%", "latency": "-50%", "memory": "-50%"}, evidence)
        status = {c.key: c.status for c in assessment.checks}
        assert status == {
            "param_count": ClaimStatus.NOT_MET,
            "latency": ClaimStatus.VERIFIED,
            "memory": ClaimStatus.VERIFIED,
        }
        by_key = {c.key: c for c in assessment.checks}
        assert by_key["param_count"].measured_ratio == pytest.approx(0.9)
        assert by_key["latency"].measured_ratio == pytest.approx(0.1)
        assert not assessment.verified
        assert assessment.failure_codes == (R.TRADEOFF_CLAIM_NOT_MET,)

    @pytest.mark.parametrize(
        "candidate, verified",
        [(54, True), (55 * (1 - 1e-9), True), (56, False), (0, True)],
    )
    def test_tolerance(self, candidate, verified):
        # "-50%" allows a measured ratio up to 0.5 * (1 + CLAIM_TOLERANCE) = 0.55.
        evidence = TradeoffEvidence(candidate_parameter_count=candidate, parent_parameter_count=100)
        check = assess_tradeoff({"param_count": "-50%"}, evidence).checks[0]
        assert check.allowed_max_ratio == pytest.approx(0.5 * (1 + CLAIM_TOLERANCE))
        assert check.verified is verified

    def test_factor_claim_tolerance(self):
        # "4x" allows ratio <= 0.275: a 3.64x reduction passes, a 3.5x one does not.
        def check(parent):
            evidence = TradeoffEvidence(candidate_wall_seconds=1.0, parent_wall_seconds=parent)
            return assess_tradeoff({"latency": "4x"}, evidence).checks[0]

        assert check(3.64).verified
        assert check(3.5).status is ClaimStatus.NOT_MET

    @pytest.mark.parametrize(
        "evidence, note",
        [
            (None, "candidate or parent"),
            (TradeoffEvidence(candidate_peak_memory_bytes=10), "parent"),
            (TradeoffEvidence(parent_peak_memory_bytes=10), "candidate"),
            (TradeoffEvidence(candidate_peak_memory_bytes=10, parent_peak_memory_bytes=0), "is 0"),
        ],
    )
    def test_missing_evidence_is_unverifiable(self, evidence, note):
        assessment = assess_tradeoff({"memory": "-30%"}, evidence)
        check = assessment.checks[0]
        assert check.status is ClaimStatus.UNVERIFIABLE and check.measured_ratio is None
        assert note in check.note
        assert assessment.failure_codes == (R.TRADEOFF_UNVERIFIABLE,)

    def test_failure_codes_follow_precedence(self):
        assessment = assess_tradeoff(
            {"param_count": "-90%", "latency": "fast", "memory": "-50%", "vibes": "good"},
            TradeoffEvidence(candidate_parameter_count=50, parent_parameter_count=100),
        )
        assert assessment.failure_codes == (
            R.TRADEOFF_MALFORMED,
            R.TRADEOFF_UNVERIFIABLE,
            R.TRADEOFF_CLAIM_NOT_MET,
        )

    def test_as_dict_reports_claimed_measured_verified(self):
        assessment = assess_tradeoff(GOOD_CLAIMS, GOOD_EVIDENCE)
        doc = assessment.as_dict()
        assert doc["verified"] is True and doc["rationale"] == "distilled"
        claim = doc["claims"]["param_count"]
        assert claim["claimed"] == "-50%" and claim["verified"] is True
        assert claim["measured"] == {
            "candidate": 11_200_000,
            "parent": 24_000_000,
            "ratio": pytest.approx(11.2 / 24.0),
        }


# ---------------------------------------------------------------- magnitude


class TestMagnitude:
    @pytest.mark.parametrize(
        "low, high, bucket",
        [
            (-0.01, 0.03, "negligible"),  # the interval contains zero: nothing is sure
            (0.0, 0.03, "negligible"),
            (0.0049, 0.03, "negligible"),
            (0.005, 0.03, "small"),
            (0.0199, 0.03, "small"),
            (0.02, 0.03, "moderate"),
            (0.0499, 0.06, "moderate"),
            (0.05, 0.09, "large"),
            (-0.03, -0.02, "moderate"),  # a regression is sized by its end nearest zero
            (-0.3, -0.06, "large"),
        ],
    )
    def test_buckets_in_units_of_the_margin(self, low, high, bucket):
        assert magnitude_bucket(low, high, 0.01) == bucket

    def test_the_parameterisation_does_not_matter(self):
        # accuracy 0.98 -> 0.99 and error 0.02 -> 0.01 are the same change.
        accuracy = decide(policy=BenchmarkPolicy("accuracy", {"accuracy": True}),
                          comparisons={"accuracy": result("accuracy", 0.99, 0.98, 0.006, 0.014)})
        error = decide(policy=BenchmarkPolicy("error", {"error": False}),
                       comparisons={"error": result("error", 0.01, 0.02, -0.014, -0.006, higher_is_better=False)})
        assert accuracy.magnitude == error.magnitude == "small"

    def test_a_declared_magnitude_unit_replaces_the_margin(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, non_inferiority_margin=0.05, magnitude_unit=0.5)
        verdict = decide(policy=policy, comparisons={"rmse": result("rmse", 4.05, 4.20, -0.23, -0.07,
                                                                    higher_is_better=False)})
        assert verdict.magnitude == "negligible"  # 0.07 is 0.14 units of 0.5

    def test_a_zero_unit_leaves_a_sure_change_undefined(self):
        assert magnitude_bucket(0.01, 0.02, 0.0) == MAGNITUDE_UNDEFINED
        assert magnitude_bucket(-0.01, 0.02, 0.0) == "negligible"

    def test_buckets_are_ordered_and_end_unbounded(self):
        bounds = [upper for _, upper in MAGNITUDE_BUCKETS]
        assert bounds[-1] is None
        assert bounds[:-1] == sorted(bounds[:-1])


class TestResampleFloor:
    def test_a_binding_verdict_refuses_fewer_than_1000_resamples(self):
        few = with_guardrail(auroc(0.834, 0.812, 0.009, 0.035, n_resamples=10),
                             result("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False, n_resamples=10))
        verdict = decide(policy=AUROC_POLICY, comparisons=few)
        assert verdict.outcome is Outcome.ERROR and verdict.reason_code is R.TOO_FEW_RESAMPLES
        assert "10 bootstrap resamples" in verdict.reason and "1000" in verdict.reason

    def test_a_quick_check_is_labelled_advisory(self):
        few = with_guardrail(auroc(0.834, 0.812, 0.009, 0.035, n_resamples=100),
                             result("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False, n_resamples=100))
        verdict = decide(policy=AUROC_POLICY, comparisons=few, advisory=True)
        assert verdict.reason_code is R.IMPROVED and verdict.advisory
        assert json_round_trip(verdict)["advisory"] is True
        assert decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED)).advisory is False


# ---------------------------------------------------------------- errors


class TestErrors:
    def test_error_short_circuits_everything(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(IMPROVED),
            tradeoff_justification=GOOD_CLAIMS,
            error="eval.py exited with status 1",
        )
        assert verdict.outcome is Outcome.ERROR
        assert verdict.reason_code is R.EVALUATION_ERROR
        assert verdict.failed_checks == (R.EVALUATION_ERROR,)
        assert verdict.magnitude == MAGNITUDE_NOT_APPLICABLE
        assert verdict.metric_table == () and not verdict.promotes
        assert verdict.error == "eval.py exited with status 1"
        assert "eval.py exited with status 1" in verdict.reason

    def test_without_a_policy(self):
        verdict = decide(policy=None, error="no benchmark declared", error_code=R.BENCHMARK_NOT_FOUND)
        assert verdict.reason_code is R.BENCHMARK_NOT_FOUND and verdict.primary_metric is None
        assert json_round_trip(verdict)["policy"] is None

    @pytest.mark.parametrize(
        "code", [code for code, outcome in REASON_OUTCOMES.items() if outcome is Outcome.ERROR]
    )
    def test_every_error_code_can_be_supplied(self, code):
        verdict = decide(policy=AUROC_POLICY, error="boom", error_code=code.value)
        assert verdict.reason_code is code and verdict.outcome is Outcome.ERROR

    @pytest.mark.parametrize("code", ["improved", "below_floor", "nonsense"])
    def test_non_error_codes_are_refused(self, code):
        with pytest.raises(DecisionInputError, match="error_code"):
            decide(policy=AUROC_POLICY, error="boom", error_code=code)

    @pytest.mark.parametrize("message", ["", "   "])
    def test_error_needs_a_description(self, message):
        with pytest.raises(DecisionInputError, match="error must be"):
            decide(policy=AUROC_POLICY, error=message)


# ---------------------------------------------------------------- input contract


class TestInputContract:
    def test_policy_required_without_error(self):
        with pytest.raises(DecisionInputError, match="policy"):
            decide(policy=None, comparisons=with_guardrail(IMPROVED))

    def test_non_root_needs_comparisons(self):
        with pytest.raises(DecisionInputError, match="comparisons"):
            decide(policy=AUROC_POLICY)

    def test_non_root_refuses_candidate_scores(self):
        with pytest.raises(DecisionInputError, match="candidate_scores"):
            decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED), candidate_scores={"auroc": 0.9})

    def test_root_refuses_comparisons(self):
        with pytest.raises(DecisionInputError, match="root"):
            decide(policy=AUROC_POLICY, is_root=True, comparisons=with_guardrail(IMPROVED))

    def test_root_refuses_baseline(self):
        with pytest.raises(DecisionInputError, match="baseline"):
            decide(
                policy=AUROC_POLICY,
                is_root=True,
                candidate_scores={"auroc": 0.9},
                baseline_comparisons={"auroc": IMPROVED},
            )

    def test_root_needs_scores(self):
        with pytest.raises(DecisionInputError, match="candidate_scores"):
            decide(policy=AUROC_POLICY, is_root=True)

    @pytest.mark.parametrize(
        "comparisons, message",
        [
            ({"ece": ECE_OK}, "auroc"),
            ({"auroc": IMPROVED}, "ece"),
            ({"auroc": IMPROVED, "ece": ECE_OK, "acc": IMPROVED}, "describes metric 'auroc'"),
            ({"auroc": (0.8, 0.9), "ece": ECE_OK}, "not BootstrapResult"),
            ({"auroc": auroc(0.834, 0.812, 0.009, 0.035, n_resamples=0, n_valid=0), "ece": ECE_OK}, "n_resamples"),
            ({"auroc": auroc(0.834, 0.812, 0.009, 0.035, n_valid=1001), "ece": ECE_OK}, "n_valid"),
            ({"auroc": auroc(0.834, 0.812, 0.009, 0.035, confidence=0.9), "ece": ECE_OK}, "confidence"),
            ({"auroc": auroc(0.834, 0.812, 0.035, 0.009), "ece": ECE_OK}, "ci_low"),
            ({"auroc": auroc(0.834, 0.812, 0.009, 0.035, delta=0.5), "ece": ECE_OK}, "candidate - parent"),
            (
                {"auroc": auroc(0.834, 0.812, 0.009, 0.035, higher_is_better=False), "ece": ECE_OK},
                "higher_is_better",
            ),
        ],
    )
    def test_malformed_comparisons(self, comparisons, message):
        with pytest.raises(DecisionInputError, match=message):
            decide(policy=AUROC_POLICY, comparisons=comparisons)

    @pytest.mark.parametrize(
        "scores, message",
        [({"ece": 0.1}, "primary metric"), ({"auroc": "0.9"}, "number"), ({"auroc": 0.9, "ece": None}, "number")],
    )
    def test_malformed_root_scores(self, scores, message):
        with pytest.raises(DecisionInputError, match=message):
            decide(policy=AUROC_POLICY, is_root=True, candidate_scores=scores)


# ---------------------------------------------------------------- no behavioural change


class TestNoBehaviouralChange:
    def test_identical_predictions_are_rejected_with_the_table(self):
        same = auroc(0.812, 0.812, 0.0, 0.0)
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(same, result("ece", 0.041, 0.041, 0.0, 0.0, higher_is_better=False)),
            predictions_identical=True,
        )
        assert verdict.outcome is Outcome.REJECT and verdict.reason_code is R.NO_BEHAVIOURAL_CHANGE
        assert verdict.magnitude == "negligible"
        assert [row.metric for row in verdict.metric_table] == ["auroc", "ece"]
        assert "its parent" in verdict.reason
        assert verdict.seed == 1234 and verdict.n_resamples == 1000

    def test_names_the_duplicated_version_and_ignores_a_tradeoff(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.812, 0.812, 0.0, 0.0)),
            predictions_identical=True,
            duplicate_of="model-v7",
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is R.NO_BEHAVIOURAL_CHANGE
        assert "model-v7" in verdict.reason and verdict.duplicate_of == "model-v7"
        assert verdict.tradeoff is None

    def test_a_root_duplicating_another_version(self):
        verdict = decide(
            policy=AUROC_POLICY,
            is_root=True,
            candidate_scores={"auroc": 0.9},
            predictions_identical=True,
            duplicate_of="other-lineage-v2",
        )
        assert verdict.reason_code is R.NO_BEHAVIOURAL_CHANGE
        assert [row.candidate for row in verdict.metric_table] == [0.9]


# ---------------------------------------------------------------- root versions


class TestRoot:
    def test_promoted_without_floor(self):
        verdict = decide(policy=PLAIN_POLICY, is_root=True, candidate_scores={"auroc": 0.51})
        assert verdict.outcome is Outcome.PROMOTE and verdict.reason_code is R.ROOT_VERSION
        assert verdict.magnitude == MAGNITUDE_NOT_APPLICABLE and verdict.failed_checks == ()
        assert "no floor" in verdict.reason

    @pytest.mark.parametrize("score, code", [(0.78, R.ROOT_VERSION), (0.75, R.ROOT_VERSION), (0.7499, R.BELOW_FLOOR)])
    def test_floor_is_a_minimum_when_higher_is_better(self, score, code):
        verdict = decide(policy=AUROC_POLICY, is_root=True, candidate_scores={"auroc": score})
        assert verdict.reason_code is code

    @pytest.mark.parametrize("score, code", [(4.0, R.ROOT_VERSION), (5.0, R.ROOT_VERSION), (5.01, R.BELOW_FLOOR)])
    def test_floor_is_a_maximum_when_lower_is_better(self, score, code):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, floor=5.0)
        verdict = decide(policy=policy, is_root=True, candidate_scores={"rmse": score})
        assert verdict.reason_code is code
        if code is R.BELOW_FLOOR:
            assert verdict.outcome is Outcome.REJECT and "5.01" in verdict.reason and "maximum" in verdict.reason

    def test_undefined_primary_is_an_error(self):
        verdict = decide(policy=AUROC_POLICY, is_root=True, candidate_scores={"auroc": float("nan")})
        assert verdict.outcome is Outcome.ERROR and verdict.reason_code is R.METRIC_UNDEFINED
        assert json_round_trip(verdict)["metric_table"][0]["candidate"] is None

    def test_table_has_candidate_values_and_roles_only(self):
        verdict = decide(
            policy=AUROC_POLICY,
            is_root=True,
            candidate_scores={"brier": 0.2, "ece": 0.04, "auroc": 0.8, "accuracy": float("nan")},
            tradeoff_justification={"nonsense": "1"},
        )
        assert verdict.reason_code is R.ROOT_VERSION
        rows = json_round_trip(verdict)["metric_table"]
        assert [(r["metric"], r["role"], r["higher_is_better"]) for r in rows] == [
            ("auroc", "primary", True),
            ("ece", "guardrail", False),
            ("accuracy", "secondary", None),
            ("brier", "secondary", None),
        ]
        assert rows[2]["candidate"] is None
        assert all(r["parent"] is None and r["delta"] is None and r["ci_low"] is None for r in rows)


# ---------------------------------------------------------------- versions with a parent


class TestImprovement:
    def test_clear_improvement_is_promoted(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED))
        assert verdict.outcome is Outcome.PROMOTE and verdict.reason_code is R.IMPROVED
        assert verdict.promotes and verdict.failed_checks == ()
        assert verdict.magnitude == "small"
        assert verdict.tradeoff is None and verdict.compared_with_baseline is None
        for number in ("0.812", "0.834", "+0.022", "+0.009", "+0.035"):
            assert number in verdict.reason

    def test_lower_is_better_improvement(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, non_inferiority_margin=0.05, floor=5.0)
        rmse = result("rmse", 4.05, 4.20, -0.23, -0.07, higher_is_better=False)
        verdict = decide(policy=policy, comparisons={"rmse": rmse})
        assert verdict.reason_code is R.IMPROVED and verdict.magnitude == "small"
        assert "lower is better" in verdict.reason

    def test_lower_is_better_worsening_is_regression(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False})
        rmse = result("rmse", 4.35, 4.20, 0.07, 0.23, higher_is_better=False)
        assert decide(policy=policy, comparisons={"rmse": rmse}).reason_code is R.PRIMARY_REGRESSED

    def test_interval_touching_zero_does_not_exclude_it(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.83, 0.812, 0.0, 0.03)))
        assert verdict.reason_code is R.PRIMARY_NOT_IMPROVED

    def test_not_significant(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(NOT_SIGNIFICANT))
        assert verdict.outcome is Outcome.REJECT and verdict.reason_code is R.PRIMARY_NOT_IMPROVED
        assert verdict.magnitude == "negligible" and "no tradeoff justification" in verdict.reason

    def test_point_estimate_against_the_candidate_is_not_an_improvement(self):
        # A percentile interval need not contain the point estimate; both must favour the candidate.
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.81, 0.812, 0.001, 0.02)))
        assert verdict.reason_code is R.PRIMARY_NOT_IMPROVED
        assert "point estimate favours the parent" in verdict.reason

    def test_regression(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.78, 0.812, -0.05, -0.01)))
        assert verdict.reason_code is R.PRIMARY_REGRESSED and verdict.magnitude == "small"

    def test_regression_needs_the_whole_interval_below_zero(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.78, 0.812, -0.05, 0.0)))
        assert verdict.reason_code is R.PRIMARY_NOT_IMPROVED

    def test_empty_justification_counts_as_none(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(NOT_SIGNIFICANT), tradeoff_justification={})
        assert verdict.reason_code is R.PRIMARY_NOT_IMPROVED and verdict.tradeoff is None

    def test_improvement_does_not_consult_tradeoff_claims(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(IMPROVED),
            tradeoff_justification={"vibes": "immaculate"},
        )
        assert verdict.reason_code is R.IMPROVED and verdict.tradeoff is None

    def test_records_seed_and_resample_count(self):
        primary = auroc(0.834, 0.812, 0.009, 0.035, seed=99, n_resamples=2000)
        ece = result("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False, seed=99, n_resamples=2000)
        doc = json_round_trip(decide(policy=AUROC_POLICY, comparisons=with_guardrail(primary, ece)))
        assert (doc["seed"], doc["n_resamples"], doc["confidence"]) == (99, 2000, CONFIDENCE)

    def test_parent_scoring_zero(self):
        policy = BenchmarkPolicy("hit_rate", {"hit_rate": True})
        verdict = decide(policy=policy, comparisons={"hit_rate": result("hit_rate", 0.1, 0.0, 0.04, 0.16)})
        assert verdict.reason_code is R.IMPROVED and verdict.magnitude == "moderate"  # 0.04 = 4 margins
        assert "parent scored 0" in verdict.reason
        assert json_round_trip(verdict)["metric_table"][0]["relative_delta"] is None

    def test_metric_table_roles_and_order(self):
        comparisons = with_guardrail(
            IMPROVED,
            brier=result("brier", 0.1, 0.11, -0.02, 0.0, higher_is_better=False),
            accuracy=result("accuracy", 0.9, 0.88, -0.01, 0.05),
        )
        rows = json_round_trip(decide(policy=AUROC_POLICY, comparisons=comparisons))["metric_table"]
        assert [(r["metric"], r["role"]) for r in rows] == [
            ("auroc", "primary"),
            ("ece", "guardrail"),
            ("accuracy", "secondary"),
            ("brier", "secondary"),
        ]
        assert rows[0] == {
            "metric": "auroc",
            "role": "primary",
            "higher_is_better": True,
            "candidate": 0.834,
            "parent": 0.812,
            "delta": pytest.approx(0.022),
            "ci_low": 0.009,
            "ci_high": 0.035,
            "relative_delta": pytest.approx(0.022 / 0.812),
            "n_valid": 1000,
        }


class TestGuardrailsAndFloor:
    def test_guardrail_vetoes_an_improvement(self):
        bad_ece = result("ece", 0.071, 0.041, 0.021, 0.039, higher_is_better=False)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED, bad_ece))
        assert verdict.outcome is Outcome.REJECT and verdict.reason_code is R.GUARDRAIL_VIOLATED
        assert "ece" in verdict.reason and "0.039" in verdict.reason and "0.02" in verdict.reason

    @pytest.mark.parametrize("ci_high, vetoed", [(0.0199, False), (0.02, False), (0.0201, True)])
    def test_guardrail_tolerance_boundary(self, ci_high, vetoed):
        ece = result("ece", 0.05, 0.041, -0.001, ci_high, higher_is_better=False)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED, ece))
        assert (verdict.reason_code is R.GUARDRAIL_VIOLATED) is vetoed

    def test_higher_is_better_guardrail(self):
        policy = BenchmarkPolicy("auroc", {"auroc": True, "recall": True}, guardrails={"recall": 0.01})
        recall = result("recall", 0.70, 0.72, -0.03, -0.01)
        verdict = decide(policy=policy, comparisons={"auroc": IMPROVED, "recall": recall})
        assert verdict.reason_code is R.GUARDRAIL_VIOLATED

    def test_zero_tolerance_guardrail_means_not_significantly_worse(self):
        policy = BenchmarkPolicy("auroc", {"auroc": True, "recall": True}, guardrails={"recall": 0.0})
        unchanged = result("recall", 0.72, 0.72, 0.0, 0.0)
        wobbly = result("recall", 0.72, 0.72, -0.001, 0.001)  # an equal candidate: no veto (was 97.5% of the time)
        worse = result("recall", 0.70, 0.72, -0.03, -0.01)
        assert decide(policy=policy, comparisons={"auroc": IMPROVED, "recall": unchanged}).reason_code is R.IMPROVED
        assert decide(policy=policy, comparisons={"auroc": IMPROVED, "recall": wobbly}).reason_code is R.IMPROVED
        verdict = decide(policy=policy, comparisons={"auroc": IMPROVED, "recall": worse})
        assert verdict.reason_code is R.GUARDRAIL_VIOLATED and "not significantly" in verdict.reason

    def test_a_tolerance_under_three_standard_errors_is_warned_about(self):
        policy = BenchmarkPolicy("auroc", {"auroc": True, "brier": False}, guardrails={"brier": 0.005})
        # SE 0.00274 (half-width 0.00537): the demo's brier guardrail at n = 4000.
        brier = result("brier", 0.150, 0.150, -0.00537, 0.00537, higher_is_better=False)
        verdict = decide(policy=policy, comparisons={"auroc": IMPROVED, "brier": brier})
        (warning,) = verdict.guardrail_warnings
        assert warning["metric"] == "brier" and warning["tolerance_in_standard_errors"] == pytest.approx(1.825, 0.01)
        assert warning["equal_candidate_veto_probability"] == pytest.approx(0.57, abs=0.02)
        assert "Warning: guardrail brier's tolerance 0.005" in verdict.reason
        wide = BenchmarkPolicy("auroc", {"auroc": True, "brier": False}, guardrails={"brier": 0.02})
        assert decide(policy=wide, comparisons={"auroc": IMPROVED, "brier": brier}).guardrail_warnings == ()

    def test_several_guardrails_are_counted(self):
        policy = BenchmarkPolicy(
            "auroc", {"auroc": True, "a": True, "b": True, "c": True}, guardrails={"a": 0.0, "b": 0.0, "c": 0.0}
        )
        bad = {name: result(name, 0.5, 0.6, -0.2, -0.05) for name in "abc"}
        verdict = decide(policy=policy, comparisons={"auroc": IMPROVED, **bad})
        assert verdict.failed_checks == (R.GUARDRAIL_VIOLATED,)
        assert verdict.reason.startswith("Guardrail a went from") and "2 more guardrail" in verdict.reason

    def test_secondary_metrics_never_veto(self):
        awful = result("accuracy", 0.2, 0.9, -0.8, -0.6)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED, accuracy=awful))
        assert verdict.reason_code is R.IMPROVED

    def test_floor_vetoes_an_improvement(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.74, 0.70, 0.02, 0.06)))
        assert verdict.reason_code is R.BELOW_FLOOR and "0.74" in verdict.reason and "0.75" in verdict.reason

    def test_floor_on_lower_is_better_metric_is_a_maximum(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, floor=4.0, non_inferiority_margin=0.05)
        rmse = result("rmse", 4.05, 4.20, -0.23, -0.07, higher_is_better=False)
        assert decide(policy=policy, comparisons={"rmse": rmse}).reason_code is R.BELOW_FLOOR

    def test_every_failure_is_listed_in_precedence_order(self):
        bad_ece = result("ece", 0.071, 0.041, 0.021, 0.039, higher_is_better=False)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(auroc(0.70, 0.72, -0.03, 0.01), bad_ece))
        assert verdict.reason_code is R.PRIMARY_NOT_IMPROVED
        assert verdict.failed_checks == (R.PRIMARY_NOT_IMPROVED, R.GUARDRAIL_VIOLATED, R.BELOW_FLOOR)
        assert "also failed: guardrail_violated, below_floor" in verdict.reason


class TestUndefinedStatistics:
    @pytest.mark.parametrize(
        "primary, code",
        [
            (auroc(float("nan"), 0.812, float("nan"), float("nan")), R.METRIC_UNDEFINED),
            (auroc(0.834, float("nan"), float("nan"), float("nan")), R.METRIC_UNDEFINED),
            (auroc(0.834, 0.812, float("nan"), 0.035), R.METRIC_UNDEFINED),
            (auroc(0.834, 0.812, 0.009, 0.035, n_valid=899), R.INSUFFICIENT_VALID_RESAMPLES),
            (auroc(0.834, 0.812, float("nan"), float("nan"), n_valid=0), R.INSUFFICIENT_VALID_RESAMPLES),
        ],
    )
    def test_primary(self, primary, code):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(primary))
        assert verdict.outcome is Outcome.ERROR and verdict.reason_code is code
        assert verdict.magnitude == MAGNITUDE_NOT_APPLICABLE
        json_round_trip(verdict)

    def test_valid_fraction_boundary(self):
        at_threshold = int(MIN_VALID_RESAMPLE_FRACTION * 1000)
        primary = auroc(0.834, 0.812, 0.009, 0.035, n_valid=at_threshold)
        assert decide(policy=AUROC_POLICY, comparisons=with_guardrail(primary)).reason_code is R.IMPROVED

    def test_guardrail(self):
        ece = result("ece", 0.043, 0.041, -0.004, 0.008, higher_is_better=False, n_valid=10)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED, ece))
        assert verdict.reason_code is R.INSUFFICIENT_VALID_RESAMPLES and "ece" in verdict.reason

    def test_undefined_secondary_is_reported_as_null(self):
        nan = float("nan")
        secondary = result("accuracy", nan, 0.9, nan, nan, n_valid=0)
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED, accuracy=secondary))
        assert verdict.reason_code is R.IMPROVED
        row = json_round_trip(verdict)["metric_table"][2]
        assert row["candidate"] is None and row["delta"] is None and row["ci_low"] is None


class TestTradeoff:
    def test_verified_tradeoff(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(SLIGHTLY_WORSE),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.outcome is Outcome.PROMOTE_WITH_TRADEOFF and verdict.reason_code is R.TRADEOFF_VERIFIED
        assert verdict.promotes and verdict.failed_checks == ()
        assert verdict.tradeoff.verified and verdict.tradeoff.rationale == "distilled"
        baseline = verdict.compared_with_baseline
        assert baseline.is_parent and baseline.passed and baseline.oriented_ci_low == pytest.approx(-0.0085)
        assert "param_count -50%" in verdict.reason and "latency -4x" in verdict.reason
        doc = json_round_trip(verdict)
        assert doc["tradeoff"]["claims"]["latency"]["verified"] is True
        assert doc["compared_with_baseline"]["is_parent"] is True

    def test_not_significant_candidate_with_tradeoff(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(NOT_SIGNIFICANT),
            tradeoff_justification={"memory": "-30%"},
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is R.TRADEOFF_VERIFIED

    @pytest.mark.parametrize(
        "justification, evidence, code",
        [
            ({"latency": "fast"}, GOOD_EVIDENCE, R.TRADEOFF_MALFORMED),
            ("-50%", GOOD_EVIDENCE, R.TRADEOFF_MALFORMED),
            ({"latency": "4x", "rationale": 5}, GOOD_EVIDENCE, R.TRADEOFF_MALFORMED),
            ({"flops": "-50%"}, GOOD_EVIDENCE, R.TRADEOFF_UNVERIFIABLE),
            ({"param_count": "-50%", "flops": "-50%"}, GOOD_EVIDENCE, R.TRADEOFF_UNVERIFIABLE),
            ({"rationale": "it is smaller"}, GOOD_EVIDENCE, R.TRADEOFF_UNVERIFIABLE),
            ({"param_count": "-50%"}, None, R.TRADEOFF_UNVERIFIABLE),
            (
                {"memory": "-50%"},
                TradeoffEvidence(candidate_parameter_count=1, parent_parameter_count=2),
                R.TRADEOFF_UNVERIFIABLE,
            ),
            (
                {"latency": "4x"},
                TradeoffEvidence(candidate_wall_seconds=5.2, parent_wall_seconds=12.0),
                R.TRADEOFF_CLAIM_NOT_MET,
            ),
            ({"param_count": "-90%", "latency": "-4x"}, GOOD_EVIDENCE, R.TRADEOFF_CLAIM_NOT_MET),
        ],
    )
    def test_unusable_tradeoffs_are_rejected(self, justification, evidence, code):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(SLIGHTLY_WORSE),
            tradeoff_justification=justification,
            evidence=evidence,
        )
        assert verdict.outcome is Outcome.REJECT and verdict.reason_code is code
        assert verdict.failed_checks == (code,)
        assert verdict.tradeoff is not None and not verdict.tradeoff.verified
        json_round_trip(verdict)

    def test_claim_not_met_names_the_measurement(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(SLIGHTLY_WORSE),
            tradeoff_justification={"latency": "4x"},
            evidence=TradeoffEvidence(candidate_wall_seconds=5.2, parent_wall_seconds=12.0),
        )
        assert "0.4333" in verdict.reason and "0.275" in verdict.reason

    def test_primary_inferior(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.80, 0.812, -0.02, -0.004)),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is R.PRIMARY_INFERIOR
        # Without a baseline comparison the parent is the baseline: one failure, not two.
        assert verdict.failed_checks == (R.PRIMARY_INFERIOR,)
        assert verdict.compared_with_baseline.is_parent and not verdict.compared_with_baseline.passed
        assert "0.02" in verdict.reason and "0.01" in verdict.reason

    @pytest.mark.parametrize("ci_low, code", [(-0.01, R.TRADEOFF_VERIFIED), (-0.0101, R.PRIMARY_INFERIOR)])
    def test_margin_boundary(self, ci_low, code):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.806, 0.812, ci_low, -0.002)),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is code

    def test_benchmark_margin_is_used(self):
        policy = BenchmarkPolicy("auroc", {"auroc": True}, non_inferiority_margin=0.03)
        verdict = decide(
            policy=policy,
            comparisons={"auroc": auroc(0.80, 0.812, -0.02, -0.004)},
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is R.TRADEOFF_VERIFIED

    def test_lower_is_better_tradeoff(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, non_inferiority_margin=0.1)
        within = result("rmse", 4.25, 4.20, 0.01, 0.09, higher_is_better=False)
        beyond = result("rmse", 4.25, 4.20, 0.01, 0.11, higher_is_better=False)
        kw = dict(policy=policy, tradeoff_justification=GOOD_CLAIMS, evidence=GOOD_EVIDENCE)
        assert decide(comparisons={"rmse": within}, **kw).reason_code is R.TRADEOFF_VERIFIED
        assert decide(comparisons={"rmse": beyond}, **kw).reason_code is R.PRIMARY_INFERIOR

    def test_biocreep_guard_rejects_cumulative_loss(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.801, 0.806, -0.0079, -0.0021)),
            tradeoff_justification={"memory": "-30%"},
            evidence=GOOD_EVIDENCE,
            baseline_comparisons={"auroc": auroc(0.801, 0.809, -0.0113, -0.0047)},
            baseline_version_id="v3",
        )
        assert verdict.reason_code is R.CUMULATIVE_INFERIORITY
        assert verdict.failed_checks == (R.CUMULATIVE_INFERIORITY,)
        baseline = verdict.compared_with_baseline
        assert not baseline.is_parent and baseline.version_id == "v3" and not baseline.passed
        assert baseline.baseline == 0.809 and baseline.oriented_ci_low == -0.0113
        assert "v3" in verdict.reason and "0.0113" in verdict.reason

    def test_biocreep_guard_passes_within_margin(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(SLIGHTLY_WORSE),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
            baseline_comparisons={"auroc": auroc(0.806, 0.809, -0.0062, 0.0001)},
            baseline_version_id="v3",
        )
        assert verdict.reason_code is R.TRADEOFF_VERIFIED
        assert "baseline version v3" in verdict.reason
        assert json_round_trip(verdict)["compared_with_baseline"]["version_id"] == "v3"

    def test_biocreep_guard_for_lower_is_better(self):
        policy = BenchmarkPolicy("rmse", {"rmse": False}, non_inferiority_margin=0.1)
        verdict = decide(
            policy=policy,
            comparisons={"rmse": result("rmse", 4.25, 4.20, 0.01, 0.09, higher_is_better=False)},
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
            baseline_comparisons={"rmse": result("rmse", 4.25, 4.10, 0.09, 0.21, higher_is_better=False)},
        )
        assert verdict.reason_code is R.CUMULATIVE_INFERIORITY
        assert verdict.compared_with_baseline.oriented_ci_low == -0.21

    def test_baseline_is_ignored_when_no_tradeoff_is_needed(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(IMPROVED),
            baseline_comparisons={"auroc": auroc(0.834, 0.9, -0.1, -0.05)},
        )
        assert verdict.reason_code is R.IMPROVED and verdict.compared_with_baseline is None

    def test_undefined_baseline_is_an_error(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(SLIGHTLY_WORSE),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
            baseline_comparisons={"auroc": auroc(0.806, 0.809, -0.0062, 0.0001, n_valid=100)},
            baseline_version_id="v3",
        )
        assert verdict.outcome is Outcome.ERROR and verdict.reason_code is R.INSUFFICIENT_VALID_RESAMPLES
        assert "baseline version v3" in verdict.reason and verdict.magnitude == MAGNITUDE_NOT_APPLICABLE

    @pytest.mark.parametrize(
        "baseline, message",
        [
            ({"ece": ECE_OK}, "auroc"),
            ({"auroc": auroc(0.806, 0.809, -0.0062, 0.0001, higher_is_better=False)}, "higher_is_better"),
        ],
    )
    def test_malformed_baseline(self, baseline, message):
        with pytest.raises(DecisionInputError, match=message):
            decide(
                policy=AUROC_POLICY,
                comparisons=with_guardrail(SLIGHTLY_WORSE),
                tradeoff_justification=GOOD_CLAIMS,
                evidence=GOOD_EVIDENCE,
                baseline_comparisons=baseline,
            )

    def test_guardrail_and_floor_apply_to_tradeoffs(self):
        bad_ece = result("ece", 0.071, 0.041, 0.021, 0.039, higher_is_better=False)
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.745, 0.75, -0.008, -0.002), bad_ece),
            tradeoff_justification=GOOD_CLAIMS,
            evidence=GOOD_EVIDENCE,
        )
        assert verdict.reason_code is R.GUARDRAIL_VIOLATED
        assert verdict.failed_checks == (R.GUARDRAIL_VIOLATED, R.BELOW_FLOOR)

    def test_all_tradeoff_failures_in_precedence_order(self):
        verdict = decide(
            policy=AUROC_POLICY,
            comparisons=with_guardrail(auroc(0.70, 0.74, -0.06, -0.02)),
            tradeoff_justification={"latency": "soon", "flops": "-2x", "param_count": "-90%"},
            evidence=GOOD_EVIDENCE,
            baseline_comparisons={"auroc": auroc(0.70, 0.76, -0.08, -0.04)},
        )
        assert verdict.failed_checks == (
            R.TRADEOFF_MALFORMED,
            R.TRADEOFF_UNVERIFIABLE,
            R.TRADEOFF_CLAIM_NOT_MET,
            R.PRIMARY_INFERIOR,
            R.CUMULATIVE_INFERIORITY,
            R.BELOW_FLOOR,
        )
        assert verdict.reason_code is R.TRADEOFF_MALFORMED


class TestVocabulary:
    def test_every_reason_code_has_exactly_one_outcome(self):
        assert set(REASON_OUTCOMES) == set(ReasonCode)
        assert set(REASON_OUTCOMES.values()) == set(Outcome)

    def test_decide_never_claims_a_forced_promotion(self):
        with pytest.raises(DecisionInputError, match="not an error reason code"):
            decide(policy=AUROC_POLICY, error="override", error_code=R.FORCED_PROMOTION)

    def test_verdict_outcome_matches_its_reason_code(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(IMPROVED))
        assert REASON_OUTCOMES[verdict.reason_code] is verdict.outcome

    def test_metric_roles(self):
        assert {str(role) for role in MetricRole} == {"primary", "guardrail", "secondary"}

    def test_reason_is_a_sentence(self):
        verdict = decide(policy=AUROC_POLICY, comparisons=with_guardrail(NOT_SIGNIFICANT))
        assert verdict.reason[0].isupper() and verdict.reason.endswith(".")


# ---------------------------------------------------------------- properties

finite = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False)
small = st.floats(min_value=-0.2, max_value=0.2, allow_nan=False, allow_infinity=False)


@st.composite
def comparison(draw, metric: str, higher_is_better: bool | None = None) -> BootstrapResult:
    parent = draw(st.one_of(finite, st.just(0.0)))
    delta = draw(small)
    candidate = parent + delta
    # Intervals mostly around the point estimate, sometimes not (percentile intervals need not contain it).
    a, b = delta + draw(small) / 2, delta + draw(small) / 2
    direction = draw(st.booleans()) if higher_is_better is None else higher_is_better
    n_valid = draw(st.sampled_from([1000] * 8 + [950, 900, 899]))
    return result(metric, candidate, parent, min(a, b), max(a, b), higher_is_better=direction, n_valid=n_valid)


JUSTIFICATIONS = st.sampled_from(
    [
        None,
        {},
        {"param_count": "-50%"},
        {"latency": "-4x", "rationale": "why not"},
        {"memory": "-30%", "param_count": "2x"},
        {"latency": "8x"},
        {"flops": "-50%"},
        {"memory": "tiny"},
    ]
)
EVIDENCE = st.sampled_from(
    [
        None,
        GOOD_EVIDENCE,
        GOOD_EVIDENCE,
        GOOD_EVIDENCE,
        TradeoffEvidence(candidate_parameter_count=60, parent_parameter_count=100),
        TradeoffEvidence(
            candidate_wall_seconds=1.0, parent_wall_seconds=3.0, candidate_peak_memory_bytes=1, parent_peak_memory_bytes=2
        ),
    ]
)


@st.composite
def scenario(draw) -> dict:
    primary = draw(comparison("primary"))
    guardrail_direction = draw(st.booleans())
    has_guardrail = draw(st.booleans())
    directions = {"primary": primary.higher_is_better, "guard": guardrail_direction}
    comparisons = {"primary": primary}
    guardrails = {}
    if has_guardrail:
        comparisons["guard"] = draw(comparison("guard", guardrail_direction))
        guardrails["guard"] = draw(st.floats(min_value=0.0, max_value=0.3))
    if draw(st.booleans()):
        comparisons["other"] = draw(comparison("other"))
    policy = BenchmarkPolicy(
        "primary",
        directions,
        non_inferiority_margin=draw(st.floats(min_value=0.0, max_value=0.2)),
        floor=draw(st.one_of(st.none(), finite)),
        guardrails=guardrails,
    )
    baseline = draw(st.one_of(st.none(), comparison("primary", primary.higher_is_better).map(lambda r: {"primary": r})))
    return dict(
        policy=policy,
        comparisons=comparisons,
        tradeoff_justification=draw(JUSTIFICATIONS),
        evidence=draw(EVIDENCE),
        baseline_comparisons=baseline,
        baseline_version_id=draw(st.sampled_from([None, "v1"])),
    )


def oriented_bounds(r: BootstrapResult) -> tuple[float, float, float]:
    if r.higher_is_better:
        return r.delta, r.ci_low, r.ci_high
    return -r.delta, -r.ci_high, -r.ci_low


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(scenario())
def test_never_promotes_without_evidence_of_improvement_or_a_verified_tradeoff(kw):
    verdict = decide(**kw)
    delta, ci_low, _ = oriented_bounds(kw["comparisons"]["primary"])
    if verdict.outcome is Outcome.PROMOTE:
        assert delta >= 0 and ci_low > 0
    if verdict.outcome is Outcome.PROMOTE_WITH_TRADEOFF:
        assert verdict.tradeoff is not None and verdict.tradeoff.verified
        assert ci_low >= -kw["policy"].non_inferiority_margin
        assert verdict.compared_with_baseline.passed
    if ci_low <= 0 and (verdict.tradeoff is None or not verdict.tradeoff.verified):
        assert not verdict.promotes
    if verdict.promotes:
        for name, tolerance in kw["policy"].guardrails.items():
            _, low, high = oriented_bounds(kw["comparisons"][name])
            # A tolerance of 0 means "not significantly worse" (policy 5.7).
            assert (high >= 0) if tolerance == 0 else (low >= -tolerance)


@PROPERTY_SETTINGS
@given(scenario())
def test_without_a_tradeoff_promotion_is_exactly_the_improvement_rule(kw):
    kw = {**kw, "tradeoff_justification": None}
    verdict = decide(**kw)
    if verdict.outcome is Outcome.ERROR:
        return
    policy, primary = kw["policy"], kw["comparisons"]["primary"]
    delta, ci_low, _ = oriented_bounds(primary)
    floor_met = policy.floor is None or (
        primary.candidate >= policy.floor if primary.higher_is_better else primary.candidate <= policy.floor
    )
    guardrails_hold = all(
        # A tolerance of 0 means "not significantly worse" (policy 5.7).
        (oriented_bounds(kw["comparisons"][name])[2] >= 0) if tolerance == 0
        else (oriented_bounds(kw["comparisons"][name])[1] >= -tolerance)
        for name, tolerance in policy.guardrails.items()
    )
    expected = delta >= 0 and ci_low > 0 and floor_met and guardrails_hold
    assert (verdict.outcome is Outcome.PROMOTE) is expected
    assert verdict.outcome in (Outcome.PROMOTE, Outcome.REJECT)


@PROPERTY_SETTINGS
@given(scenario())
def test_flipping_direction_and_negating_values_gives_the_same_verdict(kw):
    policy = kw["policy"]
    mirrored_policy = BenchmarkPolicy(
        policy.primary_metric,
        {metric: not direction for metric, direction in policy.higher_is_better.items()},
        non_inferiority_margin=policy.non_inferiority_margin,
        floor=None if policy.floor is None else -policy.floor,
        guardrails=policy.guardrails,
    )
    mirrored = {
        **kw,
        "policy": mirrored_policy,
        "comparisons": {name: mirror(r) for name, r in kw["comparisons"].items()},
        "baseline_comparisons": (
            None
            if kw["baseline_comparisons"] is None
            else {name: mirror(r) for name, r in kw["baseline_comparisons"].items()}
        ),
    }
    original, flipped = decide(**kw), decide(**mirrored)
    assert (flipped.outcome, flipped.reason_code, flipped.magnitude, flipped.failed_checks) == (
        original.outcome,
        original.reason_code,
        original.magnitude,
        original.failed_checks,
    )


@PROPERTY_SETTINGS
@given(scenario())
def test_every_verdict_explains_itself_in_json(kw):
    verdict = decide(**kw)
    assert verdict.reason[0].isupper() and verdict.reason.endswith(".")
    assert REASON_OUTCOMES[verdict.reason_code] is verdict.outcome
    magnitudes = {name for name, _ in MAGNITUDE_BUCKETS} | {MAGNITUDE_UNDEFINED, MAGNITUDE_NOT_APPLICABLE}
    assert verdict.magnitude in magnitudes
    assert verdict.promotes == (verdict.failed_checks == ())
    doc = json.loads(json.dumps(verdict.as_dict(), allow_nan=False))
    assert doc["outcome"] == str(verdict.outcome)
    assert doc["metric_table"][0]["metric"] == "primary"


@PROPERTY_SETTINGS
@given(scenario(), st.text(min_size=1).filter(str.strip))
def test_never_promotes_on_an_error(kw, message):
    verdict = decide(**kw, error=message)
    assert verdict.outcome is Outcome.ERROR and not verdict.promotes


@PROPERTY_SETTINGS
@given(scenario(), st.floats(min_value=0.0, max_value=0.1))
def test_a_wider_margin_never_turns_a_promotion_into_a_rejection(kw, extra):
    policy = kw["policy"]
    wider = BenchmarkPolicy(
        policy.primary_metric,
        policy.higher_is_better,
        non_inferiority_margin=policy.non_inferiority_margin + extra,
        floor=policy.floor,
        guardrails=policy.guardrails,
    )
    if decide(**kw).promotes:
        assert decide(**{**kw, "policy": wider}).promotes


# ---------------------------------------------------------------- the binding resample count in settings


def test_settings_refuse_fewer_binding_resamples_than_the_policy_floor():
    from model_eval_gate import config

    assert config.MIN_BINDING_RESAMPLES == decision.MIN_BINDING_RESAMPLES
    with pytest.raises(config.ConfigError, match="N_RESAMPLES=10 is below 1000"):
        config.Settings.from_env({"MODEL_EVAL_GATE_N_RESAMPLES": "10"})
    quick = config.Settings.from_env({"MODEL_EVAL_GATE_QUICK_RESAMPLES": "50"})
    assert (quick.n_resamples, quick.quick_resamples) == (1000, 50)
