"""The alert lifecycle and its service levels: pure rules over plain values.

open → acknowledged → in progress → resolved | dismissed, and escalated (by hand, or by the
clock when the acknowledgement deadline passes) from any open state. Closing needs an
outcome code. Every change becomes an immutable event row (who, when, from, to, why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from cloud.alerts.thresholds import Tier
from protocols.errors import CareBridgeError


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


OPEN_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.ESCALATED)
CLOSED_STATUSES = (Status.RESOLVED, Status.DISMISSED)


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    START = "start"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    DISMISS = "dismiss"


class Outcome(StrEnum):
    PATIENT_REACHED_ADVISED = "patient_reached_advised"
    SENT_TO_CLINIC = "sent_to_clinic"
    SENT_TO_EMERGENCY = "sent_to_emergency"
    DOCTOR_INFORMED = "doctor_informed"
    DEVICE_OR_ENTRY_ERROR = "device_or_entry_error"
    UNREACHABLE_AFTER_ATTEMPTS = "unreachable_after_attempts"
    FALSE_ALARM = "false_alarm"


# Outcomes that mean "this was not a real clinical finding".
DISMISS_OUTCOMES = frozenset({Outcome.DEVICE_OR_ENTRY_ERROR, Outcome.FALSE_ALARM})

_ALLOWED: dict[Action, frozenset[Status]] = {
    Action.ACKNOWLEDGE: frozenset({Status.OPEN, Status.ESCALATED}),
    Action.START: frozenset({Status.ACKNOWLEDGED, Status.ESCALATED}),
    Action.ESCALATE: frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS}),
    Action.RESOLVE: frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.ESCALATED}),
    Action.DISMISS: frozenset(OPEN_STATUSES),
}
_RESULT: dict[Action, Status] = {
    Action.ACKNOWLEDGE: Status.ACKNOWLEDGED,
    Action.START: Status.IN_PROGRESS,
    Action.ESCALATE: Status.ESCALATED,
    Action.RESOLVE: Status.RESOLVED,
    Action.DISMISS: Status.DISMISSED,
}


class TransitionError(CareBridgeError):
    code = "invalid_transition"


@dataclass(frozen=True)
class Transition:
    from_status: Status
    to_status: Status
    action: Action
    outcome: Outcome | None
    note: str


def transition(
    current: Status, action: Action, *, outcome: Outcome | None = None, note: str = ""
) -> Transition:
    """Check one change of an alert's status; raise TransitionError when it is not allowed."""
    if current not in _ALLOWED[action]:
        raise TransitionError(f"cannot {action.value} an alert that is {current.value}")
    if action in (Action.RESOLVE, Action.DISMISS) and outcome is None:
        raise TransitionError(f"{action.value} needs an outcome code")
    if action is Action.DISMISS and outcome not in DISMISS_OUTCOMES:
        raise TransitionError(
            f"dismissing means a false alarm or a device/entry error, not {outcome}"
        )
    if action is Action.RESOLVE and outcome in DISMISS_OUTCOMES:
        raise TransitionError(f"{outcome} is a dismissal, not a resolution")
    if action is Action.ESCALATE and not note.strip():
        raise TransitionError("escalating by hand needs a note saying why")
    return Transition(current, _RESULT[action], action, outcome, note)


# Acknowledgement deadlines per tier (clinical_rules.md §0); low alerts have none.
ACK_WITHIN = {Tier.CRITICAL: timedelta(minutes=15), Tier.HIGH: timedelta(hours=4)}
MEDIUM_WORKING_DAYS = 2


def ack_deadline(tier: Tier, opened_at: datetime, timezone: str) -> datetime | None:
    if tier in ACK_WITHIN:
        return opened_at + ACK_WITHIN[tier]
    if tier is Tier.MEDIUM:
        local = opened_at.astimezone(ZoneInfo(timezone))
        added = 0
        while added < MEDIUM_WORKING_DAYS:
            local += timedelta(days=1)
            if local.weekday() < 5:  # Monday–Friday
                added += 1
        return local
    return None


class EscalationTarget(StrEnum):
    DOCTOR = "doctor"
    TEAM_LEAD = "team_lead"


ESCALATION_LADDER = (EscalationTarget.DOCTOR, EscalationTarget.TEAM_LEAD)


def due_escalation(
    status: Status, level: int, ack_due_at: datetime | None, now: datetime
) -> EscalationTarget | None:
    """Who an unacknowledged alert goes to next, if its deadline has passed.

    Each rung gets the same time again: level 1 at the deadline, level 2 one more period
    later (computed by the caller from the tier's period).
    """
    if status not in (Status.OPEN, Status.ESCALATED) or ack_due_at is None:
        return None
    if level >= len(ESCALATION_LADDER) or now < ack_due_at:
        return None
    return ESCALATION_LADDER[level]
