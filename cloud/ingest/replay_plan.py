"""Which dead letters can go through ingest again, and as what messages. Pure: no I/O.

A reading refused by a bug of ours (`internal_error`), by the database
(`storage_rejected`) or by a rule since corrected (`implausible_value`) is kept only in
its dead letter: its edge was told not to resend it. Once the cause is fixed, replaying
publishes the kept bytes on the edge's readings topic again, so the ingest workers judge
and store them exactly as they would any message — idempotently, and acknowledging to the
edge, whose outbox then counts them stored.

A letter that kept a whole message is replayed as that message. Letters that kept one
reading each (refused within an otherwise good batch) are wrapped, their bytes unchanged,
into new batches per edge, so a measurement's readings are judged together again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from protocols import topics
from protocols.errors import OversizedMessageError
from protocols.messages import MAX_READINGS_PER_BATCH, PROTOCOL_VERSION


@dataclass(frozen=True)
class KeptLetter:
    """The parts of a `dead_letters` row that replaying needs."""

    dead_letter_id: int
    topic: str
    code: str
    item_index: int | None
    payload: bytes


@dataclass(frozen=True)
class Replay:
    """One message to publish, and the dead letters it carries."""

    topic: str
    payload: bytes
    dead_letter_ids: tuple[int, ...]
    batch_id: uuid.UUID | None
    """Its ack's batch id; None for a kept message too broken to name one."""

    @property
    def edge_id(self) -> str:
        edge_id = topics.edge_id_of(self.topic)
        assert edge_id is not None  # planned only for edges' readings topics
        return edge_id


@dataclass(frozen=True)
class Unreplayable:
    dead_letter_id: int
    reason: str


def plan_replays(
    letters: Sequence[KeptLetter],
    sent_at: datetime,
    new_batch_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> tuple[list[Replay], list[Unreplayable]]:
    """The messages that replay `letters`, in their order, and the letters that cannot be."""
    replays: list[Replay] = []
    refused: list[Unreplayable] = []
    items: dict[str, list[KeptLetter]] = {}
    for letter in letters:
        edge_id = topics.edge_id_of(letter.topic)
        if edge_id is None or letter.topic != topics.readings(edge_id):
            refused.append(
                Unreplayable(
                    letter.dead_letter_id,
                    "not an edge's readings: an edge resends its own requests until answered",
                )
            )
        elif letter.code == OversizedMessageError.code:
            refused.append(
                Unreplayable(letter.dead_letter_id, "only the head of the message was kept")
            )
        elif letter.item_index is None:
            replays.append(
                Replay(
                    letter.topic,
                    letter.payload,
                    (letter.dead_letter_id,),
                    _batch_id_in(letter.payload),
                )
            )
        else:
            items.setdefault(edge_id, []).append(letter)
    for edge_id, kept in items.items():
        for start in range(0, len(kept), MAX_READINGS_PER_BATCH):
            chunk = kept[start : start + MAX_READINGS_PER_BATCH]
            batch_id = new_batch_id()
            replays.append(
                Replay(
                    topics.readings(edge_id),
                    _wrapped(edge_id, batch_id, sent_at, [k.payload for k in chunk]),
                    tuple(k.dead_letter_id for k in chunk),
                    batch_id,
                )
            )
    return replays, refused


def _wrapped(edge_id: str, batch_id: uuid.UUID, sent_at: datetime, items: list[bytes]) -> bytes:
    """A readings batch around kept readings' bytes, which are not parsed or re-encoded."""
    header = json.dumps(
        {
            "version": PROTOCOL_VERSION,
            "type": "readings",
            "edge_id": edge_id,
            "batch_id": str(batch_id),
            "sent_at": sent_at.isoformat(),
        }
    ).encode()
    return header[:-1] + b', "readings": [' + b", ".join(items) + b"]}"


def _batch_id_in(payload: bytes) -> uuid.UUID | None:
    try:
        data = json.loads(payload)
        return uuid.UUID(str(data["batch_id"]))
    except (ValueError, TypeError, KeyError):
        return None
