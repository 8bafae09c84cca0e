"""Xiaomi scales that broadcast their readings: Mi Body Composition Scale 2 and Mi Scale v1.

Neither is a SIG scale although both reuse SIG UUIDs: the MIBCS puts 13 bytes of its own
layout in service data under 0x181B, the v1 scale 10 bytes under 0x181D. They are matched
by UUID *and* length and never handed to the SIG 0x2A9C/0x2A9D decoders.

* MIBCS (13 B): `ctrl0 | ctrl1 | Date Time(7) | impedance u16 Ω | weight u16`;
  ctrl0 b0 pounds; ctrl1 b1 impedance present, b5 weight stabilized, b6 jin, b7 load removed.
* Mi Scale v1 (10 B): `ctrl | weight u16 | Date Time(7)`; ctrl b0 pounds, b4 jin,
  b5 stabilized, b7 load removed.
* Weight: kg = raw / 200, lb and jin = raw / 100. Pounds win over jin when both bits are
  set, as in xiaomi-ble.

Which advertisement is a reading (`to_measurement`): a stabilized weight with the load still
on. While the user steps on, the scale broadcasts settling weights (not stabilized); once
stable it repeats the same frame many times a second, the MIBCS adding the impedance a few
seconds later; after the user steps off it repeats the last frame with "load removed".
Settling and load-removed frames give None; a zero weight (nothing on the plate) too.
Every repeat of a stable frame maps to the same Measurement, whose record key is the frame's
time stamp, so the edge's reading ids collapse the repeats; the MIBCS frame that adds the
impedance has the same time stamp, so its weight is the same reading again and the impedance
joins it. `AdvertisementScaleDriver` also drops exact repeats within a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final

from device_drivers import uuids
from device_drivers.codec.weight_scale import timestamp_field
from device_drivers.codec.wire import DateTimeField, FieldReader, FieldWriter, scaled, unscaled
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from device_drivers.scale import AdvertisementScaleDriver
from device_drivers.vendors import AdvertisedModel, AdvertisementPlugin
from protocols.metrics import Metric
from protocols.reading import DeviceKind
from protocols.units import KG_PER_JIN, KG_PER_LB

MIBCS_SERVICE_DATA_UUID: Final = uuids.BODY_COMPOSITION_SERVICE
MIBCS_LENGTH: Final = 13
MISCALE_V1_SERVICE_DATA_UUID: Final = uuids.WEIGHT_SCALE_SERVICE
MISCALE_V1_LENGTH: Final = 10

KG_SCALE: Final = "0.005"
LB_JIN_SCALE: Final = "0.01"

# MIBCS control bytes
MIBCS_POUNDS: Final = 0x01  # ctrl0
MIBCS_IMPEDANCE: Final = 0x02  # ctrl1
MIBCS_STABILIZED: Final = 0x20
MIBCS_JIN: Final = 0x40
MIBCS_LOAD_REMOVED: Final = 0x80
# Bits every captured frame has set and no decoder gives a meaning: kept, and set by `build`.
MIBCS_CTRL0_USUAL: Final = 0x02
MIBCS_CTRL1_USUAL: Final = 0x04

# Mi Scale v1 control byte
V1_POUNDS: Final = 0x01
V1_JIN: Final = 0x10
V1_STABILIZED: Final = 0x20
V1_LOAD_REMOVED: Final = 0x80
V1_CTRL_USUAL: Final = 0x02


class ScaleUnit(StrEnum):
    KG = "kg"
    LB = "lb"
    JIN = "jin"

    @property
    def ucum(self) -> str:
        """The unit as `protocols.units` spells it."""
        return {"kg": "kg", "lb": "[lb_av]", "jin": "jin"}[self.value]

    @property
    def scale(self) -> str:
        return KG_SCALE if self is ScaleUnit.KG else LB_JIN_SCALE


def _unit(pounds: bool, jin: bool) -> ScaleUnit:
    if pounds:
        return ScaleUnit.LB
    return ScaleUnit.JIN if jin else ScaleUnit.KG


def _weight_fields(weight: float, unit: ScaleUnit) -> dict[str, Any]:
    if unit is ScaleUnit.KG:
        return {"weight_kg": weight}
    per_kg = KG_PER_LB if unit is ScaleUnit.LB else KG_PER_JIN
    return {f"weight_{unit.value}": weight, "weight_kg_approx": round(weight * per_kg, 3)}


def _unit_bits(unit: ScaleUnit, pounds: int, jin: int) -> int:
    return {ScaleUnit.KG: 0, ScaleUnit.LB: pounds, ScaleUnit.JIN: jin}[unit]


def _stamp(moment: datetime | DateTimeField) -> DateTimeField:
    stamp = timestamp_field(moment)
    assert stamp is not None
    return stamp


@dataclass(frozen=True, slots=True)
class MiBodyCompositionAdvertisement:
    """The 13-byte MIBCS frame, every byte kept (impedance bytes even when not present)."""

    control0: int
    control1: int
    timestamp: DateTimeField
    impedance_raw: int
    weight_raw: int

    @classmethod
    def build(
        cls,
        weight: float,
        *,
        unit: ScaleUnit = ScaleUnit.KG,
        impedance: int | None = None,
        stabilized: bool = True,
        load_removed: bool = False,
        timestamp: datetime | DateTimeField,
    ) -> MiBodyCompositionAdvertisement:
        control0 = MIBCS_CTRL0_USUAL | (MIBCS_POUNDS if unit is ScaleUnit.LB else 0)
        control1 = (
            MIBCS_CTRL1_USUAL
            | (MIBCS_JIN if unit is ScaleUnit.JIN else 0)
            | (MIBCS_IMPEDANCE if impedance is not None else 0)
            | (MIBCS_STABILIZED if stabilized else 0)
            | (MIBCS_LOAD_REMOVED if load_removed else 0)
        )
        return cls(
            control0,
            control1,
            _stamp(timestamp),
            impedance or 0,
            unscaled(weight, unit.scale, "weight"),
        )

    @property
    def unit(self) -> ScaleUnit:
        return _unit(bool(self.control0 & MIBCS_POUNDS), bool(self.control1 & MIBCS_JIN))

    @property
    def impedance_present(self) -> bool:
        return bool(self.control1 & MIBCS_IMPEDANCE)

    @property
    def stabilized(self) -> bool:
        return bool(self.control1 & MIBCS_STABILIZED)

    @property
    def load_removed(self) -> bool:
        return bool(self.control1 & MIBCS_LOAD_REMOVED)

    @property
    def weight(self) -> float:
        """In `unit`."""
        return scaled(self.weight_raw, self.unit.scale)

    @property
    def impedance(self) -> float | None:
        """Ω, once the scale has measured it (bare feet on the electrodes)."""
        return float(self.impedance_raw) if self.impedance_present else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "control": {
                "byte0": self.control0,
                "byte1": self.control1,
                "unit": self.unit.value,
                "impedance_present": self.impedance_present,
                "stabilized": self.stabilized,
                "load_removed": self.load_removed,
            }
        }
        out.update(self.timestamp.as_dict("timestamp"))
        if self.impedance is not None:
            out["impedance_ohm"] = self.impedance
        out.update(_weight_fields(self.weight, self.unit))
        return out


@dataclass(frozen=True, slots=True)
class MiScaleV1Advertisement:
    """The 10-byte Mi Scale v1 frame."""

    control: int
    weight_raw: int
    timestamp: DateTimeField

    @classmethod
    def build(
        cls,
        weight: float,
        *,
        unit: ScaleUnit = ScaleUnit.KG,
        stabilized: bool = True,
        load_removed: bool = False,
        timestamp: datetime | DateTimeField,
    ) -> MiScaleV1Advertisement:
        control = (
            V1_CTRL_USUAL
            | _unit_bits(unit, V1_POUNDS, V1_JIN)
            | (V1_STABILIZED if stabilized else 0)
            | (V1_LOAD_REMOVED if load_removed else 0)
        )
        return cls(control, unscaled(weight, unit.scale, "weight"), _stamp(timestamp))

    @property
    def unit(self) -> ScaleUnit:
        return _unit(bool(self.control & V1_POUNDS), bool(self.control & V1_JIN))

    @property
    def stabilized(self) -> bool:
        return bool(self.control & V1_STABILIZED)

    @property
    def load_removed(self) -> bool:
        return bool(self.control & V1_LOAD_REMOVED)

    @property
    def weight(self) -> float:
        return scaled(self.weight_raw, self.unit.scale)

    @property
    def impedance(self) -> float | None:
        return None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "control": {
                "byte0": self.control,
                "unit": self.unit.value,
                "stabilized": self.stabilized,
                "load_removed": self.load_removed,
            }
        }
        out.update(self.timestamp.as_dict("timestamp"))
        out.update(_weight_fields(self.weight, self.unit))
        return out


XiaomiAdvertisement = MiBodyCompositionAdvertisement | MiScaleV1Advertisement


def decode_mibcs(data: bytes) -> MiBodyCompositionAdvertisement:
    reader = FieldReader(data, "Mi Body Composition Scale advertisement")
    control0 = reader.u8("control byte 0")
    control1 = reader.u8("control byte 1")
    stamp = reader.date_time("time stamp")
    impedance = reader.u16("impedance")
    weight = reader.u16("weight")
    reader.finish()
    return MiBodyCompositionAdvertisement(control0, control1, stamp, impedance, weight)


def encode_mibcs(frame: MiBodyCompositionAdvertisement) -> bytes:
    return (
        FieldWriter()
        .u8(frame.control0, "control byte 0")
        .u8(frame.control1, "control byte 1")
        .raw(_stamp_bytes(frame.timestamp))
        .u16(frame.impedance_raw, "impedance")
        .u16(frame.weight_raw, "weight")
        .bytes()
    )


def decode_miscale_v1(data: bytes) -> MiScaleV1Advertisement:
    reader = FieldReader(data, "Mi Scale advertisement")
    control = reader.u8("control byte")
    weight = reader.u16("weight")
    stamp = reader.date_time("time stamp")
    reader.finish()
    return MiScaleV1Advertisement(control, weight, stamp)


def encode_miscale_v1(frame: MiScaleV1Advertisement) -> bytes:
    return (
        FieldWriter()
        .u8(frame.control, "control byte")
        .u16(frame.weight_raw, "weight")
        .raw(_stamp_bytes(frame.timestamp))
        .bytes()
    )


def _stamp_bytes(stamp: DateTimeField) -> bytes:
    if len(stamp.raw) != 7:
        raise PayloadError(f"a time stamp is 7 bytes, got {len(stamp.raw)}")
    return stamp.raw


def decode_frame(source: str, data: bytes) -> XiaomiAdvertisement:
    """The frame under service-data UUID `source`; PayloadError for anything else."""
    uuid = source.lower()
    if uuid == MIBCS_SERVICE_DATA_UUID:
        return decode_mibcs(data)
    if uuid == MISCALE_V1_SERVICE_DATA_UUID:
        return decode_miscale_v1(data)
    raise PayloadError(f"{source} carries no Xiaomi scale advertisement", data)


def to_measurement(frame: XiaomiAdvertisement) -> Measurement | None:
    """A reading for a stabilized, non-zero weight with the load still on; else None."""
    if not frame.stabilized or frame.load_removed or frame.weight_raw == 0:
        return None
    observations = [Observation.of(Metric.WEIGHT, frame.weight, frame.unit.ucum)]
    if frame.impedance is not None:
        observations.append(Observation.of(Metric.IMPEDANCE, frame.impedance, "Ohm"))
    mibcs = isinstance(frame, MiBodyCompositionAdvertisement)
    moment = frame.timestamp.moment
    return Measurement(
        kind=DeviceKind.BODY_COMPOSITION_SCALE if mibcs else DeviceKind.WEIGHT_SCALE,
        observations=tuple(observations),
        device_time=moment,
        # The scale's clock is whatever the Mi app last set (1970 if never): a time it
        # sends is kept as the record's key and left to the edge's clock rules.
        clock_set=moment is not None,
        details={
            "protocol": "xiaomi_mibcs" if mibcs else "xiaomi_miscale_v1",
            "unit": frame.unit.value,
        },
    )


def decode_advertisement(source: str, data: bytes) -> Measurement | None:
    """The plugin entry point: bytes of one advertisement → a reading to keep, or None."""
    return to_measurement(decode_frame(source, data))


# How each format is recognised, and its device kind, come from catalogue.json: one place.
PLUGIN: Final = AdvertisementPlugin(
    name="xiaomi_scale",
    models=(
        AdvertisedModel.from_catalogue("xiaomi-mibcs2", manufacturer="Xiaomi", model="XMTZC05HM"),
        AdvertisedModel.from_catalogue("xiaomi-miscale1", manufacturer="Xiaomi", model="XMTZC01HM"),
    ),
    decode_advertisement=decode_advertisement,
)


class XiaomiScaleDriver(AdvertisementScaleDriver):
    """`AdvertisementScaleDriver` for the Xiaomi plugin (the catalogue's driver for both)."""

    kind: ClassVar[DeviceKind] = DeviceKind.BODY_COMPOSITION_SCALE
    plugin: ClassVar[AdvertisementPlugin] = PLUGIN
