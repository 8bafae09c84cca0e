"""Blood Pressure Service (0x1810, BLS 1.0): Measurement 0x2A35, Intermediate Cuff Pressure
0x2A36 and Feature 0x2A49.

Decoders turn a characteristic value into a frozen record that keeps every field as the
device sent it (SFLOAT mantissa and exponent, the unit, reserved bits, an unset clock), so
the encoders are the exact inverse and the emulated monitor speaks the same bytes.
`to_measurement` is the one place where a cuff record becomes a `Measurement` (and where a
failed cuff measurement is held back); `cuff_pressure` gives the live inflation progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum
from typing import Any, Final

from device_drivers.codec.wire import (
    DateTimeField,
    FieldReader,
    FieldWriter,
    MedFloat,
    Special,
    decode_date_time_bytes,
    decode_sfloat_word,
    encode_date_time,
    encode_sfloat_word,
    sfloat_word_of,
)
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MeasurementContext, StatusFlag
from protocols.units import MMHG_PER_KPA

# Flags byte, shared by 0x2A35 and 0x2A36.
FLAG_UNIT_KPA: Final = 0x01
FLAG_TIME_STAMP: Final = 0x02
FLAG_PULSE_RATE: Final = 0x04
FLAG_USER_ID: Final = 0x08
FLAG_MEASUREMENT_STATUS: Final = 0x10
RESERVED_FLAGS: Final = 0xE0

UNKNOWN_USER: Final = 0xFF
"""User ID 0xFF: the monitor does not know who was measured."""

# Measurement Status word.
STATUS_BODY_MOVEMENT: Final = 0x0001
STATUS_CUFF_TOO_LOOSE: Final = 0x0002
STATUS_IRREGULAR_PULSE: Final = 0x0004
STATUS_PULSE_RATE_RANGE_MASK: Final = 0x0018
STATUS_PULSE_RATE_RANGE_SHIFT: Final = 3
STATUS_IMPROPER_POSITION: Final = 0x0020
STATUS_RESERVED: Final = 0xFFC0

# Feature word (0x2A49).
FEATURE_BODY_MOVEMENT: Final = 0x0001
FEATURE_CUFF_FIT: Final = 0x0002
FEATURE_IRREGULAR_PULSE: Final = 0x0004
FEATURE_PULSE_RATE_RANGE: Final = 0x0008
FEATURE_MEASUREMENT_POSITION: Final = 0x0010
FEATURE_MULTIPLE_BOND: Final = 0x0020
_FEATURE_HIGH_SHIFT: Final = 6

PULSE_RATE_UNIT: Final = "/min"
_MMHG_PER_KPA: Final = Decimal(repr(MMHG_PER_KPA))
_APPROX_STEP: Final = Decimal("0.1")


class PressureUnit(StrEnum):
    """Flag bit 0: the unit of every pressure in the record."""

    MMHG = "mmHg"
    KPA = "kPa"

    @property
    def ucum(self) -> str:
        """The unit as `protocols.units` and FHIR spell it."""
        return "mm[Hg]" if self is PressureUnit.MMHG else "kPa"


class PulseRateRange(IntEnum):
    """Measurement Status bits 3-4."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2
    RESERVED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


