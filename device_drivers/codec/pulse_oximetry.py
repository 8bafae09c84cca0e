"""Pulse Oximeter Service (0x1822, PLXS): Spot-check 0x2A5E, Continuous 0x2A5F, Features 0x2A60.

Decoders turn a characteristic value into a frozen record that keeps every field as the
device sent it (SFLOAT mantissa and exponent, reserved bits, unknown timestamps), so the
encoders are the exact inverse and the emulated oximeter can speak the same bytes.
`to_measurement` is the one place where PLXS status words become `StatusFlag`s and where a
record that is no patient's final reading is held back; the policy is written out there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from device_drivers.codec.wire import (
    DateTimeField,
    FieldReader,
    FieldWriter,
    MedFloat,
    Special,
    decode_date_time_bytes,
    encode_date_time,
    sfloat_word_of,
)
from device_drivers.errors import PayloadError
from device_drivers.measurement import Measurement, Observation
from protocols.metrics import Metric
from protocols.reading import DeviceKind, StatusFlag

SPO2_UNIT: Final = "%"
PULSE_RATE_UNIT: Final = "/min"

# -- status words shared by 0x2A5E, 0x2A5F and 0x2A60 ---------------------------------

MEASUREMENT_STATUS_BITS: Final[tuple[tuple[int, str], ...]] = (
    (5, "measurement_ongoing"),
    (6, "early_estimated_data"),
    (7, "validated_data"),
    (8, "fully_qualified_data"),
    (9, "data_from_measurement_storage"),
    (10, "data_for_demonstration"),
    (11, "data_for_testing"),
    (12, "calibration_ongoing"),
    (13, "measurement_unavailable"),
    (14, "questionable_measurement_detected"),
    (15, "invalid_measurement_detected"),
)
MEASUREMENT_STATUS_RESERVED: Final = 0x001F

DEVICE_SENSOR_STATUS_BITS: Final[tuple[tuple[int, str], ...]] = (
    (0, "extended_display_update_ongoing"),
    (1, "equipment_malfunction_detected"),
    (2, "signal_processing_irregularity_detected"),
    (3, "inadequate_signal_detected"),
    (4, "poor_signal_detected"),
    (5, "low_perfusion_detected"),
    (6, "erratic_signal_detected"),
    (7, "nonpulsatile_signal_detected"),
    (8, "questionable_pulse_detected"),
    (9, "signal_analysis_ongoing"),
    (10, "sensor_interference_detected"),
    (11, "sensor_unconnected_to_user"),
    (12, "unknown_sensor_connected"),
    (13, "sensor_displaced"),
    (14, "sensor_malfunctioning"),
    (15, "sensor_disconnected"),
)
DEVICE_SENSOR_STATUS_RESERVED: Final = 0xFF0000

FEATURE_BITS: Final[tuple[tuple[int, str], ...]] = (
    (0, "measurement_status_support"),
    (1, "device_sensor_status_support"),
    (2, "spot_check_measurement_storage"),
    (3, "spot_check_timestamp"),
    (4, "spo2pr_fast"),
    (5, "spo2pr_slow"),
    (6, "pulse_amplitude_index"),
    (7, "multiple_bonds"),
)
FEATURES_RESERVED: Final = 0xFF00
FEATURE_MEASUREMENT_STATUS: Final = 1 << 0
FEATURE_DEVICE_SENSOR_STATUS: Final = 1 << 1
FEATURE_SPOT_CHECK_STORAGE: Final = 1 << 2
FEATURE_SPOT_CHECK_TIMESTAMP: Final = 1 << 3
FEATURE_FAST: Final = 1 << 4
FEATURE_SLOW: Final = 1 << 5
FEATURE_PAI: Final = 1 << 6
FEATURE_MULTIPLE_BONDS: Final = 1 << 7

# Flags of 0x2A5E.
_SPOT_TIMESTAMP: Final = 0x01
_SPOT_STATUS: Final = 0x02
_SPOT_DSS: Final = 0x04
_SPOT_PAI: Final = 0x08
_SPOT_CLOCK_NOT_SET: Final = 0x10
# Flags of 0x2A5F.
_CONT_FAST: Final = 0x01
_CONT_SLOW: Final = 0x02
_CONT_STATUS: Final = 0x04
_CONT_DSS: Final = 0x08
_CONT_PAI: Final = 0x10
_RESERVED_FLAGS: Final = 0xE0


def _bit_dict(raw: int, bits: tuple[tuple[int, str], ...], reserved: int) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": raw}
    out.update({name: bool(raw >> bit & 1) for bit, name in bits})
    out["reserved_bits"] = raw & reserved
    return out


def _set_names(raw: int, bits: tuple[tuple[int, str], ...]) -> list[str]:
    return [name for bit, name in bits if raw >> bit & 1]


@dataclass(frozen=True, slots=True)
class MeasurementStatus:
    """The u16 Measurement Status (bits 0-4 reserved); also the support mask in 0x2A60."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFF:
            raise PayloadError(f"measurement status {self.raw} does not fit in 16 bits")

    @property
    def names(self) -> list[str]:
        """The defined bits that are set, in bit order."""
        return _set_names(self.raw, MEASUREMENT_STATUS_BITS)

    def as_dict(self) -> dict[str, Any]:
        return _bit_dict(self.raw, MEASUREMENT_STATUS_BITS, MEASUREMENT_STATUS_RESERVED)


