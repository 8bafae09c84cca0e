"""Alert rules over readings: pure functions, no I/O, every alert with its explanation."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from protocols.metrics import Metric
from protocols.reading import Reading


class Tier(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class AlertCandidate:
    patient_id: str
    rule_id: str
    tier: Tier
    title: str
    explanation: dict[str, Any]
    reading_ids: list[uuid.UUID] = field(default_factory=list)


# Hypertensive crisis, clinical_rules.md §1 (CN grade 3): SBP ≥ 180 and/or DBP ≥ 110 mmHg.
BP_CRISIS_SYSTOLIC = 180.0
BP_CRISIS_DIASTOLIC = 110.0


def _by_measurement(readings: Iterable[Reading]) -> dict[uuid.UUID, list[Reading]]:
    groups: dict[uuid.UUID, list[Reading]] = defaultdict(list)
    for reading in readings:
        if reading.patient_id is not None:
            groups[reading.measurement_id].append(reading)
    return groups


def blood_pressure_crisis(measurement: Sequence[Reading]) -> AlertCandidate | None:
    values = {r.metric: r for r in measurement}
    systolic, diastolic = values.get(Metric.SYSTOLIC), values.get(Metric.DIASTOLIC)
    if systolic is None or diastolic is None or systolic.patient_id is None:
        return None
    if systolic.value < BP_CRISIS_SYSTOLIC and diastolic.value < BP_CRISIS_DIASTOLIC:
        return None
    return AlertCandidate(
        patient_id=systolic.patient_id,
        rule_id="bp.crisis",
        tier=Tier.CRITICAL,
        title=f"血压危急 {systolic.value:.0f}/{diastolic.value:.0f} mmHg",
        explanation={
            "rule": "bp.crisis",
            "summary": "systolic ≥ 180 and/or diastolic ≥ 110 mmHg",
            "thresholds": {"systolic": BP_CRISIS_SYSTOLIC, "diastolic": BP_CRISIS_DIASTOLIC},
            "readings": [
                {
                    "reading_id": str(r.reading_id),
                    "metric": r.metric.value,
                    "value": r.value,
                    "unit": r.unit,
                    "measured_at": r.measured_at.isoformat(),
                }
                for r in (systolic, diastolic)
            ],
        },
        reading_ids=[systolic.reading_id, diastolic.reading_id],
    )


MEASUREMENT_RULES = (blood_pressure_crisis,)


def evaluate(readings: Iterable[Reading]) -> list[AlertCandidate]:
    """Every alert the given (newly stored) readings raise, measurement by measurement."""
    found = []
    for measurement in _by_measurement(readings).values():
        for rule in MEASUREMENT_RULES:
            candidate = rule(measurement)
            if candidate is not None:
                found.append(candidate)
    return found
