"""Current Time (0x2A2B): what a collector writes to set a device's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from device_drivers.codec.wire import DateTimeField, FieldReader, FieldWriter
from device_drivers.errors import PayloadError

DAY_NAMES: Final = (
    "unknown",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
ADJUST_MANUAL: Final = 0x01
ADJUST_EXTERNAL_REFERENCE: Final = 0x02
ADJUST_TIME_ZONE: Final = 0x04
ADJUST_DST: Final = 0x08


@dataclass(frozen=True, slots=True)
class CurrentTime:
    moment: datetime | None
    """None when the device's clock is not set (Date Time zeros)."""
    day_of_week: int
    fractions256: int
    adjust_reason: int
    raw_date_time: bytes = bytes(7)

    def as_dict(self) -> dict[str, Any]:
        reason = self.adjust_reason
        out: dict[str, Any] = DateTimeField(self.moment, self.raw_date_time).as_dict("date_time")
        day_name = DAY_NAMES[self.day_of_week] if self.day_of_week < 8 else "reserved"
        out.update(
            {
                "day_of_week": {"code": self.day_of_week, "name": day_name},
                "fractions256": self.fractions256,
                "fraction_s": self.fractions256 / 256,
                "adjust_reason": {
                    "raw": reason,
                    "manual_time_update": bool(reason & ADJUST_MANUAL),
                    "external_reference_time_update": bool(reason & ADJUST_EXTERNAL_REFERENCE),
                    "change_of_time_zone": bool(reason & ADJUST_TIME_ZONE),
                    "change_of_dst": bool(reason & ADJUST_DST),
                    "reserved_bits": reason & ~0x0F,
                },
            }
        )
        return out


def decode_current_time(data: bytes) -> CurrentTime:
    reader = FieldReader(data, "current time")
    stamp = reader.date_time("date time")
    day_of_week = reader.u8("day of week")
    fractions = reader.u8("fractions256")
    reason = reader.u8("adjust reason")
    reader.finish()
    return CurrentTime(stamp.moment, day_of_week, fractions, reason, stamp.raw)


def encode_current_time(moment: datetime | None, adjust_reason: int = ADJUST_MANUAL) -> bytes:
    """10 bytes; the day of week and 1/256 s come from `moment` itself."""
    if not 0 <= adjust_reason <= 0xFF:
        raise PayloadError(f"adjust reason {adjust_reason} does not fit in a byte")
    if moment is None:
        return FieldWriter().date_time(None).u8(0).u8(0).u8(adjust_reason).bytes()
    fractions = moment.microsecond * 256 // 1_000_000
    return (
        FieldWriter()
        .date_time(moment)
        .u8(moment.isoweekday())
        .u8(fractions)
        .u8(adjust_reason)
        .bytes()
    )