@dataclass(frozen=True, slots=True)
class DeviceSensorStatus:
    """The u24 Device and Sensor Status (bits 16-23 reserved); also the 0x2A60 support mask."""

    raw: int

    def __post_init__(self) -> None:
        if not 0 <= self.raw <= 0xFFFFFF:
            raise PayloadError(f"device and sensor status {self.raw} does not fit in 24 bits")

    @property
    def names(self) -> list[str]:
        return _set_names(self.raw, DEVICE_SENSOR_STATUS_BITS)

    def as_dict(self) -> dict[str, Any]:
        return _bit_dict(self.raw, DEVICE_SENSOR_STATUS_BITS, DEVICE_SENSOR_STATUS_RESERVED)


# -- field helpers ---------------------------------------------------------------------


def _write_sfloat(writer: FieldWriter, value: MedFloat) -> None:
    writer.u16(sfloat_word_of(value))


def _json_value(value: MedFloat) -> float | str:
    if value.special is not None:
        return value.special.value
    assert value.value is not None  # a MedFloat is a number or a special
    return value.value


def sfloat(value: float | Special) -> MedFloat:
    """A value for a record built by hand (emulators, tests)."""
    if isinstance(value, Special):
        return MedFloat.of(value)
    return MedFloat.number(float(value))


def _write_timestamp(writer: FieldWriter, stamp: DateTimeField) -> None:
    if stamp.moment is not None:
        writer.raw(encode_date_time(stamp.moment))
    elif len(stamp.raw) == 7:
        writer.raw(stamp.raw)
    else:
        writer.raw(encode_date_time(None))


def timestamp(moment: datetime | None) -> DateTimeField:
    """A timestamp field for a record built by hand; None is the all-zero "unknown" time."""
    return decode_date_time_bytes(encode_date_time(moment))


def _check_reserved(reserved: int) -> None:
    if reserved & ~_RESERVED_FLAGS:
        raise PayloadError(f"reserved flag bits {reserved:#x} overlap defined flags")


