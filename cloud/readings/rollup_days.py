"""Which calendar days' daily rollups can be checked against the raw readings, in what
slices: the pure part of `python -m cloud rollups`.

A day can be checked (and rebuilt) only if every raw reading of it is still stored.
Retention drops whole chunks, oldest first, and records the end of the newest chunk it
dropped; a day that began before that may have lost readings, and rebuilding its rollup
from what is left would destroy the only record of that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from protocols.errors import CareBridgeError


class RollupRangeError(CareBridgeError):
    """A range of days that cannot be checked."""

    code = "rollup_range"


@dataclass(frozen=True)
class DayRange:
    first: date
    last: date
    """Inclusive."""

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}…{self.last}"


def first_complete_day(dropped_until: datetime | None, zone: ZoneInfo) -> date | None:
    """The first day, on the hospital's calendar, whose raw readings are all stored, given
    how far retention has dropped them; None when it never has (every day is complete)."""
    if dropped_until is None:
        return None
    local = dropped_until.astimezone(zone)
    if local.time() == time(0):
        return local.date()
    return local.date() + timedelta(days=1)


@dataclass(frozen=True)
class CheckPlan:
    slices: tuple[DayRange, ...]
    skipped: DayRange | None
    """The asked-for days before the first complete one: not checked."""


def plan_check(asked: DayRange, complete_from: date | None, slice_days: int = 1) -> CheckPlan:
    """The asked-for days that can be checked (from `complete_from` on; None: all), in
    slices of `slice_days`, oldest first. Raises `RollupRangeError` when none can."""
    if asked.last < asked.first:
        raise RollupRangeError(f"the range ends ({asked.last}) before it starts ({asked.first})")
    if slice_days < 1:
        raise RollupRangeError("a slice is at least one day")
    complete_from = complete_from or asked.first
    if asked.last < complete_from:
        raise RollupRangeError(
            f"raw readings are complete only from {complete_from} (retention may have dropped "
            f"older chunks); {asked} can no longer be checked"
        )
    first = max(asked.first, complete_from)
    skipped = DayRange(asked.first, first - timedelta(days=1)) if first > asked.first else None
    slices = []
    start = first
    while start <= asked.last:
        end = min(start + timedelta(days=slice_days - 1), asked.last)
        slices.append(DayRange(start, end))
        start = end + timedelta(days=1)
    return CheckPlan(tuple(slices), skipped)
