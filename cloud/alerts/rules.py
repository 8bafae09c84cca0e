"""From readings to alert candidates: pure functions, no I/O, every alert explained.

Blood pressure is judged on the session: the patient's cuff measurements within 10 minutes
are averaged (clinical_rules.md §3). A session of one critical measurement still raises a
critical alert at once — it is never held back waiting for a repeat — and says that a
repeat is due. Other metrics are judged value by value. Device problems become a
data-quality task ("check the device / measure again"), not a clinical alert.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cloud.alerts.thresholds import (
    DEFAULT_RULES,
    Cohort,
    Finding,
    RuleSet,
    Target,
    Tier,
    judge_value,
)
from protocols.metrics import Metric
from protocols.reading import Reading, StatusFlag

SESSION_WINDOW = timedelta(minutes=10)
REPEAT_DUE = timedelta(minutes=15)

_DATA_QUALITY_FLAGS = frozenset(
    {
        StatusFlag.DEVICE_ERROR,
        StatusFlag.SENSOR_FAULT,
        StatusFlag.CLOCK_UNSET,
        StatusFlag.UNUSUAL_VALUE,
        StatusFlag.STRIP_ERROR,
        StatusFlag.SAMPLE_INSUFFICIENT,
        StatusFlag.CUFF_LOOSE,
        StatusFlag.IMPROPER_POSITION,
    }
)
_BP_METRICS = frozenset({Metric.SYSTOLIC, Metric.DIASTOLIC})
_JUDGED_ALONE = frozenset({Metric.GLUCOSE, Metric.SPO2, Metric.PULSE_RATE})


@dataclass(frozen=True)
class PatientProfile:
    patient_id: str
    cohorts: frozenset[Cohort] = frozenset()
    targets: tuple[Target, ...] = ()
    rules: RuleSet | None = None
    """The patient's programme's rule set; None means the caller's (the default)."""


@dataclass(frozen=True)
class AlertCandidate:
    patient_id: str
    rule_id: str
    tier: Tier
    title: str
    explanation: dict[str, Any]
    reading_ids: list[uuid.UUID] = field(default_factory=list)
    kind: str = "clinical"
    """`clinical`, or `data_quality` for a check-the-device task."""


def _describe(r: Reading) -> dict[str, Any]:
    return {
        "reading_id": str(r.reading_id),
        "metric": r.metric.value,
        "value": r.value,
        "unit": r.unit,
        "measured_at": r.measured_at.isoformat(),
        "flags": sorted(f.value for f in r.flags),
    }


def _alert_id(rule_id: str) -> str:
    """BP rules come in systolic/diastolic pairs; one alert covers the pair."""
    head, _, tail = rule_id.rpartition(".")
    return head if tail in {"systolic", "diastolic"} else rule_id


def _bp_session(measurement: Sequence[Reading], history: Sequence[Reading]) -> list[list[Reading]]:
    """The cuff measurements (each a list of readings) of the session `measurement` ends."""
    at = measurement[0].measured_at
    groups: dict[uuid.UUID, list[Reading]] = defaultdict(list)
    for r in history:
        if r.metric in _BP_METRICS and timedelta(0) <= at - r.measured_at <= SESSION_WINDOW:
            groups[r.measurement_id].append(r)
    groups[measurement[0].measurement_id] = [r for r in measurement if r.metric in _BP_METRICS]
    return [g for g in groups.values() if {r.metric for r in g} == _BP_METRICS]