# -- 0x2A5E PLX Spot-check Measurement -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpotCheckMeasurement:
    """One spot-check. Optional fields are None when their flag bit is clear; the flags
    byte is derived from them, so a record cannot disagree with its own flags."""

    spo2: MedFloat
    pulse_rate: MedFloat
    timestamp: DateTimeField | None = None
    measurement_status: MeasurementStatus | None = None
    device_sensor_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: MedFloat | None = None
    device_clock_not_set: bool = False
    """Flag bit 4, which has no field: the timestamp (if any) is not to be trusted."""
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        _check_reserved(self.reserved_flags)

    @property
    def flags(self) -> int:
        return (
            (_SPOT_TIMESTAMP if self.timestamp is not None else 0)
            | (_SPOT_STATUS if self.measurement_status is not None else 0)
            | (_SPOT_DSS if self.device_sensor_status is not None else 0)
            | (_SPOT_PAI if self.pulse_amplitude_index is not None else 0)
            | (_SPOT_CLOCK_NOT_SET if self.device_clock_not_set else 0)
            | self.reserved_flags
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flags": {
                "raw": self.flags,
                "timestamp_present": self.timestamp is not None,
                "measurement_status_present": self.measurement_status is not None,
                "device_sensor_status_present": self.device_sensor_status is not None,
                "pulse_amplitude_index_present": self.pulse_amplitude_index is not None,
                "device_clock_not_set": self.device_clock_not_set,
                "reserved_bits": self.reserved_flags,
            },
            "spo2_pct": _json_value(self.spo2),
            "pulse_rate_bpm": _json_value(self.pulse_rate),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.as_dict("timestamp"))
        if self.measurement_status is not None:
            out["measurement_status"] = self.measurement_status.as_dict()
        if self.device_sensor_status is not None:
            out["device_sensor_status"] = self.device_sensor_status.as_dict()
        if self.pulse_amplitude_index is not None:
            out["pulse_amplitude_index_pct"] = _json_value(self.pulse_amplitude_index)
        return out


def decode_spot_check(data: bytes) -> SpotCheckMeasurement:
    reader = FieldReader(data, "PLX spot-check measurement")
    flags = reader.u8("flags")
    spo2 = reader.sfloat("SpO2")
    pulse = reader.sfloat("pulse rate")
    stamp = reader.date_time("timestamp") if flags & _SPOT_TIMESTAMP else None
    status = MeasurementStatus(reader.u16("measurement status")) if flags & _SPOT_STATUS else None
    dss = DeviceSensorStatus(reader.u24("device and sensor status")) if flags & _SPOT_DSS else None
    pai = reader.sfloat("pulse amplitude index") if flags & _SPOT_PAI else None
    reader.finish()
    return SpotCheckMeasurement(
        spo2=spo2,
        pulse_rate=pulse,
        timestamp=stamp,
        measurement_status=status,
        device_sensor_status=dss,
        pulse_amplitude_index=pai,
        device_clock_not_set=bool(flags & _SPOT_CLOCK_NOT_SET),
        reserved_flags=flags & _RESERVED_FLAGS,
    )


def encode_spot_check(record: SpotCheckMeasurement) -> bytes:
    writer = FieldWriter().u8(record.flags, "flags")
    _write_sfloat(writer, record.spo2)
    _write_sfloat(writer, record.pulse_rate)
    if record.timestamp is not None:
        _write_timestamp(writer, record.timestamp)
    if record.measurement_status is not None:
        writer.u16(record.measurement_status.raw, "measurement status")
    if record.device_sensor_status is not None:
        writer.u24(record.device_sensor_status.raw, "device and sensor status")
    if record.pulse_amplitude_index is not None:
        _write_sfloat(writer, record.pulse_amplitude_index)
    return writer.bytes()


# -- 0x2A5F PLX Continuous Measurement -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpO2PR:
    """One SpO2 / pulse-rate pair (Normal, Fast or Slow averaging)."""

    spo2: MedFloat
    pulse_rate: MedFloat


