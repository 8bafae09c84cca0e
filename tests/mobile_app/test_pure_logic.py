"""The app's pure pieces: plan slots, reminders, codes, cuff progress, sync wording."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from mobile_app.binding import BindingError, parse_code
from mobile_app.plan import DEFAULT_PLAN_TIMES, SlotState, plan_times, today_slots
from mobile_app.reminders import MedicationReminder, due_reminders, parse_time
from mobile_app.viewmodels.history import chart_series
from mobile_app.viewmodels.measure import cuff_progress, sync_key
from protocols.messages import PlannedMeasurement
from protocols.metrics import Metric

NOW = datetime(2026, 3, 14, 21, 0, tzinfo=UTC)


def test_plan_from_the_configuration_or_the_default() -> None:
    planned = [
        PlannedMeasurement(metric=Metric.DIASTOLIC, times=[time(20)], patient_id="P-1"),
        PlannedMeasurement(metric=Metric.SYSTOLIC, times=[time(7, 30)], patient_id="P-1"),
        PlannedMeasurement(metric=Metric.GLUCOSE, times=[time(6, 30)], patient_id="P-1"),
        PlannedMeasurement(metric=Metric.GLUCOSE, times=[time(9)], patient_id="P-2"),
    ]
    assert plan_times(planned, "P-1") == {
        Metric.SYSTOLIC: (time(7, 30), time(20)),
        Metric.GLUCOSE: (time(6, 30),),
    }
    assert plan_times(planned, "P-9") == DEFAULT_PLAN_TIMES


def test_slots_are_done_missed_or_to_do() -> None:
    times = {Metric.SYSTOLIC: (time(8), time(20)), Metric.GLUCOSE: (time(7),)}
    morning = NOW.replace(hour=8, minute=10)
    slots = today_slots(
        times,
        [(Metric.SYSTOLIC, morning), (Metric.SYSTOLIC, morning - timedelta(days=1))],
        NOW.replace(hour=12),
    )
    assert [(s.metric, s.at, s.state) for s in slots] == [
        (Metric.GLUCOSE, time(7), SlotState.TODO),  # the last slot of its metric runs to midnight
        (Metric.SYSTOLIC, time(8), SlotState.DONE),
        (Metric.SYSTOLIC, time(20), SlotState.TODO),
    ]
    late = today_slots(times, [], NOW.replace(hour=19))
    assert [s.state for s in late if s.metric is Metric.SYSTOLIC] == [
        SlotState.MISSED,  # 08:00's slot ended at 18:00
        SlotState.TODO,
    ]


def test_reminders_are_due_once_even_across_a_sleeping_phone() -> None:
    pills = [MedicationReminder("氨氯地平", time(8)), MedicationReminder("二甲双胍", time(19))]
    assert due_reminders(pills, NOW.replace(hour=7, minute=59), NOW.replace(hour=8)) == [pills[0]]
    assert due_reminders(pills, NOW.replace(hour=8), NOW.replace(hour=8, minute=30)) == []
    asleep = due_reminders(pills, NOW - timedelta(days=1, hours=3), NOW)
    assert [r.name for r in asleep] == ["二甲双胍", "氨氯地平", "二甲双胍"]
    assert parse_time("8:05") == time(8, 5) and parse_time("08：30") == time(8, 30)
    with pytest.raises(ValueError):
        parse_time("25:00")


@pytest.mark.parametrize(
    ("entered", "code", "cloud"),
    [
        ("ABCD-2345", "ABCD-2345", None),
        (" abcd 2345 ", "ABCD-2345", None),
        ("abcd2345", "ABCD-2345", None),
        (
            "carebridge://enrol?code=wxyz-9876&cloud=https://care.example.cn",
            "WXYZ-9876",
            "https://care.example.cn",
        ),
    ],
)
def test_codes_as_typed_or_scanned(entered: str, code: str, cloud: str | None) -> None:
    assert parse_code(entered) == (code, cloud)


@pytest.mark.parametrize("entered", ["", "ABC-123", "ABCD-23456", "ABCD_2345!"])
def test_malformed_codes_are_refused_with_a_reason(entered: str) -> None:
    with pytest.raises(BindingError) as refused:
        parse_code(entered)
    assert refused.value.code == "bind_error_format"


def test_cuff_progress_rises_while_inflating_and_finishes_while_deflating() -> None:
    pressures = [70.0, 140.0, 210.0, 150.0, 90.0, 40.0]
    seen = [cuff_progress(pressures[: i + 1]) for i in range(len(pressures))]
    assert seen == sorted(seen) and seen[2] == 0.5 and seen[-1] == 1.0
    assert cuff_progress([]) == 0.0 and cuff_progress([90.0]) == 0.25


def test_sync_state_of_a_measurement() -> None:
    assert sync_key(["acked", "acked"]) == "uploaded"
    assert sync_key(["acked", "in_flight"]) == "waiting"
    assert sync_key(["pending", "rejected"]) == "rejected"
    assert sync_key([]) == "waiting"


def test_chart_points_across_the_period() -> None:
    start = NOW - timedelta(days=7)
    series = chart_series([(NOW, 130.0), (start, 120.0)], start, NOW)
    assert series == [(0.0, 120.0), (1.0, 130.0)]
