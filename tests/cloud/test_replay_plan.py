"""Which dead letters can be replayed, and as which messages."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from cloud.ingest.replay_plan import KeptLetter, plan_replays
from protocols import topics
from protocols.messages import MAX_READINGS_PER_BATCH, ReadingsBatch, encode, split_readings_batch
from simulators.readings import SimulatedCuff

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
FIXED_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def _item_letters(edge_id: str, first_id: int, count: int = 4) -> tuple[list[KeptLetter], list]:
    readings = SimulatedCuff(f"C-{edge_id}").measure(128, 82, 70, patient_id="P1", at=NOW)
    readings = (readings * count)[:count]
    letters = [
        KeptLetter(
            first_id + i,
            topics.readings(edge_id),
            "implausible_value",
            i,
            # As dead letters keep them: the item's JSON, non-ASCII unescaped.
            json.dumps(json.loads(r.model_dump_json()), ensure_ascii=False).encode(),
        )
        for i, r in enumerate(readings)
    ]
    return letters, readings


def test_a_whole_kept_message_is_replayed_as_it_was_with_its_batch_id():
    readings = SimulatedCuff("C1").measure(128, 82, 70, patient_id="P1", at=NOW)
    batch = ReadingsBatch(edge_id="e1", batch_id=uuid.uuid4(), sent_at=NOW, readings=readings)
    payload = encode(batch)
    letter = KeptLetter(7, topics.readings("e1"), "internal_error", None, payload)
    (replay,), refused = plan_replays([letter], NOW)
    assert refused == []
    assert (replay.topic, replay.payload, replay.batch_id) == (
        letter.topic,
        payload,
        batch.batch_id,
    )
    assert (replay.dead_letter_ids, replay.edge_id) == ((7,), "e1")


def test_a_kept_message_too_broken_to_name_its_batch_is_replayed_without_one():
    letter = KeptLetter(3, topics.readings("e1"), "malformed_message", None, b'{"batch_id": 1')
    (replay,), _ = plan_replays([letter], NOW)
    assert replay.batch_id is None
    assert replay.payload == b'{"batch_id": 1'


def test_kept_readings_of_one_edge_go_back_together_in_a_new_valid_batch():
    letters, readings = _item_letters("e1", first_id=10)
    (replay,), refused = plan_replays(letters, NOW, new_batch_id=lambda: FIXED_ID)
    assert refused == []
    assert replay.dead_letter_ids == (10, 11, 12, 13)
    assert replay.batch_id == FIXED_ID
    split = split_readings_batch(replay.payload)
    assert split.rejected == []
    assert (split.header.edge_id, split.header.batch_id, split.header.sent_at) == (
        "e1",
        FIXED_ID,
        NOW,
    )
    assert split.readings == readings
    for letter in letters:  # the kept bytes themselves, not a re-encoding
        assert letter.payload in replay.payload


def test_kept_readings_are_batched_per_edge_and_never_beyond_a_batchs_limit():
    many, _ = _item_letters("e1", first_id=1, count=MAX_READINGS_PER_BATCH + 1)
    other, _ = _item_letters("e2", first_id=5000, count=2)
    replays, _ = plan_replays([*many, *other], NOW)
    assert [(r.edge_id, len(r.dead_letter_ids)) for r in replays] == [
        ("e1", MAX_READINGS_PER_BATCH),
        ("e1", 1),
        ("e2", 2),
    ]
    assert len({r.batch_id for r in replays}) == 3
    for replay in replays:
        assert len(split_readings_batch(replay.payload).readings) == len(replay.dead_letter_ids)


def test_what_cannot_be_replayed_is_said_with_its_reason():
    letters = [
        KeptLetter(1, topics.assignments("e1"), "schema_violation", None, b"{}"),
        KeptLetter(2, "somewhere/else", "unknown_topic", None, b"{}"),
        KeptLetter(3, topics.readings("e1"), "message_too_large", None, b"{" * 100),
    ]
    replays, refused = plan_replays(letters, NOW)
    assert replays == []
    reasons = {r.dead_letter_id: r.reason for r in refused}
    assert reasons[1] == reasons[2]
    assert "resends its own requests" in reasons[1]
    assert reasons[3] == "only the head of the message was kept"
