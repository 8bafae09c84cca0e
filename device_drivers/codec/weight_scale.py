"""Weight Scale Service (0x181D): Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E.

Records keep every field as the device sent it — the unit system, reserved flag bits, an
unknown (all-zero) time stamp — so that the encoders are the exact inverse and the emulated
scale speaks the same bytes. The weight's wire unit is always 0.005 kg or 0.01 lb per LSB,
whatever resolution the feature characteristic advertises: the resolution describes
precision only (SIG XML, GSS, openScale, Packetcraft agree; SpeziBluetooth does not).

The mapping to a `Measurement` lives in `device_drivers.codec.body_composition`, because
one step on a scale is a weight and a body composition together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from device_drivers.codec.wire import (
    DateTimeField,
    FieldReader,
    FieldWriter,
    encode_date_time,
    scaled,
    unscaled,
)
from device_drivers.errors import PayloadError
from protocols.units import KG_PER_LB

# Wire scales (decimal strings, so `scaled` multiplies exactly).
SI_MASS_SCALE: Final = "0.005"
IMPERIAL_MASS_SCALE: Final = "0.01"
SI_HEIGHT_SCALE: Final = "0.001"
IMPERIAL_HEIGHT_SCALE: Final = "0.1"
BMI_SCALE: Final = "0.1"
M_PER_IN: Final = 0.0254

MEASUREMENT_UNSUCCESSFUL: Final = 0xFFFF
"""The weight (and body fat) value a scale sends when it could not measure."""
USER_UNKNOWN: Final = 0xFF

# 0x2A9D flags
FLAG_IMPERIAL: Final = 0x01
FLAG_TIMESTAMP: Final = 0x02
FLAG_USER_ID: Final = 0x04
FLAG_BMI_HEIGHT: Final = 0x08
FLAGS_RESERVED: Final = 0xF0

CLOCK_NOT_SET: Final = DateTimeField(None, bytes(7))
"""A time stamp field that is present but says the scale's clock was never set."""


class UnitSystem(StrEnum):
    SI = "SI"
    IMPERIAL = "imperial"

    @property
    def mass_unit(self) -> str:
        """UCUM code of the masses (`protocols.units` converts it)."""
        return "kg" if self is UnitSystem.SI else "[lb_av]"

    @property
    def length_unit(self) -> str:
        return "m" if self is UnitSystem.SI else "[in_i]"

    @property
    def mass_scale(self) -> str:
        return SI_MASS_SCALE if self is UnitSystem.SI else IMPERIAL_MASS_SCALE

    @property
    def height_scale(self) -> str:
        return SI_HEIGHT_SCALE if self is UnitSystem.SI else IMPERIAL_HEIGHT_SCALE


def unit_system_of(imperial_bit: int) -> UnitSystem:
    return UnitSystem.IMPERIAL if imperial_bit else UnitSystem.SI


# -- helpers shared with the body-composition codec -----------------------------------


def approx_kg(lb: float) -> float:
    """The vectors' `*_kg_approx`: pounds to kilograms, 3 decimals."""
    return round(lb * KG_PER_LB, 3)


def approx_m(inches: float) -> float:
    return round(inches * M_PER_IN, 3)


def mass_fields(name: str, value: float, units: UnitSystem) -> dict[str, Any]:
    """`{name}_kg`, or `{name}_lb` plus its kilogram approximation."""
    if units is UnitSystem.SI:
        return {f"{name}_kg": value}
    return {f"{name}_lb": value, f"{name}_kg_approx": approx_kg(value)}


def height_fields(value: float, units: UnitSystem) -> dict[str, Any]:
    if units is UnitSystem.SI:
        return {"height_m": value}
    return {"height_in": value, "height_m_approx": approx_m(value)}


def user_fields(user_id: int) -> dict[str, Any]:
    return {"user_id": user_id, "user_id_unknown": user_id == USER_UNKNOWN}


def timestamp_field(moment: datetime | DateTimeField | None) -> DateTimeField | None:
    """For builders: a datetime becomes a present time stamp, None leaves it out."""
    if moment is None or isinstance(moment, DateTimeField):
        return moment
    return DateTimeField(moment, encode_date_time(moment))


def write_timestamp(writer: FieldWriter, stamp: DateTimeField, what: str) -> None:
    # The raw bytes, not the moment: an unknown time goes back exactly as it came.
    if len(stamp.raw) != 7:
        raise PayloadError(f"{what}: a time stamp is 7 bytes, got {len(stamp.raw)}")
    writer.raw(stamp.raw)


def write_scaled(writer: FieldWriter, value: float, scale: str, field: str) -> None:
    writer.u16(unscaled(value, scale, field), field)


def check_user_id(user_id: int | None, what: str) -> None:
    if user_id is not None and not 0 <= user_id <= 0xFF:
        raise PayloadError(f"{what}: user id {user_id} does not fit in a byte")


