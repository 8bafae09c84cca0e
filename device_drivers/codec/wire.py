"""Little-endian field readers and writers, IEEE 11073-20601 SFLOAT/FLOAT and Date Time.

`FieldReader` walks a payload field by field and turns every kind of short or malformed
input into `PayloadError`, so profile decoders read like the layout tables they implement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final

from device_drivers.errors import PayloadError


class Special(StrEnum):
    """The non-numeric values of IEEE 11073-20601 floats: never to be stored as numbers."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "Reserved"


_SFLOAT_SPECIALS: Final = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POSITIVE_INFINITY,
    0x0802: Special.NEGATIVE_INFINITY,
    0x0801: Special.RESERVED,
}
_FLOAT_SPECIALS: Final = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.POSITIVE_INFINITY,
    0x00800002: Special.NEGATIVE_INFINITY,
    0x00800001: Special.RESERVED,
}
_SFLOAT_WORD: Final = {v: k for k, v in _SFLOAT_SPECIALS.items()}
_FLOAT_WORD: Final = {v: k for k, v in _FLOAT_SPECIALS.items()}
SFLOAT_MAX_MANTISSA: Final = 2045
FLOAT_MAX_MANTISSA: Final = 2**23 - 3


@dataclass(frozen=True, slots=True)
class MedFloat:
    """A decoded SFLOAT/FLOAT: a number (`value`) or a `special` marker, never both."""

    value: float | None
    special: Special | None = None
    mantissa: int = 0
    exponent: int = 0

    @property
    def is_number(self) -> bool:
        return self.special is None

    @classmethod
    def number(cls, value: float) -> MedFloat:
        return cls(value=value)

    @classmethod
    def of(cls, special: Special) -> MedFloat:
        return cls(value=None, special=special)


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def _from_parts(mantissa: int, exponent: int) -> float:
    # Through Decimal so 0.0065 is 0.0065 and not 0.006500000000000001.
    return float(Decimal(mantissa).scaleb(exponent))


def decode_sfloat_word(word: int) -> MedFloat:
    if word in _SFLOAT_SPECIALS:
        return MedFloat.of(_SFLOAT_SPECIALS[word])
    mantissa = _signed(word & 0x0FFF, 12)
    exponent = _signed(word >> 12, 4)
    return MedFloat(_from_parts(mantissa, exponent), None, mantissa, exponent)


def decode_float_word(word: int) -> MedFloat:
    if word in _FLOAT_SPECIALS:
        return MedFloat.of(_FLOAT_SPECIALS[word])
    mantissa = _signed(word & 0xFFFFFF, 24)
    exponent = _signed(word >> 24, 8)
    return MedFloat(_from_parts(mantissa, exponent), None, mantissa, exponent)


def _parts(value: float, max_mantissa: int, min_exp: int, max_exp: int) -> tuple[int, int]:
    """The mantissa/exponent pair with the most precision that fits, rounding half-even."""
    if not math.isfinite(value):
        raise PayloadError(f"{value} is not a finite number; encode a Special instead")
    for exponent in range(min_exp, max_exp + 1):
        mantissa = int(Decimal(repr(value)).scaleb(-exponent).to_integral_value())
        if abs(mantissa) <= max_mantissa:
            return mantissa, exponent
    raise PayloadError(f"{value} is too large for this float type")


def encode_sfloat_word(value: float | Special) -> int:
    if isinstance(value, Special):
        return _SFLOAT_WORD[value]
    mantissa, exponent = _parts(value, SFLOAT_MAX_MANTISSA, -8, 7)
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def encode_float_word(value: float | Special) -> int:
    if isinstance(value, Special):
        return _FLOAT_WORD[value]
    mantissa, exponent = _parts(value, FLOAT_MAX_MANTISSA, -128, 127)
    return ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)


def sfloat_word_of(value: MedFloat) -> int:
    """The word `value` came from when it was decoded, so an encoder gives back the bytes it
    read (72 is both 0x0048 and 0xF2D0); for a value built by hand, the most precise word."""
    if value.special is not None:
        return encode_sfloat_word(value.special)
    if value.value is None:
        raise PayloadError("an SFLOAT without value or special cannot be encoded")
    fits = -2048 <= value.mantissa <= 2047 and -8 <= value.exponent <= 7
    if fits and _from_parts(value.mantissa, value.exponent) == value.value:
        word = ((value.exponent & 0xF) << 12) | (value.mantissa & 0x0FFF)
        if decode_sfloat_word(word) == value:
            return word
    return encode_sfloat_word(value.value)


def decode_sfloat(data: bytes) -> MedFloat:
    reader = FieldReader(data, "SFLOAT")
    value = reader.sfloat("value")
    reader.finish()
    return value


def decode_float(data: bytes) -> MedFloat:
    reader = FieldReader(data, "FLOAT")
    value = reader.float32("value")
    reader.finish()
    return value


def encode_sfloat(value: float | Special) -> bytes:
    return encode_sfloat_word(value).to_bytes(2, "little")


def encode_float(value: float | Special) -> bytes:
    return encode_float_word(value).to_bytes(4, "little")


