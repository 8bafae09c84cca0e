"""A message that cannot be stored, on real Mosquitto and TimescaleDB: it becomes a dead
letter with its raw payload and a refusal to its edge, the messages flushed with it are
stored and acknowledged, and the worker goes on storing what comes after; once the cause
is fixed, replaying the dead letter stores it.

The failure is injected into the rule evaluation (it runs inside the storing transaction)
for one patient: once as the database refusing the batch, once as a bug of our own code —
the case that used to end the writer thread and stall ingest (see git log of worker.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from cloud.db.ingest_store import insert_dead_letters
from cloud.ingest import worker as worker_module
from cloud.ingest.dead_letter_replay import (
    Heard,
    ReplayError,
    Selection,
    replay_dead_letters,
)
from cloud.ingest.intake import InboundMessage, take_in
from cloud.ingest.worker import IngestWorker
from protocols import topics
from protocols.messages import ReadingsBatch, encode
from simulators.readings import SimulatedGlucoseMeter
from tests.integration.edge_support import AckedEdge, register_edge, start_ingest, stored

EDGE = "edge-poison"
POISON_PATIENT = "P-POISON"


class Edge(AckedEdge):
    def __init__(self, port: int) -> None:
        super().__init__(port, EDGE)
        self.meter = SimulatedGlucoseMeter("GLU-POISON")

    def publish(self, patient_id: str) -> tuple[ReadingsBatch, bytes]:
        readings = self.meter.measure(6.1, patient_id=patient_id)
        batch = ReadingsBatch(
            edge_id=EDGE, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
        )
        payload = encode(batch)
        self.send(payload)
        return batch, payload

    def wait_acked(self, batches: list[ReadingsBatch], timeout: float = 20) -> None:
        self.wait_for_acks((b.batch_id for b in batches), timeout)


def _internal_errors(worker: IngestWorker) -> float | None:
    """What the worker's metrics endpoint reports for its own failures."""
    return worker.metrics.registry.get_sample_value(
        "carebridge_ingest_internal_errors_total", {"worker": worker.worker_id}
    )


def _poison_rules(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    real = worker_module.evaluate

    def evaluate(readings, **kwargs):
        if any(r.patient_id == POISON_PATIENT for r in readings):
            raise failure
        return real(readings, **kwargs)

    monkeypatch.setattr(worker_module, "evaluate", evaluate)


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (psycopg.errors.NumericValueOutOfRange("value out of range"), "storage_rejected"),
        (TypeError("a bug of ours"), "internal_error"),
    ],
    ids=["database-refuses", "bug-in-our-code"],
)
def test_a_poison_message_is_dead_lettered_and_the_others_are_stored(
    database_url, broker, monkeypatch, failure, code
):
    register_edge(database_url, EDGE)
    _poison_rules(monkeypatch, failure)
    worker = start_ingest(database_url, broker.port, "w-poison")
    edge = Edge(broker.port)
    try:
        # Published together, so the poison message shares its first flush with the others.
        sent = [edge.publish(p) for p in ("P1", "P2", POISON_PATIENT, "P3", "P4")]
        edge.wait_acked([b for b, _ in sent])
        later, _ = edge.publish("P5")
        edge.wait_acked([later])
        internal_errors = _internal_errors(worker)
        stored_metric = worker.metrics.registry.get_sample_value(
            "carebridge_ingest_readings_new_total", {"worker": worker.worker_id}
        )
        writer_alive = worker._thread is not None and worker._thread.is_alive()
    finally:
        edge.close()
        worker.stop()

    good = [b for b, _ in sent if b.readings[0].patient_id != POISON_PATIENT] + [later]
    poison, poison_payload = next(s for s in sent if s[0].readings[0].patient_id == POISON_PATIENT)
    good_ids = [r.reading_id for b in good for r in b.readings]
    assert stored(database_url, good_ids) == (len(good_ids), len(good_ids))
    assert stored(database_url, [r.reading_id for r in poison.readings]) == (0, 0)
    # Only committed readings count: the flush that failed with the poison message in it
    # was rolled back, and what it had stored then is not stored.
    assert stored_metric == len(good_ids)
    for batch in good:
        assert set(edge.acks[batch.batch_id].stored) == {r.reading_id for r in batch.readings}
    refusal = edge.acks[poison.batch_id]
    assert refusal.stored == []
    assert {r.reading_id for r in refusal.rejected} == {r.reading_id for r in poison.readings}
    assert {r.code for r in refusal.rejected} == {code}

    with psycopg.connect(database_url) as conn:
        letters = conn.execute("SELECT edge_id, code, reason, payload FROM dead_letters").fetchall()
    assert len(letters) == 1
    edge_id, letter_code, reason, payload = letters[0]
    assert (edge_id, letter_code, bytes(payload)) == (EDGE, code, poison_payload)
    assert str(failure) in reason and type(failure).__name__ in reason
    assert writer_alive
    assert internal_errors == (1 if code == "internal_error" else 0)


