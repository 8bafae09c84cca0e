"""Glucose Service (0x1808): Glucose Measurement 0x2A18, Measurement Context 0x2A34 and
Glucose Feature 0x2A51, decoded to frozen records and encoded back, byte for byte.

`to_measurement` turns a measurement (with its context, when the meter sent one) into the
canonical `Measurement` the edge stores. Layouts follow `shared/docs/ble_profiles.md` §2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from device_drivers.codec.wire import (
    DateTimeField,
    FieldReader,
    FieldWriter,
    MedFloat,
    Special,
    sfloat_word_of,
)
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from protocols.metrics import Metric
from protocols.reading import (
    DeviceKind,
    MealContext,
    MeasurementContext,
    MeasurementSite,
    StatusFlag,
)

GLUCOSE_LO_MMOL_L: Final = 1.1
"""The usual meter display range is 20–600 mg/dL; 20 mg/dL ≈ 1.1 mmol/L is shown as "LO"."""
GLUCOSE_HI_MMOL_L: Final = 33.3
"""600 mg/dL ≈ 33.3 mmol/L is the usual meter's "HI": anything above reads the same."""

MG_DL_PER_MMOL_L_APPROX: Final = Decimal("18.0156")
"""Only for the `_approx` cross-unit keys of `as_dict` (the vectors' factor); readings
convert through `protocols.units`."""

SEQUENCE_MODULO: Final = 1 << 16

# 0x2A18 flags
_M_TIME_OFFSET: Final = 0x01
_M_CONCENTRATION: Final = 0x02
_M_UNIT_MOL: Final = 0x04
_M_STATUS: Final = 0x08
_M_CONTEXT: Final = 0x10
_M_RESERVED: Final = 0xE0

# 0x2A34 flags
_C_CARBOHYDRATE: Final = 0x01
_C_MEAL: Final = 0x02
_C_TESTER_HEALTH: Final = 0x04
_C_EXERCISE: Final = 0x08
_C_MEDICATION: Final = 0x10
_C_MEDICATION_LITRES: Final = 0x20
_C_HBA1C: Final = 0x40
_C_EXTENDED: Final = 0x80

EXERCISE_DURATION_OVERRUN: Final = 0xFFFF

SAMPLE_TYPES: Final = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
SAMPLE_LOCATIONS: Final = {
    1: "finger",
    2: "alternate_site_test",
    3: "earlobe",
    4: "control_solution",
    15: "not_available",
}
CARBOHYDRATES: Final = {
    1: "breakfast",
    2: "lunch",
    3: "dinner",
    4: "snack",
    5: "drink",
    6: "supper",
    7: "brunch",
}
MEALS: Final = {1: "preprandial", 2: "postprandial", 3: "fasting", 4: "casual", 5: "bedtime"}
TESTERS: Final = {1: "self", 2: "health_care_professional", 3: "lab_test", 15: "not_available"}
HEALTH: Final = {
    1: "minor_health_issues",
    2: "major_health_issues",
    3: "menses",
    4: "under_stress",
    5: "no_health_issues",
    15: "not_available",
}
MEDICATIONS: Final = {
    1: "rapid_acting_insulin",
    2: "short_acting_insulin",
    3: "intermediate_acting_insulin",
    4: "long_acting_insulin",
    5: "pre_mixed_insulin",
}

SAMPLE_TYPE_CONTROL_SOLUTION: Final = 10
SAMPLE_LOCATION_CONTROL_SOLUTION: Final = 4
SAMPLE_LOCATION_NOT_AVAILABLE: Final = 15


def _named(table: dict[int, str], code: int) -> dict[str, Any]:
    return {"code": code, "name": table.get(code, "reserved")}


def _exact(value: MedFloat) -> Decimal | None:
    """The decimal a number was sent as: from its mantissa and exponent when it was decoded,
    from its shortest repr when a caller built it with `MedFloat.number`."""
    if value.value is None:
        return None
    decoded = Decimal(value.mantissa).scaleb(value.exponent)
    return decoded if float(decoded) == value.value else Decimal(repr(value.value))


def _shift(value: MedFloat, places: int) -> float | str:
    """`value` × 10^places exactly (kg → g is places=3), or the special's name."""
    exact = _exact(value)
    if exact is None:
        return (value.special or Special.NAN).value
    return float(exact.scaleb(places))


