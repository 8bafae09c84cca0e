"""The pure ingest core: what is accepted, flagged, dead-lettered and acknowledged."""

import json
import uuid
from datetime import UTC, datetime

from cloud.ingest.intake import OVERSIZED_HEAD_BYTES, InboundMessage, take_in
from protocols import topics
from protocols.messages import MAX_EDGE_PAYLOAD_BYTES, ReadingsBatch, encode
from protocols.reading import StatusFlag
from simulators.readings import SimulatedCuff

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _message(readings, edge="edge-1", topic_edge=None):
    batch = ReadingsBatch(edge_id=edge, batch_id=uuid.uuid4(), sent_at=NOW, readings=readings)
    return batch, InboundMessage(topics.readings(topic_edge or edge), encode(batch))


def known(edge_id):
    return edge_id == "edge-1"


def test_a_good_batch_is_accepted_and_acknowledged_by_id():
    readings = SimulatedCuff("C1").measure(128, 82, 70, patient_id="P1", at=NOW)
    batch, message = _message(readings)
    intake = take_in(message, known)
    assert [a.reading for a in intake.accepted] == readings
    assert intake.dead_letters == []
    (ack,) = intake.acks
    assert ack.batch_id == batch.batch_id
    assert ack.stored == [r.reading_id for r in readings]


def test_an_implausible_cuff_value_is_dead_lettered_with_its_reason_and_refused_in_the_ack():
    readings = SimulatedCuff("C1").measure(900, 85, 70, patient_id="P1", at=NOW)
    _, message = _message(readings)
    intake = take_in(message, known)
    systolic, _diastolic, mean_arterial, _pulse = readings
    # The simulated cuff derives MAP from the same bad inflation, so it is refused too.
    assert {d.reading_id for d in intake.dead_letters} == {
        systolic.reading_id,
        mean_arterial.reading_id,
    }
    letter = next(d for d in intake.dead_letters if d.reading_id == systolic.reading_id)
    assert letter.code == "implausible_value"
    assert letter.reason == "systolic 900 is outside what a person can have (40–300)"
    assert letter.reading_id == systolic.reading_id
    assert json.loads(letter.payload)["value"] == 900
    assert systolic.reading_id not in intake.acks[0].stored
    assert {r.reading_id for r in intake.acks[0].rejected} == {
        systolic.reading_id,
        mean_arterial.reading_id,
    }
    # The rest of the measurement is still stored: nothing is lost beyond the bad values.
    assert len(intake.accepted) == 2


def test_an_unusual_value_is_stored_with_a_flag():
    readings = SimulatedCuff("C1").measure(120, 50, 235, patient_id="P1", at=NOW)
    intake = take_in(_message(readings)[1], known)
    pulse = next(a.reading for a in intake.accepted if a.reading.metric == "pulse_rate")
    assert StatusFlag.UNUSUAL_VALUE in pulse.flags


def test_unknown_edge_malformed_json_and_edge_spoofing_are_dead_letters():
    readings = SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1", at=NOW)
    cases = {
        "unknown_edge": _message(readings, edge="edge-x")[1],
        "malformed_message": InboundMessage(topics.readings("edge-1"), b"{not json"),
        "unsupported_version": InboundMessage(topics.readings("edge-1"), b'{"version": 2}'),
        "edge_mismatch": _message(readings, edge="edge-2", topic_edge="edge-1")[1],
        "unknown_topic": InboundMessage("somewhere/else", b"{}"),
    }
    for code, message in cases.items():
        intake = take_in(message, known)
        assert [d.code for d in intake.dead_letters] == [code], code
        assert intake.dead_letters[0].payload == message.payload
        assert intake.accepted == [] and intake.acks == []


def test_an_unexpected_failure_becomes_a_dead_letter_not_a_crash():
    def broken_registry(_edge_id):
        raise RuntimeError("registry exploded")

    readings = SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1", at=NOW)
    intake = take_in(_message(readings)[1], broken_registry)
    assert [d.code for d in intake.dead_letters] == ["internal_error"]
    assert "registry exploded" in intake.dead_letters[0].reason


def test_an_oversized_payload_is_dead_lettered_unparsed_with_its_head_kept():
    readings = SimulatedCuff("C1").measure(128, 82, 70, patient_id="P1", at=NOW)
    _, message = _message(readings)
    # Valid JSON but for its size: it is refused before anything reads it.
    padded = message.payload[:-1] + b" " * MAX_EDGE_PAYLOAD_BYTES + b"}"
    intake = take_in(InboundMessage(message.topic, padded), known)
    assert intake.accepted == []
    assert intake.acks == []
    (letter,) = intake.dead_letters
    assert letter.code == "message_too_large"
    assert letter.edge_id == "edge-1"
    assert f"payload of {len(padded):,} bytes" in letter.reason
    assert letter.payload == padded[:OVERSIZED_HEAD_BYTES]


def test_a_payload_at_the_limit_is_read_as_usual():
    readings = SimulatedCuff("C1").measure(128, 82, 70, patient_id="P1", at=NOW)
    _, message = _message(readings)
    padded = message.payload[:-1] + b" " * (MAX_EDGE_PAYLOAD_BYTES - len(message.payload)) + b"}"
    assert len(padded) == MAX_EDGE_PAYLOAD_BYTES
    intake = take_in(InboundMessage(message.topic, padded), known)
    assert [a.reading for a in intake.accepted] == readings
