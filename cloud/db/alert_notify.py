"""Alert changes announced with PostgreSQL NOTIFY: delivered at commit, so a listener never
hears of a change that was rolled back."""

from __future__ import annotations

import json
import uuid

import psycopg

CHANNEL = "alert_changes"


def announce(conn: psycopg.Connection, alert_id: uuid.UUID, action: str) -> None:
    """Queue a notice for `alert_id` (its team, tier and status read in the same statement)."""
    conn.execute(
        """SELECT pg_notify(%s, json_build_object(
               'alert_id', alert_id, 'action', %s::text, 'team_id', team_id,
               'patient_id', patient_id, 'tier', tier, 'status', status)::text)
           FROM alerts WHERE alert_id = %s""",
        (CHANNEL, action, alert_id),
    )


def parse(payload: str) -> dict[str, str]:
    data: dict[str, str] = json.loads(payload)
    return data
