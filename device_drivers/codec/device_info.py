"""Device Information (0x180A) strings, Battery Level (0x2A19) and the CCCD (0x2902)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from device_drivers.codec.wire import FieldReader
from device_drivers.errors import PayloadError


@dataclass(frozen=True, slots=True)
class DeviceString:
    text: str
    had_trailing_nul: bool

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "had_trailing_nul": self.had_trailing_nul}


def decode_string(data: bytes) -> DeviceString:
    """UTF-8 with no terminator; some devices pad with NULs, which are not part of it."""
    stripped = bytes(data).rstrip(b"\x00")
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"device information string is not UTF-8 ({exc.reason})", data) from None
    return DeviceString(text, len(stripped) != len(data))


def encode_string(text: str) -> bytes:
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    percent: int
    valid: bool
    """101–255 are reserved: such a level is reported, never trusted."""

    def as_dict(self) -> dict[str, Any]:
        return {"battery_level_pct": self.percent, "valid": self.valid}


def decode_battery_level(data: bytes) -> BatteryLevel:
    reader = FieldReader(data, "battery level")
    level = reader.u8("level")
    reader.finish()
    return BatteryLevel(level, level <= 100)


def encode_battery_level(percent: int) -> bytes:
    if not 0 <= percent <= 100:
        raise PayloadError(f"battery level {percent} is outside 0–100")
    return bytes([percent])


@dataclass(frozen=True, slots=True)
class ClientConfiguration:
    raw: int

    @property
    def notifications_enabled(self) -> bool:
        return bool(self.raw & 0x01)

    @property
    def indications_enabled(self) -> bool:
        return bool(self.raw & 0x02)

    def as_dict(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "notifications_enabled": self.notifications_enabled,
            "indications_enabled": self.indications_enabled,
            "reserved_bits": self.raw & ~0x03,
        }


def decode_client_configuration(data: bytes) -> ClientConfiguration:
    reader = FieldReader(data, "client characteristic configuration")
    raw = reader.u16("value")
    reader.finish()
    return ClientConfiguration(raw)


def encode_client_configuration(*, notify: bool = False, indicate: bool = False) -> bytes:
    return (int(notify) | int(indicate) << 1).to_bytes(2, "little")
