"""An ingest worker keeps patients' profiles between flushes, on real Mosquitto and
TimescaleDB: a doctor's target set after the worker read the profile still judges the
next reading, because the database announces the change."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
import pytest

from protocols import topics
from protocols.messages import ReadingsBatch, encode
from protocols.reading import MealContext
from simulators.readings import SimulatedGlucoseMeter
from tests.integration.edge_support import register_edge, start_ingest

EDGE = "edge-profiles"
PATIENT = "P-PROFILE"


def _alert_rules(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT rule_id FROM alerts WHERE patient_id = %s ORDER BY opened_at", (PATIENT,)
        ).fetchall()
    return [r[0] for r in rows]


def _stored_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE patient_id = %s", (PATIENT,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_target_set_after_the_profile_was_read_judges_the_next_reading(database_url, broker):
    register_edge(database_url, EDGE)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO patients (patient_id, name) VALUES (%s, '赵六')", (PATIENT,))
    meter = SimulatedGlucoseMeter("GLU-PROFILE")
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="profile-edge", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", broker.port)
    client.loop_start()

    def publish_fasting(mmol_per_l: float) -> None:
        batch = ReadingsBatch(
            edge_id=EDGE,
            batch_id=uuid.uuid4(),
            sent_at=datetime.now(UTC),
            readings=meter.measure(mmol_per_l, patient_id=PATIENT, meal=MealContext.FASTING),
        )
        info = client.publish(topics.readings(EDGE), encode(batch), qos=1)
        assert info.rc == 0

    worker = start_ingest(database_url, broker.port, "w-profiles")
    try:
        # 8.0 mmol/L fasting is unremarkable for a patient with no cohort and no target.
        publish_fasting(8.0)
        _wait_for(lambda: _stored_count(database_url) == 1, "the first reading")
        assert _alert_rules(database_url) == []
        assert len(worker._profiles) == 1  # the worker now holds this patient's profile

        with psycopg.connect(database_url) as conn:
            conn.execute(
                """INSERT INTO patient_targets (patient_id, metric, low, high, set_by, reason)
                   VALUES (%s, 'glucose', 4.4, 6.5, 'system', 'tighter control')""",
                (PATIENT,),
            )
        publish_fasting(8.0)
        _wait_for(lambda: _stored_count(database_url) == 2, "the second reading")
        assert _alert_rules(database_url) == ["glucose.patient_target"]
    finally:
        worker.stop()
        client.disconnect()
        client.loop_stop()