@dataclass(frozen=True, slots=True)
class ContinuousMeasurement:
    """One continuous update; `normal` is mandatory, the rest follow the flag bits."""

    normal: SpO2PR
    fast: SpO2PR | None = None
    slow: SpO2PR | None = None
    measurement_status: MeasurementStatus | None = None
    device_sensor_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: MedFloat | None = None
    reserved_flags: int = 0

    def __post_init__(self) -> None:
        _check_reserved(self.reserved_flags)

    @property
    def flags(self) -> int:
        return (
            (_CONT_FAST if self.fast is not None else 0)
            | (_CONT_SLOW if self.slow is not None else 0)
            | (_CONT_STATUS if self.measurement_status is not None else 0)
            | (_CONT_DSS if self.device_sensor_status is not None else 0)
            | (_CONT_PAI if self.pulse_amplitude_index is not None else 0)
            | self.reserved_flags
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flags": {
                "raw": self.flags,
                "spo2pr_fast_present": self.fast is not None,
                "spo2pr_slow_present": self.slow is not None,
                "measurement_status_present": self.measurement_status is not None,
                "device_sensor_status_present": self.device_sensor_status is not None,
                "pulse_amplitude_index_present": self.pulse_amplitude_index is not None,
                "reserved_bits": self.reserved_flags,
            },
            "spo2_normal_pct": _json_value(self.normal.spo2),
            "pulse_rate_normal_bpm": _json_value(self.normal.pulse_rate),
        }
        for name, pair in (("fast", self.fast), ("slow", self.slow)):
            if pair is not None:
                out[f"spo2_{name}_pct"] = _json_value(pair.spo2)
                out[f"pulse_rate_{name}_bpm"] = _json_value(pair.pulse_rate)
        if self.measurement_status is not None:
            out["measurement_status"] = self.measurement_status.as_dict()
        if self.device_sensor_status is not None:
            out["device_sensor_status"] = self.device_sensor_status.as_dict()
        if self.pulse_amplitude_index is not None:
            out["pulse_amplitude_index_pct"] = _json_value(self.pulse_amplitude_index)
        return out


def _read_pair(reader: FieldReader, name: str) -> SpO2PR:
    return SpO2PR(reader.sfloat(f"SpO2 {name}"), reader.sfloat(f"pulse rate {name}"))


def decode_continuous(data: bytes) -> ContinuousMeasurement:
    reader = FieldReader(data, "PLX continuous measurement")
    flags = reader.u8("flags")
    normal = _read_pair(reader, "normal")
    fast = _read_pair(reader, "fast") if flags & _CONT_FAST else None
    slow = _read_pair(reader, "slow") if flags & _CONT_SLOW else None
    status = MeasurementStatus(reader.u16("measurement status")) if flags & _CONT_STATUS else None
    dss = DeviceSensorStatus(reader.u24("device and sensor status")) if flags & _CONT_DSS else None
    pai = reader.sfloat("pulse amplitude index") if flags & _CONT_PAI else None
    reader.finish()
    return ContinuousMeasurement(
        normal=normal,
        fast=fast,
        slow=slow,
        measurement_status=status,
        device_sensor_status=dss,
        pulse_amplitude_index=pai,
        reserved_flags=flags & _RESERVED_FLAGS,
    )


def encode_continuous(record: ContinuousMeasurement) -> bytes:
    writer = FieldWriter().u8(record.flags, "flags")
    for pair in (record.normal, record.fast, record.slow):
        if pair is not None:
            _write_sfloat(writer, pair.spo2)
            _write_sfloat(writer, pair.pulse_rate)
    if record.measurement_status is not None:
        writer.u16(record.measurement_status.raw, "measurement status")
    if record.device_sensor_status is not None:
        writer.u24(record.device_sensor_status.raw, "device and sensor status")
    if record.pulse_amplitude_index is not None:
        _write_sfloat(writer, record.pulse_amplitude_index)
    return writer.bytes()


