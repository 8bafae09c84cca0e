"""Retention of raw readings: whole chunks dropped with `drop_chunks`, never row deletes.

The Apache edition has no background retention policy, so this is run as a job
(`python -m cloud retention`, e.g. nightly from cron or a systemd timer). Daily rollups are
kept; only raw readings older than the horizon go, with their entries in
`retimed_readings`.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg


def drop_old_readings(conn: psycopg.Connection, older_than: timedelta) -> list[str]:
    """Drop every readings chunk entirely older than `older_than`; return the chunk names."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT drop_chunks('readings', older_than => now() - %s::interval)", (older_than,)
        ).fetchall()
        # The ids of edge-timed readings go with them (a small table: rows, not chunks),
        # but only those older than every chunk kept, so none still stored loses its entry.
        conn.execute(
            """DELETE FROM retimed_readings WHERE time < coalesce(
                   (SELECT min(range_start) FROM timescaledb_information.chunks
                    WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'),
                   now() - %s::interval)""",
            (older_than,),
        )
    return [row[0] for row in rows]
