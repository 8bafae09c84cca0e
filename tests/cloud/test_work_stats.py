"""Work statistics and the closure summary, over plain rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.programmes import work_stats
from cloud.programmes.closure import DEFAULT_TARGETS, ClosureFacts, build_summary

DUE = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)


def task(action="follow_up_call", status="done", late=timedelta(hours=2), by="cm01", grace=1):
    return {
        "action": action,
        "status": status,
        "due_at": DUE,
        "grace_days": grace,
        "completed_at": DUE + late if status == "done" else None,
        "completed_by": by,
        "patient_id": "P-1",
    }


def test_follow_ups_due_done_on_time_and_overdue():
    tasks = [
        task(),
        task(late=timedelta(days=3)),
        task(status="open"),
        task(status="cancelled"),
        task(action="education", by="system"),
    ]
    counts = work_stats.follow_ups(tasks, DUE + timedelta(days=2, hours=1))
    assert counts == {"due": 3, "done": 2, "done_on_time": 1, "overdue": 1, "done_pct": 66.7}


def test_on_time_means_within_grace_plus_the_due_day():
    assert work_stats.done_on_time(task(late=timedelta(days=1, hours=23)))
    assert not work_stats.done_on_time(task(late=timedelta(days=2)))
    assert not work_stats.is_overdue(task(status="open"), DUE + timedelta(days=1, hours=23))
    assert work_stats.is_overdue(task(status="open"), DUE + timedelta(days=2))


def call(patient, outcome, minute):
    return {
        "patient_id": patient,
        "user_id": "cm01",
        "channel": "call",
        "direction": "outbound",
        "outcome": outcome,
        "at": DUE + timedelta(minutes=minute),
    }


def test_connection_rate_at_call_and_patient_level():
    calls = [
        call("A", "no_answer", 1),
        call("A", "reached", 2),
        call("B", "no_answer", 1),
        call("B", "busy", 2),
        call("B", "no_answer", 3),
        call("B", "reached", 4),  # the fourth try does not count at patient level
        call("C", "reached", 1),
    ]
    rates = work_stats.connection_rates(calls, ["A", "B", "C", "D"])
    assert rates["call_level"] == {"dialled": 7, "answered": 3, "rate_pct": 42.9}
    assert rates["patient_level"] == {"scheduled": 4, "reached": 2, "rate_pct": 50.0}


def test_workload_per_staff_member_leaves_out_automatic_work():
    contacts = [
        call("A", "reached", 1),
        {**call("A", "message_sent", 2), "channel": "app"},
        {**call("A", "message_sent", 3), "channel": "app", "user_id": "system"},
    ]
    assert work_stats.workload([task(), task(by="system"), task(status="open")], contacts) == [
        {"user_id": "cm01", "tasks_done": 1, "calls": 1, "messages": 1}
    ]


def test_time_to_acknowledge_per_tier():
    opened = DUE
    alerts = [
        {"tier": "critical", "opened_at": opened, "acknowledged_at": opened + timedelta(minutes=m)}
        for m in (2, 4, 6, 30)
    ]
    alerts.append({"tier": "critical", "opened_at": opened, "acknowledged_at": None})
    ack = work_stats.acknowledgement_times(alerts)["critical"]
    assert ack == {
        "acknowledged": 4,
        "unacknowledged": 1,
        "median_minutes": 5.0,
        "p90_minutes": 30.0,
    }


def test_adherence_counts_plan_days():
    rows = [
        {"plan_days": 10, "days_measured": 8, "days_complete": 5},
        {"plan_days": 10, "days_measured": 10, "days_complete": 10},
    ]
    assert work_stats.adherence(rows) == {
        "plans": 2,
        "plan_days": 20,
        "days_measured": 18,
        "days_complete": 15,
        "measured_pct": 90.0,
        "complete_pct": 75.0,
    }


def test_closure_summary_reports_targets_reached():
    summary = build_summary(
        ClosureFacts(
            patient_name="张三明",
            programme_name="专病精细化短期管理（2周）",
            enrolled_on="2026-11-02",
            closed_on="2026-11-16",
            readings={"systolic": 26},
            last_week_means={"systolic": 131.26, "diastolic": 86.0},
            alerts_opened=2,
            alerts_closed=2,
            tasks_due=6,
            tasks_done_on_time=5,
            plan_days=14,
            plan_days_measured=13,
            revisits=0,
            targets=DEFAULT_TARGETS,
        )
    )
    assert summary["adherence_pct"] == 92.9
    assert [(t["metric"], t["reached"]) for t in summary["targets"]] == [
        ("diastolic", False),
        ("systolic", True),
    ]
    assert "systolic 近7天均值 131.3（目标 <135）：达标" in summary["text_zh"]