# -- status and feature words ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeasurementStatus:
    """The u16 Measurement Status; bits 6-15 are reserved and reported as they came."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFF:
            raise PayloadError(f"measurement status {self.raw} does not fit in 16 bits")

    @classmethod
    def of(
        cls,
        *,
        body_movement: bool = False,
        cuff_too_loose: bool = False,
        irregular_pulse: bool = False,
        pulse_rate_range: PulseRateRange = PulseRateRange.WITHIN_RANGE,
        improper_position: bool = False,
        reserved_bits: int = 0,
    ) -> MeasurementStatus:
        if reserved_bits & ~STATUS_RESERVED:
            raise PayloadError(f"reserved status bits {reserved_bits:#x} overlap defined bits")
        return cls(
            (STATUS_BODY_MOVEMENT if body_movement else 0)
            | (STATUS_CUFF_TOO_LOOSE if cuff_too_loose else 0)
            | (STATUS_IRREGULAR_PULSE if irregular_pulse else 0)
            | (int(pulse_rate_range) << STATUS_PULSE_RATE_RANGE_SHIFT)
            | (STATUS_IMPROPER_POSITION if improper_position else 0)
            | reserved_bits
        )

    @property
    def body_movement(self) -> bool:
        return bool(self.raw & STATUS_BODY_MOVEMENT)

    @property
    def cuff_too_loose(self) -> bool:
        return bool(self.raw & STATUS_CUFF_TOO_LOOSE)

    @property
    def irregular_pulse(self) -> bool:
        return bool(self.raw & STATUS_IRREGULAR_PULSE)

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        return PulseRateRange(
            (self.raw & STATUS_PULSE_RATE_RANGE_MASK) >> STATUS_PULSE_RATE_RANGE_SHIFT
        )

    @property
    def improper_position(self) -> bool:
        return bool(self.raw & STATUS_IMPROPER_POSITION)

    @property
    def reserved_bits(self) -> int:
        return self.raw & STATUS_RESERVED

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "body_movement_detected": self.body_movement,
            "cuff_too_loose": self.cuff_too_loose,
            "irregular_pulse_detected": self.irregular_pulse,
            "improper_measurement_position": self.improper_position,
            "pulse_rate_range": self.pulse_rate_range.label,
            "reserved_bits": self.reserved_bits,
        }


@dataclass(frozen=True, slots=True)
class BloodPressureFlags:
    """The flags byte of 0x2A35 / 0x2A36, as derived from a record's fields."""

    raw: int

    @property
    def unit(self) -> PressureUnit:
        return PressureUnit.KPA if self.raw & FLAG_UNIT_KPA else PressureUnit.MMHG

    @property
    def reserved_bits(self) -> int:
        return self.raw & RESERVED_FLAGS

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "unit": self.unit.value,
            "timestamp_present": bool(self.raw & FLAG_TIME_STAMP),
            "pulse_rate_present": bool(self.raw & FLAG_PULSE_RATE),
            "user_id_present": bool(self.raw & FLAG_USER_ID),
            "measurement_status_present": bool(self.raw & FLAG_MEASUREMENT_STATUS),
            "reserved_bits": self.reserved_bits,
        }


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """0x2A49. Bits 6-15 are reserved in BLS 1.0 (BLS 1.1 reportedly uses 6-8): kept raw."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFF:
            raise PayloadError(f"blood pressure feature {self.raw} does not fit in 16 bits")

    @classmethod
    def of(
        cls,
        *,
        body_movement: bool = False,
        cuff_fit: bool = False,
        irregular_pulse: bool = False,
        pulse_rate_range: bool = False,
        measurement_position: bool = False,
        multiple_bond: bool = False,
    ) -> BloodPressureFeature:
        return cls(
            (FEATURE_BODY_MOVEMENT if body_movement else 0)
            | (FEATURE_CUFF_FIT if cuff_fit else 0)
            | (FEATURE_IRREGULAR_PULSE if irregular_pulse else 0)
            | (FEATURE_PULSE_RATE_RANGE if pulse_rate_range else 0)
            | (FEATURE_MEASUREMENT_POSITION if measurement_position else 0)
            | (FEATURE_MULTIPLE_BOND if multiple_bond else 0)
        )

    @property
    def body_movement_detection(self) -> bool:
        return bool(self.raw & FEATURE_BODY_MOVEMENT)

    @property
    def cuff_fit_detection(self) -> bool:
        return bool(self.raw & FEATURE_CUFF_FIT)

    @property
    def irregular_pulse_detection(self) -> bool:
        return bool(self.raw & FEATURE_IRREGULAR_PULSE)

    @property
    def pulse_rate_range_detection(self) -> bool:
        return bool(self.raw & FEATURE_PULSE_RATE_RANGE)

    @property
    def measurement_position_detection(self) -> bool:
        return bool(self.raw & FEATURE_MEASUREMENT_POSITION)

    @property
    def multiple_bond(self) -> bool:
        return bool(self.raw & FEATURE_MULTIPLE_BOND)

    @property
    def bits_6_15(self) -> int:
        return self.raw >> _FEATURE_HIGH_SHIFT

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "body_movement_detection": self.body_movement_detection,
            "cuff_fit_detection": self.cuff_fit_detection,
            "irregular_pulse_detection": self.irregular_pulse_detection,
            "pulse_rate_range_detection": self.pulse_rate_range_detection,
            "measurement_position_detection": self.measurement_position_detection,
            "multiple_bond": self.multiple_bond,
            "bits_6_15": self.bits_6_15,
        }


def decode_blood_pressure_feature(data: bytes) -> BloodPressureFeature:
    reader = FieldReader(data, "blood pressure feature")
    raw = reader.u16("features")
    reader.finish()
    return BloodPressureFeature(raw)


def encode_blood_pressure_feature(feature: BloodPressureFeature) -> bytes:
    return FieldWriter().u16(feature.raw, "features").bytes()


# -- field helpers ---------------------------------------------------------------------


def sfloat(value: float | Special | MedFloat) -> MedFloat:
    """`value` as the SFLOAT a device would send, so hand-built records equal decoded ones."""
    if isinstance(value, MedFloat):
        return value
    return decode_sfloat_word(encode_sfloat_word(value))


def stamp_at(moment: datetime | None) -> DateTimeField:
    """A Time Stamp field for a hand-built record; None is the all-zero "clock not set"."""
    return decode_date_time_bytes(encode_date_time(moment))


UNKNOWN_TIME: Final = stamp_at(None)
NOT_A_NUMBER: Final = MedFloat.of(Special.NAN)


def _json(value: MedFloat) -> float | str:
    if value.special is not None:
        return value.special.value
    assert value.value is not None  # a MedFloat is a number or a special
    return value.value


def _mmhg_approx(value: MedFloat) -> float | str:
    """kPa → mmHg, 1 decimal, rounded half up on the exact decimal product (§11)."""
    if value.special is not None or value.value is None:
        return _json(value)
    product = Decimal(repr(value.value)) * _MMHG_PER_KPA
    return float(product.quantize(_APPROX_STEP, rounding=ROUND_HALF_UP))


def _pressure_dict(name: str, value: MedFloat, unit: PressureUnit) -> dict[str, Any]:
    if unit is PressureUnit.MMHG:
        return {f"{name}_mmHg": _json(value)}
    return {f"{name}_kPa": _json(value), f"{name}_mmHg_approx": _mmhg_approx(value)}


def _check_reserved(reserved: int) -> None:
    if reserved & ~RESERVED_FLAGS:
        raise PayloadError(f"reserved flag bits {reserved:#x} overlap defined flags")


def _check_user(user_id: int | None) -> None:
    if user_id is not None and not 0 <= user_id <= 0xFF:
        raise PayloadError(f"user id {user_id} does not fit in a byte")


@dataclass(frozen=True, slots=True)
class _Fields:
    """What 0x2A35 and 0x2A36 share on the wire: flags, three SFLOATs, the optional tail."""

    unit: PressureUnit
    first: MedFloat
    second: MedFloat
    third: MedFloat
    time_stamp: DateTimeField | None
    pulse_rate: MedFloat | None
    user_id: int | None
    status: MeasurementStatus | None
    reserved_flags: int


def _flags(
    unit: PressureUnit,
    time_stamp: DateTimeField | None,
    pulse_rate: MedFloat | None,
    user_id: int | None,
    status: MeasurementStatus | None,
    reserved_flags: int,
) -> BloodPressureFlags:
    return BloodPressureFlags(
        (FLAG_UNIT_KPA if unit is PressureUnit.KPA else 0)
        | (FLAG_TIME_STAMP if time_stamp is not None else 0)
        | (FLAG_PULSE_RATE if pulse_rate is not None else 0)
        | (FLAG_USER_ID if user_id is not None else 0)
        | (FLAG_MEASUREMENT_STATUS if status is not None else 0)
        | reserved_flags
    )


def _read(data: bytes, what: str, names: tuple[str, str, str]) -> _Fields:
    reader = FieldReader(data, what)
    flags = reader.u8("flags")
    first = reader.sfloat(names[0])
    second = reader.sfloat(names[1])
    third = reader.sfloat(names[2])
    # An impossible date is an untrusted stamp (moment None), not a malformed payload.
    stamp = reader.date_time("time stamp") if flags & FLAG_TIME_STAMP else None
    pulse = reader.sfloat("pulse rate") if flags & FLAG_PULSE_RATE else None
    user = reader.u8("user id") if flags & FLAG_USER_ID else None
    status = (
        MeasurementStatus(reader.u16("measurement status"))
        if flags & FLAG_MEASUREMENT_STATUS
        else None
    )
    reader.finish()
    return _Fields(
        unit=PressureUnit.KPA if flags & FLAG_UNIT_KPA else PressureUnit.MMHG,
        first=first,
        second=second,
        third=third,
        time_stamp=stamp,
        pulse_rate=pulse,
        user_id=user,
        status=status,
        reserved_flags=flags & RESERVED_FLAGS,
    )


def _write(
    flags: BloodPressureFlags,
    pressures: tuple[MedFloat, MedFloat, MedFloat],
    time_stamp: DateTimeField | None,
    pulse_rate: MedFloat | None,
    user_id: int | None,
    status: MeasurementStatus | None,
) -> bytes:
    writer = FieldWriter().u8(flags.raw, "flags")
    for value in pressures:
        writer.u16(sfloat_word_of(value))
    if time_stamp is not None:
        if len(time_stamp.raw) == 7:
            writer.raw(time_stamp.raw)
        else:
            writer.date_time(time_stamp.moment)
    if pulse_rate is not None:
        writer.u16(sfloat_word_of(pulse_rate))
    if user_id is not None:
        writer.u8(user_id, "user id")
    if status is not None:
        writer.u16(status.raw, "measurement status")
    return writer.bytes()


def _tail_dict(
    time_stamp: DateTimeField | None,
    pulse_rate: MedFloat | None,
    user_id: int | None,
    status: MeasurementStatus | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if time_stamp is not None:
        out.update(time_stamp.as_dict("timestamp"))
    if pulse_rate is not None:
        out["pulse_rate_bpm"] = _json(pulse_rate)
    if user_id is not None:
        out["user_id"] = user_id
        out["user_id_unknown"] = user_id == UNKNOWN_USER
    if status is not None:
        out["measurement_status"] = status.as_dict()
    return out


def _stamp_of(moment: datetime | DateTimeField | None) -> DateTimeField | None:
    if moment is None or isinstance(moment, DateTimeField):
        return moment
    return stamp_at(moment)


def _status_of(status: MeasurementStatus | int | None) -> MeasurementStatus | None:
    if status is None or isinstance(status, MeasurementStatus):
        return status
    return MeasurementStatus(status)


# -- 0x2A35 Blood Pressure Measurement -------------------------------------------------


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """One cuff result. Optional fields are None when their flag bit is clear; the flags
    byte is derived from them, so a record cannot disagree with its own flags."""

    unit: PressureUnit
    systolic: MedFloat
    diastolic: MedFloat
    mean_arterial_pressure: MedFloat
    time_stamp: DateTimeField | None = None
    pulse_rate: MedFloat | None = None
    """Beats per minute, whatever the pressure unit."""
    user_id: int | None = None
    status: MeasurementStatus | None = None
    reserved_flags: int = 0
    """Flag bits 5-7 as received: reported, and sent again by the encoder."""

    def __post_init__(self) -> None:
        _check_reserved(self.reserved_flags)
        _check_user(self.user_id)

    @classmethod
    def of(
        cls,
        systolic: float | Special | MedFloat,
        diastolic: float | Special | MedFloat,
        mean_arterial_pressure: float | Special | MedFloat = Special.NAN,
        *,
        unit: PressureUnit = PressureUnit.MMHG,
        time_stamp: datetime | DateTimeField | None = None,
        pulse_rate: float | Special | MedFloat | None = None,
        user_id: int | None = None,
        status: MeasurementStatus | int | None = None,
    ) -> BloodPressureMeasurement:
        """A record built by hand (emulators, tests), values in `unit`; None leaves a field
        out. Numbers are rounded to what an SFLOAT carries, as a device would."""
        return cls(
            unit=unit,
            systolic=sfloat(systolic),
            diastolic=sfloat(diastolic),
            mean_arterial_pressure=sfloat(mean_arterial_pressure),
            time_stamp=_stamp_of(time_stamp),
            pulse_rate=None if pulse_rate is None else sfloat(pulse_rate),
            user_id=user_id,
            status=_status_of(status),
        )

    @property
    def flags(self) -> BloodPressureFlags:
        return _flags(
            self.unit,
            self.time_stamp,
            self.pulse_rate,
            self.user_id,
            self.status,
            self.reserved_flags,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"flags": self.flags.as_dict()}
        out.update(_pressure_dict("systolic", self.systolic, self.unit))
        out.update(_pressure_dict("diastolic", self.diastolic, self.unit))
        out.update(_pressure_dict("mean_arterial_pressure", self.mean_arterial_pressure, self.unit))
        out.update(_tail_dict(self.time_stamp, self.pulse_rate, self.user_id, self.status))
        return out


def decode_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    fields = _read(
        data,
        "blood pressure measurement",
        ("systolic", "diastolic", "mean arterial pressure"),
    )
    return BloodPressureMeasurement(
        unit=fields.unit,
        systolic=fields.first,
        diastolic=fields.second,
        mean_arterial_pressure=fields.third,
        time_stamp=fields.time_stamp,
        pulse_rate=fields.pulse_rate,
        user_id=fields.user_id,
        status=fields.status,
        reserved_flags=fields.reserved_flags,
    )


def encode_blood_pressure_measurement(record: BloodPressureMeasurement) -> bytes:
    return _write(
        record.flags,
        (record.systolic, record.diastolic, record.mean_arterial_pressure),
        record.time_stamp,
        record.pulse_rate,
        record.user_id,
        record.status,
    )


# -- 0x2A36 Intermediate Cuff Pressure -------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """The cuff pressure while a measurement runs. The diastolic and MAP slots of the
    layout are unused (a device sends NaN there) but kept, for an exact re-encoding."""

    unit: PressureUnit
    cuff_pressure: MedFloat
    diastolic_unused: MedFloat = NOT_A_NUMBER
    mean_arterial_pressure_unused: MedFloat = NOT_A_NUMBER
    time_stamp: DateTimeField | None = None
    pulse_rate: MedFloat | None = None
    user_id: int | None = None
    status: MeasurementStatus | None = None
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        _check_reserved(self.reserved_flags)
        _check_user(self.user_id)

    @classmethod
    def of(
        cls,
        cuff_pressure: float | Special | MedFloat,
        *,
        unit: PressureUnit = PressureUnit.MMHG,
        time_stamp: datetime | DateTimeField | None = None,
        pulse_rate: float | Special | MedFloat | None = None,
        user_id: int | None = None,
        status: MeasurementStatus | int | None = None,
    ) -> IntermediateCuffPressure:
        return cls(
            unit=unit,
            cuff_pressure=sfloat(cuff_pressure),
            time_stamp=_stamp_of(time_stamp),
            pulse_rate=None if pulse_rate is None else sfloat(pulse_rate),
            user_id=user_id,
            status=_status_of(status),
        )

    @property
    def flags(self) -> BloodPressureFlags:
        return _flags(
            self.unit,
            self.time_stamp,
            self.pulse_rate,
            self.user_id,
            self.status,
            self.reserved_flags,
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"flags": self.flags.as_dict()}
        out.update(_pressure_dict("cuff_pressure", self.cuff_pressure, self.unit))
        out["diastolic_unused"] = _json(self.diastolic_unused)
        out["mean_arterial_pressure_unused"] = _json(self.mean_arterial_pressure_unused)
        out.update(_tail_dict(self.time_stamp, self.pulse_rate, self.user_id, self.status))
        return out


def decode_intermediate_cuff_pressure(data: bytes) -> IntermediateCuffPressure:
    fields = _read(
        data,
        "intermediate cuff pressure",
        ("cuff pressure", "diastolic (unused)", "mean arterial pressure (unused)"),
    )
    return IntermediateCuffPressure(
        unit=fields.unit,
        cuff_pressure=fields.first,
        diastolic_unused=fields.second,
        mean_arterial_pressure_unused=fields.third,
        time_stamp=fields.time_stamp,
        pulse_rate=fields.pulse_rate,
        user_id=fields.user_id,
        status=fields.status,
        reserved_flags=fields.reserved_flags,
    )


def encode_intermediate_cuff_pressure(record: IntermediateCuffPressure) -> bytes:
    return _write(
        record.flags,
        (record.cuff_pressure, record.diastolic_unused, record.mean_arterial_pressure_unused),
        record.time_stamp,
        record.pulse_rate,
        record.user_id,
        record.status,
    )


# -- to Measurement --------------------------------------------------------------------


def _status_flags(status: MeasurementStatus) -> frozenset[StatusFlag]:
    flags: set[StatusFlag] = set()
    if status.body_movement:
        flags.add(StatusFlag.BODY_MOVEMENT)
    if status.cuff_too_loose:
        flags.add(StatusFlag.CUFF_LOOSE)
    if status.irregular_pulse:
        flags.add(StatusFlag.IRREGULAR_PULSE)
    if status.pulse_rate_range in (
        PulseRateRange.EXCEEDS_UPPER_LIMIT,
        PulseRateRange.BELOW_LOWER_LIMIT,
    ):
        flags.add(StatusFlag.PULSE_RATE_OUT_OF_RANGE)
    if status.improper_position:
        flags.add(StatusFlag.IMPROPER_POSITION)
    return frozenset(flags)


def to_measurement(record: BloodPressureMeasurement) -> Measurement | None:
    """The cuff result as observations in canonical units, or None if the cuff failed.

    Policy:
    * Systolic and diastolic are the reading. If either is not a number (NaN, NRes, ±INF)
      the measurement failed, and None is returned: a MAP or a pulse alone is no blood
      pressure reading, and a half reading must not reach the clinical rules.
    * MAP and pulse rate are observations only when numeric; specials are noted in
      `details["unavailable"]`.
    * kPa values are kept as sent (`device_value`, `device_unit` "kPa") and converted to
      mm[Hg] by `Observation.of`.
    * Status bits become `StatusFlag`s; a pulse rate above or below the device's limits is
      `PULSE_RATE_OUT_OF_RANGE`, its direction and the raw word stay in `details`.
    * User ID → `MeasurementContext.device_user_index`, except 0xFF (unknown user).
    * An unset or impossible time stamp gives `device_time` None and `clock_set` False.
    """
    if not (record.systolic.is_number and record.diastolic.is_number):
        return None
    pressure_unit = record.unit.ucum
    observations = [
        _observation(Metric.SYSTOLIC, record.systolic, pressure_unit),
        _observation(Metric.DIASTOLIC, record.diastolic, pressure_unit),
    ]
    unavailable: dict[str, str] = {}
    candidates = [(Metric.MEAN_ARTERIAL_PRESSURE, record.mean_arterial_pressure, pressure_unit)]
    if record.pulse_rate is not None:
        candidates.append((Metric.PULSE_RATE, record.pulse_rate, PULSE_RATE_UNIT))
    for metric, value, unit in candidates:
        if value.special is not None:
            unavailable[metric.value] = value.special.value
        else:
            observations.append(_observation(metric, value, unit))

    details: dict[str, Any] = {}
    if unavailable:
        details["unavailable"] = unavailable
    flags: frozenset[StatusFlag] = frozenset()
    if record.status is not None:
        flags = _status_flags(record.status)
        details["measurement_status"] = record.status.raw
        details["pulse_rate_range"] = record.status.pulse_rate_range.label
    if record.reserved_flags:
        details["reserved_flags"] = record.reserved_flags

    context = MeasurementContext()
    if record.user_id is not None:
        if record.user_id == UNKNOWN_USER:
            details["user_id_unknown"] = True
        else:
            context = MeasurementContext(device_user_index=record.user_id)

    device_time: datetime | None = None
    clock_set = True
    if record.time_stamp is not None:
        device_time = record.time_stamp.moment
        if device_time is None:
            clock_set = False
            details["time_stamp_raw"] = record.time_stamp.raw_fields()

    return Measurement(
        kind=DeviceKind.BLOOD_PRESSURE_MONITOR,
        observations=tuple(observations),
        device_time=device_time,
        clock_set=clock_set,
        flags=flags,
        context=context,
        details=details,
    )


def _observation(metric: Metric, value: MedFloat, unit: str) -> Observation:
    assert value.value is not None  # callers pass numeric values only
    return Observation.of(metric, value.value, unit)


def cuff_pressure(record: IntermediateCuffPressure) -> float | None:
    """The live cuff pressure in mmHg (converted from kPa if need be); None if not a number."""
    if record.cuff_pressure.special is not None or record.cuff_pressure.value is None:
        return None
    if record.unit is PressureUnit.KPA:
        return record.cuff_pressure.value * MMHG_PER_KPA
    return record.cuff_pressure.value
