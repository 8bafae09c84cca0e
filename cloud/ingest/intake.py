"""The pure core of ingest: from MQTT messages to rows to store, dead letters and acks.

No I/O here, so every rule about what is accepted, flagged or refused is tested directly.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cloud.ingest.fast_decode import decode_readings_batch
from protocols import topics
from protocols.errors import CareBridgeError, ImplausibleValueError
from protocols.messages import RejectedReading, refuse_oversized, split_readings_batch
from protocols.plausibility import Verdict, assess_measurement, with_unusual_flag
from protocols.reading import Reading

OVERSIZED_HEAD_BYTES = 64 * 1024
"""How much of an oversized payload its dead letter keeps: enough to see what it was."""


@dataclass(frozen=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int = 0


@dataclass(frozen=True)
class AcceptedReading:
    edge_id: str
    reading: Reading


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    code: str
    reason: str
    payload: bytes
    edge_id: str | None = None
    reading_id: uuid.UUID | None = None
    item_index: int | None = None
    resent: bool = False
    """The edge was told nothing, so it will send this again (every ack timeout, for as
    long as the cause lasts): repeats within the hour count on one letter."""


@dataclass(frozen=True)
class PendingAck:
    edge_id: str
    batch_id: uuid.UUID
    stored: list[uuid.UUID]
    rejected: list[RejectedReading]


@dataclass
class Intake:
    accepted: list[AcceptedReading] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    acks: list[PendingAck] = field(default_factory=list)

    def extend(self, other: Intake) -> None:
        self.accepted.extend(other.accepted)
        self.dead_letters.extend(other.dead_letters)
        self.acks.extend(other.acks)


def take_in(message: InboundMessage, is_known_edge: Callable[[str], bool]) -> Intake:
    """Judge one MQTT message. Never raises: whatever cannot be stored becomes a dead letter."""
    try:
        return _take_in(message, is_known_edge)
    except Exception as exc:  # a poison message must not stop the others
        return Intake(
            dead_letters=[
                DeadLetter(
                    topic=message.topic,
                    code="internal_error",
                    reason=f"{type(exc).__name__}: {exc}",
                    payload=message.payload,
                    edge_id=topics.edge_id_of(message.topic),
                    resent=True,
                )
            ]
        )


def _take_in(message: InboundMessage, is_known_edge: Callable[[str], bool]) -> Intake:
    def whole(code: str, reason: str, edge_id: str | None) -> Intake:
        letter = DeadLetter(
            message.topic, code, reason, message.payload, edge_id=edge_id, resent=True
        )
        return Intake(dead_letters=[letter])

    edge_id = topics.edge_id_of(message.topic)
    if edge_id is None:
        return whole("unknown_topic", f"topic {message.topic!r} is not a readings topic", None)
    if (oversized := oversized_letter(message.topic, message.payload, edge_id)) is not None:
        return Intake(dead_letters=[oversized])
    if not is_known_edge(edge_id):
        return whole("unknown_edge", f"edge {edge_id!r} is not registered or is disabled", edge_id)
    # A wholly valid batch, nearly every one, skips pydantic; any other is judged by it.
    batch = decode_readings_batch(message.payload)
    if batch is None:
        try:
            batch = split_readings_batch(message.payload)
        except CareBridgeError as exc:
            return whole(exc.code, exc.reason, edge_id)
    if batch.header.edge_id != edge_id:
        return whole(
            "edge_mismatch",
            f"batch says edge {batch.header.edge_id!r} but was published on {edge_id!r}'s topic",
            edge_id,
        )

    intake = Intake()
    rejected = list(batch.rejected)
    for item in rejected:
        intake.dead_letters.append(
            DeadLetter(
                message.topic,
                item.code,
                item.reason,
                batch.item_bytes(item.index),
                edge_id,
                item.reading_id,
                item.index,
            )
        )
    position: dict[uuid.UUID, int] = {}
    stored: list[uuid.UUID] = []
    for measurement in _group_by_measurement(batch.readings):
        verdicts = assess_measurement(measurement)
        for reading in measurement:
            assessment = verdicts[reading.reading_id]
            if assessment.verdict is Verdict.REJECT:
                # Positions are needed only for a rejection, which is rare.
                position = position or dict(
                    zip((r.reading_id for r in batch.readings), batch.positions, strict=True)
                )
                index = position[reading.reading_id]
                reason = assessment.reason or "implausible"
                rejected.append(
                    RejectedReading(
                        reading_id=reading.reading_id,
                        index=index,
                        code=ImplausibleValueError.code,
                        reason=reason,
                    )
                )
                intake.dead_letters.append(
                    DeadLetter(
                        message.topic,
                        ImplausibleValueError.code,
                        reason,
                        batch.item_bytes(index),
                        edge_id,
                        reading.reading_id,
                        index,
                    )
                )
                continue
            if assessment.verdict is Verdict.FLAG:
                reading = with_unusual_flag(reading)
            intake.accepted.append(AcceptedReading(edge_id, reading))
            stored.append(reading.reading_id)
    intake.acks.append(PendingAck(edge_id, batch.header.batch_id, stored, rejected))
    return intake


def oversized_letter(topic: str, payload: bytes, edge_id: str | None) -> DeadLetter | None:
    """The dead letter of a payload too large for any message of an edge's, or None: its
    head only, or one bad edge could fill the table, and the dead-letter listing, with a
    few huge messages."""
    try:
        refuse_oversized(payload)
    except CareBridgeError as exc:
        reason = f"{exc.reason}; the first {OVERSIZED_HEAD_BYTES:,} bytes are kept"
        head = payload[:OVERSIZED_HEAD_BYTES]
        return DeadLetter(topic, exc.code, reason, head, edge_id=edge_id, resent=True)
    return None


def _group_by_measurement(readings: Iterable[Reading]) -> list[list[Reading]]:
    # Keyed by the ids' integers: a UUID's own hash is Python code, run per reading.
    groups: dict[int, list[Reading]] = defaultdict(list)
    for reading in readings:
        groups[reading.measurement_id.int].append(reading)
    return list(groups.values())
