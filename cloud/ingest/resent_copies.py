"""Which readings of a flush may already be stored under another time, and where to look.

A reading's id names one device record; its time is what the edge made of the device's
clock. When the clock was trusted the time is the device's own stamp, the same at every
edge, and the hypertable's `(reading_id, time)` index catches a resend. When an edge
corrected the clock (`clock_corrected`) or could not trust it (`clock_unset`), the time is
that edge's estimate, and a second edge with another estimate sends the same id at another
time. Two cases, both cheap because such readings are few:

- a copy stored with an estimated time is in `retimed_readings`, found by id alone (SQL);
- a copy stored with the device's own stamp lies at that stamp, so the database is asked
  only around the device times of the estimated readings (`lookup_windows`, here), with
  constant bounds, so TimescaleDB reads only the chunks those times fall in.

Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from cloud.ingest.intake import AcceptedReading
from protocols.reading import Reading, StatusFlag

EDGE_TIMED = frozenset({StatusFlag.CLOCK_CORRECTED, StatusFlag.CLOCK_UNSET})
"""Flags that say a reading's time is an edge's estimate, not the device's stamp."""

EDGE_TIMED_SQL = "'{" + ",".join(sorted(f.value for f in EDGE_TIMED)) + "}'::text[]"
"""`EDGE_TIMED` as a PostgreSQL text[] literal, for `flags && …`."""

MARGIN = timedelta(days=1)
"""How far from its device time (read in the hospital's zone) a trusted copy is looked for:
an edge in another zone, or a device with an offset field, stamps within a day of it."""


def is_edge_timed(reading: Reading) -> bool:
    return not EDGE_TIMED.isdisjoint(reading.flags)


@dataclass(frozen=True, slots=True)
class LookupWindow:
    """Ids to look up in the hypertable between `since` and `until`, both included."""

    since: datetime
    until: datetime
    reading_ids: tuple[uuid.UUID, ...]


def first_of_each_id(accepted: Iterable[AcceptedReading]) -> list[AcceptedReading]:
    """`accepted` with every repeat of a reading id dropped, the first kept: two edges'
    copies of a record in one flush would otherwise both pass the database's checks."""
    # Keyed by the ids' integers: a UUID's own hash is Python code, run per reading.
    seen: set[int] = set()
    kept = []
    for item in accepted:
        key = item.reading.reading_id.int
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def lookup_windows(
    readings: Sequence[Reading], zone: tzinfo, margin: timedelta = MARGIN
) -> list[LookupWindow]:
    """Where a copy with the device's own stamp of each edge-timed reading would be stored.

    Windows that overlap are merged, so a flush from one device spanning weeks costs one
    query, while a record stamped years off (a clock reset to its epoch) gets a window of
    its own instead of one spanning every chunk in between."""
    spots: list[tuple[datetime, uuid.UUID]] = []
    for r in readings:
        if r.device_time is not None and is_edge_timed(r):
            stamped = r.device_time
            if stamped.tzinfo is None:
                stamped = stamped.replace(tzinfo=zone)
            spots.append((stamped, r.reading_id))
    spots.sort(key=lambda spot: spot[0])
    # Sorted, so each window's end is its latest spot's time plus the margin.
    groups: list[tuple[datetime, datetime, list[uuid.UUID]]] = []
    for stamped, reading_id in spots:
        if groups and stamped - margin <= groups[-1][1]:
            since, _until, ids = groups[-1]
            groups[-1] = (since, stamped + margin, ids)
            ids.append(reading_id)
        else:
            groups.append((stamped - margin, stamped + margin, [reading_id]))
    return [LookupWindow(since, until, tuple(ids)) for since, until, ids in groups]