@dataclass(frozen=True, slots=True)
class DateTimeField:
    """A 7-byte Date Time (0x2A08). `moment` is None when the device clock was never set
    (year, month or day zero) or the fields are no calendar time (a 29 February in a
    common year): such a stamp is untrusted, not a malformed payload. `raw` keeps the bytes."""

    moment: datetime | None
    raw: bytes

    def raw_fields(self) -> dict[str, int]:
        """The fields as sent, for showing an untrusted stamp to support staff."""
        return {
            "year": int.from_bytes(self.raw[0:2], "little"),
            "month": self.raw[2],
            "day": self.raw[3],
            "hours": self.raw[4],
            "minutes": self.raw[5],
            "seconds": self.raw[6],
        }

    def as_dict(self, key: str) -> dict[str, object]:
        """`{key: iso or None}`, plus `{key}_raw` fields when the stamp is untrusted."""
        if self.moment is not None:
            return {key: self.moment.isoformat()}
        return {key: None, f"{key}_raw": self.raw_fields()}


def decode_date_time_bytes(data: bytes, what: str = "date time") -> DateTimeField:
    if len(data) != 7:
        raise PayloadError(f"{what}: a Date Time is 7 bytes, got {len(data)}", data)
    year = int.from_bytes(data[0:2], "little")
    month, day, hour, minute, second = data[2], data[3], data[4], data[5], data[6]
    # Years before 1582 are outside the Date Time range: a clock that was never set.
    if year < 1582 or month == 0 or day == 0:
        return DateTimeField(None, bytes(data))
    try:
        return DateTimeField(datetime(year, month, day, hour, minute, second), bytes(data))
    except ValueError:
        return DateTimeField(None, bytes(data))


def decode_date_time(data: bytes) -> datetime | None:
    return decode_date_time_bytes(data).moment


def encode_date_time(moment: datetime | None) -> bytes:
    """7 bytes; None encodes as all zeros, the "clock not set" value."""
    if moment is None:
        return bytes(7)
    if not 1582 <= moment.year <= 9999:
        raise PayloadError(f"year {moment.year} is outside the Date Time range")
    return moment.year.to_bytes(2, "little") + bytes(
        [moment.month, moment.day, moment.hour, moment.minute, moment.second]
    )


class FieldReader:
    """Reads one payload front to back; every short read is a `PayloadError`."""

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self.what = what

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def error(self, reason: str) -> PayloadError:
        return PayloadError(f"{self.what}: {reason}", self._data)

    def take(self, size: int, field: str) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise self.error(
                f"{field} needs {size} byte(s) at offset {self._pos}, only {self.remaining} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "little")

    def u8(self, field: str) -> int:
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        return self.uint(2, field)

    def u24(self, field: str) -> int:
        return self.uint(3, field)

    def u32(self, field: str) -> int:
        return self.uint(4, field)

    def s16(self, field: str) -> int:
        return _signed(self.u16(field), 16)

    def sfloat(self, field: str) -> MedFloat:
        return decode_sfloat_word(self.u16(field))

    def float32(self, field: str) -> MedFloat:
        return decode_float_word(self.u32(field))

    def date_time(self, field: str) -> DateTimeField:
        return decode_date_time_bytes(self.take(7, field), f"{self.what} {field}")

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def finish(self) -> None:
        """Trailing bytes mean the flags and the payload disagree: refuse, don't guess."""
        if self._pos != len(self._data):
            raise self.error(
                f"{self.remaining} unexpected trailing byte(s) after offset {self._pos}"
            )


class FieldWriter:
    """Builds a payload front to back; the encoders' mirror of `FieldReader`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def raw(self, data: bytes) -> FieldWriter:
        self._parts.append(bytes(data))
        return self

    def uint(self, value: int, size: int, field: str = "field") -> FieldWriter:
        if not 0 <= value < (1 << (8 * size)):
            raise PayloadError(f"{field}: {value} does not fit in {size} unsigned byte(s)")
        return self.raw(value.to_bytes(size, "little"))

    def u8(self, value: int, field: str = "field") -> FieldWriter:
        return self.uint(value, 1, field)

    def u16(self, value: int, field: str = "field") -> FieldWriter:
        return self.uint(value, 2, field)

    def u24(self, value: int, field: str = "field") -> FieldWriter:
        return self.uint(value, 3, field)

    def u32(self, value: int, field: str = "field") -> FieldWriter:
        return self.uint(value, 4, field)

    def s16(self, value: int, field: str = "field") -> FieldWriter:
        if not -(1 << 15) <= value < (1 << 15):
            raise PayloadError(f"{field}: {value} does not fit in a signed 16-bit field")
        return self.raw((value & 0xFFFF).to_bytes(2, "little"))

    def sfloat(self, value: float | Special) -> FieldWriter:
        return self.raw(encode_sfloat(value))

    def float32(self, value: float | Special) -> FieldWriter:
        return self.raw(encode_float(value))

    def date_time(self, moment: datetime | None) -> FieldWriter:
        return self.raw(encode_date_time(moment))

    def bytes(self) -> bytes:
        return b"".join(self._parts)


def scaled(raw: int, scale: str) -> float:
    """raw × scale through Decimal, so 14100 × 0.005 is exactly 70.5."""
    return float(Decimal(raw) * Decimal(scale))


def unscaled(value: float, scale: str, field: str) -> int:
    """The integer that `scaled` maps to `value`, for encoders; refuses what does not fit."""
    raw = int((Decimal(repr(value)) / Decimal(scale)).to_integral_value())
    if raw < 0:
        raise PayloadError(f"{field}: {value} is negative")
    return raw