# -- 0x2A60 PLX Features ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """Supported features; bits 0 and 1 announce the two support masks that follow."""

    supported_features: int
    measurement_status_support: MeasurementStatus | None = None
    device_sensor_status_support: DeviceSensorStatus | None = None

    def __post_init__(self) -> None:
        raw = self.supported_features
        if not 0 <= raw <= 0xFFFF:
            raise PayloadError(f"PLX features {raw} does not fit in 16 bits")
        if bool(raw & FEATURE_MEASUREMENT_STATUS) != (self.measurement_status_support is not None):
            raise PayloadError("feature bit 0 and the measurement status support mask disagree")
        if bool(raw & FEATURE_DEVICE_SENSOR_STATUS) != (
            self.device_sensor_status_support is not None
        ):
            raise PayloadError("feature bit 1 and the device/sensor status support mask disagree")

    @classmethod
    def of(
        cls,
        features: int,
        *,
        measurement_status_support: int | None = None,
        device_sensor_status_support: int | None = None,
    ) -> PlxFeatures:
        """Features with bits 0 and 1 set from which support masks are given."""
        features &= ~(FEATURE_MEASUREMENT_STATUS | FEATURE_DEVICE_SENSOR_STATUS)
        ms = None
        dss = None
        if measurement_status_support is not None:
            features |= FEATURE_MEASUREMENT_STATUS
            ms = MeasurementStatus(measurement_status_support)
        if device_sensor_status_support is not None:
            features |= FEATURE_DEVICE_SENSOR_STATUS
            dss = DeviceSensorStatus(device_sensor_status_support)
        return cls(features, ms, dss)

    def supports(self, feature: int) -> bool:
        return bool(self.supported_features & feature)

    @property
    def spot_check_storage(self) -> bool:
        return self.supports(FEATURE_SPOT_CHECK_STORAGE)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "supported_features": _bit_dict(
                self.supported_features, FEATURE_BITS, FEATURES_RESERVED
            )
        }
        if self.measurement_status_support is not None:
            out["measurement_status_support"] = self.measurement_status_support.as_dict()
        if self.device_sensor_status_support is not None:
            out["device_sensor_status_support"] = self.device_sensor_status_support.as_dict()
        return out


def decode_features(data: bytes) -> PlxFeatures:
    reader = FieldReader(data, "PLX features")
    raw = reader.u16("supported features")
    ms = (
        MeasurementStatus(reader.u16("measurement status support"))
        if raw & FEATURE_MEASUREMENT_STATUS
        else None
    )
    dss = (
        DeviceSensorStatus(reader.u24("device and sensor status support"))
        if raw & FEATURE_DEVICE_SENSOR_STATUS
        else None
    )
    reader.finish()
    return PlxFeatures(raw, ms, dss)


def encode_features(features: PlxFeatures) -> bytes:
    writer = FieldWriter().u16(features.supported_features, "supported features")
    if features.measurement_status_support is not None:
        writer.u16(features.measurement_status_support.raw, "measurement status support")
    if features.device_sensor_status_support is not None:
        writer.u24(features.device_sensor_status_support.raw, "device and sensor status support")
    return writer.bytes()


# -- to Measurement --------------------------------------------------------------------

