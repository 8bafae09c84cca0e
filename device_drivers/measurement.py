"""`Measurement`: one device record in canonical units, and how it becomes `Reading`s.

Profile codecs decode bytes into profile-shaped records (every field, as the device sent
it); each record maps to one `Measurement` here, the form drivers hand to the edge agent
and the `decode` command prints. `to_readings` then attaches the device, the patient and
the times, and derives the reading ids (`protocols.reading`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from protocols.metrics import Metric, canonical_unit
from protocols.reading import (
    DeviceKind,
    DeviceRef,
    MeasurementContext,
    Reading,
    Source,
    StatusFlag,
)
from protocols.units import to_canonical


@dataclass(frozen=True, slots=True)
class Observation:
    """One value: canonical for storage, and as the device sent it, for audit."""

    metric: Metric
    value: float
    unit: str
    device_value: float
    device_unit: str

    @classmethod
    def of(cls, metric: Metric, device_value: float, device_unit: str) -> Observation:
        """Convert a device value to the metric's canonical unit (`protocols.units`)."""
        return cls(
            metric=metric,
            value=to_canonical(metric, device_value, device_unit),
            unit=canonical_unit(metric),
            device_value=device_value,
            device_unit=device_unit,
        )


@dataclass(frozen=True, slots=True)
class Measurement:
    """A device record as readings-to-be; fields the device marked unavailable are absent."""

    kind: DeviceKind
    observations: tuple[Observation, ...]
    device_time: datetime | None = None
    """The device clock's reading (naive, device local time); None if absent or unset."""
    clock_set: bool = True
    """False when the device says its clock was never set (year 0, PLX "clock not set")."""
    sequence_number: int | None = None
    flags: frozenset[StatusFlag] = frozenset()
    context: MeasurementContext = field(default_factory=MeasurementContext)
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    """Profile fields with no place in a Reading (carbohydrates, HbA1c, status words)."""

    def record_key(self, fallback: datetime) -> str:
        """The device's own key for this record, stable across re-downloads.

        Sequence numbers wrap at 65535, so a trusted device time goes with them; with
        neither, the edge's receive time (`fallback`) is the only key there is.
        """
        moment = self.device_time if self.clock_set else None
        if self.sequence_number is not None:
            if moment is not None:
                return f"seq:{self.sequence_number}@{moment.isoformat()}"
            return f"seq:{self.sequence_number}"
        if moment is not None:
            return f"t:{moment.isoformat()}"
        return f"rx:{fallback.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values, as `python -m device_drivers decode` prints them."""
        return {
            "kind": self.kind.value,
            "device_time": self.device_time.isoformat() if self.device_time else None,
            "clock_set": self.clock_set,
            "sequence_number": self.sequence_number,
            "flags": sorted(flag.value for flag in self.flags),
            "context": self.context.model_dump(mode="json", exclude_none=True),
            "details": self.details,
            "readings": [
                {
                    "metric": obs.metric.value,
                    "value": obs.value,
                    "unit": obs.unit,
                    "device_value": obs.device_value,
                    "device_unit": obs.device_unit,
                }
                for obs in self.observations
            ],
        }


def to_readings(
    measurement: Measurement,
    *,
    device: DeviceRef,
    received_at: datetime,
    source: Source,
    device_timezone: tzinfo,
    patient_id: str | None = None,
    staff_id: str | None = None,
    measured_at: datetime | None = None,
    extra_flags: frozenset[StatusFlag] = frozenset(),
) -> list[Reading]:
    """One `Reading` per observation, sharing one measurement id.

    `measured_at` lets the edge pass a clock-corrected time; otherwise a trusted device
    time is read in `device_timezone`, and an untrusted or missing one falls back to
    `received_at` with `CLOCK_UNSET` where the device said its clock was never set.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    flags = measurement.flags | extra_flags
    if not measurement.clock_set:
        flags |= {StatusFlag.CLOCK_UNSET}
    if measured_at is None:
        if measurement.device_time is not None and measurement.clock_set:
            measured_at = measurement.device_time.replace(tzinfo=device_timezone)
        else:
            measured_at = received_at
    record_key = measurement.record_key(received_at)
    return [
        Reading.create(
            device=device,
            record_key=record_key,
            metric=obs.metric,
            value=obs.value,
            unit=obs.unit,
            measured_at=measured_at,
            received_at=received_at,
            source=source,
            patient_id=patient_id,
            device_time=measurement.device_time,
            context=measurement.context,
            flags=frozenset(flags),
            staff_id=staff_id,
        )
        for obs in measurement.observations
    ]
