"""The ingest worker: MQTT v5 shared subscription in, TimescaleDB out, acks after commit.

Threads: paho's network thread only queues messages; one writer thread takes them in,
flushes a batch per transaction and then, only after the commit, publishes the edges' acks
and sends the PUBACKs. Memory is bounded three ways: the broker sends at most `Receive
Maximum` unacknowledged messages, the in-memory queue has a fixed size, and the payloads
held at once have a byte budget (`PayloadBudget`).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel

from cloud.alerts.rules import SESSION_WINDOW, evaluate
from cloud.db import assignment_store, edge_answers, ingest_store, reading_notify
from cloud.ingest.intake import DeadLetter, InboundMessage, Intake, PendingAck, take_in
from cloud.ingest.metrics import IngestMetrics
from cloud.ingest.payload_budget import PayloadBudget
from cloud.ingest.profile_cache import PROFILE_CHANNEL, ProfileCache
from cloud.ingest.resent_copies import first_of_each_id
from cloud.mqtt_client import cloud_client
from cloud.settings import CloudSettings
from protocols import topics
from protocols.messages import Ack, RejectedReading, encode

log = logging.getLogger("carebridge.ingest")

T = TypeVar("T")

_SESSION_EXPIRY_S = 7 * 24 * 3600
_SUBSCRIPTIONS = (
    topics.shared(topics.ALL_READINGS),
    topics.shared(topics.ALL_ASSIGNMENTS),
    topics.shared(topics.ALL_QUESTIONNAIRE_ANSWERS),
)
_EDGE_CACHE_S = 5.0


@dataclass(frozen=True)
class _Queued:
    message: InboundMessage
    generation: int
    """Which broker connection delivered it; a PUBACK is only valid on that connection."""
    arrived: float
    """time.monotonic() when paho handed it over."""


def refused_subscriptions(requested: Sequence[str], answers: Sequence[ReasonCode]) -> str | None:
    """What a SUBACK refused of the `requested` topic filters, for an operator; None when it
    granted them all. A broker refuses what the worker's account may not read (EMQX, HiveMQ,
    Mosquitto's dynamic-security plugin; Mosquitto's ACL file grants and then delivers
    nothing)."""
    if len(answers) != len(requested):
        return f"the broker answered {len(answers)} of {len(requested)} subscriptions"
    pairs = zip(requested, answers, strict=True)
    refused = [f"{topic} ({code})" for topic, code in pairs if code.is_failure]
    return "the broker refused " + ", ".join(refused) if refused else None


class IngestWorker:
    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self.worker_id = settings.ingest_worker_id
        self.counters = {"messages": 0, "readings": 0, "dead_letters": 0, "acks": 0}
        """Totals for the heartbeat row (what /health lists per worker)."""
        self.metrics = IngestMetrics(self.worker_id)
        self.started_at = datetime.now(UTC)
        self._queue: queue.Queue[_Queued] = queue.Queue(settings.ingest_queue_max_messages)
        self._requests: queue.Queue[_Queued] = queue.Queue()
        """Edges' requests (assignments, questionnaire answers): few, applied one by one."""
        self.payload_budget = PayloadBudget(settings.ingest_queue_max_bytes)
        self.metrics.queue_bytes.set_function(lambda: self.payload_budget.held_bytes)
        self._stop = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self.subscription_problem: str | None = None
        """Why the broker refused a subscription, until it grants them all."""
        self._db_up = threading.Event()
        self._edges: dict[str, tuple[bool, float]] = {}
        self._profiles = ProfileCache(
            max_patients=settings.ingest_profile_cache_patients,
            max_age_s=settings.ingest_profile_max_age_s,
        )
        self._conn: psycopg.Connection | None = None
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # --- MQTT side (paho's thread) -------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = cloud_client(self.settings, self.worker_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        return client

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused the connection", extra={"reason": str(rc)})
            return
        self._generation += 1
        self.metrics.broker_up.set(1)
        self._subscribed.clear()
        # One SUBSCRIBE for all, so one SUBACK says whether this worker can take its share.
        _rc, self._subscribe_mid = client.subscribe([(topic, 1) for topic in _SUBSCRIPTIONS])
        self._connected.set()
        log.info("connected to broker", extra={"worker": self.worker_id})

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reason_codes: list[ReasonCode], _p: object
    ) -> None:
        if mid != self._subscribe_mid:
            return
        self.subscription_problem = refused_subscriptions(_SUBSCRIPTIONS, reason_codes)
        if self.subscription_problem is not None:
            # Connected but deaf: /health reports this worker down and why, instead of a
            # worker that looks well and never receives a reading.
            self.metrics.subscribed.set(0)
            log.error(
                "broker refused subscriptions",
                extra={"worker": self.worker_id, "problem": self.subscription_problem},
            )
            return
        self.metrics.subscribed.set(1)
        self._subscribed.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        self.metrics.broker_up.set(0)
        self.metrics.subscribed.set(0)
        log.warning("disconnected from broker", extra={"reason": str(rc)})

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.payload_budget.take(len(msg.payload))
        item = _Queued(
            InboundMessage(msg.topic, msg.payload, msg.mid), self._generation, time.monotonic()
        )
        if _request_handler(msg.topic) is not None:
            self._requests.put(item)
            return
        # Blocks paho's thread when full; the broker's Receive Maximum keeps this rare.
        self._queue.put(item)

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _SESSION_EXPIRY_S
        props.ReceiveMaximum = min(self.settings.ingest_queue_max_messages, 65535)
        self._client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        self._thread = threading.Thread(
            target=self._run, name=f"ingest-{self.worker_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.payload_budget.close()
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    @property
    def broker_connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """Connected, and the broker granted every subscription: receiving its share."""
        return self._subscribed.is_set()

    @property
    def database_connected(self) -> bool:
        return self._db_up.is_set()

    # --- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        last_beat = 0.0
        reported: bool | None = None
        while not self._stop.is_set():
            try:
                # A beat at once when the subscriptions are granted or lost, so /health
                # follows what this worker can receive without waiting out the interval.
                since = time.monotonic() - last_beat
                if since >= self.settings.ingest_heartbeat_s or reported != self.subscribed:
                    last_beat = time.monotonic()
                    reported = self.subscribed
                    self._with_db(self._heartbeat)
                self._apply_requests()
                batch: list[_Queued] = []
                try:
                    intake = self._collect(batch)
                    if batch:
                        self._flush(batch, intake)
                finally:
                    # Flushed or not (a bug), the writer lets go of these payloads: an
                    # unflushed one is redelivered by the broker, never PUBACKed here.
                    self.payload_budget.give_back(sum(len(i.message.payload) for i in batch))
            except Exception:
                # A bug must not end the only thread that stores and acknowledges. Whatever
                # the failed step held stays unacknowledged: the broker sends it again on the
                # next connection, and the idempotent insert absorbs a repeat.
                log.exception("ingest writer step failed; carrying on")
                self.metrics.internal_errors.inc()
                time.sleep(0.5)

    def _collect(self, batch: list[_Queued]) -> Intake:
        """Wait for a first message, then gather more into `batch` until the linger ends or
        the batch is full; return what the gathered messages hold.

        The linger counts from when the first message arrived, not from now: one that waited
        in the queue through the previous flush has lingered already, so the next flush
        takes whatever is queued and starts at once."""
        intake = Intake()
        try:
            first = self._queue.get(timeout=self.settings.ingest_heartbeat_s)
        except queue.Empty:
            return intake
        deadline = first.arrived + self.settings.ingest_linger_ms / 1000
        item: _Queued | None = first
        while item is not None:
            batch.append(item)
            intake.extend(take_in(item.message, self._is_known_edge))
            if len(intake.accepted) >= self.settings.ingest_batch_max_readings:
                break
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                item = None
        return intake

    def _flush(self, batch: list[_Queued], intake: Intake) -> None:
        started = time.monotonic()
        try:
            stored = self._with_db(lambda conn: self._store(conn, intake), retry_forever=True)
        except Exception as exc:
            # Not the connection but something in this batch, refused by the database or
            # tripping a bug of ours: find the message by storing each on its own, so one
            # poison message cannot hold back the others, and keep it as a dead letter.
            if len(batch) > 1:
                for item in batch:
                    self._flush([item], take_in(item.message, self._is_known_edge))
                return
            if not isinstance(exc, psycopg.Error):
                log.exception("storing a message failed", extra={"topic": batch[0].message.topic})
                self.metrics.internal_errors.inc()
            intake = _refused_by_storage(batch[0].message, intake, exc)
            stored = self._with_db(lambda conn: self._store(conn, intake), retry_forever=True)
        # Counted once committed: a transaction rolled back and retried stored nothing.
        self.metrics.stored.inc(stored or 0)
        for pending in intake.acks:
            ack = Ack(
                batch_id=pending.batch_id,
                stored=pending.stored,
                rejected=pending.rejected,
                acked_at=datetime.now(UTC),
            )
            self._client.publish(topics.acks(pending.edge_id), encode(ack), qos=1)
        for item in batch:
            # A PUBACK on a newer connection would acknowledge some other message; the broker
            # redelivers this one instead, and the idempotent insert absorbs the repeat.
            if item.generation == self._generation:
                self._client.ack(item.message.mid, 1)
        self._count(batch, intake, started)

    def _count(self, batch: list[_Queued], intake: Intake, started: float) -> None:
        now = time.monotonic()
        self.counters["messages"] += len(batch)
        self.counters["readings"] += len(intake.accepted)
        self.counters["dead_letters"] += len(intake.dead_letters)
        self.counters["acks"] += len(intake.acks)
        m = self.metrics
        m.messages.inc(len(batch))
        m.readings.inc(len(intake.accepted))
        m.acks.inc(len(intake.acks))
        for letter in intake.dead_letters:
            m.dead_letters.labels(worker=self.worker_id, code=letter.code).inc()
        m.batch_readings.observe(len(intake.accepted))
        m.flush_seconds.observe(now - started)
        for item in batch:
            m.lag_seconds.observe(now - item.arrived)
        m.queue_depth.set(self._queue.qsize())

    def _store(self, conn: psycopg.Connection, intake: Intake) -> int:
        """Store a flush in one transaction; how many of its readings were new."""
        with conn.transaction():
            incoming = [a.reading for a in intake.accepted]
            # Read before inserting, so the batch's own rows do not come back as history.
            history = ingest_store.recent_blood_pressure(conn, incoming, SESSION_WINDOW)
            new_ids = ingest_store.copy_readings(conn, intake.accepted, self.settings.timezone)
            ingest_store.insert_dead_letters(conn, intake.dead_letters)
            # Two copies of one record in a flush: only the first was stored.
            stored_now = first_of_each_id(intake.accepted)
            fresh = [a.reading for a in stored_now if a.reading.reading_id in new_ids]
            patients = sorted({r.patient_id for r in fresh if r.patient_id})
            profiles = self._profiles.profiles(
                patients, lambda missing: ingest_store.patient_profiles(conn, missing)
            )
            candidates = evaluate(fresh, history=history, profiles=profiles)
            ingest_store.queue_for_trends(conn, patients)
            ingest_store.upsert_alerts(conn, candidates, datetime.now(UTC), self.settings.timezone)
            reading_notify.announce(conn, reading_notify.centre_counts(stored_now, new_ids))
        return len(fresh)

    def _apply_requests(self) -> None:
        while not self._requests.empty():
            item = self._requests.get_nowait()
            try:
                self._apply_request(item)
            finally:
                self.payload_budget.give_back(len(item.message.payload))

    def _apply_request(self, item: _Queued) -> None:
        message = item.message
        handler = _request_handler(message.topic)
        assert handler is not None  # only such topics are queued here
        apply, result_topic = handler
        try:
            answer = self._with_db(
                lambda conn, m=message, f=apply: f(
                    conn, m.topic, m.payload, self.settings.timezone
                ),
                retry_forever=True,
            )
        except Exception as exc:
            # The edge sends it again until it hears back; one bad one must not stop ingest.
            log.error(
                "edge request failed",
                extra={"topic": message.topic, "error": f"{type(exc).__name__}: {exc}"},
                exc_info=not isinstance(exc, psycopg.Error),
            )
            answer = None
        if answer is not None:
            edge_id, result = answer
            self._client.publish(result_topic(edge_id), encode(result), qos=1)
        if item.generation == self._generation:
            self._client.ack(message.mid, 1)

    def _heartbeat(self, conn: psycopg.Connection) -> None:
        ingest_store.record_heartbeat(
            conn,
            self.worker_id,
            self.started_at,
            self.counters,
            subscribed=self.subscribed,
            broker_problem=self.subscription_problem,
        )

    def _is_known_edge(self, edge_id: str) -> bool:
        cached = self._edges.get(edge_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        known = self._with_db(
            lambda conn: ingest_store.is_known_edge(conn, edge_id), retry_forever=True
        )
        self._edges[edge_id] = (bool(known), time.monotonic() + _EDGE_CACHE_S)
        return bool(known)

    def _with_db(
        self, action: Callable[[psycopg.Connection], T], *, retry_forever: bool = False
    ) -> T | None:
        """Run `action(conn)`; on a lost database, reconnect with jittered backoff."""
        delay = 0.2
        while True:
            try:
                conn = self._connection()
                result = action(conn)
                self._db_up.set()
                self.metrics.database_up.set(1)
                return result
            except psycopg.OperationalError as exc:
                self._db_up.clear()
                self.metrics.database_up.set(0)
                self._drop_connection()
                if not retry_forever or self._stop.is_set():
                    log.warning("database unavailable", extra={"error": str(exc)})
                    return None
                log.warning(
                    "database unavailable, retrying", extra={"error": str(exc), "retry_s": delay}
                )
                time.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.settings.ingest_retry_max_s)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            # Autocommit, so `conn.transaction()` in `_store` is a real BEGIN/COMMIT: were a
            # lookup to leave an implicit transaction open, it would become a savepoint and
            # the ack would go out before anything was durable.
            self._conn = psycopg.connect(
                self.settings.database_url, connect_timeout=5, autocommit=True
            )
            ingest_store.prepare_connection(self._conn)
            self._listen_for_profile_changes(self._conn)
        return self._conn

    def _listen_for_profile_changes(self, conn: psycopg.Connection) -> None:
        """Hear changes to patient profiles on this connection (psycopg calls the handler
        in this thread, while it runs a statement), and forget whatever was announced
        while there was none."""

        def hear(notice: psycopg.Notify) -> None:
            if notice.channel == PROFILE_CHANNEL:
                self._profiles.hear(notice.payload)

        conn.add_notify_handler(hear)
        conn.execute(f"LISTEN {PROFILE_CHANNEL}")
        self._profiles.forget_all()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
        self._conn = None


ApplyRequest = Callable[[psycopg.Connection, str, bytes, str], tuple[str, BaseModel] | None]


def _request_handler(topic: str) -> tuple[ApplyRequest, Callable[[str], str]] | None:
    """For an edge's request topic: the store function that applies it, and the topic its
    answer goes back on."""
    if topics.is_assignments(topic):
        return assignment_store.apply_edge_assignment, topics.assignment_results
    if topics.is_questionnaire_answers(topic):
        return edge_answers.apply_edge_answers, topics.questionnaire_answer_results
    return None


def _refused_by_storage(message: InboundMessage, intake: Intake, exc: Exception) -> Intake:
    """The message as a dead letter, and an ack telling its edge not to resend it.

    The database refusing it is `storage_rejected`; anything else is a bug of ours,
    `internal_error`, and the dead letter keeps the raw payload to store again once fixed."""
    if isinstance(exc, psycopg.Error):
        code, cause = "storage_rejected", "the database refused the batch"
    else:
        code, cause = "internal_error", "storing the batch failed"
    reason = f"{cause}: {type(exc).__name__}: {exc}".strip()
    letter = DeadLetter(
        message.topic, code, reason, message.payload, edge_id=topics.edge_id_of(message.topic)
    )
    acks = [
        PendingAck(
            p.edge_id,
            p.batch_id,
            stored=[],
            rejected=[
                *p.rejected,
                *(
                    RejectedReading(reading_id=rid, index=0, code=code, reason=reason)
                    for rid in p.stored
                ),
            ],
        )
        for p in intake.acks
    ]
    return Intake(dead_letters=[letter], acks=acks)
