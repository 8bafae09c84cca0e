"""Requests an edge publishes on its own branch (assignments, questionnaire answers).

Each is applied on its own by the ingest worker, and every unusable one — unreadable,
claiming another edge, from an unknown or disabled edge, refused by its store — is kept
as a dead letter with its reason, as every bad input is.
"""

from __future__ import annotations

from typing import TypeVar

import psycopg
from pydantic import BaseModel

from cloud.db import ingest_store
from cloud.ingest.intake import DeadLetter, oversized_letter
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import decode

M = TypeVar("M", bound=BaseModel)


def dead_letter(
    conn: psycopg.Connection,
    topic: str,
    payload: bytes,
    code: str,
    reason: str,
    *,
    resent: bool = False,
) -> None:
    """`resent`: the edge gets no answer, so it will send this again (`DeadLetter.resent`)."""
    letter = DeadLetter(
        topic, code, reason, payload, edge_id=topics.edge_id_of(topic), resent=resent
    )
    ingest_store.insert_dead_letters(conn, [letter])


def decode_from_edge(
    conn: psycopg.Connection, topic: str, payload: bytes, model: type[M]
) -> tuple[str, M] | None:
    """The message and the edge whose branch it came on; None (dead-lettered) if unusable.

    The model must carry an `edge_id`, which has to be the topic's."""
    edge_id = topics.edge_id_of(topic)
    if (oversized := oversized_letter(topic, payload, edge_id)) is not None:
        ingest_store.insert_dead_letters(conn, [oversized])
        return None
    if edge_id is None or not ingest_store.is_known_edge(conn, edge_id):
        dead_letter(
            conn,
            topic,
            payload,
            "unknown_edge",
            f"edge {edge_id!r} is not registered or is disabled",
            resent=True,
        )
        return None
    try:
        message = decode(payload, model)
    except CareBridgeError as exc:
        dead_letter(conn, topic, payload, exc.code, exc.reason, resent=True)
        return None
    claimed = getattr(message, "edge_id", None)
    if claimed != edge_id:
        dead_letter(
            conn,
            topic,
            payload,
            "edge_mismatch",
            f"message says edge {claimed!r}, topic {edge_id!r}",
            resent=True,
        )
        return None
    return edge_id, message
