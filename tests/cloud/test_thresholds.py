"""Every default threshold, on both sides of its boundary, in each context it depends on."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerts.thresholds import (
    DEFAULT_RULES,
    Cohort,
    Op,
    RuleSet,
    Target,
    Threshold,
    Tier,
    judge_value,
)
from protocols.metrics import Metric
from protocols.reading import MealContext, StatusFlag

G, SBP, DBP, PR, SPO2 = (
    Metric.GLUCOSE,
    Metric.SYSTOLIC,
    Metric.DIASTOLIC,
    Metric.PULSE_RATE,
    Metric.SPO2,
)
DM = {Cohort.DIABETES}
HT = {Cohort.HYPERTENSION}
COPD = {Cohort.COPD}
F, AM, U = MealContext.FASTING, MealContext.AFTER_MEAL, None

CASES = [
    # metric, value, cohorts, meal, expected rule (None = nothing), tier
    (G, 2.9, set(), U, "glucose.hypo.level2", Tier.CRITICAL),
    (G, 3.0, set(), U, "glucose.hypo.level1", Tier.HIGH),
    (G, 3.8, set(), U, "glucose.hypo.level1", Tier.HIGH),
    (G, 3.9, set(), U, None, None),
    (G, 3.9, DM, F, "glucose.fasting.low_normal", Tier.LOW),
    (G, 4.4, DM, F, None, None),
    (G, 7.0, DM, F, None, None),
    (G, 7.1, DM, F, "glucose.fasting.above_target", Tier.LOW),
    (G, 7.1, DM, AM, None, None),
    (G, 9.9, DM, AM, None, None),
    (G, 10.0, DM, AM, "glucose.non_fasting.above_target", Tier.LOW),
    (G, 10.0, DM, U, None, None),  # unknown context: only hypo and very-high rules
    (G, 10.0, set(), AM, None, None),  # target rules are for the diabetes cohort
    (G, 16.6, DM, U, None, None),
    (G, 16.7, set(), U, "glucose.very_high", Tier.HIGH),
    (G, 33.2, set(), U, "glucose.very_high", Tier.HIGH),
    (G, 33.3, set(), U, "glucose.hyper.extreme", Tier.CRITICAL),
    (SBP, 179, set(), U, "bp.grade2.systolic", Tier.HIGH),
    (SBP, 180, set(), U, "bp.crisis.systolic", Tier.CRITICAL),
    (DBP, 109, set(), U, "bp.grade2.diastolic", Tier.HIGH),
    (DBP, 110, set(), U, "bp.crisis.diastolic", Tier.CRITICAL),
    (SBP, 159, set(), U, None, None),
    (SBP, 160, set(), U, "bp.grade2.systolic", Tier.HIGH),
    (DBP, 99, set(), U, None, None),
    (DBP, 100, set(), U, "bp.grade2.diastolic", Tier.HIGH),
    (SBP, 134, HT, U, None, None),
    (SBP, 135, HT, U, "bp.above_target.systolic", Tier.LOW),
    (SBP, 135, set(), U, None, None),
    (DBP, 84, HT, U, None, None),
    (DBP, 85, HT, U, "bp.above_target.diastolic", Tier.LOW),
    (SBP, 90, set(), U, None, None),
    (SBP, 89, set(), U, "bp.low.systolic", Tier.HIGH),
    (DBP, 60, set(), U, None, None),
    (DBP, 59, set(), U, "bp.low.diastolic", Tier.HIGH),
    (PR, 40, set(), U, "pulse.extreme.low", Tier.CRITICAL),
    (PR, 41, set(), U, "pulse.low", Tier.HIGH),
    (PR, 49, set(), U, "pulse.low", Tier.HIGH),
    (PR, 50, set(), U, None, None),
    (PR, 120, set(), U, None, None),
    (PR, 121, set(), U, "pulse.high", Tier.HIGH),
    (PR, 149, set(), U, "pulse.high", Tier.HIGH),
    (PR, 150, set(), U, "pulse.extreme.high", Tier.CRITICAL),
    (SPO2, 95, set(), U, None, None),
    (SPO2, 94, set(), U, "spo2.medium", Tier.MEDIUM),
    (SPO2, 93, set(), U, "spo2.medium", Tier.MEDIUM),
    (SPO2, 92, set(), U, "spo2.high", Tier.HIGH),
    (SPO2, 91, set(), U, "spo2.high", Tier.HIGH),
    (SPO2, 90, set(), U, "spo2.critical", Tier.CRITICAL),
    (SPO2, 90, COPD, U, None, None),  # COPD targets 88–92
    (SPO2, 88, COPD, U, None, None),
    (SPO2, 87, COPD, U, "spo2.copd.high", Tier.HIGH),
    (SPO2, 86, COPD, U, "spo2.copd.high", Tier.HIGH),
    (SPO2, 85, COPD, U, "spo2.copd.critical", Tier.CRITICAL),
]


@pytest.mark.parametrize(("metric", "value", "cohorts", "meal", "rule", "tier"), CASES)
def test_default_thresholds(metric, value, cohorts, meal, rule, tier):
    finding = judge_value(metric, value, cohorts=cohorts, meal=meal)
    if rule is None:
        assert finding is None, finding
    else:
        assert (finding.rule_id, finding.tier) == (rule, tier)
        assert finding.reason.startswith(f"{metric.value} {value:g}")


def test_every_default_threshold_is_covered_by_a_case():
    covered = {case[4] for case in CASES}
    assert {t.rule_id for t in DEFAULT_RULES.thresholds} <= covered


@pytest.mark.parametrize("flag", [StatusFlag.VALUE_LO, StatusFlag.VALUE_HI])
def test_meter_lo_and_hi_are_critical_whatever_number_came_with_them(flag):
    finding = judge_value(G, 5.0, flags=[flag])
    assert finding.tier is Tier.CRITICAL
    assert finding.rule_id in {"glucose.meter_lo", "glucose.meter_hi"}


def test_a_doctors_target_replaces_the_default_target_but_never_the_critical_rules():
    relaxed = Target(G, low=5.0, high=9.0)  # an older, hypo-prone patient
    assert judge_value(G, 7.5, cohorts=DM, meal=F, targets=[relaxed]) is None
    above = judge_value(G, 9.5, cohorts=DM, meal=F, targets=[relaxed])
    assert above.rule_id == "glucose.patient_target" and above.tier is Tier.MEDIUM
    below = judge_value(G, 4.6, cohorts=DM, meal=F, targets=[relaxed])
    assert "below the patient's target 5" in below.reason
    assert judge_value(G, 2.5, cohorts=DM, meal=F, targets=[relaxed]).tier is Tier.CRITICAL


def _most_urgent_match(metric, value, cohorts, meal, has_target, rules=DEFAULT_RULES):
    """The rule of the module's docstring, spelled out: of the thresholds that apply, the
    most urgent that matches, the first in the set's order among equally urgent ones."""
    cohort_set = frozenset(cohorts) | {Cohort.GENERAL}
    best = None
    for rule in rules.thresholds:
        applies = rule.metric is metric and rule.applies(cohort_set, meal)
        judges = applies and not (has_target and rule.out_of_target) and rule.matches(value)
        if judges and (best is None or rule.tier.rank > best.tier.rank):
            best = rule
    return best


