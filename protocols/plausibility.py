"""Plausibility: which values a human can have.

Three verdicts, from `shared/docs/clinical_rules.md` §2:
- accept: an ordinary value;
- flag: possible but unusual — stored, marked UNUSUAL_VALUE, and left for a data-quality check;
- reject: no human has this value (or the device sent an error as a number) — refused with
  the reason, and the cloud keeps the original in its dead letters.

Device LO/HI readings are real extremes and are never rejected for being out of range.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from protocols.metrics import Metric
from protocols.reading import Reading, StatusFlag


class Verdict(StrEnum):
    ACCEPT = "accept"
    FLAG = "flag"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Limits:
    """Values outside [reject_below, reject_above] are rejected, outside [low, high] flagged."""

    reject_below: float
    low: float
    high: float
    reject_above: float


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
    reason: str | None = None


ACCEPTED = Assessment(Verdict.ACCEPT)

# Canonical units (see protocols.metrics). Bounds are inclusive on the accepted side.
LIMITS: dict[Metric, Limits] = {
    Metric.GLUCOSE: Limits(reject_below=0.5, low=1.1, high=33.3, reject_above=150.0),
    Metric.SYSTOLIC: Limits(reject_below=40, low=60, high=260, reject_above=300),
    Metric.DIASTOLIC: Limits(reject_below=20, low=30, high=150, reject_above=200),
    Metric.MEAN_ARTERIAL_PRESSURE: Limits(reject_below=25, low=40, high=200, reject_above=250),
    Metric.PULSE_RATE: Limits(reject_below=15, low=30, high=220, reject_above=300),
    Metric.SPO2: Limits(reject_below=50, low=70, high=100, reject_above=100),
    Metric.WEIGHT: Limits(reject_below=0.5, low=30, high=250, reject_above=400),
    Metric.HEIGHT: Limits(reject_below=0.3, low=1.0, high=2.3, reject_above=2.8),
    Metric.BMI: Limits(reject_below=5, low=12, high=60, reject_above=150),
    Metric.BODY_FAT: Limits(reject_below=1, low=3, high=60, reject_above=80),
    Metric.MUSCLE_MASS: Limits(reject_below=1, low=10, high=120, reject_above=200),
    Metric.BODY_WATER: Limits(reject_below=1, low=10, high=100, reject_above=200),
    Metric.BASAL_METABOLISM: Limits(reject_below=100, low=500, high=4000, reject_above=10000),
    Metric.IMPEDANCE: Limits(reject_below=10, low=200, high=1000, reject_above=3000),
}

_PULSE_PRESSURE_FLAG = (15.0, 120.0)


def assess_value(metric: Metric, value: float, flags: Iterable[StatusFlag] = ()) -> Assessment:
    """Judge one value in its metric's canonical unit."""
    limits = LIMITS[metric]
    # Readings carry frozensets already; ingest judges each one it takes in.
    flag_set = flags if isinstance(flags, frozenset) else frozenset(flags)
    if flag_set and (StatusFlag.VALUE_LO in flag_set or StatusFlag.VALUE_HI in flag_set):
        # The device says the true value lies beyond its range: the number is only a bound.
        return ACCEPTED
    if value < limits.reject_below or value > limits.reject_above:
        return Assessment(
            Verdict.REJECT,
            f"{metric.value} {value:g} is outside what a person can have "
            f"({limits.reject_below:g}–{limits.reject_above:g})",
        )
    if value < limits.low or value > limits.high:
        return Assessment(
            Verdict.FLAG,
            f"{metric.value} {value:g} is unusual (expected {limits.low:g}–{limits.high:g})",
        )
    return ACCEPTED


def assess_measurement(readings: Sequence[Reading]) -> dict[uuid.UUID, Assessment]:
    """Judge the readings of one measurement together, by reading id.

    Cross-metric rules: systolic must exceed diastolic (else the whole cuff measurement is
    rejected), a pulse pressure under 15 or over 120 mmHg is flagged.
    """
    result = {r.reading_id: assess_value(r.metric, r.value, r.flags) for r in readings}
    by_metric = {r.metric: r for r in readings}
    systolic = by_metric.get(Metric.SYSTOLIC)
    diastolic = by_metric.get(Metric.DIASTOLIC)
    if systolic is None or diastolic is None:
        return result
    if systolic.value <= diastolic.value:
        reason = (
            f"systolic {systolic.value:g} is not above diastolic {diastolic.value:g}: "
            "a cuff measurement error"
        )
        cuff_metrics = {Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.MEAN_ARTERIAL_PRESSURE}
        for r in readings:
            if r.metric in cuff_metrics:
                result[r.reading_id] = Assessment(Verdict.REJECT, reason)
        return result
    pulse_pressure = systolic.value - diastolic.value
    low, high = _PULSE_PRESSURE_FLAG
    if not low <= pulse_pressure <= high:
        reason = f"pulse pressure {pulse_pressure:g} mmHg is unusual (expected {low:g}–{high:g})"
        for r in (systolic, diastolic):
            if result[r.reading_id].verdict is Verdict.ACCEPT:
                result[r.reading_id] = Assessment(Verdict.FLAG, reason)
    return result


def with_unusual_flag(reading: Reading) -> Reading:
    """The reading marked as possible but unusual."""
    return reading.model_copy(update={"flags": reading.flags | {StatusFlag.UNUSUAL_VALUE}})
