"""Body Composition Service (0x181B): Measurement 0x2A9C, Feature 0x2A9B, multi-packet
measurements, and `to_measurement` for one step on a scale (weight + body composition).

A full 0x2A9C is 30 bytes, more than the 20 a default ATT MTU of 23 carries, so a sensor
splits it into two indications with Multiple Packet Measurement (flag bit 12) set: each
part has its own flags naming the fields it carries, and the mandatory body fat is repeated
in both (Realtek `bcs.c`). `split_body_composition` does that for the emulated scale;
`BodyCompositionAssembler` joins the parts again on the collector side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from device_drivers.codec.weight_scale import (
    MEASUREMENT_UNSUCCESSFUL,
    USER_UNKNOWN,
    UnitSystem,
    WeightMeasurement,
    check_presence,
    check_user_id,
    height_fields,
    height_resolution_fields,
    mass_fields,
    mass_resolution_fields,
    timestamp_field,
    unit_system_of,
    user_fields,
    write_scaled,
    write_timestamp,
)
from device_drivers.codec.wire import DateTimeField, FieldReader, FieldWriter, scaled, unscaled
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MeasurementContext
from protocols.units import KJ_PER_KCAL, to_canonical

ATT_DEFAULT_PAYLOAD: Final = 20
"""What one indication carries at the default ATT MTU of 23 (MTU minus the 3-byte header)."""

BODY_FAT_SCALE: Final = "0.1"
PERCENT_SCALE: Final = "0.1"
IMPEDANCE_SCALE: Final = "0.1"
BASAL_METABOLISM_SCALE: Final = "1"

FLAG_IMPERIAL: Final = 0x0001
FLAG_TIMESTAMP: Final = 0x0002
FLAG_USER_ID: Final = 0x0004
FLAG_BASAL_METABOLISM: Final = 0x0008
FLAG_MUSCLE_PERCENTAGE: Final = 0x0010
FLAG_MUSCLE_MASS: Final = 0x0020
FLAG_FAT_FREE_MASS: Final = 0x0040
FLAG_SOFT_LEAN_MASS: Final = 0x0080
FLAG_BODY_WATER_MASS: Final = 0x0100
FLAG_IMPEDANCE: Final = 0x0200
FLAG_WEIGHT: Final = 0x0400
FLAG_HEIGHT: Final = 0x0800
FLAG_MULTIPLE_PACKET: Final = 0x1000
FLAGS_RESERVED: Final = 0xE000
_HEADER_SIZE: Final = 4
"""Flags and the mandatory body fat, which every packet carries."""


@dataclass(frozen=True, slots=True)
class _Field:
    """One optional field of 0x2A9C, in wire order."""

    attr: str
    flag: int
    size: int
    flag_name: str
    scale: Callable[[UnitSystem], str] | None
    """Scale of a uint16 value; None for the time stamp and the user id."""


def _fixed(scale: str) -> Callable[[UnitSystem], str]:
    return lambda _units: scale


def _mass(units: UnitSystem) -> str:
    return units.mass_scale


def _height(units: UnitSystem) -> str:
    return units.height_scale


_FIELDS: Final = (
    _Field("timestamp", FLAG_TIMESTAMP, 7, "timestamp_present", None),
    _Field("user_id", FLAG_USER_ID, 1, "user_id_present", None),
    _Field(
        "basal_metabolism",
        FLAG_BASAL_METABOLISM,
        2,
        "basal_metabolism_present",
        _fixed(BASAL_METABOLISM_SCALE),
    ),
    _Field(
        "muscle_percentage",
        FLAG_MUSCLE_PERCENTAGE,
        2,
        "muscle_percentage_present",
        _fixed(PERCENT_SCALE),
    ),
    _Field("muscle_mass", FLAG_MUSCLE_MASS, 2, "muscle_mass_present", _mass),
    _Field("fat_free_mass", FLAG_FAT_FREE_MASS, 2, "fat_free_mass_present", _mass),
    _Field("soft_lean_mass", FLAG_SOFT_LEAN_MASS, 2, "soft_lean_mass_present", _mass),
    _Field("body_water_mass", FLAG_BODY_WATER_MASS, 2, "body_water_mass_present", _mass),
    _Field("impedance", FLAG_IMPEDANCE, 2, "impedance_present", _fixed(IMPEDANCE_SCALE)),
    _Field("weight", FLAG_WEIGHT, 2, "weight_present", _mass),
    _Field("height", FLAG_HEIGHT, 2, "height_present", _height),
)
_PRESENCE_BITS: Final = sum(f.flag for f in _FIELDS)


@dataclass(frozen=True, slots=True)
class BodyCompositionMeasurement:
    """One 0x2A9C indication (or two merged), values in the unit system of its flags."""

    flags: int
    body_fat: float | None
    """%; None when the scale reported "measurement unsuccessful" (0xFFFF)."""
    timestamp: DateTimeField | None = None
    user_id: int | None = None
    basal_metabolism: float | None = None
    """kJ (per day), as the profile sends it."""
    muscle_percentage: float | None = None
    muscle_mass: float | None = None
    """kg (SI) or lb (imperial), like every mass below."""
    fat_free_mass: float | None = None
    soft_lean_mass: float | None = None
    body_water_mass: float | None = None
    impedance: float | None = None
    """Ω."""
    weight: float | None = None
    height: float | None = None
    """m (SI) or in (imperial)."""

    @classmethod
    def build(
        cls,
        body_fat: float | None,
        *,
        units: UnitSystem = UnitSystem.SI,
        timestamp: datetime | DateTimeField | None = None,
        user_id: int | None = None,
        basal_metabolism: float | None = None,
        muscle_percentage: float | None = None,
        muscle_mass: float | None = None,
        fat_free_mass: float | None = None,
        soft_lean_mass: float | None = None,
        body_water_mass: float | None = None,
        impedance: float | None = None,
        weight: float | None = None,
        height: float | None = None,
        reserved_flags: int = 0,
    ) -> BodyCompositionMeasurement:
        """A single-packet record whose flags follow from the fields given."""
        record = cls(
            0,
            body_fat,
            timestamp_field(timestamp),
            user_id,
            basal_metabolism,
            muscle_percentage,
            muscle_mass,
            fat_free_mass,
            soft_lean_mass,
            body_water_mass,
            impedance,
            weight,
            height,
        )
        flags = (
            (FLAG_IMPERIAL if units is UnitSystem.IMPERIAL else 0)
            | sum(f.flag for f in _FIELDS if getattr(record, f.attr) is not None)
            | (reserved_flags & FLAGS_RESERVED)
        )
        return replace(record, flags=flags)

    @property
    def units(self) -> UnitSystem:
        return unit_system_of(self.flags & FLAG_IMPERIAL)

    @property
    def successful(self) -> bool:
        return self.body_fat is not None

    @property
    def multiple_packet(self) -> bool:
        """Set on each part of a split measurement; a merged record has it clear."""
        return bool(self.flags & FLAG_MULTIPLE_PACKET)

    @property
    def reserved_bits(self) -> int:
        return self.flags & FLAGS_RESERVED

    def flags_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"raw": self.flags, "unit_system": self.units.value}
        out.update({f.flag_name: bool(self.flags & f.flag) for f in _FIELDS})
        out["multiple_packet_measurement"] = self.multiple_packet
        out["reserved_bits"] = self.reserved_bits
        return out

    def as_dict(self) -> dict[str, Any]:
        units = self.units
        out: dict[str, Any] = {"flags": self.flags_dict()}
        if self.body_fat is None:
            out["body_fat_measurement_unsuccessful"] = True
        else:
            out["body_fat_pct"] = self.body_fat
        if self.timestamp is not None:
            out.update(self.timestamp.as_dict("timestamp"))
        if self.user_id is not None:
            out.update(user_fields(self.user_id))
        if self.basal_metabolism is not None:
            out["basal_metabolism_kJ"] = self.basal_metabolism
            out["basal_metabolism_kcal_approx"] = round(self.basal_metabolism / KJ_PER_KCAL, 1)
        if self.muscle_percentage is not None:
            out["muscle_pct"] = self.muscle_percentage
        for name in ("muscle_mass", "fat_free_mass", "soft_lean_mass", "body_water_mass"):
            value = getattr(self, name)
            if value is not None:
                out.update(mass_fields(name, value, units))
        if self.impedance is not None:
            out["impedance_ohm"] = self.impedance
        if self.weight is not None:
            out.update(mass_fields("weight", self.weight, units))
        if self.height is not None:
            out.update(height_fields(self.height, units))
        return out


def decode_body_composition(data: bytes) -> BodyCompositionMeasurement:
    reader = FieldReader(data, "body composition measurement")
    flags = reader.u16("flags")
    units = unit_system_of(flags & FLAG_IMPERIAL)
    raw_fat = reader.u16("body fat")
    body_fat = None if raw_fat == MEASUREMENT_UNSUCCESSFUL else scaled(raw_fat, BODY_FAT_SCALE)
    values: dict[str, Any] = {}
    for spec in _FIELDS:
        if not flags & spec.flag:
            continue
        if spec.attr == "timestamp":
            values[spec.attr] = reader.date_time("time stamp")
        elif spec.attr == "user_id":
            values[spec.attr] = reader.u8("user id")
        else:
            assert spec.scale is not None
            values[spec.attr] = scaled(reader.u16(spec.attr), spec.scale(units))
    reader.finish()
    return BodyCompositionMeasurement(flags, body_fat, **values)


def encode_body_composition(record: BodyCompositionMeasurement) -> bytes:
    what = "body composition measurement"
    flags = record.flags
    writer = FieldWriter().u16(flags, "flags")
    units = record.units
    if record.body_fat is None:
        writer.u16(MEASUREMENT_UNSUCCESSFUL)
    else:
        raw = unscaled(record.body_fat, BODY_FAT_SCALE, "body fat")
        if raw >= MEASUREMENT_UNSUCCESSFUL:
            raise PayloadError(f"{what}: body fat {record.body_fat} is out of range")
        writer.u16(raw, "body fat")
    check_user_id(record.user_id, what)
    for spec in _FIELDS:
        value = getattr(record, spec.attr)
        check_presence(what, spec.attr, flags & spec.flag, value)
        if value is None:
            continue
        if spec.attr == "timestamp":
            write_timestamp(writer, value, what)
        elif spec.attr == "user_id":
            writer.u8(value, "user id")
        else:
            assert spec.scale is not None
            write_scaled(writer, value, spec.scale(units), spec.attr)
    return writer.bytes()


# -- multi-packet measurements ---------------------------------------------------------


def split_body_composition(
    record: BodyCompositionMeasurement,
    *,
    max_payload: int = ATT_DEFAULT_PAYLOAD,
    always: bool = False,
) -> list[BodyCompositionMeasurement]:
    """The packets a sensor sends for `record`: one if it fits `max_payload`, else two.

    Fields go to the first part in wire order while it has room, the rest to the second;
    both carry the flags' unit and reserved bits, bit 12 and the body fat. `always` splits
    a record that would fit, as some sensors do whatever the MTU (each part then holds
    about half the fields). Two packets are the most the profile describes, so a record
    that needs three is refused.
    """
    what = "body composition measurement"
    if record.multiple_packet:
        raise PayloadError(f"{what}: already one part of a multi-packet measurement")
    present = [spec for spec in _FIELDS if record.flags & spec.flag]
    sizes = [spec.size for spec in present]
    if _HEADER_SIZE + sum(sizes) <= max_payload and not always:
        return [record]
    if _HEADER_SIZE + sum(sizes) <= max_payload:
        cut = (len(present) + 1) // 2
    else:
        cut, used = 0, _HEADER_SIZE
        while cut < len(present) and used + sizes[cut] <= max_payload:
            used += sizes[cut]
            cut += 1
    if _HEADER_SIZE + sum(sizes[cut:]) > max_payload or (cut == 0 and present):
        raise PayloadError(f"{what}: does not fit two packets of {max_payload} bytes")
    common = (record.flags & (FLAG_IMPERIAL | FLAGS_RESERVED)) | FLAG_MULTIPLE_PACKET
    return [_part(record, present[:cut], common), _part(record, present[cut:], common)]


def _part(
    record: BodyCompositionMeasurement, keep: list[_Field], common: int
) -> BodyCompositionMeasurement:
    kept = {spec.attr for spec in keep}
    values = {
        spec.attr: getattr(record, spec.attr) if spec.attr in kept else None for spec in _FIELDS
    }
    flags = common | sum(spec.flag for spec in keep)
    return BodyCompositionMeasurement(flags, record.body_fat, **values)


def encode_body_composition_packets(
    record: BodyCompositionMeasurement,
    *,
    max_payload: int = ATT_DEFAULT_PAYLOAD,
    always: bool = False,
) -> list[bytes]:
    """`split_body_composition`, encoded: the indications an emulated scale sends."""
    parts = split_body_composition(record, max_payload=max_payload, always=always)
    return [encode_body_composition(part) for part in parts]


def merge_parts(
    first: BodyCompositionMeasurement, second: BodyCompositionMeasurement
) -> BodyCompositionMeasurement | None:
    """The union of two parts, or None when they cannot be one measurement.

    Parts belong together when both have bit 12 set, share the unit system and the
    repeated body fat, and agree on any field both carry. The merged record has bit 12
    clear: it is the single-packet form of the measurement.
    """
    if not (first.multiple_packet and second.multiple_packet):
        return None
    if first.units is not second.units or first.body_fat != second.body_fat:
        return None
    values: dict[str, Any] = {}
    for spec in _FIELDS:
        a, b = getattr(first, spec.attr), getattr(second, spec.attr)
        if a is not None and b is not None and a != b:
            return None
        values[spec.attr] = a if a is not None else b
    flags = (first.flags | second.flags) & ~FLAG_MULTIPLE_PACKET
    return BodyCompositionMeasurement(flags, first.body_fat, **values)


class BodyCompositionAssembler:
    """Joins multi-packet measurements; pure (no clock), the caller decides when to flush.

    `push` takes each decoded indication in arrival order and returns what is complete:
    * a packet without bit 12 passes straight through (after any part left waiting);
    * a first part (bit 12) waits for the next packet;
    * a second part that fits (`merge_parts`) completes it: one merged record;
    * anything else after a waiting part — a packet without bit 12, or a part with another
      body fat, unit or conflicting field — means the second part never came. The waiting
      part is returned on its own, bit 12 still set, so nothing is silently lost and the
      reader can see it is incomplete; a new part then starts waiting in its place.
    `flush` returns a part still waiting (at the end of a session or after a quiet spell).
    """

    def __init__(self) -> None:
        self._pending: BodyCompositionMeasurement | None = None

    @property
    def pending(self) -> BodyCompositionMeasurement | None:
        return self._pending

    def push(self, record: BodyCompositionMeasurement) -> list[BodyCompositionMeasurement]:
        pending = self._pending
        if not record.multiple_packet:
            self._pending = None
            return [pending, record] if pending is not None else [record]
        if pending is None:
            self._pending = record
            return []
        merged = merge_parts(pending, record)
        if merged is not None:
            self._pending = None
            return [merged]
        self._pending = record
        return [pending]

    def flush(self) -> list[BodyCompositionMeasurement]:
        pending, self._pending = self._pending, None
        return [pending] if pending is not None else []


# -- 0x2A9B Body Composition Feature ---------------------------------------------------

_FEATURE_BITS: Final = (
    (0, "timestamp_supported"),
    (1, "multiple_users_supported"),
    (2, "basal_metabolism_supported"),
    (3, "muscle_percentage_supported"),
    (4, "muscle_mass_supported"),
    (5, "fat_free_mass_supported"),
    (6, "soft_lean_mass_supported"),
    (7, "body_water_mass_supported"),
    (8, "impedance_supported"),
    (9, "weight_supported"),
    (10, "height_supported"),
)
_FEATURE_MASS_RESOLUTION_SHIFT: Final = 11
_FEATURE_HEIGHT_RESOLUTION_SHIFT: Final = 15
FEATURE_RESERVED: Final = 0xFFFC0000


@dataclass(frozen=True, slots=True)
class BodyCompositionFeature:
    raw: int

    @classmethod
    def build(
        cls,
        supported: set[str] | frozenset[str] = frozenset(),
        *,
        mass_resolution: int = 0,
        height_resolution: int = 0,
    ) -> BodyCompositionFeature:
        """`supported` names bits as in `as_dict` ("impedance_supported", ...)."""
        names = {name: bit for bit, name in _FEATURE_BITS}
        unknown = set(supported) - set(names)
        if unknown:
            raise PayloadError(f"body composition feature: unknown bits {sorted(unknown)}")
        if not 0 <= mass_resolution <= 0x0F or not 0 <= height_resolution <= 0x07:
            raise PayloadError("body composition feature: resolution code out of range")
        raw = sum(1 << names[name] for name in supported)
        raw |= mass_resolution << _FEATURE_MASS_RESOLUTION_SHIFT
        raw |= height_resolution << _FEATURE_HEIGHT_RESOLUTION_SHIFT
        return cls(raw)

    def supports(self, name: str) -> bool:
        return any(self.raw & (1 << bit) for bit, known in _FEATURE_BITS if known == name)

    @property
    def mass_resolution(self) -> int:
        return (self.raw >> _FEATURE_MASS_RESOLUTION_SHIFT) & 0x0F

    @property
    def height_resolution(self) -> int:
        return (self.raw >> _FEATURE_HEIGHT_RESOLUTION_SHIFT) & 0x07

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"raw": self.raw}
        out.update({name: bool(self.raw & (1 << bit)) for bit, name in _FEATURE_BITS})
        out["mass_resolution"] = mass_resolution_fields(self.mass_resolution)
        out["height_resolution"] = height_resolution_fields(self.height_resolution)
        out["reserved_bits"] = self.raw & FEATURE_RESERVED
        return out


def decode_body_composition_feature(data: bytes) -> BodyCompositionFeature:
    reader = FieldReader(data, "body composition feature")
    raw = reader.u32("features")
    reader.finish()
    return BodyCompositionFeature(raw)


def encode_body_composition_feature(feature: BodyCompositionFeature) -> bytes:
    return FieldWriter().u32(feature.raw, "body composition feature").bytes()


# -- one step on the scale → Measurement -----------------------------------------------


def to_measurement(
    weight: WeightMeasurement | None = None,
    body_composition: BodyCompositionMeasurement | None = None,
) -> Measurement | None:
    """One measurement event from a weight and a body composition of the same step-on.

    Either may be missing. Weight and height come from 0x2A9D, or from 0x2A9C's own fields
    when the scale sent no (successful) weight measurement; "measurement unsuccessful" and
    absent fields give no observation, and a record with no observation at all gives None.
    Masses arrive in kg or lb, heights in m or in, basal metabolism in kJ: `Observation.of`
    converts them to kg, m and kcal/d. Fat-free and soft-lean mass and muscle percentage
    have no metric and go to `details`. The kind is BODY_COMPOSITION_SCALE whenever a body
    composition record was given, successful or not: it says what the device measured.
    """
    if weight is None and body_composition is None:
        return None
    w, bc = weight, body_composition
    observations: list[Observation] = []
    details: dict[str, Any] = {}

    def add(metric: Metric, value: float | None, unit: str) -> None:
        if value is not None:
            observations.append(Observation.of(metric, value, unit))

    if w is not None and w.weight is not None:
        add(Metric.WEIGHT, w.weight, w.units.mass_unit)
    elif bc is not None and bc.weight is not None:
        add(Metric.WEIGHT, bc.weight, bc.units.mass_unit)
    if w is not None:
        add(Metric.BMI, w.bmi, "kg/m2")
    if w is not None and w.height is not None:
        add(Metric.HEIGHT, w.height, w.units.length_unit)
    elif bc is not None and bc.height is not None:
        add(Metric.HEIGHT, bc.height, bc.units.length_unit)
    if w is not None:
        details["weight_unit_system"] = w.units.value
        if not w.successful:
            details["weight_measurement_unsuccessful"] = True
    if bc is not None:
        mass_unit = bc.units.mass_unit
        add(Metric.BODY_FAT, bc.body_fat, "%")
        add(Metric.MUSCLE_MASS, bc.muscle_mass, mass_unit)
        add(Metric.BODY_WATER, bc.body_water_mass, mass_unit)
        add(Metric.BASAL_METABOLISM, bc.basal_metabolism, "kJ")
        add(Metric.IMPEDANCE, bc.impedance, "Ohm")
        details["body_composition_unit_system"] = bc.units.value
        if not bc.successful:
            details["body_fat_measurement_unsuccessful"] = True
        if bc.multiple_packet:
            details["multi_packet_incomplete"] = True
        if bc.muscle_percentage is not None:
            details["muscle_pct"] = bc.muscle_percentage
        for name in ("fat_free_mass", "soft_lean_mass"):
            value = getattr(bc, name)
            if value is not None:
                details[f"{name}_kg"] = to_canonical(Metric.WEIGHT, value, mass_unit)
    if not observations:
        return None

    stamps = [r.timestamp for r in (w, bc) if r is not None and r.timestamp is not None]
    moments = [stamp.moment for stamp in stamps if stamp.moment is not None]
    users = [r.user_id for r in (w, bc) if r is not None and r.user_id is not None]
    user = users[0] if users and users[0] != USER_UNKNOWN else None
    return Measurement(
        kind=DeviceKind.BODY_COMPOSITION_SCALE if bc is not None else DeviceKind.WEIGHT_SCALE,
        observations=tuple(observations),
        device_time=moments[0] if moments else None,
        clock_set=bool(moments) or not stamps,
        context=MeasurementContext(device_user_index=user),
        details=details,
    )


def same_step_on(weight: WeightMeasurement, body_composition: BodyCompositionMeasurement) -> bool:
    """Whether the two records' own fields allow them to be one step-on.

    Trusted time stamps must be equal and user ids (when both are sent) must match; when
    either time is missing or unknown, only arrival timing can tell, which is the caller's.
    """
    a = weight.timestamp.moment if weight.timestamp is not None else None
    b = body_composition.timestamp.moment if body_composition.timestamp is not None else None
    if a is not None and b is not None and a != b:
        return False
    if weight.user_id is not None and body_composition.user_id is not None:
        return weight.user_id == body_composition.user_id
    return True


def has_trusted_time(record: WeightMeasurement | BodyCompositionMeasurement) -> bool:
    return record.timestamp is not None and record.timestamp.moment is not None


__all__ = [
    "ATT_DEFAULT_PAYLOAD",
    "BodyCompositionAssembler",
    "BodyCompositionFeature",
    "BodyCompositionMeasurement",
    "decode_body_composition",
    "decode_body_composition_feature",
    "encode_body_composition",
    "encode_body_composition_feature",
    "encode_body_composition_packets",
    "has_trusted_time",
    "merge_parts",
    "same_step_on",
    "split_body_composition",
    "to_measurement",
]
