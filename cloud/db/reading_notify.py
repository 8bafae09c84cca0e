"""New centre readings announced with PostgreSQL NOTIFY, for the centre station's live page.

One notice per edge per ingest flush, not per reading: a flush of 5,000 readings costs at
most one NOTIFY per edge in it. Delivered at commit, so a station never reloads for
readings that were rolled back.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from cloud.ingest.intake import AcceptedReading
from protocols.reading import Source

CHANNEL = "centre_readings"


def centre_counts(accepted: Sequence[AcceptedReading], fresh_ids: set[uuid.UUID]) -> Counter[str]:
    """New centre readings per edge (a reading stored before is not news)."""
    return Counter(
        a.edge_id
        for a in accepted
        if a.reading.source is Source.CENTRE and a.reading.reading_id in fresh_ids
    )


def announce(conn: psycopg.Connection, counts: Counter[str]) -> None:
    for edge_id, readings in sorted(counts.items()):
        payload = json.dumps({"edge_id": edge_id, "readings": readings})
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def parse(payload: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload)
    return data
