"""A pathway and an enrolment date → the dated tasks and measurement plans. Pure.

Day 0 is the local calendar day of enrolment and its work is due at enrolment; a later
task falls due at 09:00 local time on its day, so a case manager's morning queue holds the
day's work, and a measurement plan from the start of its day. Tasks beyond the package's
course (疗程) are not created: one pathway serves a 2-week and a 3-month package alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.programmes.pathway import Action, ActionKind, Pathway

DUE_AT_LOCAL = time(9, 0)


@dataclass(frozen=True)
class PlannedTask:
    action_key: str
    phase: str
    action: ActionKind
    title: str
    due_at: datetime
    grace_days: int
    detail: dict[str, Any] = field(default_factory=dict)


def _at(day0: date, offset: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day0 + timedelta(days=offset), DUE_AT_LOCAL, tzinfo=tz)


def _detail(action: Action, phase_end: datetime) -> dict[str, Any]:
    detail: dict[str, Any] = {"title_en": action.title_en}
    if action.script:
        detail["script"] = action.script
    if action.questionnaire:
        detail["questionnaire"] = action.questionnaire
    if action.template_id:
        detail["template_id"] = action.template_id
    if action.kind is ActionKind.REVISIT_REMINDER:
        detail["window_days"] = action.window_days
    if action.measurements:
        detail["measurements"] = [m.model_dump(mode="json") for m in action.measurements]
        detail["ends_at"] = phase_end.isoformat()
    return detail


def instantiate(
    pathway: Pathway, enrolled_at: datetime, duration_days: int, timezone: str
) -> list[PlannedTask]:
    tz = ZoneInfo(timezone)
    day0 = enrolled_at.astimezone(tz).date()
    tasks: list[PlannedTask] = []
    for phase in pathway.phases:
        last_day = min(phase.end_day, duration_days)
        # A plan runs to the end of its phase (never past the course), then the next
        # phase's plan, if any, replaces it.
        phase_end = datetime.combine(day0 + timedelta(days=last_day), time(0), tzinfo=tz)
        for action in phase.actions:
            first = phase.start_day + action.day
            if first >= last_day:
                continue
            days = (
                range(first, last_day, action.repeat_every_days)
                if action.repeat_every_days
                else [first]
            )
            for n, day in enumerate(days):
                key = action.key if not action.repeat_every_days else f"{action.key}#{n + 1}"
                due = _at(day0, day, tz)
                if action.kind is ActionKind.MEASUREMENT_PLAN:
                    # A plan is in force from the start of its day.
                    due = datetime.combine(due.date(), time(0), tzinfo=tz)
                if day == 0:
                    # Day-0 work starts with the enrolment itself, whatever the hour.
                    due = enrolled_at
                tasks.append(
                    PlannedTask(
                        action_key=key,
                        phase=phase.key,
                        action=action.kind,
                        title=action.title,
                        due_at=due,
                        grace_days=action.grace_days,
                        detail=_detail(action, phase_end),
                    )
                )
    tasks.sort(key=lambda t: (t.due_at, t.action_key))
    return tasks