class _CuffHistory:
    """One patient's cuff readings ordered by time, so each measurement finds the earlier
    ones of its session by bisection. Scanning them all for each measurement made a flush
    of one patient's backlog quadratic: 1,000 cuff measurements took 0.8 s to judge."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        spots = sorted((r.measured_at, i) for i, r in enumerate(readings))
        self._times = [at for at, _i in spots]
        self._positions = [i for _at, i in spots]
        self._readings = readings

    def within(self, since: datetime, until: datetime) -> list[Reading]:
        """The readings measured from `since` to `until`, both included, in the order they
        were given (a session's measurements are listed in that order)."""
        lo = bisect_left(self._times, since)
        hi = bisect_right(self._times, until)
        return [self._readings[i] for i in sorted(self._positions[lo:hi])]


def blood_pressure(
    measurement: Sequence[Reading],
    history: Sequence[Reading],
    profile: PatientProfile,
    rules: RuleSet = DEFAULT_RULES,
) -> AlertCandidate | None:
    if not any(r.metric in _BP_METRICS for r in measurement):
        return None  # not a cuff measurement: no session to judge
    session = _bp_session(measurement, history)
    if not any(r.measurement_id == measurement[0].measurement_id for g in session for r in g):
        return None
    means = {
        metric: sum(r.value for g in session for r in g if r.metric is metric) / len(session)
        for metric in _BP_METRICS
    }
    findings = [
        f
        for metric, mean in means.items()
        if (
            f := judge_value(
                metric,
                round(mean, 1),
                cohorts=profile.cohorts,
                targets=profile.targets,
                rules=rules,
            )
        )
        is not None
    ]
    if not findings:
        return None
    worst = max(findings, key=lambda f: f.tier.rank)
    session_readings = [r for g in session for r in g]
    explanation = {
        "rule": _alert_id(worst.rule_id),
        "summary": "; ".join(f.reason for f in findings),
        "session": {
            "measurements": len(session),
            "window_minutes": SESSION_WINDOW.total_seconds() / 60,
            "systolic_mean": round(means[Metric.SYSTOLIC], 1),
            "diastolic_mean": round(means[Metric.DIASTOLIC], 1),
        },
        "thresholds": {f.rule_id: f.thresholds for f in findings},
        "readings": [_describe(r) for r in session_readings],
    }
    if worst.tier is Tier.CRITICAL and len(session) == 1:
        # A single reading: ask for a repeat after rest; escalate if none comes in time.
        explanation["repeat_due_minutes"] = REPEAT_DUE.total_seconds() / 60
    return AlertCandidate(
        patient_id=profile.patient_id,
        rule_id=_alert_id(worst.rule_id),
        tier=worst.tier,
        title=f"{worst.title_zh} {means[Metric.SYSTOLIC]:.0f}/{means[Metric.DIASTOLIC]:.0f} mmHg",
        explanation=explanation,
        reading_ids=[r.reading_id for r in measurement if r.metric in _BP_METRICS],
    )


def single_value(
    reading: Reading, profile: PatientProfile, rules: RuleSet = DEFAULT_RULES
) -> AlertCandidate | None:
    finding: Finding | None = judge_value(
        reading.metric,
        reading.value,
        cohorts=profile.cohorts,
        meal=reading.context.meal,
        flags=reading.flags,
        targets=profile.targets,
        rules=rules,
    )
    if finding is None:
        return None
    meal = reading.context.meal.value if reading.context.meal else "unknown"
    return AlertCandidate(
        patient_id=profile.patient_id,
        rule_id=finding.rule_id,
        tier=finding.tier,
        title=f"{finding.title_zh} {reading.value:g} {reading.unit}",
        explanation={
            "rule": finding.rule_id,
            "summary": finding.reason,
            "meal_context": meal,
            "thresholds": finding.thresholds,
            "readings": [_describe(reading)],
        },
        reading_ids=[reading.reading_id],
    )


def data_quality(measurement: Sequence[Reading], profile: PatientProfile) -> AlertCandidate | None:
    if all(_DATA_QUALITY_FLAGS.isdisjoint(r.flags) for r in measurement):
        return None  # nearly every measurement: no set to build
    problems = sorted({f.value for r in measurement for f in r.flags & _DATA_QUALITY_FLAGS})
    if not problems:
        return None
    return AlertCandidate(
        patient_id=profile.patient_id,
        rule_id="data_quality.check_device",
        tier=Tier.LOW,
        title="请检查设备并重新测量",
        explanation={
            "rule": "data_quality.check_device",
            "summary": f"device or data problems: {', '.join(problems)}",
            "readings": [_describe(r) for r in measurement],
        },
        reading_ids=[r.reading_id for r in measurement],
        kind="data_quality",
    )


def evaluate(
    readings: Iterable[Reading],
    *,
    history: Sequence[Reading] = (),
    profiles: dict[str, PatientProfile] | None = None,
    rules: RuleSet = DEFAULT_RULES,
) -> list[AlertCandidate]:
    """Every alert the given newly stored readings raise.

    `history` holds the same patients' readings stored before these (at least the last 10
    minutes of blood pressure); `profiles` their cohorts, doctor's targets and rule sets.
    """
    profiles = profiles or {}
    new = [r for r in readings if r.patient_id is not None]  # unassigned readings wait
    # Keyed by the ids' integers: a UUID's own hash is Python code, run per reading.
    measurements: dict[int, list[Reading]] = defaultdict(list)
    for reading in new:
        measurements[reading.measurement_id.int].append(reading)
    # A session's earlier measurements may be stored already or arrive in the same batch;
    # only cuff measurements look at them, so only cuff readings are gathered.
    cuff_readings_of: dict[str, list[Reading]] = defaultdict(list)
    for earlier in (*history, *new):
        if earlier.patient_id is not None and earlier.metric in _BP_METRICS:
            cuff_readings_of[earlier.patient_id].append(earlier)
    cuff_history: dict[str, _CuffHistory] = {}
    found: list[AlertCandidate] = []
    for measurement in measurements.values():
        patient = measurement[0].patient_id
        assert patient is not None
        profile = profiles.get(patient) or PatientProfile(patient)
        own_rules = profile.rules or rules
        if any(r.metric in _BP_METRICS for r in measurement):
            own = cuff_history.get(patient)
            if own is None:
                own = cuff_history[patient] = _CuffHistory(cuff_readings_of[patient])
            at = measurement[0].measured_at
            earlier = own.within(at - SESSION_WINDOW, at)
            candidate = blood_pressure(measurement, earlier, profile, own_rules)
            if candidate is not None:
                found.append(candidate)
        for r in measurement:
            if r.metric in _JUDGED_ALONE:
                candidate = single_value(r, profile, own_rules)
                if candidate is not None:
                    found.append(candidate)
        candidate = data_quality(measurement, profile)
        if candidate is not None:
            found.append(candidate)
    return found
