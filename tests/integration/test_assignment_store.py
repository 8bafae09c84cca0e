"""Unassigned centre readings on a real TimescaleDB: kept out of rollups and rules until
assigned, then in both exactly as if they had arrived with the patient; conflicts, unknown
ids and bad edge messages answered, never guessed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud.alerts.rules import evaluate
from cloud.db import assignment_store, care_store, ingest_store
from cloud.ingest.intake import AcceptedReading
from protocols import topics
from protocols.messages import AssignmentStatus, MeasurementAssignment, encode
from protocols.reading import Source
from simulators.readings import SimulatedCuff
from tests.conftest import make_user

TZ = "Asia/Shanghai"


@pytest.fixture
def conn(database_url):
    make_user(database_url, "cm-a", "case_manager", ("team-a",))
    with psycopg.connect(database_url, autocommit=True) as connection:
        ingest_store.prepare_connection(connection)
        care_store.create_patient(
            connection, "P-A", "测试", team_id="team-a", case_manager_id="cm-a",
            cohorts=["hypertension"],
        )  # fmt: skip
        connection.execute("INSERT INTO edges (edge_id, mode) VALUES ('edge-a', 'centre')")
        yield connection


def ingest(conn, readings):
    with conn.transaction():
        new = ingest_store.copy_readings(conn, [AcceptedReading("edge-a", r) for r in readings], TZ)
        fresh = [r for r in readings if r.reading_id in new]
        patients = sorted({r.patient_id for r in fresh if r.patient_id})
        profiles = ingest_store.patient_profiles(conn, patients)
        ingest_store.upsert_alerts(conn, evaluate(fresh, profiles=profiles), datetime.now(UTC), TZ)


def count(conn, sql, *params):
    return conn.execute(sql, params).fetchone()[0]


def crisis():
    cuff = SimulatedCuff("CUFF-C", source=Source.CENTRE)
    return cuff.measure(192, 118, 90, patient_id=None, at=datetime.now(UTC) - timedelta(minutes=3))


def test_an_unassigned_crisis_waits_then_alerts_once_assigned(conn):
    readings = crisis()
    ingest(conn, readings)
    assert count(conn, "SELECT count(*) FROM readings WHERE patient_id IS NULL") == 4
    assert count(conn, "SELECT count(*) FROM readings_daily") == 0
    assert count(conn, "SELECT count(*) FROM alerts") == 0
    listed = assignment_store.list_unassigned(conn, edge_id="edge-a")
    (item,) = listed["items"]
    assert item["measurement_id"] == str(readings[0].measurement_id)
    assert item["device"] == {"kind": "blood_pressure_monitor", "model": "SIM-BP-1",
                              "serial": "CUFF-C"}  # fmt: skip
    assert listed["next_before"] is None

    outcome = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-A", via="api", timezone=TZ
    )
    assert outcome.status is AssignmentStatus.ASSIGNED
    assert sorted(outcome.reading_ids) == sorted(r.reading_id for r in readings)
    assert count(conn, "SELECT count(*) FROM readings WHERE patient_id = 'P-A'") == 4
    assert count(conn, "SELECT n FROM readings_daily WHERE patient_id = 'P-A' "
                 "AND metric = 'systolic'") == 1  # fmt: skip
    assert count(conn, "SELECT value FROM patient_latest WHERE patient_id = 'P-A' "
                 "AND metric = 'systolic'") == 192  # fmt: skip
    assert count(conn, "SELECT rule_id FROM alerts WHERE patient_id = 'P-A'") == "bp.crisis"
    assert assignment_store.list_unassigned(conn)["items"] == []

    # The same assignment again changes nothing; another patient is refused.
    again = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-A", via="edge", timezone=TZ
    )
    assert again.status is AssignmentStatus.ASSIGNED
    other = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-OTHER", via="api", timezone=TZ
    )
    assert (other.status, other.patient_id) == (AssignmentStatus.CONFLICT, "P-A")
    assert count(conn, "SELECT n FROM readings_daily WHERE patient_id = 'P-A' "
                 "AND metric = 'systolic'") == 1  # fmt: skip


def test_readings_of_a_measurement_that_arrive_after_its_assignment_join_it(conn):
    readings = crisis()
    ingest(conn, readings[:2])  # the batch ended inside the measurement
    first = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-A", via="api", timezone=TZ
    )
    ingest(conn, readings[2:])
    assert len(assignment_store.list_unassigned(conn)["items"]) == 1
    second = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-A", via="api", timezone=TZ
    )
    assert (len(first.reading_ids), len(second.reading_ids)) == (2, 4)
    assert count(conn, "SELECT count(*) FROM readings WHERE patient_id = 'P-A'") == 4
    assert assignment_store.list_unassigned(conn)["items"] == []


def test_unknown_measurements_and_patients_are_not_found(conn):
    readings = crisis()
    ingest(conn, readings)
    missing = assignment_store.assign_measurement(conn, uuid.uuid4(), "P-A", via="api",
                                                  timezone=TZ)  # fmt: skip
    assert missing.status is AssignmentStatus.NOT_FOUND
    nobody = assignment_store.assign_measurement(
        conn, readings[0].measurement_id, "P-NOBODY", via="api", timezone=TZ
    )
    assert (nobody.status, nobody.reason) == (
        AssignmentStatus.NOT_FOUND,
        "未知患者 / unknown patient",
    )
    assert count(conn, "SELECT count(*) FROM readings WHERE patient_id IS NULL") == 4


def test_pages_of_unassigned_measurements_follow_next_before(conn):
    cuff = SimulatedCuff("CUFF-P", source=Source.CENTRE)
    for minutes in range(5):
        ingest(conn, cuff.measure(120, 80, 70, patient_id=None,
                                  at=datetime.now(UTC) - timedelta(minutes=minutes)))  # fmt: skip
    first = assignment_store.list_unassigned(conn, limit=3)
    second = assignment_store.list_unassigned(
        conn, limit=3, before=datetime.fromisoformat(first["next_before"])
    )
    seen = [i["measurement_id"] for i in first["items"] + second["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert second["next_before"] is None


def test_an_edge_assignment_is_applied_and_bad_ones_become_dead_letters(conn):
    readings = crisis()
    ingest(conn, readings)
    message = MeasurementAssignment(
        edge_id="edge-a",
        assignment_id=uuid.uuid4(),
        measurement_id=readings[0].measurement_id,
        patient_id="P-A",
        staff_id="hm01",
        requested_at=datetime.now(UTC),
    )
    answer = assignment_store.apply_edge_assignment(
        conn, topics.assignments("edge-a"), encode(message), TZ
    )
    assert answer is not None
    edge_id, result = answer
    assert (edge_id, result.status, result.assignment_id) == (
        "edge-a", AssignmentStatus.ASSIGNED, message.assignment_id
    )  # fmt: skip
    assert count(conn, "SELECT staff_id FROM readings WHERE patient_id = 'P-A' LIMIT 1") == "hm01"

    assert assignment_store.apply_edge_assignment(
        conn, topics.assignments("edge-a"), b"{not json", TZ
    ) is None  # fmt: skip
    assert assignment_store.apply_edge_assignment(
        conn, topics.assignments("edge-b"), encode(message), TZ
    ) is None  # fmt: skip
    codes = conn.execute("SELECT code FROM dead_letters ORDER BY dead_letter_id").fetchall()
    assert codes == [("malformed_message",), ("unknown_edge",)]
