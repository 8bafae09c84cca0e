"""The `Reading`: one value of one metric, measured once by one device.

A device record (one cuff measurement, one glucose record) becomes several readings that
share a `measurement_id` — systolic, diastolic, MAP and pulse of one cuff inflation, say.
Both ids are derived from the device's identity and the device's own record key, so a record
read twice (a re-sync, a retried upload, a second edge hearing the same scale) gets the
same ids and is stored once.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    model_validator,
)

from protocols.metrics import Metric, canonical_unit
from protocols.units import to_canonical

# Fixed namespace: changing it would change every id ever issued.
READING_NAMESPACE = uuid.UUID("6f1c2a9e-3b7d-5e40-9a51-2c8d7e4b1f03")

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class DeviceKind(StrEnum):
    GLUCOSE_METER = "glucose_meter"
    BLOOD_PRESSURE_MONITOR = "blood_pressure_monitor"
    PULSE_OXIMETER = "pulse_oximeter"
    WEIGHT_SCALE = "weight_scale"
    BODY_COMPOSITION_SCALE = "body_composition_scale"


class Source(StrEnum):
    HOME = "home"
    CENTRE = "centre"


class MealContext(StrEnum):
    FASTING = "fasting"
    BEFORE_MEAL = "before_meal"
    AFTER_MEAL = "after_meal"
    BEDTIME = "bedtime"
    RANDOM = "random"


class BodyPosition(StrEnum):
    SITTING = "sitting"
    STANDING = "standing"
    LYING = "lying"


class MeasurementSite(StrEnum):
    LEFT_ARM = "left_arm"
    RIGHT_ARM = "right_arm"
    LEFT_WRIST = "left_wrist"
    RIGHT_WRIST = "right_wrist"
    FINGER = "finger"
    EARLOBE = "earlobe"
    CAPILLARY_WHOLE_BLOOD = "capillary_whole_blood"
    VENOUS_WHOLE_BLOOD = "venous_whole_blood"
    CONTROL_SOLUTION = "control_solution"


class StatusFlag(StrEnum):
    """What the device (or the edge) says about how far a value can be trusted."""

    BODY_MOVEMENT = "body_movement"
    CUFF_LOOSE = "cuff_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_RATE_OUT_OF_RANGE = "pulse_rate_out_of_range"
    IMPROPER_POSITION = "improper_position"
    DEVICE_ERROR = "device_error"
    LOW_BATTERY = "low_battery"
    SENSOR_FAULT = "sensor_fault"
    SAMPLE_INSUFFICIENT = "sample_insufficient"
    STRIP_ERROR = "strip_error"
    TEMPERATURE_OUT_OF_RANGE = "temperature_out_of_range"
    LOW_PERFUSION = "low_perfusion"
    SIGNAL_QUESTIONABLE = "signal_questionable"
    # Below/above the meter's range: a real extreme, shown as "LO"/"HI" on the device.
    VALUE_LO = "value_lo"
    VALUE_HI = "value_hi"
    CLOCK_UNSET = "clock_unset"
    CLOCK_CORRECTED = "clock_corrected"
    # Set by plausibility checks: possible for a human, unusual enough to double-check.
    UNUSUAL_VALUE = "unusual_value"


class DeviceRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeviceKind
    model: str = Field(max_length=128)
    serial: Identifier
    manufacturer: str | None = Field(default=None, max_length=128)


class MeasurementContext(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    meal: MealContext | None = None
    body_position: BodyPosition | None = None
    site: MeasurementSite | None = None
    device_user_index: int | None = Field(default=None, ge=0, le=255)
    """The device's own user slot (BP cuffs and scales keep several users)."""


def _uuid5_bytes(namespace: bytes, name: str) -> bytes:
    """RFC 4122 version-5 UUID bytes; the same as `uuid.uuid5(...).bytes`, made without the
    UUID objects because ingest re-derives two ids for every reading it receives."""
    digest = bytearray(hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest[:16])


def _measurement_bytes(device: DeviceRef, record_key: str) -> bytes:
    return _uuid5_bytes(
        READING_NAMESPACE.bytes, f"{device.kind.value}|{device.serial}|{record_key}"
    )


def derive_measurement_id(device: DeviceRef, record_key: str) -> uuid.UUID:
    return uuid.UUID(bytes=_measurement_bytes(device, record_key))


def derive_reading_id(measurement_id: uuid.UUID, metric: Metric) -> uuid.UUID:
    return uuid.UUID(bytes=_uuid5_bytes(measurement_id.bytes, metric.value))


class Reading(BaseModel):
    """One value of one metric, in the metric's canonical unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reading_id: uuid.UUID
    measurement_id: uuid.UUID
    patient_id: Identifier | None
    """None while a centre reading waits for staff to assign it."""
    device: DeviceRef
    record_key: str = Field(min_length=1, max_length=128)
    """The device's own key for the record: `seq:<n>` where it numbers records, else its clock."""
    metric: Metric
    value: float
    unit: str
    measured_at: AwareDatetime
    """Best estimate of when it was measured (the device clock, corrected if it was off)."""
    received_at: AwareDatetime
    """When the edge took the record from the device, by the edge's clock."""
    device_time: datetime | None = None
    """The device's own timestamp exactly as it sent it, kept for audit of clock corrections."""
    context: MeasurementContext = MeasurementContext()
    flags: frozenset[StatusFlag] = frozenset()
    source: Source
    staff_id: Identifier | None = None
    """The health manager who took a centre measurement."""

    @field_serializer("flags")
    def _sorted_flags(self, flags: frozenset[StatusFlag]) -> list[str]:
        # A stable order keeps JSON byte-identical across runs (hashing, golden files).
        return sorted(flag.value for flag in flags)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        expected_unit = canonical_unit(self.metric)
        if self.unit != expected_unit:
            raise ValueError(
                f"{self.metric.value} must be sent in {expected_unit!r}, not {self.unit!r}"
            )
        # Compared as integers: `UUID.bytes` builds a new bytes object on every access and
        # was a fifth of ingest's validation time.
        measurement = _measurement_bytes(self.device, self.record_key)
        if self.measurement_id.int != int.from_bytes(measurement):
            raise ValueError("measurement_id does not derive from device and record_key")
        if self.reading_id.int != int.from_bytes(_uuid5_bytes(measurement, self.metric.value)):
            raise ValueError("reading_id does not derive from measurement_id and metric")
        return self

    @classmethod
    def create(
        cls,
        *,
        device: DeviceRef,
        record_key: str,
        metric: Metric,
        value: float,
        unit: str,
        measured_at: datetime,
        received_at: datetime,
        source: Source,
        patient_id: str | None = None,
        device_time: datetime | None = None,
        context: MeasurementContext | None = None,
        flags: frozenset[StatusFlag] = frozenset(),
        staff_id: str | None = None,
    ) -> Reading:
        """Build a reading from a device value in any supported unit, deriving both ids."""
        measurement_id = derive_measurement_id(device, record_key)
        return cls(
            reading_id=derive_reading_id(measurement_id, metric),
            measurement_id=measurement_id,
            patient_id=patient_id,
            device=device,
            record_key=record_key,
            metric=metric,
            value=to_canonical(metric, value, unit),
            unit=canonical_unit(metric),
            measured_at=measured_at,
            received_at=received_at,
            device_time=device_time,
            context=context or MeasurementContext(),
            flags=flags,
            source=source,
            staff_id=staff_id,
        )
