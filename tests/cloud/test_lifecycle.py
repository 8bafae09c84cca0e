from datetime import UTC, datetime, timedelta

import pytest

from cloud.alerts.lifecycle import (
    Action,
    EscalationTarget,
    Outcome,
    Status,
    TransitionError,
    ack_deadline,
    due_escalation,
    transition,
)
from cloud.alerts.thresholds import Tier

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday, 17:00 in Shanghai


def test_the_usual_path_from_open_to_resolved():
    assert transition(Status.OPEN, Action.ACKNOWLEDGE).to_status is Status.ACKNOWLEDGED
    assert transition(Status.ACKNOWLEDGED, Action.START).to_status is Status.IN_PROGRESS
    done = transition(Status.IN_PROGRESS, Action.RESOLVE, outcome=Outcome.DOCTOR_INFORMED)
    assert (done.from_status, done.to_status) == (Status.IN_PROGRESS, Status.RESOLVED)


@pytest.mark.parametrize(
    ("status", "action", "outcome", "note", "message"),
    [
        (
            Status.RESOLVED,
            Action.ACKNOWLEDGE,
            None,
            "",
            "cannot acknowledge an alert that is resolved",
        ),
        (Status.OPEN, Action.RESOLVE, Outcome.DOCTOR_INFORMED, "", "cannot resolve"),
        (Status.ACKNOWLEDGED, Action.RESOLVE, None, "", "needs an outcome code"),
        (Status.ACKNOWLEDGED, Action.DISMISS, Outcome.SENT_TO_CLINIC, "", "not sent_to_clinic"),
        (Status.ACKNOWLEDGED, Action.RESOLVE, Outcome.FALSE_ALARM, "", "is a dismissal"),
        (Status.OPEN, Action.ESCALATE, None, " ", "needs a note"),
    ],
)
def test_refused_transitions_say_why(status, action, outcome, note, message):
    with pytest.raises(TransitionError, match=message):
        transition(status, action, outcome=outcome, note=note)


def test_a_false_alarm_is_dismissed_from_any_open_state():
    for status in (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS, Status.ESCALATED):
        assert transition(status, Action.DISMISS, outcome=Outcome.FALSE_ALARM).to_status is (
            Status.DISMISSED
        )


def test_acknowledgement_deadlines_per_tier():
    tz = "Asia/Shanghai"
    assert ack_deadline(Tier.CRITICAL, T0, tz) == T0 + timedelta(minutes=15)
    assert ack_deadline(Tier.HIGH, T0, tz) == T0 + timedelta(hours=4)
    # Friday + 2 working days = Tuesday, same hour.
    assert ack_deadline(Tier.MEDIUM, T0, tz) == T0 + timedelta(days=4)
    assert ack_deadline(Tier.LOW, T0, tz) is None


def test_escalation_ladder_doctor_then_team_lead_then_nothing():
    due = T0 + timedelta(minutes=15)
    assert due_escalation(Status.OPEN, 0, due, due - timedelta(seconds=1)) is None
    assert due_escalation(Status.OPEN, 0, due, due) is EscalationTarget.DOCTOR
    assert due_escalation(Status.ESCALATED, 1, due, due) is EscalationTarget.TEAM_LEAD
    assert due_escalation(Status.ESCALATED, 2, due, due) is None
    assert due_escalation(Status.ACKNOWLEDGED, 0, due, due) is None