# Measurement-status bits after which the record is not a patient's reading at all: a
# demonstration or test value must never reach a case manager's queue as a desaturation.
_NOT_A_PATIENT_READING: Final = (
    "data_for_demonstration",
    "data_for_testing",
    "measurement_unavailable",
)
# The value is real but not final (still settling, or the device is calibrating): it is
# kept, and flagged so that no rule treats it as a confirmed value. For a continuous
# stream "measurement ongoing" is the normal state, so it only counts for spot-checks.
_PROVISIONAL: Final = ("early_estimated_data", "calibration_ongoing")
_QUESTIONABLE_STATUS: Final = (
    "questionable_measurement_detected",
    "invalid_measurement_detected",
)
# Device & Sensor Status. The oximeter's own failure is DEVICE_ERROR; a probe that is
# off the finger, unknown or broken is SENSOR_FAULT (the patient can re-seat or replace
# it); whatever says the pleth signal was bad is SIGNAL_QUESTIONABLE.
_DSS_FLAGS: Final[dict[str, StatusFlag]] = {
    "equipment_malfunction_detected": StatusFlag.DEVICE_ERROR,
    "signal_processing_irregularity_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "inadequate_signal_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "poor_signal_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "low_perfusion_detected": StatusFlag.LOW_PERFUSION,
    "erratic_signal_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "nonpulsatile_signal_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "questionable_pulse_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "sensor_interference_detected": StatusFlag.SIGNAL_QUESTIONABLE,
    "sensor_unconnected_to_user": StatusFlag.SENSOR_FAULT,
    "unknown_sensor_connected": StatusFlag.SENSOR_FAULT,
    "sensor_displaced": StatusFlag.SENSOR_FAULT,
    "sensor_malfunctioning": StatusFlag.SENSOR_FAULT,
    "sensor_disconnected": StatusFlag.SENSOR_FAULT,
}


@dataclass(slots=True)
class _Mapped:
    observations: list[Observation] = field(default_factory=list)
    flags: set[StatusFlag] = field(default_factory=set)
    details: dict[str, Any] = field(default_factory=dict)


def _observe(out: _Mapped, spo2: MedFloat, pulse: MedFloat) -> None:
    # Any special (NaN, NRes, ±INF, Reserved) means the device has no number for that
    # field; a Reading needs one, so the special goes to details and no observation is made.
    unavailable: dict[str, str] = {}
    if spo2.value is not None:
        out.observations.append(Observation.of(Metric.SPO2, spo2.value, SPO2_UNIT))
    elif spo2.special is not None:
        unavailable["spo2"] = spo2.special.value
    if pulse.value is not None:
        out.observations.append(Observation.of(Metric.PULSE_RATE, pulse.value, PULSE_RATE_UNIT))
    elif pulse.special is not None:
        unavailable["pulse_rate"] = pulse.special.value
    if unavailable:
        out.details["unavailable"] = unavailable


def _apply_status(
    out: _Mapped,
    status: MeasurementStatus | None,
    dss: DeviceSensorStatus | None,
    pai: MedFloat | None,
    *,
    ongoing_is_provisional: bool,
) -> bool:
    """Flags and details from the status words; False when the record is to be dropped."""
    if status is not None:
        names = status.names
        out.details["measurement_status"] = names
        if any(name in names for name in _NOT_A_PATIENT_READING):
            return False
        provisional = (
            (*_PROVISIONAL, "measurement_ongoing") if ongoing_is_provisional else _PROVISIONAL
        )
        if any(name in names for name in provisional):
            out.flags.add(StatusFlag.SIGNAL_QUESTIONABLE)
            out.details["provisional"] = True
        if any(name in names for name in _QUESTIONABLE_STATUS):
            out.flags.add(StatusFlag.SIGNAL_QUESTIONABLE)
        if "data_from_measurement_storage" in names:
            out.details["from_storage"] = True
    if dss is not None:
        names = dss.names
        out.details["device_sensor_status"] = names
        out.flags.update(_DSS_FLAGS[name] for name in names if name in _DSS_FLAGS)
    if pai is not None and pai.value is not None:
        out.details["pulse_amplitude_index_pct"] = pai.value
    return True


def spot_check_to_measurement(record: SpotCheckMeasurement) -> Measurement | None:
    out = _Mapped(details={"characteristic": "spot_check"})
    if not _apply_status(
        out,
        record.measurement_status,
        record.device_sensor_status,
        record.pulse_amplitude_index,
        ongoing_is_provisional=True,
    ):
        return None
    _observe(out, record.spo2, record.pulse_rate)
    if not out.observations:
        return None
    device_time = record.timestamp.moment if record.timestamp is not None else None
    # A timestamp field that holds no valid time says the same as flag bit 4.
    unknown_time = record.timestamp is not None and record.timestamp.moment is None
    return Measurement(
        kind=DeviceKind.PULSE_OXIMETER,
        observations=tuple(out.observations),
        device_time=device_time,
        clock_set=not (record.device_clock_not_set or unknown_time),
        flags=frozenset(out.flags),
        details=out.details,
    )


