"""The clinical sweeps on a real TimescaleDB, with the clock in the test's hands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.alerts.rules import evaluate
from cloud.db import care_store, ingest_store, sweeps
from cloud.ingest.intake import AcceptedReading
from protocols.metrics import Metric
from protocols.reading import DeviceKind, DeviceRef, Reading, Source
from simulators.readings import SimulatedCuff
from tests.conftest import make_user

TZ = "Asia/Shanghai"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def conn(database_url):
    make_user(database_url, "cm-s", "case_manager", ("team-s",))
    with psycopg.connect(database_url, autocommit=True) as connection:
        ingest_store.prepare_connection(connection)
        for patient, cohorts in (
            ("HF-1", ["heart_failure"]),
            ("HT-1", ["hypertension"]),
            ("HT-2", ["hypertension"]),
        ):
            care_store.create_patient(
                connection,
                patient,
                "测试",
                team_id="team-s",
                case_manager_id="cm-s",
                cohorts=cohorts,
            )
        yield connection


def ingest(conn, readings, now=NOW):
    """What an ingest worker does with a flush, minus MQTT."""
    with conn.transaction():
        history = ingest_store.recent_blood_pressure(conn, readings, timedelta(minutes=10))
        new = ingest_store.copy_readings(conn, [AcceptedReading("e", r) for r in readings], TZ)
        fresh = [r for r in readings if r.reading_id in new]
        patients = sorted({r.patient_id for r in fresh if r.patient_id})
        profiles = ingest_store.patient_profiles(conn, patients)
        ingest_store.upsert_alerts(
            conn, evaluate(fresh, history=history, profiles=profiles), now, TZ
        )
        ingest_store.queue_for_trends(conn, patients)


def weigh(kg, at, seq):
    scale = DeviceRef(kind=DeviceKind.WEIGHT_SCALE, model="S", serial="SCALE-1")
    return Reading.create(
        device=scale,
        record_key=f"seq:{seq}",
        metric=Metric.WEIGHT,
        value=kg,
        unit="kg",
        measured_at=at,
        received_at=at,
        source=Source.HOME,
        patient_id="HF-1",
    )


def alerts(conn, patient):
    return conn.execute(
        "SELECT rule_id, tier, status, kind FROM alerts WHERE patient_id = %s ORDER BY rule_id",
        (patient,),
    ).fetchall()


def test_heart_failure_weight_gain_is_found_by_the_trend_sweep(conn):
    for day, kg in enumerate([70.0, 70.6, 71.4, 72.3]):
        ingest(conn, [weigh(kg, NOW - timedelta(days=3 - day), day)])
    assert alerts(conn, "HF-1") == []
    assert sweeps.run_trend_sweep(conn, NOW, TZ) == 1
    assert alerts(conn, "HF-1") == [("weight.hf.gain_3d", "high", "open", "clinical")]
    # The queue was emptied: a second sweep has nothing to do.
    assert sweeps.run_trend_sweep(conn, NOW, TZ) == 0


def test_missed_measurements_remind_then_call_then_escalate(conn):
    conn.execute(
        "INSERT INTO measurement_plans (patient_id, metric, times_per_day, started_at, set_by) "
        "VALUES ('HT-1', 'systolic', 2, %s, 'cm-s')",
        (NOW - timedelta(days=10),),
    )
    cuff = SimulatedCuff("CUFF-HT1")
    ingest(conn, cuff.measure(128, 80, 70, patient_id="HT-1", at=NOW - timedelta(days=2)))
    reminded: list[str] = []
    assert sweeps.run_adherence_sweep(conn, NOW, TZ, remind=reminded.append) == 1
    assert alerts(conn, "HT-1") == [("adherence.systolic", "low", "open", "follow_up")]
    assert reminded == ["HT-1"]
    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=1), TZ, remind=reminded.append)
    assert alerts(conn, "HT-1") == [("adherence.systolic", "medium", "open", "follow_up")]
    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=5), TZ, remind=reminded.append)
    assert alerts(conn, "HT-1") == [("adherence.systolic", "high", "open", "follow_up")]
    assert reminded == ["HT-1"]  # the patient is reminded once, not every sweep


def test_a_single_critical_bp_without_a_repeat_escalates_after_15_minutes(conn):
    lone = SimulatedCuff("CUFF-1").measure(
        186, 100, 80, patient_id="HT-1", at=NOW - timedelta(minutes=1)
    )
    ingest(conn, lone, now=NOW)
    repeated_cuff = SimulatedCuff("CUFF-2")
    ingest(
        conn,
        repeated_cuff.measure(184, 100, 80, patient_id="HT-2", at=NOW - timedelta(minutes=1)),
        now=NOW,
    )
    ingest(
        conn,
        repeated_cuff.measure(182, 98, 80, patient_id="HT-2", at=NOW + timedelta(minutes=5)),
        now=NOW,
    )

    assert sweeps.run_repeat_check(conn, NOW + timedelta(minutes=14)) == 0
    assert sweeps.run_repeat_check(conn, NOW + timedelta(minutes=16)) == 1
    assert [a[2] for a in alerts(conn, "HT-1") if a[0] == "bp.crisis"] == ["escalated"]
    assert [a[2] for a in alerts(conn, "HT-2") if a[0] == "bp.crisis"] == ["open"]
    events = conn.execute(
        "SELECT e.action FROM alert_events e JOIN alerts a USING (alert_id) "
        "WHERE a.patient_id = 'HT-1' ORDER BY e.event_id"
    ).fetchall()
    assert [e[0] for e in events] == ["opened", "no_repeat"]
    assert sweeps.run_repeat_check(conn, NOW + timedelta(minutes=30)) == 0
