"""Which days' rollups can be checked: only those whose raw readings are all still kept."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from cloud.readings.rollup_days import DayRange, RollupRangeError, first_complete_day, plan_check

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_readings_dropped_up_to_local_midnight_leave_that_whole_day():
    until = datetime(2026, 11, 20, tzinfo=SHANGHAI)
    assert first_complete_day(until, SHANGHAI) == date(2026, 11, 20)


def test_readings_dropped_up_to_within_a_day_leave_only_the_next_whole():
    # One-day chunks end at UTC midnight: 08:00 in Shanghai, so the 20th's first eight
    # hours went with the dropped chunk.
    until = datetime(2026, 11, 20, tzinfo=UTC)
    assert first_complete_day(until, SHANGHAI) == date(2026, 11, 21)


def test_readings_never_dropped_leave_every_day_whole():
    assert first_complete_day(None, SHANGHAI) is None
    plan = plan_check(DayRange(date(2020, 1, 1), date(2020, 1, 2)), None)
    assert plan.skipped is None and len(plan.slices) == 2


def test_days_before_the_first_complete_one_are_skipped_and_said_so():
    plan = plan_check(DayRange(date(2026, 11, 1), date(2026, 11, 5)), date(2026, 11, 3))
    assert plan.skipped == DayRange(date(2026, 11, 1), date(2026, 11, 2))
    assert [str(s) for s in plan.slices] == ["2026-11-03", "2026-11-04", "2026-11-05"]


def test_slices_cover_the_range_once_the_last_one_short():
    plan = plan_check(DayRange(date(2026, 11, 1), date(2026, 11, 8)), date(2026, 1, 1), 3)
    assert plan.skipped is None
    assert [str(s) for s in plan.slices] == [
        "2026-11-01…2026-11-03",
        "2026-11-04…2026-11-06",
        "2026-11-07…2026-11-08",
    ]
    assert sum(s.days for s in plan.slices) == 8


@pytest.mark.parametrize(
    ("asked", "complete_from", "says"),
    [
        (DayRange(date(2026, 11, 5), date(2026, 11, 1)), date(2026, 1, 1), "ends"),
        (DayRange(date(2026, 11, 1), date(2026, 11, 2)), date(2026, 11, 3), "complete only"),
    ],
)
def test_a_range_with_nothing_to_check_is_refused_with_the_reason(asked, complete_from, says):
    with pytest.raises(RollupRangeError) as refused:
        plan_check(asked, complete_from)
    assert says in refused.value.reason
    assert refused.value.code == "rollup_range"
