"""Reading-level device simulators: what a device would yield once decoded.

For fleets and load (benchmarks, demo data) where GATT traffic is beside the point; the
BLE emulators in `simulators.ble` cover the radio path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from protocols.metrics import Metric
from protocols.reading import (
    BodyPosition,
    DeviceKind,
    DeviceRef,
    MealContext,
    MeasurementContext,
    MeasurementSite,
    Reading,
    Source,
)


@dataclass
class SimulatedCuff:
    """A blood-pressure monitor that numbers its records like a BLE cuff with a sequence."""

    serial: str
    model: str = "SIM-BP-1"
    source: Source = Source.HOME
    next_sequence: int = 1
    device: DeviceRef = field(init=False)

    def __post_init__(self) -> None:
        self.device = DeviceRef(
            kind=DeviceKind.BLOOD_PRESSURE_MONITOR,
            model=self.model,
            serial=self.serial,
            manufacturer="carebridge simulator",
        )

    def measure(
        self,
        systolic: float,
        diastolic: float,
        pulse: float,
        *,
        patient_id: str | None,
        at: datetime | None = None,
        staff_id: str | None = None,
    ) -> list[Reading]:
        measured_at = at or datetime.now(UTC)
        record_key = f"seq:{self.next_sequence}"
        self.next_sequence += 1
        context = MeasurementContext(
            body_position=BodyPosition.SITTING, site=MeasurementSite.LEFT_ARM
        )
        mean_arterial = diastolic + (systolic - diastolic) / 3
        return [
            Reading.create(
                device=self.device,
                record_key=record_key,
                metric=metric,
                value=value,
                unit=unit,
                measured_at=measured_at,
                received_at=datetime.now(UTC),
                source=self.source,
                patient_id=patient_id,
                context=context,
                staff_id=staff_id,
            )
            for metric, value, unit in (
                (Metric.SYSTOLIC, systolic, "mmHg"),
                (Metric.DIASTOLIC, diastolic, "mmHg"),
                (Metric.MEAN_ARTERIAL_PRESSURE, round(mean_arterial, 1), "mmHg"),
                (Metric.PULSE_RATE, pulse, "/min"),
            )
        ]


@dataclass
class SimulatedGlucoseMeter:
    serial: str
    model: str = "SIM-GLU-1"
    source: Source = Source.HOME
    next_sequence: int = 1

    def measure(
        self,
        mmol_per_l: float,
        *,
        patient_id: str | None,
        meal: MealContext | None = None,
        at: datetime | None = None,
    ) -> list[Reading]:
        device = DeviceRef(kind=DeviceKind.GLUCOSE_METER, model=self.model, serial=self.serial)
        record_key = f"seq:{self.next_sequence}"
        self.next_sequence += 1
        return [
            Reading.create(
                device=device,
                record_key=record_key,
                metric=Metric.GLUCOSE,
                value=mmol_per_l,
                unit="mmol/L",
                measured_at=at or datetime.now(UTC),
                received_at=datetime.now(UTC),
                source=self.source,
                patient_id=patient_id,
                context=MeasurementContext(meal=meal, site=MeasurementSite.CAPILLARY_WHOLE_BLOOD),
            )
        ]


def everyday_blood_pressure(rng: random.Random) -> tuple[float, float, float]:
    """A plausible home reading of a treated hypertensive patient."""
    systolic = round(rng.gauss(132, 12))
    diastolic = round(min(systolic - 25, rng.gauss(82, 8)))
    return systolic, diastolic, round(rng.gauss(72, 9))
