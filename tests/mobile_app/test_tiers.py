"""What a reading means for the patient, and that it agrees with the cloud's rules."""

from __future__ import annotations

import pytest

from cloud.alerts.thresholds import Cohort, Tier, judge_value
from mobile_app.tiers import PatientTier, judge_blood_pressure, judge_glucose
from protocols.metrics import Metric
from protocols.reading import MealContext, StatusFlag


@pytest.mark.parametrize(
    ("systolic", "diastolic", "tier", "alerts"),
    [
        (120, 78, PatientTier.IN_TARGET, False),
        (134, 84, PatientTier.IN_TARGET, False),
        (135, 80, PatientTier.HIGH, False),
        (150, 86, PatientTier.HIGH, False),
        (160, 90, PatientTier.HIGH, True),
        (150, 100, PatientTier.HIGH, True),
        (88, 70, PatientTier.LOW, True),
        (180, 90, PatientTier.SEE_DOCTOR, True),
        (170, 110, PatientTier.SEE_DOCTOR, True),
    ],
)
def test_blood_pressure_tiers(
    systolic: float, diastolic: float, tier: PatientTier, alerts: bool
) -> None:
    verdict = judge_blood_pressure(systolic, diastolic)
    assert (verdict.tier, verdict.alerts_case_manager) == (tier, alerts)
    if tier is not PatientTier.IN_TARGET:
        assert verdict.advice[0] == "advice_rest_remeasure"


@pytest.mark.parametrize(
    ("value", "meal", "flags", "tier"),
    [
        (5.6, MealContext.FASTING, (), PatientTier.IN_TARGET),
        (7.4, MealContext.FASTING, (), PatientTier.HIGH),
        (7.4, MealContext.AFTER_MEAL, (), PatientTier.IN_TARGET),
        (10.2, MealContext.AFTER_MEAL, (), PatientTier.HIGH),
        (10.2, None, (), PatientTier.IN_TARGET),  # unknown context: only the safety rules
        (4.2, MealContext.FASTING, (), PatientTier.LOW),
        (3.5, None, (), PatientTier.LOW),
        (2.8, None, (), PatientTier.SEE_DOCTOR),
        (1.1, None, (StatusFlag.VALUE_LO,), PatientTier.SEE_DOCTOR),
        (17.0, None, (), PatientTier.HIGH),
        (33.3, None, (StatusFlag.VALUE_HI,), PatientTier.SEE_DOCTOR),
    ],
)
def test_glucose_tiers(
    value: float, meal: MealContext | None, flags: tuple[StatusFlag, ...], tier: PatientTier
) -> None:
    assert judge_glucose(value, meal, flags).tier is tier


def _cloud_tier(metric: Metric, value: float, **options: object) -> Tier | None:
    finding = judge_value(metric, value, **options)  # type: ignore[arg-type]
    return None if finding is None else finding.tier


def test_the_case_manager_is_told_exactly_when_the_cloud_raises_an_alert() -> None:
    """The app mirrors the cloud's default rule set; if one side moves, this fails."""
    alerting = {Tier.CRITICAL, Tier.HIGH}
    cohorts = [Cohort.HYPERTENSION, Cohort.DIABETES]
    for systolic in range(70, 230, 5):
        for diastolic in range(40, 140, 5):
            verdict = judge_blood_pressure(systolic, diastolic)
            tiers = {
                _cloud_tier(Metric.SYSTOLIC, systolic, cohorts=cohorts),
                _cloud_tier(Metric.DIASTOLIC, diastolic, cohorts=cohorts),
            }
            assert verdict.alerts_case_manager == bool(tiers & alerting), (systolic, diastolic)
            critical = Tier.CRITICAL in tiers
            assert (verdict.tier is PatientTier.SEE_DOCTOR) == critical, (systolic, diastolic)
            assert (verdict.tier is PatientTier.IN_TARGET) == (tiers == {None})
    for tenth in range(5, 400, 3):
        value = tenth / 10
        for meal in (*MealContext, None):
            verdict = judge_glucose(value, meal)
            tier = _cloud_tier(Metric.GLUCOSE, value, cohorts=cohorts, meal=meal)
            assert verdict.alerts_case_manager == (tier in alerting), (value, meal)
            assert (verdict.tier is PatientTier.SEE_DOCTOR) == (tier is Tier.CRITICAL)
            assert (verdict.tier is PatientTier.IN_TARGET) == (tier is None), (value, meal)
