"""What a reading means for the patient: a tier in words, and what to do next.

Pure functions over `protocols` data. The cut-offs are the defaults of the clinical rule
set the cloud judges with (`../shared/docs/clinical_rules.md` §1; the cloud's rule set
`2026-11-clinical-rules-v1`), mirrored here because the app must answer at once, offline,
and may not import cloud code. A test compares both on a grid of values so they cannot
drift apart. Targets a doctor sets for the patient are not delivered to the edge yet;
`PatientTargets` is where they will go.

Three tiers, as the patient sees them:

* ``in_target``  — nothing to do but keep measuring;
* ``high`` (or ``low``) — off target; where the cloud raises an alert for it
  (`alerts_case_manager`), the case manager is told;
* ``see_doctor`` — the cloud's critical tier: rest and re-measure now, the case manager
  is told, call 120 with symptoms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from protocols.metrics import Metric
from protocols.reading import MealContext, Reading, StatusFlag


class PatientTier(StrEnum):
    IN_TARGET = "in_target"
    HIGH = "high"
    LOW = "low"
    SEE_DOCTOR = "see_doctor"


TIER_COLOURS: dict[PatientTier, tuple[float, float, float, float]] = {
    PatientTier.IN_TARGET: (0.13, 0.55, 0.13, 1),
    PatientTier.HIGH: (0.85, 0.45, 0.0, 1),
    PatientTier.LOW: (0.85, 0.45, 0.0, 1),
    PatientTier.SEE_DOCTOR: (0.8, 0.0, 0.0, 1),
}
"""Always shown with the tier's words and symbol (✓ ! !!), never alone."""


@dataclass(frozen=True, slots=True)
class PatientTargets:
    """The home targets the patient is judged against (defaults: CN home-BP and CDS 2020)."""

    systolic_max: float = 135.0
    diastolic_max: float = 85.0
    fasting_glucose: tuple[float, float] = (4.4, 7.0)
    non_fasting_glucose_max: float = 10.0


DEFAULT_TARGETS = PatientTargets()


@dataclass(frozen=True, slots=True)
class Verdict:
    tier: PatientTier
    advice: tuple[str, ...]
    """Keys of `mobile_app.strings`, in the order they are shown."""
    alerts_case_manager: bool
    """True when the cloud's rules raise an alert a case manager works on (high, critical)."""

    @property
    def abnormal(self) -> bool:
        return self.tier is not PatientTier.IN_TARGET


def judge_blood_pressure(
    systolic: float, diastolic: float, targets: PatientTargets = DEFAULT_TARGETS
) -> Verdict:
    if systolic >= 180 or diastolic >= 110:
        return Verdict(PatientTier.SEE_DOCTOR, ("advice_rest_remeasure", "advice_emergency"), True)
    if systolic >= 160 or diastolic >= 100:
        return Verdict(PatientTier.HIGH, ("advice_rest_remeasure",), True)
    if systolic < 90 or diastolic < 60:
        return Verdict(PatientTier.LOW, ("advice_rest_remeasure",), True)
    if systolic >= targets.systolic_max or diastolic >= targets.diastolic_max:
        return Verdict(PatientTier.HIGH, ("advice_rest_remeasure", "advice_talk_at_revisit"), False)
    return Verdict(PatientTier.IN_TARGET, ("advice_keep_going",), False)


_FASTING_LIKE = {MealContext.FASTING, MealContext.BEFORE_MEAL}
_NON_FASTING = {MealContext.AFTER_MEAL, MealContext.BEDTIME, MealContext.RANDOM}


def judge_glucose(
    value: float,
    meal: MealContext | None,
    flags: Iterable[StatusFlag] = (),
    targets: PatientTargets = DEFAULT_TARGETS,
) -> Verdict:
    flag_set = set(flags)
    if StatusFlag.VALUE_LO in flag_set or value < 3.0:
        return Verdict(PatientTier.SEE_DOCTOR, ("advice_sugar", "advice_emergency"), True)
    if StatusFlag.VALUE_HI in flag_set or value >= 33.3:
        return Verdict(PatientTier.SEE_DOCTOR, ("advice_ketones", "advice_emergency"), True)
    if value < 3.9:
        return Verdict(PatientTier.LOW, ("advice_sugar",), True)
    if value >= 16.7:
        return Verdict(PatientTier.HIGH, ("advice_ketones",), True)
    low, high = targets.fasting_glucose
    if meal in _FASTING_LIKE:
        if value > high:
            return Verdict(PatientTier.HIGH, ("advice_talk_at_revisit",), False)
        if value < low:
            return Verdict(PatientTier.LOW, ("advice_talk_at_revisit",), False)
    elif meal in _NON_FASTING and value >= targets.non_fasting_glucose_max:
        return Verdict(PatientTier.HIGH, ("advice_talk_at_revisit",), False)
    return Verdict(PatientTier.IN_TARGET, ("advice_keep_going",), False)


def judge_readings(
    readings: Iterable[Reading], targets: PatientTargets = DEFAULT_TARGETS
) -> Verdict | None:
    """The verdict for one measurement's readings; None when there is nothing to judge."""
    by_metric = {r.metric: r for r in readings}
    systolic, diastolic = by_metric.get(Metric.SYSTOLIC), by_metric.get(Metric.DIASTOLIC)
    if systolic is not None and diastolic is not None:
        return judge_blood_pressure(systolic.value, diastolic.value, targets)
    glucose = by_metric.get(Metric.GLUCOSE)
    if glucose is not None:
        return judge_glucose(glucose.value, glucose.context.meal, glucose.flags, targets)
    return None


def target_band(metric: Metric, targets: PatientTargets = DEFAULT_TARGETS) -> tuple[float, float]:
    """The band a history chart shades for `metric`."""
    if metric is Metric.SYSTOLIC:
        return (90.0, targets.systolic_max)
    if metric is Metric.DIASTOLIC:
        return (60.0, targets.diastolic_max)
    if metric is Metric.GLUCOSE:
        return (targets.fasting_glucose[0], targets.non_fasting_glucose_max)
    if metric is Metric.SPO2:
        return (94.0, 100.0)
    raise ValueError(f"no target band for {metric.value}")
