"""The edge configuration builder: pure, from plain data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from cloud.programmes.questionnaires import shipped_questionnaires
from cloud.provisioning.edge_config import (
    CentreInputs,
    Device,
    HomeInputs,
    Plan,
    RevisitTask,
    build_edge_config,
    next_issued_at,
    reminder_times,
)
from protocols.messages import EdgeConfig, EdgeMode, decode, encode

TZ = "Asia/Shanghai"
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _home(**inputs: object) -> HomeInputs:
    return HomeInputs(patient_id="P-1", **inputs)  # type: ignore[arg-type]


def test_reminder_times_spread_between_morning_and_evening() -> None:
    assert reminder_times(1) == [time(8)]
    assert reminder_times(2) == [time(8), time(20)]
    assert reminder_times(3) == [time(8), time(14), time(20)]
    assert reminder_times(4) == [time(8), time(12), time(16), time(20)]


def test_a_home_config_has_the_plans_in_force_and_refreshes_when_one_starts_or_ends() -> None:
    plans = [
        Plan("systolic", 2, NOW - timedelta(days=3), NOW + timedelta(days=11)),
        Plan("weight", 1, NOW + timedelta(days=2)),  # not yet
        Plan("glucose", 2, NOW - timedelta(days=30), NOW - timedelta(days=1)),  # ended
    ]
    built = build_edge_config("home-1", _home(plans=plans), issued_at=NOW, now=NOW, timezone=TZ)
    config = built.config
    assert config.mode is EdgeMode.HOME
    assert [(p.metric.value, p.times, p.patient_id) for p in config.measurement_plan] == [
        ("systolic", [time(8), time(20)], "P-1")
    ]
    assert built.refresh_at == NOW + timedelta(days=2)
    assert config.centre_patients == []


def test_revisits_still_to_make_are_reminded_until_their_window_closes() -> None:
    due = datetime(2026, 12, 10, 1, 0, tzinfo=UTC)  # 09:00 local on 10 December
    revisits = [
        RevisitTask(due, 7, "1个月复诊"),
        RevisitTask(due - timedelta(days=30), 7, "早已过期"),
        RevisitTask(due + timedelta(days=60), 7, "已复诊", visited=True),
    ]
    built = build_edge_config(
        "home-1", _home(revisits=revisits), issued_at=NOW, now=NOW, timezone=TZ
    )
    assert [(r.due_on, r.window_days, r.title) for r in built.config.revisits] == [
        (date(2026, 12, 10), 7, "1个月复诊")
    ]
    # The window closes at the end of 17 December, local time.
    assert built.refresh_at == datetime(2026, 12, 17, 16, 0, tzinfo=UTC)


def test_questionnaires_and_home_devices_are_carried_once_and_in_order() -> None:
    forms = shipped_questionnaires()
    htn, hf = forms["htn_follow_up"], forms["hf_follow_up"]
    devices = [
        Device("blood_pressure_monitor", "BP-9", "P-1"),
        Device("blood_pressure_monitor", "BP-9", "P-1"),
    ]
    built = build_edge_config(
        "home-1",
        _home(questionnaires=[htn, hf, htn], devices=devices),
        issued_at=NOW,
        now=NOW,
        timezone=TZ,
    )
    assert [q.questionnaire_id for q in built.config.questionnaires] == [
        "hf_follow_up",
        "htn_follow_up",
    ]
    assert [(b.serial, b.patient_id) for b in built.config.device_bindings] == [("BP-9", "P-1")]
    # It travels: the edge decodes exactly what was built.
    assert decode(encode(built.config), EdgeConfig) == built.config


def test_a_centre_config_lists_its_shared_devices_and_team_patients() -> None:
    inputs = CentreInputs(
        devices=[Device("weight_scale", "SC-2"), Device("blood_pressure_monitor", "BP-1")],
        patients=[("P-2", "李*"), ("P-1", "张*明")],
    )
    built = build_edge_config("centre-1", inputs, issued_at=NOW, now=NOW, timezone=TZ)
    config = built.config
    assert config.mode is EdgeMode.CENTRE
    assert [(b.kind.value, b.serial, b.patient_id) for b in config.device_bindings] == [
        ("blood_pressure_monitor", "BP-1", None),
        ("weight_scale", "SC-2", None),
    ]
    assert [(p.patient_id, p.display_name) for p in config.centre_patients] == [
        ("P-1", "张*明"),
        ("P-2", "李*"),
    ]
    assert config.measurement_plan == [] and built.refresh_at is None


def test_the_hash_ignores_when_it_was_issued_but_not_what_it_says() -> None:
    plan = [Plan("systolic", 2, NOW - timedelta(days=1))]
    first = build_edge_config("home-1", _home(plans=plan), issued_at=NOW, now=NOW, timezone=TZ)
    later = NOW + timedelta(hours=1)
    again = build_edge_config("home-1", _home(plans=plan), issued_at=later, now=later, timezone=TZ)
    assert first.content_hash == again.content_hash
    changed = build_edge_config(
        "home-1",
        _home(plans=[Plan("systolic", 1, NOW - timedelta(days=1))]),
        issued_at=later,
        now=later,
        timezone=TZ,
    )
    assert changed.content_hash != first.content_hash


def test_issued_at_always_moves_forward() -> None:
    assert next_issued_at(NOW, None) == NOW
    assert next_issued_at(NOW, NOW - timedelta(seconds=1)) == NOW
    assert next_issued_at(NOW, NOW) == NOW + timedelta(milliseconds=1)
    # A clock that stepped back still issues after the last one.
    assert next_issued_at(NOW - timedelta(minutes=5), NOW) == NOW + timedelta(milliseconds=1)