def continuous_to_measurement(record: ContinuousMeasurement) -> Measurement | None:
    """The Normal pair becomes the observations; Fast and Slow are kept in details."""
    out = _Mapped(details={"characteristic": "continuous"})
    if not _apply_status(
        out,
        record.measurement_status,
        record.device_sensor_status,
        record.pulse_amplitude_index,
        ongoing_is_provisional=False,
    ):
        return None
    _observe(out, record.normal.spo2, record.normal.pulse_rate)
    if not out.observations:
        return None
    for name, pair in (("fast", record.fast), ("slow", record.slow)):
        if pair is not None:
            if pair.spo2.value is not None:
                out.details[f"spo2_{name}_pct"] = pair.spo2.value
            if pair.pulse_rate.value is not None:
                out.details[f"pulse_rate_{name}_bpm"] = pair.pulse_rate.value
    # 0x2A5F carries no timestamp: the edge's receive time is the measurement time.
    return Measurement(
        kind=DeviceKind.PULSE_OXIMETER,
        observations=tuple(out.observations),
        flags=frozenset(out.flags),
        details=out.details,
    )


def to_measurement(record: SpotCheckMeasurement | ContinuousMeasurement) -> Measurement | None:
    """A PLX record as a Measurement, or None when it carries no patient value.

    Policy, in order:
    * measurement status "demo", "testing" or "measurement unavailable" → None: such a
      value is not the patient's and must not raise an alert;
    * SpO2 / pulse that are NaN, NRes or any other special → no observation for that field
      (the special is kept in `details["unavailable"]`); none left → None;
    * "early estimate", "calibration ongoing" and, for spot-checks, "measurement ongoing"
      → kept with SIGNAL_QUESTIONABLE and `details["provisional"] = True`;
    * "questionable" / "invalid measurement" → SIGNAL_QUESTIONABLE;
    * Device & Sensor Status → LOW_PERFUSION, SIGNAL_QUESTIONABLE, SENSOR_FAULT (probe) or
      DEVICE_ERROR (the oximeter itself), see `_DSS_FLAGS`;
    * "data from measurement storage" → `details["from_storage"]`; PAI → details;
    * flag bit 4 "device clock not set", or a timestamp with no valid time → clock_set=False;
    * the measurement site is left empty: PLXS does not say where the probe is.
    """
    if isinstance(record, SpotCheckMeasurement):
        return spot_check_to_measurement(record)
    return continuous_to_measurement(record)


__all__ = [
    "DEVICE_SENSOR_STATUS_BITS",
    "FEATURE_BITS",
    "FEATURE_DEVICE_SENSOR_STATUS",
    "FEATURE_FAST",
    "FEATURE_MEASUREMENT_STATUS",
    "FEATURE_MULTIPLE_BONDS",
    "FEATURE_PAI",
    "FEATURE_SLOW",
    "FEATURE_SPOT_CHECK_STORAGE",
    "FEATURE_SPOT_CHECK_TIMESTAMP",
    "MEASUREMENT_STATUS_BITS",
    "ContinuousMeasurement",
    "DeviceSensorStatus",
    "MeasurementStatus",
    "PlxFeatures",
    "SpO2PR",
    "SpotCheckMeasurement",
    "continuous_to_measurement",
    "decode_continuous",
    "decode_features",
    "decode_spot_check",
    "encode_continuous",
    "encode_features",
    "encode_spot_check",
    "sfloat",
    "spot_check_to_measurement",
    "timestamp",
    "to_measurement",
]
