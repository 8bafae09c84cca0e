"""Edges' retained `EdgeStatus` → the `edge_status` table, in the API process.

A plain (not shared) subscription: MQTT v5 brokers never deliver retained messages to
shared subscriptions, and the retained copy is what tells a freshly started cloud which
edges are offline. Every API process writes the same rows; the upsert makes that harmless.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
from psycopg_pool import ConnectionPool

from cloud.db import edge_status_store
from cloud.db.ingest_store import insert_dead_letters
from cloud.ingest.intake import DeadLetter
from cloud.mqtt_client import cloud_client
from cloud.settings import CloudSettings
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import EdgeStatus, decode

log = logging.getLogger("carebridge.edge_status")


class EdgeStatusListener:
    def __init__(self, settings: CloudSettings, pool: ConnectionPool) -> None:
        self._settings = settings
        self._pool = pool
        self._client = cloud_client(settings, f"edge-status-{uuid.uuid4().hex[:12]}")
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)

    def start(self) -> None:
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, 30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the edge status listener", extra={"reason": str(rc)})
            return
        client.subscribe(topics.ALL_STATUS, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # a cleared retained message, not a status
        try:
            self.handle(msg.topic, bytes(msg.payload), datetime.now(UTC))
        except psycopg.Error as exc:
            # Retained and repeated every 30 s: the next one will do.
            log.warning("edge status not stored", extra={"topic": msg.topic, "error": str(exc)})

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> None:
        topic_edge = topics.edge_id_of(topic)
        try:
            status = decode(payload, EdgeStatus)
        except CareBridgeError as exc:
            self._dead_letter(
                DeadLetter(topic, exc.code, exc.reason, payload, topic_edge, resent=True)
            )
            return
        if status.edge_id != topic_edge:
            reason = f"status of {status.edge_id} published under {topic_edge}"
            self._dead_letter(
                DeadLetter(topic, "edge_mismatch", reason, payload, topic_edge, resent=True)
            )
            return
        with self._pool.connection() as conn:
            edge_status_store.record_status(conn, status, received_at)

    def _dead_letter(self, letter: DeadLetter) -> None:
        log.warning("edge status refused", extra={"topic": letter.topic, "code": letter.code})
        with self._pool.connection() as conn:
            insert_dead_letters(conn, [letter])