def test_a_failing_step_outside_a_flush_does_not_stop_the_writer(database_url, broker, monkeypatch):
    register_edge(database_url, EDGE)
    real = worker_module.ingest_store.record_heartbeat
    failed = threading.Event()

    def record_heartbeat(*args, **kwargs):
        if not failed.is_set():
            failed.set()
            raise RuntimeError("heartbeat bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module.ingest_store, "record_heartbeat", record_heartbeat)
    worker = start_ingest(database_url, broker.port, "w-heartbeat")
    edge = Edge(broker.port)
    try:
        assert failed.wait(5)
        batch, _ = edge.publish("P1")
        edge.wait_acked([batch])
        internal_errors = _internal_errors(worker)
    finally:
        edge.close()
        worker.stop()
    assert stored(database_url, [r.reading_id for r in batch.readings]) == (1, 1)
    assert internal_errors == 1


def test_once_the_bug_is_fixed_a_replayed_dead_letter_is_stored_once_and_the_edge_told(
    database_url, broker, monkeypatch
):
    register_edge(database_url, EDGE)
    _poison_rules(monkeypatch, TypeError("a bug of ours"))
    worker = start_ingest(database_url, broker.port, "w-replay")
    edge = Edge(broker.port)
    said: list[str] = []
    try:
        poison, _ = edge.publish(POISON_PATIENT)
        edge.wait_acked([poison])
        assert edge.acks[poison.batch_id].stored == []
        monkeypatch.undo()  # the fix is deployed
        chosen = Selection(codes=["internal_error"])
        first = replay_dead_letters(worker.settings, chosen, wait_s=20, say=said.append)
        again = replay_dead_letters(worker.settings, chosen, wait_s=20, say=said.append)
        forced = replay_dead_letters(
            worker.settings, replace(chosen, again=True), wait_s=20, say=said.append
        )
        deadline = time.monotonic() + 10
        while not edge.acks[poison.batch_id].stored:
            assert time.monotonic() < deadline, "the edge never heard its readings were stored"
            time.sleep(0.05)
    finally:
        edge.close()
        worker.stop()

    ids = [r.reading_id for r in poison.readings]
    assert (first.published, first.all_stored) == (1, True)
    assert first.acked[poison.batch_id] == Heard(stored=len(ids), refused_codes=())
    assert "  dead letter 1: 1 reading(s) stored, 0 refused" in said
    assert again.published == 0
    passed_over = said.index(
        "1 dead letter(s) of these codes were replayed before and are left alone "
        "(--again includes them)"
    )
    assert said[passed_over + 1 : passed_over + 3] == [
        "0 dead letter(s) chosen",
        "nothing to replay",
    ]
    assert (forced.published, forced.all_stored) == (1, True)  # idempotent: stored already
    assert stored(database_url, ids) == (len(ids), len(ids))
    assert set(edge.acks[poison.batch_id].stored) == set(ids)
    with psycopg.connect(database_url) as conn:
        letters = conn.execute(
            "SELECT code, replays, replayed_at IS NOT NULL FROM dead_letters"
        ).fetchall()
    assert letters == [("internal_error", 2, True)]  # kept, with its replays counted


def test_replaying_needs_a_choice_of_letters():
    with pytest.raises(ReplayError, match="by id or by code"):
        Selection()


def test_a_replay_refused_again_unread_is_reported_unanswered_and_counted(database_url, broker):
    register_edge(database_url, EDGE)
    unreadable = InboundMessage(topics.readings(EDGE), b"{not json")
    with psycopg.connect(database_url) as conn:
        insert_dead_letters(conn, take_in(unreadable, lambda _edge: True).dead_letters)
    worker = start_ingest(database_url, broker.port, "w-replay-unread")
    said: list[str] = []
    try:
        outcome = replay_dead_letters(
            worker.settings, Selection(codes=["malformed_message"]), wait_s=2, say=said.append
        )
        deadline = time.monotonic() + 10
        while worker.counters["dead_letters"] == 0:
            assert time.monotonic() < deadline, "the worker never refused the replay"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert (outcome.published, outcome.all_stored, len(outcome.unanswered)) == (1, False, 1)
    assert any("no ack within 2 s — is an ingest worker running?" in line for line in said)
    with psycopg.connect(database_url) as conn:
        letters = conn.execute(
            "SELECT code, replays, repeats FROM dead_letters ORDER BY dead_letter_id"
        ).fetchall()
    # Refused again: a repeat on the letter, or a letter of its own past the hour's turn.
    assert letters[0][:2] == ("malformed_message", 1)
    assert sum(1 + repeats for _code, _replays, repeats in letters) == 2
