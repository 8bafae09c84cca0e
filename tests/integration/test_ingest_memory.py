"""What an ingest worker holds in memory, on real Mosquitto and TimescaleDB: while the
database is stalled its payload budget caps what it takes from the broker, and everything
is stored once when the database moves again; an oversized message ends as a dead letter
keeping only its head."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import psycopg

from cloud.ingest.intake import OVERSIZED_HEAD_BYTES
from cloud.ingest.worker import IngestWorker
from protocols.messages import MAX_EDGE_PAYLOAD_BYTES, ReadingsBatch, encode
from simulators.readings import SimulatedGlucoseMeter
from tests.integration.edge_support import AckedEdge, register_edge, start_ingest, stored

EDGE = "edge-memory"


METER = SimulatedGlucoseMeter("GLU-MEMORY")


def _batch(readings_per_batch: int) -> ReadingsBatch:
    readings = [
        r
        for i in range(readings_per_batch)
        for r in METER.measure(5.0 + i % 10, patient_id=f"P{i % 7}")
    ]
    return ReadingsBatch(
        edge_id=EDGE, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
    )


def _reported_queue_bytes(worker: IngestWorker) -> float | None:
    return worker.metrics.registry.get_sample_value(
        "carebridge_ingest_queue_bytes", {"worker": worker.worker_id}
    )


def test_a_stalled_database_holds_no_more_than_the_budget_and_loses_nothing(database_url, broker):
    register_edge(database_url, EDGE)
    edge = AckedEdge(broker.port, EDGE)
    batches = [_batch(readings_per_batch=10) for _ in range(30)]
    payloads = [encode(b) for b in batches]
    budget = 3 * max(len(p) for p in payloads)
    worker = start_ingest(database_url, broker.port, "w-memory", ingest_queue_max_bytes=budget)
    # Another transaction holds the rollup table, so every flush waits inside the database.
    stall = psycopg.connect(database_url)
    try:
        stall.execute("LOCK TABLE readings_daily IN SHARE MODE")
        for payload in payloads:
            edge.send(payload, confirmed=True)
        deadline = time.monotonic() + 10
        while worker.payload_budget.held_bytes < budget - max(len(p) for p in payloads):
            assert time.monotonic() < deadline, "the worker never filled its budget"
            time.sleep(0.05)
        time.sleep(0.5)  # had it taken more than its budget, it would have by now
        assert worker.payload_budget.held_bytes <= budget
        assert _reported_queue_bytes(worker) == worker.payload_budget.held_bytes
        assert edge.acks == {}  # nothing acknowledged before it is committed
        stall.rollback()
        edge.wait_for_acks({b.batch_id for b in batches}, timeout=30)
    finally:
        stall.close()
        edge.close()
        worker.stop()
    ids = {r.reading_id for b in batches for r in b.readings}
    assert stored(database_url, ids) == (len(ids), len(ids))
    assert worker.payload_budget.peak_bytes <= budget
    assert worker.payload_budget.held_bytes == 0


def test_an_oversized_message_becomes_a_dead_letter_and_the_next_one_is_stored(
    database_url, broker
):
    register_edge(database_url, EDGE)
    edge = AckedEdge(broker.port, EDGE)
    worker = start_ingest(database_url, broker.port, "w-memory", ingest_queue_max_bytes=64 * 1024)
    try:
        good = _batch(readings_per_batch=3)
        huge = encode(good)[:-1] + b" " * MAX_EDGE_PAYLOAD_BYTES + b"}"
        edge.send(huge, confirmed=True)
        edge.send(encode(good), confirmed=True)
        edge.wait_for_acks({good.batch_id}, timeout=20)
    finally:
        edge.close()
        worker.stop()
    with psycopg.connect(database_url) as conn:
        letters = conn.execute("SELECT code, edge_id, reason, payload FROM dead_letters").fetchall()
    ((code, edge_id, reason, payload),) = letters
    assert (code, edge_id) == ("message_too_large", EDGE)
    assert f"payload of {len(huge):,} bytes" in reason
    assert bytes(payload) == huge[:OVERSIZED_HEAD_BYTES]
    ids = {r.reading_id for r in good.readings}
    assert stored(database_url, ids) == (len(ids), len(ids))
    assert worker.payload_budget.held_bytes == 0
