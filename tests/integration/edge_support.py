"""What the edge and ingest tests share: a registered edge, an ingest worker, a bare edge
that publishes and hears acks, counts in the DB."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from cloud.db import ingest_store
from cloud.ingest.intake import AcceptedReading
from cloud.ingest.worker import IngestWorker
from cloud.settings import CloudSettings
from edge_agent.settings import EdgeSettings
from protocols import topics
from protocols.messages import Ack, EdgeStatus, decode
from protocols.reading import Reading


class AckedEdge:
    """A bare simulated edge on a real broker: publishes on its readings topic and keeps
    the last ack it heard for each batch id."""

    def __init__(self, port: int, edge_id: str) -> None:
        self.edge_id = edge_id
        self.acks: dict[uuid.UUID, Ack] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{edge_id}", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_ack
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topics.acks(edge_id), qos=1)
        self.client.loop_start()

    def _on_ack(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ack = decode(bytes(msg.payload), Ack)
        with self._lock:
            self.acks[ack.batch_id] = ack

    def send(self, payload: bytes, *, confirmed: bool = False) -> None:
        """Publish on the readings topic; `confirmed`: wait for the broker's PUBACK."""
        info = self.client.publish(topics.readings(self.edge_id), payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        if confirmed:
            info.wait_for_publish(10)

    def acked_ids(self) -> set[uuid.UUID]:
        with self._lock:
            return set(self.acks)

    def wait_for_acks(self, batch_ids: Iterable[uuid.UUID], timeout: float = 20) -> None:
        wanted = set(batch_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted <= self.acked_ids():
                return
            time.sleep(0.05)
        missing = len(wanted - self.acked_ids())
        pytest.fail(f"{missing} of {len(wanted)} batches never acknowledged")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def register_edge(database_url: str, edge_id: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO edges (edge_id, mode) VALUES (%s, 'centre')", (edge_id,))


def start_ingest(
    database_url: str, broker_port: int, worker_id: str, **settings: Any
) -> IngestWorker:
    """A started worker, connected and subscribed; `settings` override CloudSettings'."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_port": broker_port,
        "ingest_worker_id": worker_id,
        "ingest_heartbeat_s": 0.5,
        "ingest_retry_max_s": 1.0,
    }
    worker = IngestWorker(CloudSettings(**{**values, **settings}))
    worker.start()
    deadline = time.monotonic() + 10
    while not worker.subscribed:
        assert time.monotonic() < deadline, "ingest worker did not connect and subscribe"
        time.sleep(0.05)
    return worker


def store_readings(
    database_url: str,
    readings: Iterable[Reading],
    edge: str = "edge-1",
    timezone: str = "Asia/Shanghai",
) -> set[uuid.UUID]:
    """Store `readings` as an ingest flush does (rollups and latest values included); the
    ids new to the database."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ingest_store.prepare_connection(conn)
        with conn.transaction():
            return ingest_store.copy_readings(
                conn, [AcceptedReading(edge, r) for r in readings], timezone
            )


def stored(database_url: str, ids: Iterable[uuid.UUID]) -> tuple[int, int]:
    """(rows, distinct reading ids) stored for these readings: equal when none is twice."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT reading_id) FROM readings WHERE reading_id = ANY(%s)",
            (list(ids),),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def fast_edge_settings(
    edge_id: str, workdir: Path, broker_port: int, **extra: object
) -> EdgeSettings:
    """Time compressed: reconnect attempts every few tens of milliseconds."""
    values: dict[str, object] = {
        "edge_id": edge_id,
        "outbox_path": workdir / "outbox.sqlite3",
        "credentials_path": workdir / "credentials.json",
        "mqtt_port": broker_port,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "linger_ms": 5,
        "status_interval_s": 0.5,
        "ack_timeout_s": 5.0,
        "batch_max_readings": 100,
        **extra,
    }
    return EdgeSettings(**values)  # type: ignore[arg-type]


def edge_env(settings: EdgeSettings) -> dict[str, str]:
    """The same settings as `CAREBRIDGE_EDGE_*` variables, for `python -m edge_agent`."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CAREBRIDGE_EDGE_{name.upper()}"] = str(value)
    return env


def retained_status(broker_port: int, edge_id: str, timeout: float = 5.0) -> EdgeStatus:
    """The edge's retained status as a newly connecting subscriber sees it."""
    got: list[EdgeStatus] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(decode(msg.payload, EdgeStatus))
    client.connect("127.0.0.1", broker_port)
    client.subscribe(topics.status(edge_id), qos=1)
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not got:
            assert time.monotonic() < deadline, "no retained status"
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0]


def publish_downlink(broker_port: int, topic: str, payload: bytes, *, retain: bool) -> None:
    """What the cloud does: one QoS 1 message to an edge."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
