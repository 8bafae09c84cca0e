"""The home blood-pressure average as the home-monitoring protocol defines it.

CN 2018 guideline / 家庭血压监测指南 2019 (clinical_rules.md §3): morning and evening
readings for up to 7 days, the first day discarded, the rest averaged; at least 3 days are
needed for the average to count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

MIN_DAYS = 3


@dataclass(frozen=True)
class HomeBpReading:
    day: date
    systolic: float
    diastolic: float


@dataclass(frozen=True)
class HomeBpAverage:
    systolic: float | None
    diastolic: float | None
    days_used: list[date]
    readings_used: int
    day_discarded: date | None
    sufficient: bool
    """True when at least MIN_DAYS days remain after discarding the first."""


def home_bp_average(readings: Iterable[HomeBpReading]) -> HomeBpAverage:
    by_day: dict[date, list[HomeBpReading]] = {}
    for reading in readings:
        by_day.setdefault(reading.day, []).append(reading)
    days = sorted(by_day)
    discarded = days[0] if len(days) > 1 else None
    kept_days = days[1:] if discarded else days
    kept = [r for day in kept_days for r in by_day[day]]
    if not kept:
        return HomeBpAverage(None, None, [], 0, discarded, False)
    return HomeBpAverage(
        systolic=round(sum(r.systolic for r in kept) / len(kept), 1),
        diastolic=round(sum(r.diastolic for r in kept) / len(kept), 1),
        days_used=kept_days,
        readings_used=len(kept),
        day_discarded=discarded,
        sufficient=len(kept_days) >= MIN_DAYS,
    )
