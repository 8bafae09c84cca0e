"""Today's measurement plan and what of it is done: pure functions over plain data.

The plan comes from the cloud's downlink configuration (`EdgeConfig.measurement_plan`,
one entry per metric with its times of day). Until the first configuration arrives the
app shows the home-BP protocol's default (morning and evening), so a new patient is never
faced with an empty screen.

Each planned time owns a slot from two hours before it to two hours before the next
time (the last runs to midnight); a slot is done when a reading of that metric was
measured in it, and missed once it has passed without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from protocols.messages import PlannedMeasurement
from protocols.metrics import Metric

SLOT_LEAD = timedelta(hours=2)

DEFAULT_PLAN_TIMES: dict[Metric, tuple[time, ...]] = {Metric.SYSTOLIC: (time(8), time(20))}


class SlotState(StrEnum):
    DONE = "done"
    TODO = "todo"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class PlanSlot:
    metric: Metric
    at: time
    state: SlotState


def plan_times(
    planned: Sequence[PlannedMeasurement], patient_id: str
) -> dict[Metric, tuple[time, ...]]:
    """The patient's times per metric from the configuration, else the default plan."""
    mine = [p for p in planned if p.patient_id == patient_id]
    if not mine:
        return dict(DEFAULT_PLAN_TIMES)
    times: dict[Metric, set[time]] = {}
    for entry in mine:
        # A plan for diastolic (or MAP) means the same cuff measurement as systolic.
        metric = Metric.SYSTOLIC if entry.metric in _BP_METRICS else entry.metric
        times.setdefault(metric, set()).update(entry.times)
    return {metric: tuple(sorted(at)) for metric, at in times.items()}


_BP_METRICS = {Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.MEAN_ARTERIAL_PRESSURE}


def today_slots(
    times: dict[Metric, tuple[time, ...]],
    measured: Iterable[tuple[Metric, datetime]],
    now: datetime,
) -> list[PlanSlot]:
    """Every planned slot of `now`'s day, in time order, with its state.

    `measured` holds (metric, local measured time) of the patient's readings; `now` is
    local time too (naive or aware alike, as long as both are the same).
    """
    day = now.date()
    seen = [(metric, at) for metric, at in measured if at.date() == day]
    slots: list[PlanSlot] = []
    for metric, at_times in times.items():
        for index, at in enumerate(at_times):
            start, end = _slot_bounds(day, at_times, index, now)
            done = any(m == metric and start <= t < end for m, t in seen)
            if done:
                state = SlotState.DONE
            elif now >= end:
                state = SlotState.MISSED
            else:
                state = SlotState.TODO
            slots.append(PlanSlot(metric, at, state))
    return sorted(slots, key=lambda slot: (slot.at, slot.metric.value))


def _slot_bounds(
    day: date, at_times: tuple[time, ...], index: int, now: datetime
) -> tuple[datetime, datetime]:
    tz = now.tzinfo
    start = datetime.combine(day, at_times[index], tz) - SLOT_LEAD
    if index + 1 < len(at_times):
        end = datetime.combine(day, at_times[index + 1], tz) - SLOT_LEAD
    else:
        end = datetime.combine(day + timedelta(days=1), time(0), tz)
    if index == 0:
        start = datetime.combine(day, time(0), tz)
    return start, end