# -- resolutions (0x2A9E bits 3-6 / 7-9, 0x2A9B bits 11-14 / 15-17) --------------------

MASS_RESOLUTIONS: Final[dict[int, tuple[float, float]]] = {
    1: (0.5, 1.0),
    2: (0.2, 0.5),
    3: (0.1, 0.2),
    4: (0.05, 0.1),
    5: (0.02, 0.05),
    6: (0.01, 0.02),
    7: (0.005, 0.01),
}
"""code → (kg, lb) per step."""
HEIGHT_RESOLUTIONS: Final[dict[int, tuple[float, float]]] = {
    1: (0.01, 1.0),
    2: (0.005, 0.5),
    3: (0.001, 0.1),
}
"""code → (m, in) per step."""


def mass_resolution_fields(code: int) -> dict[str, Any]:
    if code == 0:
        return {"code": 0, "name": "not_specified"}
    if code not in MASS_RESOLUTIONS:
        return {"code": code, "name": "reserved"}
    kg, lb = MASS_RESOLUTIONS[code]
    return {"code": code, "kg": kg, "lb": lb}


def height_resolution_fields(code: int) -> dict[str, Any]:
    if code == 0:
        return {"code": 0, "name": "not_specified"}
    if code not in HEIGHT_RESOLUTIONS:
        return {"code": code, "name": "reserved"}
    m, inches = HEIGHT_RESOLUTIONS[code]
    return {"code": code, "m": m, "in": inches}


# -- 0x2A9D Weight Measurement ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """One Weight Measurement indication, values in the unit system of its flags."""

    flags: int
    weight: float | None
    """kg (SI) or lb (imperial); None when the scale reported "measurement unsuccessful"."""
    timestamp: DateTimeField | None = None
    user_id: int | None = None
    """0xFF is "unknown user", kept as sent."""
    bmi: float | None = None
    """kg/m²; sent together with `height` (flag bit 3)."""
    height: float | None = None
    """m (SI) or in (imperial)."""

    @classmethod
    def build(
        cls,
        weight: float | None,
        *,
        units: UnitSystem = UnitSystem.SI,
        timestamp: datetime | DateTimeField | None = None,
        user_id: int | None = None,
        bmi: float | None = None,
        height: float | None = None,
        reserved_flags: int = 0,
    ) -> WeightMeasurement:
        """A record whose flags follow from the fields given (for the emulated scale)."""
        if (bmi is None) != (height is None):
            raise PayloadError("weight measurement: BMI and height are sent together")
        stamp = timestamp_field(timestamp)
        flags = (
            (FLAG_IMPERIAL if units is UnitSystem.IMPERIAL else 0)
            | (FLAG_TIMESTAMP if stamp is not None else 0)
            | (FLAG_USER_ID if user_id is not None else 0)
            | (FLAG_BMI_HEIGHT if bmi is not None else 0)
            | (reserved_flags & FLAGS_RESERVED)
        )
        return cls(flags, weight, stamp, user_id, bmi, height)

    @property
    def units(self) -> UnitSystem:
        return unit_system_of(self.flags & FLAG_IMPERIAL)

    @property
    def successful(self) -> bool:
        return self.weight is not None

    @property
    def reserved_bits(self) -> int:
        return self.flags & FLAGS_RESERVED

    @property
    def clock_set(self) -> bool:
        """False when a time stamp is present but reads "never set"."""
        return self.timestamp is None or self.timestamp.moment is not None

    def flags_dict(self) -> dict[str, Any]:
        return {
            "raw": self.flags,
            "unit_system": self.units.value,
            "timestamp_present": bool(self.flags & FLAG_TIMESTAMP),
            "user_id_present": bool(self.flags & FLAG_USER_ID),
            "bmi_height_present": bool(self.flags & FLAG_BMI_HEIGHT),
            "reserved_bits": self.reserved_bits,
        }

    def as_dict(self) -> dict[str, Any]:
        units = self.units
        out: dict[str, Any] = {"flags": self.flags_dict()}
        if self.weight is None:
            out["weight_measurement_unsuccessful"] = True
        else:
            out.update(mass_fields("weight", self.weight, units))
        if self.timestamp is not None:
            out.update(self.timestamp.as_dict("timestamp"))
        if self.user_id is not None:
            out.update(user_fields(self.user_id))
        if self.bmi is not None and self.height is not None:
            out["bmi_kg_per_m2"] = self.bmi
            out.update(height_fields(self.height, units))
        return out


def decode_weight_measurement(data: bytes) -> WeightMeasurement:
    reader = FieldReader(data, "weight measurement")
    flags = reader.u8("flags")
    units = unit_system_of(flags & FLAG_IMPERIAL)
    raw_weight = reader.u16("weight")
    weight = (
        None if raw_weight == MEASUREMENT_UNSUCCESSFUL else scaled(raw_weight, units.mass_scale)
    )
    stamp = reader.date_time("time stamp") if flags & FLAG_TIMESTAMP else None
    user_id = reader.u8("user id") if flags & FLAG_USER_ID else None
    bmi = height = None
    if flags & FLAG_BMI_HEIGHT:
        bmi = scaled(reader.u16("BMI"), BMI_SCALE)
        height = scaled(reader.u16("height"), units.height_scale)
    reader.finish()
    return WeightMeasurement(flags, weight, stamp, user_id, bmi, height)