def _number(value: MedFloat) -> float | str:
    return _shift(value, 0)


def _check_nibble(value: int, what: str) -> None:
    if not 0 <= value <= 0xF:
        raise PayloadError(f"{what}: {value} does not fit in a nibble")


# -- Glucose Measurement 0x2A18 ---------------------------------------------------------


def _named_bits(names: tuple[str, ...], raw: int) -> dict[str, bool]:
    """Bit n of `raw` under `names[n]`, for the one-boolean-per-bit status and feature words."""
    return {name: bool(raw & (1 << bit)) for bit, name in enumerate(names)}


def _word_of(record: Any, names: tuple[str, ...]) -> int:
    value: int = record.reserved_bits
    for bit, name in enumerate(names):
        if getattr(record, name):
            value |= 1 << bit
    return value


def _bits_dict(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": _word_of(record, names)}
    out.update({name: getattr(record, name) for name in names})
    out["reserved_bits"] = record.reserved_bits
    return out


class GlucoseUnit(StrEnum):
    """Flag b2 of 0x2A18: the unit of the concentration SFLOAT."""

    KG_PER_L = "kg/L"
    MOL_PER_L = "mol/L"


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """Sensor Status Annunciation (16 bits); bits 12–15 are reserved and kept as sent."""

    device_battery_low: bool = False
    sensor_malfunction: bool = False
    sample_size_insufficient: bool = False
    strip_insertion_error: bool = False
    strip_type_incorrect: bool = False
    result_higher_than_device_can_process: bool = False
    result_lower_than_device_can_process: bool = False
    sensor_temperature_too_high: bool = False
    sensor_temperature_too_low: bool = False
    read_interrupted_strip_pulled_too_soon: bool = False
    general_device_fault: bool = False
    time_fault: bool = False
    reserved_bits: int = 0

    _BITS = (
        "device_battery_low",
        "sensor_malfunction",
        "sample_size_insufficient",
        "strip_insertion_error",
        "strip_type_incorrect",
        "result_higher_than_device_can_process",
        "result_lower_than_device_can_process",
        "sensor_temperature_too_high",
        "sensor_temperature_too_low",
        "read_interrupted_strip_pulled_too_soon",
        "general_device_fault",
        "time_fault",
    )

    @classmethod
    def from_raw(cls, raw: int) -> SensorStatus:
        return cls(**_named_bits(cls._BITS, raw), reserved_bits=raw & 0xF000)

    @property
    def raw(self) -> int:
        return _word_of(self, self._BITS)

    def as_dict(self) -> dict[str, Any]:
        return _bits_dict(self, self._BITS)


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One 0x2A18 record, every field as the meter sent it.

    `concentration`, `sample_type` and `sample_location` are present together (flag b1) or
    all None; `unit` is flag b2, kept even without a concentration so encoding gives the
    same flags back.
    """

    sequence_number: int
    base_time: datetime | None
    """Device local time; None when the meter's clock was never set (or no calendar time)."""
    time_offset_minutes: int | None = None
    concentration: MedFloat | None = None
    unit: GlucoseUnit = GlucoseUnit.KG_PER_L
    sample_type: int | None = None
    sample_location: int | None = None
    sensor_status: SensorStatus | None = None
    context_follows: bool = False
    reserved_flags: int = 0
    """Flag bits 5–7 as sent: reserved, ignored, and reported."""
    base_time_raw: bytes | None = None
    """The 7 Date Time bytes as sent when `base_time` is None; zeros if left out."""

    @property
    def flags(self) -> int:
        value = self.reserved_flags
        if self.time_offset_minutes is not None:
            value |= _M_TIME_OFFSET
        if self.concentration is not None:
            value |= _M_CONCENTRATION
        if self.unit is GlucoseUnit.MOL_PER_L:
            value |= _M_UNIT_MOL
        if self.sensor_status is not None:
            value |= _M_STATUS
        if self.context_follows:
            value |= _M_CONTEXT
        return value

    @property
    def user_facing_time(self) -> datetime | None:
        """Base time plus the time offset: the time the meter shows for this record."""
        if self.base_time is None:
            return None
        try:
            return self.base_time + timedelta(minutes=self.time_offset_minutes or 0)
        except OverflowError:
            return None

    @property
    def is_control_solution(self) -> bool:
        return (
            self.sample_type == SAMPLE_TYPE_CONTROL_SOLUTION
            or self.sample_location == SAMPLE_LOCATION_CONTROL_SOLUTION
        )

    def _base_time_field(self) -> DateTimeField:
        # A known time is shown as ISO; its raw bytes matter only for an unknown one.
        return DateTimeField(self.base_time, self.base_time_raw or bytes(7))

    def as_dict(self) -> dict[str, Any]:
        flags = self.flags
        out: dict[str, Any] = {
            "flags": {
                "raw": flags,
                "time_offset_present": bool(flags & _M_TIME_OFFSET),
                "concentration_type_location_present": bool(flags & _M_CONCENTRATION),
                "concentration_unit": self.unit.value,
                "sensor_status_present": bool(flags & _M_STATUS),
                "context_follows": bool(flags & _M_CONTEXT),
                "reserved_bits": self.reserved_flags,
            },
            "sequence_number": self.sequence_number,
        }
        out.update(self._base_time_field().as_dict("base_time"))
        if self.time_offset_minutes is not None:
            out["time_offset_min"] = self.time_offset_minutes
        facing = self.user_facing_time
        out["user_facing_time"] = facing.isoformat() if facing else None
        if self.concentration is not None:
            out.update(_concentration_dict(self.concentration, self.unit))
            out["sample_type"] = _named(SAMPLE_TYPES, self.sample_type or 0)
            out["sample_location"] = _named(SAMPLE_LOCATIONS, self.sample_location or 0)
        if self.sensor_status is not None:
            out["sensor_status"] = self.sensor_status.as_dict()
        return out


def _concentration_dict(value: MedFloat, unit: GlucoseUnit) -> dict[str, Any]:
    if unit is GlucoseUnit.KG_PER_L:
        mg_dl = _shift(value, 5)
        approx = (
            mg_dl
            if isinstance(mg_dl, str)
            else round(float(Decimal(repr(mg_dl)) / MG_DL_PER_MMOL_L_APPROX), 2)
        )
        return {
            "glucose_kg_per_L": _number(value),
            "glucose_mg_per_dL": mg_dl,
            "glucose_mmol_per_L_approx": approx,
        }
    mmol_l = _shift(value, 3)
    approx = (
        mmol_l
        if isinstance(mmol_l, str)
        else round(float(Decimal(repr(mmol_l)) * MG_DL_PER_MMOL_L_APPROX), 1)
    )
    return {
        "glucose_mol_per_L": _number(value),
        "glucose_mmol_per_L": mmol_l,
        "glucose_mg_per_dL_approx": approx,
    }


def decode_glucose_measurement(data: bytes) -> GlucoseMeasurement:
    reader = FieldReader(data, "glucose measurement")
    flags = reader.u8("flags")
    sequence = reader.u16("sequence number")
    stamp = reader.date_time("base time")
    offset = reader.s16("time offset") if flags & _M_TIME_OFFSET else None
    concentration = sample_type = sample_location = None
    if flags & _M_CONCENTRATION:
        concentration = reader.sfloat("glucose concentration")
        type_location = reader.u8("type-sample location")
        sample_type, sample_location = type_location & 0x0F, type_location >> 4
    status = SensorStatus.from_raw(reader.u16("sensor status")) if flags & _M_STATUS else None
    reader.finish()
    return GlucoseMeasurement(
        sequence_number=sequence,
        base_time=stamp.moment,
        time_offset_minutes=offset,
        concentration=concentration,
        unit=GlucoseUnit.MOL_PER_L if flags & _M_UNIT_MOL else GlucoseUnit.KG_PER_L,
        sample_type=sample_type,
        sample_location=sample_location,
        sensor_status=status,
        context_follows=bool(flags & _M_CONTEXT),
        reserved_flags=flags & _M_RESERVED,
        base_time_raw=None if stamp.moment is not None else stamp.raw,
    )


def encode_glucose_measurement(record: GlucoseMeasurement) -> bytes:
    if record.reserved_flags & ~_M_RESERVED:
        raise PayloadError(f"reserved flags 0x{record.reserved_flags:02X} are not bits 5-7")
    writer = FieldWriter().u8(record.flags).u16(record.sequence_number, "sequence number")
    if record.base_time is not None:
        writer.date_time(record.base_time)
    else:
        raw = record.base_time_raw or bytes(7)
        if len(raw) != 7:
            raise PayloadError(f"base time: a Date Time is 7 bytes, got {len(raw)}")
        writer.raw(raw)
    if record.time_offset_minutes is not None:
        writer.s16(record.time_offset_minutes, "time offset")
    if record.concentration is not None:
        if record.sample_type is None or record.sample_location is None:
            raise PayloadError("a concentration needs its sample type and location")
        _check_nibble(record.sample_type, "sample type")
        _check_nibble(record.sample_location, "sample location")
        writer.u16(sfloat_word_of(record.concentration))
        writer.u8(record.sample_type | (record.sample_location << 4))
    elif record.sample_type is not None or record.sample_location is not None:
        raise PayloadError("sample type and location travel only with a concentration")
    if record.sensor_status is not None:
        writer.u16(record.sensor_status.raw, "sensor status")
    return writer.bytes()


# -- Glucose Measurement Context 0x2A34 ---------------------------------------------------


class MedicationUnit(StrEnum):
    """Flag b5 of 0x2A34: the unit of the medication SFLOAT."""

    KILOGRAMS = "kg"
    LITRES = "L"


@dataclass(frozen=True, slots=True)
class Carbohydrate:
    carbohydrate_id: int
    amount_kg: MedFloat

    def as_dict(self) -> dict[str, Any]:
        return {
            **_named(CARBOHYDRATES, self.carbohydrate_id),
            "kg": _number(self.amount_kg),
            "g": _shift(self.amount_kg, 3),
        }


@dataclass(frozen=True, slots=True)
class Exercise:
    duration_s: int
    """0xFFFF means the meter's counter overran."""
    intensity_pct: int

    @property
    def overrun(self) -> bool:
        return self.duration_s == EXERCISE_DURATION_OVERRUN


@dataclass(frozen=True, slots=True)
class Medication:
    medication_id: int
    amount: MedFloat
    """In the context's `medication_unit`: kilograms or litres."""


@dataclass(frozen=True, slots=True)
class GlucoseContext:
    """One 0x2A34 record; it belongs to the 0x2A18 with the same sequence number."""

    sequence_number: int
    extended_flags: int | None = None
    carbohydrate: Carbohydrate | None = None
    meal: int | None = None
    tester: int | None = None
    """Low nibble of the tester-health byte; present together with `health`."""
    health: int | None = None
    exercise: Exercise | None = None
    medication: Medication | None = None
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS
    hba1c_pct: MedFloat | None = None

    @property
    def flags(self) -> int:
        value = 0
        if self.carbohydrate is not None:
            value |= _C_CARBOHYDRATE
        if self.meal is not None:
            value |= _C_MEAL
        if self.tester is not None or self.health is not None:
            value |= _C_TESTER_HEALTH
        if self.exercise is not None:
            value |= _C_EXERCISE
        if self.medication is not None:
            value |= _C_MEDICATION
        if self.medication_unit is MedicationUnit.LITRES:
            value |= _C_MEDICATION_LITRES
        if self.hba1c_pct is not None:
            value |= _C_HBA1C
        if self.extended_flags is not None:
            value |= _C_EXTENDED
        return value

    def medication_dict(self) -> dict[str, Any] | None:
        if self.medication is None:
            return None
        unit = self.medication_unit
        amount = self.medication.amount
        out = {**_named(MEDICATIONS, self.medication.medication_id), "unit": unit.value}
        if unit is MedicationUnit.LITRES:
            out.update({"value_L": _number(amount), "value_mL": _shift(amount, 3)})
        else:
            out.update({"value_kg": _number(amount), "value_mg": _shift(amount, 6)})
        return out

    def as_dict(self) -> dict[str, Any]:
        flags = self.flags
        out: dict[str, Any] = {
            "flags": {
                "raw": flags,
                "carbohydrate_present": bool(flags & _C_CARBOHYDRATE),
                "meal_present": bool(flags & _C_MEAL),
                "tester_health_present": bool(flags & _C_TESTER_HEALTH),
                "exercise_present": bool(flags & _C_EXERCISE),
                "medication_present": bool(flags & _C_MEDICATION),
                "medication_unit": self.medication_unit.value,
                "hba1c_present": bool(flags & _C_HBA1C),
                "extended_flags_present": bool(flags & _C_EXTENDED),
            },
            "sequence_number": self.sequence_number,
        }
        if self.extended_flags is not None:
            out["extended_flags"] = self.extended_flags
        if self.carbohydrate is not None:
            out["carbohydrate"] = self.carbohydrate.as_dict()
        if self.meal is not None:
            out["meal"] = _named(MEALS, self.meal)
        if flags & _C_TESTER_HEALTH:
            out["tester"] = _named(TESTERS, self.tester or 0)
            out["health"] = _named(HEALTH, self.health or 0)
        if self.exercise is not None:
            out["exercise_duration_s"] = self.exercise.duration_s
            out["exercise_duration_overrun"] = self.exercise.overrun
            out["exercise_intensity_pct"] = self.exercise.intensity_pct
        medication = self.medication_dict()
        if medication is not None:
            out["medication"] = medication
        if self.hba1c_pct is not None:
            out["hba1c_pct"] = _number(self.hba1c_pct)
        return out


def decode_glucose_context(data: bytes) -> GlucoseContext:
    reader = FieldReader(data, "glucose measurement context")
    flags = reader.u8("flags")
    sequence = reader.u16("sequence number")
    # The extended flags byte comes first of the optional fields, before carbohydrate.
    extended = reader.u8("extended flags") if flags & _C_EXTENDED else None
    carbohydrate = None
    if flags & _C_CARBOHYDRATE:
        carbohydrate_id = reader.u8("carbohydrate id")
        carbohydrate = Carbohydrate(carbohydrate_id, reader.sfloat("carbohydrate"))
    meal = reader.u8("meal") if flags & _C_MEAL else None
    tester = health = None
    if flags & _C_TESTER_HEALTH:
        tester_health = reader.u8("tester-health")
        tester, health = tester_health & 0x0F, tester_health >> 4
    exercise = None
    if flags & _C_EXERCISE:
        duration = reader.u16("exercise duration")
        exercise = Exercise(duration, reader.u8("exercise intensity"))
    medication = None
    if flags & _C_MEDICATION:
        medication_id = reader.u8("medication id")
        medication = Medication(medication_id, reader.sfloat("medication"))
    hba1c = reader.sfloat("HbA1c") if flags & _C_HBA1C else None
    reader.finish()
    return GlucoseContext(
        sequence_number=sequence,
        extended_flags=extended,
        carbohydrate=carbohydrate,
        meal=meal,
        tester=tester,
        health=health,
        exercise=exercise,
        medication=medication,
        medication_unit=(
            MedicationUnit.LITRES if flags & _C_MEDICATION_LITRES else MedicationUnit.KILOGRAMS
        ),
        hba1c_pct=hba1c,
    )


def encode_glucose_context(record: GlucoseContext) -> bytes:
    writer = FieldWriter().u8(record.flags).u16(record.sequence_number, "sequence number")
    if record.extended_flags is not None:
        writer.u8(record.extended_flags, "extended flags")
    if record.carbohydrate is not None:
        writer.u8(record.carbohydrate.carbohydrate_id, "carbohydrate id")
        writer.u16(sfloat_word_of(record.carbohydrate.amount_kg))
    if record.meal is not None:
        writer.u8(record.meal, "meal")
    if record.tester is not None or record.health is not None:
        if record.tester is None or record.health is None:
            raise PayloadError("tester and health share one byte: give both")
        _check_nibble(record.tester, "tester")
        _check_nibble(record.health, "health")
        writer.u8(record.tester | (record.health << 4))
    if record.exercise is not None:
        writer.u16(record.exercise.duration_s, "exercise duration")
        writer.u8(record.exercise.intensity_pct, "exercise intensity")
    if record.medication is not None:
        writer.u8(record.medication.medication_id, "medication id")
        writer.u16(sfloat_word_of(record.medication.amount))
    if record.hba1c_pct is not None:
        writer.u16(sfloat_word_of(record.hba1c_pct))
    return writer.bytes()


# -- Glucose Feature 0x2A51 ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    """What the meter can detect (uint16); bits 11–15 are reserved and kept as sent."""

    low_battery_detection: bool = False
    sensor_malfunction_detection: bool = False
    sensor_sample_size: bool = False
    strip_insertion_error_detection: bool = False
    strip_type_error_detection: bool = False
    result_high_low_detection: bool = False
    temperature_high_low_detection: bool = False
    read_interrupt_detection: bool = False
    general_device_fault: bool = False
    time_fault: bool = False
    multiple_bond: bool = False
    reserved_bits: int = 0

    _BITS = (
        "low_battery_detection",
        "sensor_malfunction_detection",
        "sensor_sample_size",
        "strip_insertion_error_detection",
        "strip_type_error_detection",
        "result_high_low_detection",
        "temperature_high_low_detection",
        "read_interrupt_detection",
        "general_device_fault",
        "time_fault",
        "multiple_bond",
    )

    @classmethod
    def from_raw(cls, raw: int) -> GlucoseFeature:
        return cls(**_named_bits(cls._BITS, raw), reserved_bits=raw & 0xF800)

    @property
    def raw(self) -> int:
        return _word_of(self, self._BITS)

    def as_dict(self) -> dict[str, Any]:
        return _bits_dict(self, self._BITS)


def decode_glucose_feature(data: bytes) -> GlucoseFeature:
    reader = FieldReader(data, "glucose feature")
    raw = reader.u16("features")
    reader.finish()
    return GlucoseFeature.from_raw(raw)


def encode_glucose_feature(feature: GlucoseFeature) -> bytes:
    if feature.reserved_bits & ~0xF800:
        raise PayloadError(f"reserved feature bits 0x{feature.reserved_bits:04X} are not 11-15")
    return FieldWriter().u16(feature.raw, "features").bytes()


# -- to the canonical Measurement ---------------------------------------------------------

_MEALS: Final = {
    1: MealContext.BEFORE_MEAL,
    2: MealContext.AFTER_MEAL,
    3: MealContext.FASTING,
    4: MealContext.RANDOM,
    5: MealContext.BEDTIME,
}
_SITE_BY_LOCATION: Final = {1: MeasurementSite.FINGER, 3: MeasurementSite.EARLOBE}
_SITE_BY_TYPE: Final = {
    1: MeasurementSite.CAPILLARY_WHOLE_BLOOD,
    3: MeasurementSite.VENOUS_WHOLE_BLOOD,
}
_STATUS_FLAGS: Final = {
    "device_battery_low": StatusFlag.LOW_BATTERY,
    "sensor_malfunction": StatusFlag.SENSOR_FAULT,
    "sample_size_insufficient": StatusFlag.SAMPLE_INSUFFICIENT,
    "strip_insertion_error": StatusFlag.STRIP_ERROR,
    "strip_type_incorrect": StatusFlag.STRIP_ERROR,
    "result_higher_than_device_can_process": StatusFlag.VALUE_HI,
    "result_lower_than_device_can_process": StatusFlag.VALUE_LO,
    "sensor_temperature_too_high": StatusFlag.TEMPERATURE_OUT_OF_RANGE,
    "sensor_temperature_too_low": StatusFlag.TEMPERATURE_OUT_OF_RANGE,
    # A strip pulled before the meter finished reading is a strip-handling error: the
    # value, if any, is not a finished measurement.
    "read_interrupted_strip_pulled_too_soon": StatusFlag.STRIP_ERROR,
    "general_device_fault": StatusFlag.DEVICE_ERROR,
    # time_fault has no flag of its own: it makes the clock untrusted (clock_set=False),
    # from which `to_readings` adds CLOCK_UNSET.
}


@dataclass(frozen=True, slots=True)
class _Value:
    observation: Observation | None
    flags: frozenset[StatusFlag] = frozenset()
    details: dict[str, Any] = field(default_factory=dict)


def _glucose_value(record: GlucoseMeasurement, status_flags: frozenset[StatusFlag]) -> _Value:
    """The glucose observation: the number, the display limit for HI/LO, or none."""
    concentration = record.concentration
    special = concentration.special if concentration is not None else None
    high = special is Special.POSITIVE_INFINITY or StatusFlag.VALUE_HI in status_flags
    low = special is Special.NEGATIVE_INFINITY or StatusFlag.VALUE_LO in status_flags
    number: float | None = None
    if concentration is not None and concentration.value is not None:
        number = Observation.of(Metric.GLUCOSE, concentration.value, record.unit.value).value
    if high and low:
        return _Value(None)  # "above" and "below" its range at once: nothing to trust
    if high or low:
        # HI/LO are real extremes (severe hyper/hypoglycaemia) that must alert, so they
        # become the meter's display limit with VALUE_HI/VALUE_LO, never a missing value.
        # A number beyond the limit is kept: it is the more extreme, and the device's own.
        limit = GLUCOSE_HI_MMOL_L if high else GLUCOSE_LO_MMOL_L
        beyond = number is not None and (number > limit if high else number < limit)
        if beyond and concentration is not None and concentration.value is not None:
            observation = Observation.of(Metric.GLUCOSE, concentration.value, record.unit.value)
        else:
            observation = Observation.of(Metric.GLUCOSE, limit, "mmol/L")
        flag = StatusFlag.VALUE_HI if high else StatusFlag.VALUE_LO
        return _Value(observation, frozenset({flag}), {"display_limit": "HI" if high else "LO"})
    if concentration is None or concentration.value is None:
        return _Value(None)  # absent, NaN, NRes or reserved: the meter measured nothing
    return _Value(Observation.of(Metric.GLUCOSE, concentration.value, record.unit.value))


def _context_details(context: GlucoseContext) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if context.carbohydrate is not None:
        details["carbohydrate"] = {
            **_named(CARBOHYDRATES, context.carbohydrate.carbohydrate_id),
            "grams": _shift(context.carbohydrate.amount_kg, 3),
        }
    if context.meal is not None and context.meal not in _MEALS:
        details["meal_code"] = context.meal
    if context.tester is not None:
        details["tester"] = TESTERS.get(context.tester, "reserved")
    if context.health is not None:
        details["health"] = HEALTH.get(context.health, "reserved")
    if context.exercise is not None:
        details["exercise"] = {
            "duration_s": None if context.exercise.overrun else context.exercise.duration_s,
            "duration_overrun": context.exercise.overrun,
            "intensity_pct": context.exercise.intensity_pct,
        }
    medication = context.medication_dict()
    if medication is not None:
        details["medication"] = medication
    if context.hba1c_pct is not None:
        details["hba1c_pct"] = _number(context.hba1c_pct)
    return details


def _site(record: GlucoseMeasurement) -> MeasurementSite | None:
    if record.sample_location in _SITE_BY_LOCATION:
        return _SITE_BY_LOCATION[record.sample_location]
    # No place for "alternate site" in MeasurementSite; the sample type is the next best.
    return _SITE_BY_TYPE.get(record.sample_type or 0)


def to_measurement(
    measurement: GlucoseMeasurement, context: GlucoseContext | None = None
) -> Measurement | None:
    """The canonical `Measurement` of one record (and its context), or None when it holds
    no patient glucose value.

    Raises ValueError if `context` belongs to another record (sequence numbers differ).
    """
    if context is not None and context.sequence_number != measurement.sequence_number:
        raise ValueError(
            f"context #{context.sequence_number} does not belong to "
            f"measurement #{measurement.sequence_number}"
        )
    if measurement.is_control_solution:
        # A control-solution test checks meter and strips against a liquid of known
        # concentration: its value says nothing about the patient and, stored as theirs,
        # would raise false hypo/hyper alerts and skew their trends.
        return None
    status = measurement.sensor_status
    status_flags = frozenset(
        flag for name, flag in _STATUS_FLAGS.items() if status is not None and getattr(status, name)
    )
    value = _glucose_value(measurement, status_flags)
    if value.observation is None:
        return None
    details: dict[str, Any] = dict(value.details)
    if measurement.concentration is not None:
        details["sample_type"] = SAMPLE_TYPES.get(measurement.sample_type or 0, "reserved")
        details["sample_location"] = SAMPLE_LOCATIONS.get(
            measurement.sample_location or 0, "reserved"
        )
        if measurement.concentration.special is not None:
            details["device_concentration"] = measurement.concentration.special.value
    if status is not None:
        details["sensor_status"] = status.raw
    time_fault = status is not None and status.time_fault
    if time_fault:
        details["time_fault"] = True
    meal = None
    if context is not None:
        meal = _MEALS.get(context.meal or 0)
        details.update(_context_details(context))
    device_time = measurement.user_facing_time
    return Measurement(
        kind=DeviceKind.GLUCOSE_METER,
        observations=(value.observation,),
        device_time=device_time,
        # A meter reporting a time fault knows its clock is wrong: its times are as
        # untrusted as those of a clock never set.
        clock_set=device_time is not None and not time_fault,
        sequence_number=measurement.sequence_number,
        flags=(status_flags - {StatusFlag.VALUE_HI, StatusFlag.VALUE_LO}) | value.flags,
        context=MeasurementContext(meal=meal, site=_site(measurement)),
        details=details,
    )
