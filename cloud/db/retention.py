"""Retention of raw readings: whole chunks dropped with `drop_chunks`, never row deletes.

The Apache edition has no background retention policy, so this is run as a job
(`python -m cloud retention`, e.g. nightly from cron or a systemd timer). Daily rollups are
kept; only raw readings older than the horizon go.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg


def drop_old_readings(conn: psycopg.Connection, older_than: timedelta) -> list[str]:
    """Drop every readings chunk entirely older than `older_than`; return the chunk names."""
    rows = conn.execute(
        "SELECT drop_chunks('readings', older_than => now() - %s::interval)", (older_than,)
    ).fetchall()
    return [row[0] for row in rows]
