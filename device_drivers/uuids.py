"""GATT UUIDs of the profiles the drivers speak, in bleak's 128-bit lowercase form."""

from __future__ import annotations

from typing import Final


def sig(short: int) -> str:
    """The 128-bit form of a 16-bit SIG-assigned UUID, as bleak reports UUIDs."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


# Services
GLUCOSE_SERVICE: Final = sig(0x1808)
BLOOD_PRESSURE_SERVICE: Final = sig(0x1810)
PULSE_OXIMETER_SERVICE: Final = sig(0x1822)
WEIGHT_SCALE_SERVICE: Final = sig(0x181D)
BODY_COMPOSITION_SERVICE: Final = sig(0x181B)
USER_DATA_SERVICE: Final = sig(0x181C)
DEVICE_INFORMATION_SERVICE: Final = sig(0x180A)
BATTERY_SERVICE: Final = sig(0x180F)
CURRENT_TIME_SERVICE: Final = sig(0x1805)

# Characteristics
GLUCOSE_MEASUREMENT: Final = sig(0x2A18)
GLUCOSE_MEASUREMENT_CONTEXT: Final = sig(0x2A34)
GLUCOSE_FEATURE: Final = sig(0x2A51)
RECORD_ACCESS_CONTROL_POINT: Final = sig(0x2A52)
BLOOD_PRESSURE_MEASUREMENT: Final = sig(0x2A35)
INTERMEDIATE_CUFF_PRESSURE: Final = sig(0x2A36)
BLOOD_PRESSURE_FEATURE: Final = sig(0x2A49)
PLX_SPOT_CHECK_MEASUREMENT: Final = sig(0x2A5E)
PLX_CONTINUOUS_MEASUREMENT: Final = sig(0x2A5F)
PLX_FEATURES: Final = sig(0x2A60)
WEIGHT_MEASUREMENT: Final = sig(0x2A9D)
WEIGHT_SCALE_FEATURE: Final = sig(0x2A9E)
BODY_COMPOSITION_MEASUREMENT: Final = sig(0x2A9C)
BODY_COMPOSITION_FEATURE: Final = sig(0x2A9B)
CURRENT_TIME: Final = sig(0x2A2B)
BATTERY_LEVEL: Final = sig(0x2A19)
MANUFACTURER_NAME: Final = sig(0x2A29)
MODEL_NUMBER: Final = sig(0x2A24)
SERIAL_NUMBER: Final = sig(0x2A25)
HARDWARE_REVISION: Final = sig(0x2A27)
FIRMWARE_REVISION: Final = sig(0x2A26)
SOFTWARE_REVISION: Final = sig(0x2A28)
SYSTEM_ID: Final = sig(0x2A23)