_TIED = RuleSet(
    "tied",
    "1",
    thresholds=(
        Threshold("low-first", G, Tier.LOW, Op.GT, 5.0, "a"),
        Threshold("high-first", G, Tier.HIGH, Op.GT, 8.0, "b"),
        Threshold("high-second", G, Tier.HIGH, Op.GT, 7.0, "c"),
        Threshold("dm-critical", G, Tier.CRITICAL, Op.GT, 9.0, "d", cohorts=frozenset(DM)),
        Threshold("target", G, Tier.MEDIUM, Op.GT, 6.0, "e", out_of_target=True),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    metric=st.sampled_from([G, SBP, DBP, PR, SPO2]),
    value=st.floats(min_value=0, max_value=250, allow_nan=False),
    cohorts=st.frozensets(st.sampled_from(list(Cohort))),
    meal=st.sampled_from([*MealContext, None]),
    rules=st.sampled_from([DEFAULT_RULES, _TIED]),
)
def test_the_finding_is_the_most_urgent_matching_rule_first_in_order(
    metric, value, cohorts, meal, rules
):
    # A target far outside any value, so only its replacing the out-of-target rules counts.
    for targets in ([], [Target(metric, low=None, high=1000)]):
        expected = _most_urgent_match(metric, value, cohorts, meal, bool(targets), rules)
        finding = judge_value(
            metric, value, cohorts=cohorts, meal=meal, targets=targets, rules=rules
        )
        assert (finding.rule_id if finding else None) == (expected.rule_id if expected else None)
