"""The `EdgeConfig` one edge should hold, built from plain data (no I/O).

A home edge gets its patient's measurement plans in force, the revisits still to make and
the questionnaires of the pathway of the patient's active enrolment(s); a centre edge gets
its shared devices and the patients of its care teams (rules in docs/edge_uplink.md).
`content_hash` ignores `issued_at`, so the cloud republishes only when something changed,
and `refresh_at` says when time alone will change the content (a plan starting or ending,
a revisit window closing), so the sweep need not rebuild every edge every time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from protocols.messages import (
    DeviceBinding,
    EdgeConfig,
    EdgeMode,
    PatientRef,
    PlannedMeasurement,
    RevisitReminder,
)
from protocols.metrics import Metric
from protocols.questionnaires import Questionnaire
from protocols.reading import DeviceKind

# The home-BP default of the clinical rules (morning and evening); more readings a day are
# spread evenly between them.
FIRST_REMINDER = time(8, 0)
LAST_REMINDER = time(20, 0)


@dataclass(frozen=True)
class Plan:
    metric: str
    times_per_day: int
    started_at: datetime
    ends_at: datetime | None = None


@dataclass(frozen=True)
class RevisitTask:
    due_at: datetime
    window_days: int
    title: str
    visited: bool = False
    """A revisit was recorded within the window: nothing to remind."""


@dataclass(frozen=True)
class Device:
    kind: str
    serial: str
    patient_id: str | None = None


@dataclass(frozen=True)
class HomeInputs:
    patient_id: str
    plans: list[Plan] = field(default_factory=list)
    revisits: list[RevisitTask] = field(default_factory=list)
    questionnaires: list[Questionnaire] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    """The home devices bound to the patient now."""


@dataclass(frozen=True)
class CentreInputs:
    devices: list[Device] = field(default_factory=list)
    patients: list[tuple[str, str]] = field(default_factory=list)
    """(patient id, name already masked for display)."""


@dataclass(frozen=True)
class Built:
    config: EdgeConfig
    content_hash: str
    refresh_at: datetime | None


def reminder_times(times_per_day: int) -> list[time]:
    """Local times of day for a plan of `times_per_day` readings."""
    if times_per_day <= 1:
        return [FIRST_REMINDER]
    first = FIRST_REMINDER.hour * 60 + FIRST_REMINDER.minute
    last = LAST_REMINDER.hour * 60 + LAST_REMINDER.minute
    step = (last - first) / (times_per_day - 1)
    minutes = [round(first + i * step) for i in range(times_per_day)]
    return [time(m // 60, m % 60) for m in minutes]


def content_hash(config: EdgeConfig) -> str:
    body = config.model_dump(mode="json", exclude={"issued_at"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _in_force(plan: Plan, now: datetime) -> bool:
    return plan.started_at <= now and (plan.ends_at is None or plan.ends_at > now)


def _window_end(task: RevisitTask, tz: ZoneInfo) -> datetime:
    last_day = task.due_at.astimezone(tz).date() + timedelta(days=task.window_days + 1)
    return datetime.combine(last_day, time(0), tzinfo=tz)


def _bindings(devices: list[Device]) -> list[DeviceBinding]:
    unique = {(d.kind, d.serial): d for d in devices}
    return [
        DeviceBinding(serial=d.serial, kind=DeviceKind(d.kind), patient_id=d.patient_id)
        for _, d in sorted(unique.items())
    ]


def _home(
    edge_id: str, inputs: HomeInputs, issued_at: datetime, now: datetime, tz: ZoneInfo
) -> tuple[EdgeConfig, list[datetime]]:
    boundaries: list[datetime] = []
    plan = []
    for p in sorted(inputs.plans, key=lambda p: p.metric):
        if p.started_at > now:
            boundaries.append(p.started_at)
        elif p.ends_at is not None and p.ends_at > now:
            boundaries.append(p.ends_at)
        if _in_force(p, now):
            plan.append(
                PlannedMeasurement(
                    metric=Metric(p.metric),
                    times=reminder_times(p.times_per_day),
                    patient_id=inputs.patient_id,
                )
            )
    revisits = []
    for task in sorted(inputs.revisits, key=lambda t: t.due_at):
        closes = _window_end(task, tz)
        if task.visited or closes <= now:
            continue
        boundaries.append(closes)
        revisits.append(
            RevisitReminder(
                patient_id=inputs.patient_id,
                due_on=task.due_at.astimezone(tz).date(),
                window_days=task.window_days,
                title=task.title[:128],
            )
        )
    forms = {q.questionnaire_id: q for q in inputs.questionnaires}
    config = EdgeConfig(
        edge_id=edge_id,
        issued_at=issued_at,
        mode=EdgeMode.HOME,
        device_bindings=_bindings(inputs.devices),
        measurement_plan=plan,
        questionnaires=[forms[k] for k in sorted(forms)],
        revisits=revisits,
    )
    return config, boundaries


def build_edge_config(
    edge_id: str,
    inputs: HomeInputs | CentreInputs,
    *,
    issued_at: datetime,
    now: datetime,
    timezone: str,
) -> Built:
    """The configuration for `edge_id` as of `now` (its mode follows from `inputs`)."""
    boundaries: list[datetime] = []
    if isinstance(inputs, HomeInputs):
        config, boundaries = _home(edge_id, inputs, issued_at, now, ZoneInfo(timezone))
    else:
        patients = {pid: name for pid, name in inputs.patients}
        config = EdgeConfig(
            edge_id=edge_id,
            issued_at=issued_at,
            mode=EdgeMode.CENTRE,
            device_bindings=_bindings(inputs.devices),
            centre_patients=[
                PatientRef(patient_id=pid, display_name=patients[pid][:64])
                for pid in sorted(patients)
            ],
        )
    return Built(config, content_hash(config), min(boundaries, default=None))


def next_issued_at(now: datetime, previous: datetime | None) -> datetime:
    """Strictly after the last one issued: the edge keeps only configurations not older
    than its own, so two publishes in one clock tick (or a clock step back) must still
    order."""
    if previous is None or now > previous:
        return now
    return previous + timedelta(milliseconds=1)


__all__ = [
    "Built",
    "CentreInputs",
    "Device",
    "HomeInputs",
    "Plan",
    "RevisitTask",
    "build_edge_config",
    "content_hash",
    "next_issued_at",
    "reminder_times",
]
