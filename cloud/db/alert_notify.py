"""Alert changes announced with PostgreSQL NOTIFY: delivered at commit, so a listener never
hears of a change that was rolled back."""

from __future__ import annotations

import json
import uuid

import psycopg

CHANNEL = "alert_changes"


def notice_sql(action: str, row: str = "a") -> str:
    """The `pg_notify` call that announces a row `row` of `alerts` as it now is, for a
    statement's select list or RETURNING; `action` is an SQL expression (a literal, a
    CASE, a parameter). The one definition of the notice, for set-based writers too."""
    return (
        f"pg_notify('{CHANNEL}', json_build_object("
        f"'alert_id', {row}.alert_id, 'action', {action}, 'team_id', {row}.team_id, "
        f"'patient_id', {row}.patient_id, 'tier', {row}.tier, 'status', {row}.status)::text)"
    )


def announce(conn: psycopg.Connection, alert_id: uuid.UUID, action: str) -> None:
    """Queue a notice for `alert_id` (its team, tier and status read in the same statement)."""
    conn.execute(
        f"SELECT {notice_sql('%s::text')} FROM alerts a WHERE a.alert_id = %s",
        (action, alert_id),
    )


def parse(payload: str) -> dict[str, str]:
    data: dict[str, str] = json.loads(payload)
    return data
