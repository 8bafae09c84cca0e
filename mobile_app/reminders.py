"""Medication reminders the patient sets: which are due, as a pure function of time.

The app checks every half minute with the time of its previous check, so a reminder is
raised exactly once even if the phone slept across it (it is then raised on waking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

_TIME = re.compile(r"^\s*([01]?\d|2[0-3])\s*[:：]\s*([0-5]\d)\s*$")


@dataclass(frozen=True, slots=True)
class MedicationReminder:
    name: str
    at: time

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "at": self.at.strftime("%H:%M")}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> MedicationReminder:
        return cls(name=data["name"], at=parse_time(data["at"]))


def parse_time(value: str) -> time:
    """'8:00', '08:00' or '08：00' (full-width colon, as Chinese keyboards type it)."""
    match = _TIME.match(value)
    if match is None:
        raise ValueError(f"not a time of day: {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def due_reminders(
    reminders: Iterable[MedicationReminder], since: datetime, now: datetime
) -> list[MedicationReminder]:
    """Reminders whose time of day falls in (since, now], oldest first."""
    if now <= since:
        return []
    due: list[tuple[datetime, MedicationReminder]] = []
    for reminder in reminders:
        day = since.date()
        while day <= now.date():
            moment = datetime.combine(day, reminder.at, now.tzinfo)
            if since < moment <= now:
                due.append((moment, reminder))
            day += timedelta(days=1)
    return [reminder for _, reminder in sorted(due, key=lambda pair: pair[0])]
