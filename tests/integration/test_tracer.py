"""The tracer bullet on real Mosquitto and TimescaleDB: cuff → edge outbox → MQTT →
ingest → hypertable → alert → API, and the ack back that empties the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from protocols.messages import ReadingsBatch, encode
from simulators.readings import SimulatedCuff
from tests.conftest import bearer, make_user
from tests.integration.edge_support import AckedEdge


async def _eventually(check, what):
    try:
        async with asyncio.timeout(15):
            while not (result := await check()):
                await asyncio.sleep(0.1)  # polling the real API is the point here
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")
    return result


def _register(cloud, edge_id, mode="home"):
    admin = make_user(cloud.env["CAREBRIDGE_DATABASE_URL"], f"admin-{edge_id}", "admin")
    response = httpx.post(
        f"{cloud.base_url}/api/v1/edges",
        headers=bearer(admin),
        json={"edge_id": edge_id, "mode": mode},
    )
    assert response.status_code == 201, response.text
    return admin


async def test_crisis_reading_travels_end_to_end_and_the_ack_empties_the_outbox(
    cloud, broker, database_url, tmp_path
):
    _register(cloud, "edge-tracer")
    settings = EdgeSettings(
        edge_id="edge-tracer",
        mqtt_port=broker.port,
        outbox_path=tmp_path / "outbox.db",
        linger_ms=10,
    )
    readings = SimulatedCuff("CUFF-001").measure(186, 112, 95, patient_id="P-0001")
    stop = asyncio.Event()
    qc = make_user(database_url, "qc-tracer", "qc_supervisor")
    async with (
        Outbox(settings.outbox_path) as outbox,
        httpx.AsyncClient(base_url=cloud.base_url, headers=bearer(qc)) as api,
    ):
        agent = EdgeAgent(settings, outbox, MqttUplink(settings, asyncio.get_running_loop()))
        runner = asyncio.create_task(agent.run(stop))
        try:
            assert await agent.submit(readings) == 4
            assert (await outbox.stats()).pending == 4

            async def alert_listed():
                body = (await api.get("/api/v1/alerts")).json()
                return body["items"] if body["total"] else None

            (alert,) = await _eventually(alert_listed, what="the alert in GET /api/v1/alerts")
            assert alert["patient_id"] == "P-0001"
            assert alert["tier"] == "critical" and alert["status"] == "open"
            assert alert["rule_id"] == "bp.crisis"
            assert set(alert["reading_ids"]) == {
                str(readings[0].reading_id),
                str(readings[1].reading_id),
            }

            async def outbox_empty():
                return (await outbox.stats()).pending == 0

            await _eventually(outbox_empty, what="the ack to remove the readings from the outbox")
        finally:
            stop.set()
            await runner

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT metric, value FROM readings WHERE patient_id = 'P-0001' ORDER BY metric"
        ).fetchall()
        hypertables = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall()
    assert dict(stored) == {
        "diastolic": 112,
        "mean_arterial_pressure": 136.7,
        "pulse_rate": 95,
        "systolic": 186,
    }
    assert ("readings",) in hypertables


@contextlib.contextmanager
def raw_edge(port, edge_id):
    """A bare MQTT client standing in for an edge, to send exactly the bytes a test wants."""
    edge = AckedEdge(port, edge_id)
    try:
        yield edge
    finally:
        edge.close()


def _batch(readings, edge_id):
    return ReadingsBatch(
        edge_id=edge_id, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
    )


def test_the_same_reading_sent_twice_is_stored_once_and_acked_both_times(
    cloud, broker, database_url
):
    """Also proves the ack follows the commit: the rows are there the moment the ack is."""
    _register(cloud, "edge-dup")
    readings = SimulatedCuff("CUFF-DUP").measure(128, 82, 70, patient_id="P-0002")
    with raw_edge(broker.port, "edge-dup") as edge:
        batches = [_batch(readings, "edge-dup") for _ in range(2)]
        for batch in batches:
            edge.send(encode(batch), confirmed=True)
        edge.wait_for_acks(b.batch_id for b in batches)
        first, second = (edge.acks[b.batch_id] for b in batches)
    ids = {r.reading_id for r in readings}
    assert set(first.stored) == ids and set(second.stored) == ids
    with psycopg.connect(database_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM readings WHERE reading_id = ANY(%s)", (list(ids),)
        ).fetchone()
    assert count == 4


def test_an_implausible_value_is_refused_with_its_reason_kept_as_a_dead_letter(cloud, broker):
    admin = _register(cloud, "edge-bad")
    readings = SimulatedCuff("CUFF-BAD").measure(900, 85, 70, patient_id="P-0003")
    with raw_edge(broker.port, "edge-bad") as edge:
        batch = _batch(readings, "edge-bad")
        edge.send(encode(batch), confirmed=True)
        edge.wait_for_acks([batch.batch_id])
        ack = edge.acks[batch.batch_id]
        edge.send(b"{this is not json", confirmed=True)
        response = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = httpx.get(
                f"{cloud.base_url}/api/v1/dead-letters", headers=bearer(admin)
            ).json()
            if response["total"] >= 3:
                break
            time.sleep(0.1)
    systolic = readings[0]
    assert systolic.reading_id in {r.reading_id for r in ack.rejected}
    assert systolic.reading_id not in ack.stored
    letters = {item["reading_id"]: item for item in response["items"]}
    kept = letters[str(systolic.reading_id)]
    assert kept["code"] == "implausible_value"
    assert kept["reason"] == "systolic 900 is outside what a person can have (40–300)"
    assert json.loads(kept["payload"])["value"] == 900
    assert kept["edge_id"] == "edge-bad"
    malformed = [i for i in response["items"] if i["code"] == "malformed_message"]
    assert malformed and malformed[0]["payload"] == "{this is not json"


def test_health_reports_database_with_timescaledb_broker_and_ingest(cloud):
    body = httpx.get(f"{cloud.base_url}/health").json()
    assert body["status"] == "up"
    assert body["database"]["up"] is True
    assert body["database"]["version"].startswith("15")
    assert body["database"]["timescaledb"]
    assert body["broker"]["up"] is True
    assert body["ingest"]["up"] is True
    assert body["ingest"]["workers"][0]["up"] is True


def test_metrics_count_messages_readings_dead_letters_and_acks(cloud, broker):
    _register(cloud, "edge-metrics")
    readings = SimulatedCuff("CUFF-M").measure(900, 85, 70, patient_id="P-0004")
    with raw_edge(broker.port, "edge-metrics") as edge:
        batch = _batch(readings, "edge-metrics")
        edge.send(encode(batch), confirmed=True)
        edge.wait_for_acks([batch.batch_id])
    text = httpx.get(f"{cloud.base_url}/metrics").text
    samples = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("carebridge_") and 'code="implausible_value"' not in line
    }
    assert samples["carebridge_ingest_messages_total"] == 1
    assert samples["carebridge_ingest_readings_total"] == 2  # diastolic and pulse
    assert samples["carebridge_ingest_acks_total"] == 1
    assert 'carebridge_ingest_dead_letters_total{code="implausible_value"' in text
    assert "carebridge_ingest_flush_seconds_bucket" in text
