"""Ingest under sharing and faults, on real Mosquitto and TimescaleDB: workers split the
load with each reading stored once; a database outage under load loses nothing."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg

from cloud.db.migrate import migrate
from cloud.ingest.worker import IngestWorker
from cloud.settings import CloudSettings
from devstack.ports import free_port
from devstack.postgres import LocalPostgres
from protocols.messages import ReadingsBatch, encode
from simulators.readings import SimulatedGlucoseMeter
from tests.integration.edge_support import AckedEdge, register_edge

EDGE = "edge-load"


class Publisher(AckedEdge):
    """A simulated edge: publishes batches at a steady pace and collects the acks."""

    def __init__(self, port: int) -> None:
        super().__init__(port, EDGE)
        self.sent: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.meter = SimulatedGlucoseMeter("GLU-LOAD")

    def publish(self, batches: int, per_batch: int, rate_per_s: float) -> None:
        for _ in range(batches):
            readings = [
                r
                for i in range(per_batch)
                for r in self.meter.measure(5.0 + i % 10, patient_id=f"P{i % 50}")
            ]
            batch = ReadingsBatch(
                edge_id=EDGE, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
            )
            self.sent[batch.batch_id] = {r.reading_id for r in readings}
            self.send(encode(batch))
            time.sleep(1 / rate_per_s)

    def wait_all_acked(self, timeout: float) -> None:
        self.wait_for_acks(list(self.sent), timeout)

    def all_ids(self) -> set[uuid.UUID]:
        return set().union(*self.sent.values())


def _worker(url: str, port: int, worker_id: str) -> IngestWorker:
    worker = IngestWorker(
        CloudSettings(
            database_url=url,
            mqtt_port=port,
            ingest_worker_id=worker_id,
            ingest_heartbeat_s=0.5,
            ingest_retry_max_s=2.0,
        )
    )
    worker.start()
    return worker


def _wait_connected(*workers: IngestWorker) -> None:
    deadline = time.monotonic() + 10
    while not all(w.subscribed for w in workers):
        assert time.monotonic() < deadline, "workers did not connect and subscribe"
        time.sleep(0.05)


def _stored(url: str, ids: set[uuid.UUID]) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT reading_id) FROM readings WHERE reading_id = ANY(%s)",
            (list(ids),),
        ).fetchone()


def test_two_workers_share_the_subscription_and_store_each_reading_once(database_url, broker):
    register_edge(database_url, EDGE)
    workers = [_worker(database_url, broker.port, f"w{i}") for i in (1, 2)]
    publisher = Publisher(broker.port)
    try:
        _wait_connected(*workers)
        publisher.publish(batches=200, per_batch=10, rate_per_s=400)
        publisher.wait_all_acked(timeout=30)
    finally:
        publisher.close()
        for w in workers:
            w.stop()
    ids = publisher.all_ids()
    assert _stored(database_url, ids) == (2000, 2000)
    shares = [w.counters["messages"] for w in workers]
    assert all(share > 0 for share in shares), f"one worker got nothing: {shares}"
    assert sum(shares) >= 200


def test_a_database_outage_under_load_loses_nothing_and_stores_nothing_twice(broker):
    server = LocalPostgres.in_tempdir(free_port(), fsync=False)
    server.start()
    publisher = None
    worker = None
    try:
        migrate(server.dsn)
        register_edge(server.dsn, EDGE)
        worker = _worker(server.dsn, broker.port, "w-outage")
        publisher = Publisher(broker.port)
        _wait_connected(worker)
        load = threading.Thread(
            target=publisher.publish, kwargs={"batches": 900, "per_batch": 20, "rate_per_s": 20}
        )
        load.start()
        time.sleep(5)
        acked_before = len(publisher.acked_ids())
        server.stop()
        time.sleep(30)
        acked_during = len(publisher.acked_ids()) - acked_before
        server.start()
        load.join()
        publisher.wait_all_acked(timeout=60)
        ids = publisher.all_ids()
        assert _stored(server.dsn, ids) == (len(ids), len(ids)) == (18000, 18000)
        assert acked_before > 0
        # Nothing is acknowledged while nothing can be stored (a few in-flight flushes aside).
        assert acked_during <= 2
        assert all(not ack.rejected for ack in publisher.acks.values())
    finally:
        if publisher is not None:
            publisher.close()
        if worker is not None:
            worker.stop()
        server.remove()
