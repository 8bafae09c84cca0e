"""Retention of raw readings: whole chunks dropped with `drop_chunks`, never row deletes.

The Apache edition has no background retention policy, so this is run as a job
(`python -m cloud retention`, e.g. nightly from cron or a systemd timer). Daily rollups are
kept; only raw readings older than the horizon go, with their entries in
`retimed_readings`. The same job deletes old dead letters (an ordinary table), in slices,
so no one transaction holds a large part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import psycopg

DEAD_LETTER_SLICE = 10_000


def drop_old_readings(conn: psycopg.Connection, older_than: timedelta) -> list[str]:
    """Drop every readings chunk entirely older than `older_than`; return the chunk names.
    Records how far readings are gone (`readings_dropped_until`), for the rollup check."""
    with conn.transaction():
        ends = dict(
            conn.execute(
                """SELECT chunk_schema || '.' || chunk_name, range_end
                   FROM timescaledb_information.chunks
                   WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'"""
            ).fetchall()
        )
        rows = conn.execute(
            "SELECT drop_chunks('readings', older_than => now() - %s::interval)", (older_than,)
        ).fetchall()
        dropped = [row[0] for row in rows]
        if dropped:
            conn.execute(
                """INSERT INTO readings_dropped_until (until) VALUES (%s)
                   ON CONFLICT (only_row) DO UPDATE
                   SET until = greatest(readings_dropped_until.until, EXCLUDED.until)""",
                (max(ends[name] for name in dropped),),
            )
        # The ids of edge-timed readings go with them (a small table: rows, not chunks),
        # but only those older than every chunk kept, so none still stored loses its entry.
        conn.execute(
            """DELETE FROM retimed_readings WHERE time < coalesce(
                   (SELECT min(range_start) FROM timescaledb_information.chunks
                    WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'),
                   now() - %s::interval)""",
            (older_than,),
        )
    return dropped


def delete_old_dead_letters(
    conn: psycopg.Connection,
    older_than: timedelta,
    progress: Callable[[int], None] = lambda _deleted: None,
) -> int:
    """Delete dead letters received more than `older_than` ago, `DEAD_LETTER_SLICE` at a
    time, each slice its own transaction; `progress` hears the running total."""
    deleted = 0
    while True:
        with conn.transaction():
            cur = conn.execute(
                """DELETE FROM dead_letters WHERE dead_letter_id IN (
                       SELECT dead_letter_id FROM dead_letters
                       WHERE received_at < now() - %s::interval LIMIT %s)""",
                (older_than, DEAD_LETTER_SLICE),
            )
        deleted += cur.rowcount
        if cur.rowcount:
            progress(deleted)
        if cur.rowcount < DEAD_LETTER_SLICE:
            return deleted
