from datetime import UTC, datetime, timedelta

import pytest

from cloud.alerts.adherence import HEART_FAILURE_WEIGHT, Stage, missed_stage

START = datetime(2026, 11, 1, tzinfo=UTC)
LAST = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("silent", "stage"),
    [
        (timedelta(days=2) - timedelta(seconds=1), None),
        (timedelta(days=2), Stage.REMIND),
        (timedelta(days=3) - timedelta(seconds=1), Stage.REMIND),
        (timedelta(days=3), Stage.CALL),
        (timedelta(days=7) - timedelta(seconds=1), Stage.CALL),
        (timedelta(days=7), Stage.ESCALATE),
    ],
)
def test_stages_from_the_last_reading(silent, stage):
    assert missed_stage(START, LAST, LAST + silent) is stage


def test_a_new_plan_counts_from_its_start_not_from_old_readings():
    plan_start = LAST + timedelta(days=10)
    assert missed_stage(plan_start, LAST, plan_start + timedelta(days=1)) is None
    assert missed_stage(plan_start, None, plan_start + timedelta(days=3)) is Stage.CALL


def test_heart_failure_weighing_calls_after_two_days():
    assert missed_stage(START, LAST, LAST + timedelta(days=2), HEART_FAILURE_WEIGHT) is Stage.CALL
    assert missed_stage(START, LAST, LAST + timedelta(days=1), HEART_FAILURE_WEIGHT) is (
        Stage.REMIND
    )