def encode_weight_measurement(record: WeightMeasurement) -> bytes:
    what = "weight measurement"
    flags = record.flags
    if not 0 <= flags <= 0xFF:
        raise PayloadError(f"{what}: flags {flags:#x} do not fit in a byte")
    check_presence(what, "time stamp", flags & FLAG_TIMESTAMP, record.timestamp)
    check_presence(what, "user id", flags & FLAG_USER_ID, record.user_id)
    check_presence(what, "BMI", flags & FLAG_BMI_HEIGHT, record.bmi)
    check_presence(what, "height", flags & FLAG_BMI_HEIGHT, record.height)
    check_user_id(record.user_id, what)
    units = record.units
    writer = FieldWriter().u8(flags, "flags")
    if record.weight is None:
        writer.u16(MEASUREMENT_UNSUCCESSFUL)
    else:
        raw = unscaled(record.weight, units.mass_scale, "weight")
        if raw >= MEASUREMENT_UNSUCCESSFUL:
            raise PayloadError(f"{what}: {record.weight} is beyond the scale's range")
        writer.u16(raw, "weight")
    if record.timestamp is not None:
        write_timestamp(writer, record.timestamp, what)
    if record.user_id is not None:
        writer.u8(record.user_id, "user id")
    if record.bmi is not None and record.height is not None:
        write_scaled(writer, record.bmi, BMI_SCALE, "BMI")
        write_scaled(writer, record.height, units.height_scale, "height")
    return writer.bytes()


def check_presence(what: str, field: str, flag: int, value: object) -> None:
    if bool(flag) != (value is not None):
        state = "set" if flag else "clear"
        raise PayloadError(f"{what}: the {field} flag is {state} but the field is {value!r}")


# -- 0x2A9E Weight Scale Feature -------------------------------------------------------

FEATURE_TIMESTAMP: Final = 0x01
FEATURE_MULTIPLE_USERS: Final = 0x02
FEATURE_BMI: Final = 0x04
_FEATURE_WEIGHT_RESOLUTION_SHIFT: Final = 3
_FEATURE_HEIGHT_RESOLUTION_SHIFT: Final = 7
FEATURE_RESERVED: Final = 0xFFFFFC00


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    raw: int

    @classmethod
    def build(
        cls,
        *,
        timestamp: bool = False,
        multiple_users: bool = False,
        bmi: bool = False,
        weight_resolution: int = 0,
        height_resolution: int = 0,
    ) -> WeightScaleFeature:
        if not 0 <= weight_resolution <= 0x0F or not 0 <= height_resolution <= 0x07:
            raise PayloadError("weight scale feature: resolution code out of range")
        return cls(
            (FEATURE_TIMESTAMP if timestamp else 0)
            | (FEATURE_MULTIPLE_USERS if multiple_users else 0)
            | (FEATURE_BMI if bmi else 0)
            | weight_resolution << _FEATURE_WEIGHT_RESOLUTION_SHIFT
            | height_resolution << _FEATURE_HEIGHT_RESOLUTION_SHIFT
        )

    @property
    def timestamp_supported(self) -> bool:
        return bool(self.raw & FEATURE_TIMESTAMP)

    @property
    def multiple_users_supported(self) -> bool:
        return bool(self.raw & FEATURE_MULTIPLE_USERS)

    @property
    def bmi_supported(self) -> bool:
        return bool(self.raw & FEATURE_BMI)

    @property
    def weight_resolution(self) -> int:
        return (self.raw >> _FEATURE_WEIGHT_RESOLUTION_SHIFT) & 0x0F

    @property
    def height_resolution(self) -> int:
        return (self.raw >> _FEATURE_HEIGHT_RESOLUTION_SHIFT) & 0x07

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "timestamp_supported": self.timestamp_supported,
            "multiple_users_supported": self.multiple_users_supported,
            "bmi_supported": self.bmi_supported,
            "weight_resolution": mass_resolution_fields(self.weight_resolution),
            "height_resolution": height_resolution_fields(self.height_resolution),
            "reserved_bits": self.raw & FEATURE_RESERVED,
        }


def decode_weight_scale_feature(data: bytes) -> WeightScaleFeature:
    reader = FieldReader(data, "weight scale feature")
    raw = reader.u32("features")
    reader.finish()
    return WeightScaleFeature(raw)


def encode_weight_scale_feature(feature: WeightScaleFeature) -> bytes:
    return FieldWriter().u32(feature.raw, "weight scale feature").bytes()
