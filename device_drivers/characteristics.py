"""Every characteristic the drivers decode, by its 16-bit code: name, decoder, readings.

The table behind `python -m device_drivers decode`; drivers call the codecs directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from device_drivers.codec import (
    blood_pressure,
    body_composition,
    current_time,
    device_info,
    glucose,
    pulse_oximetry,
    racp,
    weight_scale,
)
from device_drivers.measurement import Measurement


class DecodedRecord(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CharacteristicCodec:
    code: int
    name: str
    decode: Callable[[bytes], DecodedRecord]
    to_measurement: Callable[[Any], Measurement | None] | None = None
    """None for characteristics that carry no reading (features, control points, clocks)."""


def _weight(record: weight_scale.WeightMeasurement) -> Measurement | None:
    return body_composition.to_measurement(weight=record)


def _body_composition(record: body_composition.BodyCompositionMeasurement) -> Measurement | None:
    return body_composition.to_measurement(body_composition=record)


CODECS: dict[int, CharacteristicCodec] = {
    codec.code: codec
    for codec in (
        CharacteristicCodec(
            0x2A18,
            "Glucose Measurement",
            glucose.decode_glucose_measurement,
            glucose.to_measurement,
        ),
        CharacteristicCodec(0x2A34, "Glucose Measurement Context", glucose.decode_glucose_context),
        CharacteristicCodec(0x2A51, "Glucose Feature", glucose.decode_glucose_feature),
        CharacteristicCodec(
            0x2A35,
            "Blood Pressure Measurement",
            blood_pressure.decode_blood_pressure_measurement,
            blood_pressure.to_measurement,
        ),
        CharacteristicCodec(
            0x2A36,
            "Intermediate Cuff Pressure",
            blood_pressure.decode_intermediate_cuff_pressure,
        ),
        CharacteristicCodec(
            0x2A49, "Blood Pressure Feature", blood_pressure.decode_blood_pressure_feature
        ),
        CharacteristicCodec(
            0x2A5E,
            "PLX Spot-check Measurement",
            pulse_oximetry.decode_spot_check,
            pulse_oximetry.spot_check_to_measurement,
        ),
        CharacteristicCodec(
            0x2A5F,
            "PLX Continuous Measurement",
            pulse_oximetry.decode_continuous,
            pulse_oximetry.continuous_to_measurement,
        ),
        CharacteristicCodec(0x2A60, "PLX Features", pulse_oximetry.decode_features),
        CharacteristicCodec(
            0x2A9D, "Weight Measurement", weight_scale.decode_weight_measurement, _weight
        ),
        CharacteristicCodec(
            0x2A9E, "Weight Scale Feature", weight_scale.decode_weight_scale_feature
        ),
        CharacteristicCodec(
            0x2A9C,
            "Body Composition Measurement",
            body_composition.decode_body_composition,
            _body_composition,
        ),
        CharacteristicCodec(
            0x2A9B, "Body Composition Feature", body_composition.decode_body_composition_feature
        ),
        CharacteristicCodec(0x2A52, "Record Access Control Point", racp.decode),
        CharacteristicCodec(0x2A2B, "Current Time", current_time.decode_current_time),
        CharacteristicCodec(0x2A19, "Battery Level", device_info.decode_battery_level),
        CharacteristicCodec(
            0x2902, "Client Characteristic Configuration", device_info.decode_client_configuration
        ),
        *(
            CharacteristicCodec(code, name, device_info.decode_string)
            for code, name in (
                (0x2A29, "Manufacturer Name String"),
                (0x2A24, "Model Number String"),
                (0x2A25, "Serial Number String"),
                (0x2A27, "Hardware Revision String"),
                (0x2A26, "Firmware Revision String"),
                (0x2A28, "Software Revision String"),
            )
        ),
    )
}


def parse_code(text: str) -> int:
    """'2A35', '0x2A35', '2a35' or a full 128-bit SIG UUID → 0x2A35."""
    cleaned = text.strip().lower()
    if len(cleaned) == 36 and cleaned.endswith("-0000-1000-8000-00805f9b34fb"):
        cleaned = cleaned[4:8]
    cleaned = cleaned.removeprefix("0x")
    try:
        return int(cleaned, 16)
    except ValueError:
        raise ValueError(f"{text!r} is not a characteristic code such as 2A35") from None
