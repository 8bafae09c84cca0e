"""Dead letters an edge will send again, on a real TimescaleDB: repeats within the hour
count on one letter, while letters the edge was answered for are each kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg

from cloud.db.ingest_store import insert_dead_letters
from cloud.ingest.intake import InboundMessage, take_in
from protocols import topics
from protocols.messages import ReadingsBatch, encode
from simulators.readings import SimulatedCuff

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _batch_from(edge_id: str, systolic: int = 128) -> InboundMessage:
    readings = SimulatedCuff(f"C-{edge_id}").measure(systolic, 82, 70, patient_id="P1", at=NOW)
    batch = ReadingsBatch(edge_id=edge_id, batch_id=uuid.uuid4(), sent_at=NOW, readings=readings)
    return InboundMessage(topics.readings(edge_id), encode(batch))


def _store(database_url: str, messages: list[InboundMessage]) -> None:
    # One transaction, so one now(): no turn of the hour can split the letters.
    with psycopg.connect(database_url) as conn:
        for message in messages:
            insert_dead_letters(conn, take_in(message, lambda edge: edge == "known").dead_letters)


def _letters(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT edge_id, code, repeats, last_repeat_at IS NOT NULL FROM dead_letters "
            "ORDER BY dead_letter_id"
        ).fetchall()


def test_an_unanswered_edge_resending_adds_no_copies_within_the_hour(database_url):
    first = _batch_from("gone")
    resends = [_batch_from("gone") for _ in range(4)]  # new batch ids, as an outbox resends
    broken = [InboundMessage(topics.readings("known"), b"{not json" + bytes([n])) for n in (1, 2)]
    _store(database_url, [first, *resends, *broken, _batch_from("other")])
    assert _letters(database_url) == [
        ("gone", "unknown_edge", 4, True),
        ("known", "malformed_message", 1, True),
        ("other", "unknown_edge", 0, False),
    ]
    with psycopg.connect(database_url) as conn:
        (payload,) = conn.execute("SELECT payload FROM dead_letters LIMIT 1").fetchone()
    assert bytes(payload) == first.payload  # the first one kept whole


def test_readings_refused_in_an_acknowledged_batch_are_each_kept(database_url):
    # The edge is told of these in its ack and never resends them: none is a repeat.
    _store(database_url, [_batch_from("known", systolic=900), _batch_from("known", systolic=901)])
    letters = _letters(database_url)
    assert len(letters) == 4  # systolic and mean arterial pressure of each measurement
    assert {letter[1:] for letter in letters} == {("implausible_value", 0, False)}
