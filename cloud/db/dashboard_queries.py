"""The operations dashboard's figures, scoped to a set of teams (None: all), each one
bounded in time so no query reads a whole table's history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from cloud.alerts.lifecycle import ACK_WITHIN
from cloud.alerts.thresholds import Tier
from cloud.db.care_store import OPEN

# Service levels with a fixed period (critical, high); medium counts working days and is
# left out of the compliance figures rather than approximated.
_DEADLINE_SQL = """opened_at + CASE tier WHEN 'critical' THEN %(critical)s::interval
                                     ELSE %(high)s::interval END"""
_PERIODS = {"critical": ACK_WITHIN[Tier.CRITICAL], "high": ACK_WITHIN[Tier.HIGH]}


def _rows(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def open_by_tier(conn: psycopg.Connection, teams: list[str] | None) -> dict[str, int]:
    rows = _rows(
        conn,
        """SELECT tier, count(*) AS n FROM alerts
           WHERE status = ANY(%(open)s) AND (%(teams)s::text[] IS NULL OR team_id = ANY(%(teams)s))
           GROUP BY tier""",
        {"open": OPEN, "teams": teams},
    )
    return {r["tier"]: r["n"] for r in rows}


def acknowledgement(
    conn: psycopg.Connection, teams: list[str] | None, since: datetime
) -> dict[str, Any]:
    """Of alerts with a deadline opened since `since`: the share acknowledged in time (an
    alert still unacknowledged past its deadline counts as late), and the median minutes
    from opening to acknowledgement."""
    (row,) = _rows(
        conn,
        f"""SELECT count(*) FILTER (WHERE acknowledged_at IS NOT NULL
                                   AND acknowledged_at <= first_due) AS in_time,
                  count(*) FILTER (WHERE acknowledged_at IS NOT NULL
                                   OR first_due < now()) AS judged,
                  percentile_cont(0.5) WITHIN GROUP (
                      ORDER BY extract(epoch FROM acknowledged_at - opened_at) / 60)
                      FILTER (WHERE acknowledged_at IS NOT NULL) AS median_minutes
           FROM (SELECT opened_at, acknowledged_at,
                        {_DEADLINE_SQL} AS first_due
                 FROM alerts
                 WHERE opened_at >= %(since)s AND tier IN ('critical', 'high')
                   AND (%(teams)s::text[] IS NULL OR team_id = ANY(%(teams)s))) a""",
        {"since": since, "teams": teams, **_PERIODS},
    )
    judged = row["judged"]
    return {
        "in_time": row["in_time"],
        "judged": judged,
        "share": (row["in_time"] / judged) if judged else None,
        "median_minutes": row["median_minutes"],
    }


def readings_by_source(
    conn: psycopg.Connection, teams: list[str] | None, since: datetime
) -> dict[str, int]:
    rows = _rows(
        conn,
        """SELECT source, count(*) AS n FROM readings
           WHERE time >= %(since)s
             AND (%(teams)s::text[] IS NULL OR patient_id IN (
                  SELECT patient_id FROM patients WHERE team_id = ANY(%(teams)s)))
           GROUP BY source""",
        {"since": since, "teams": teams},
    )
    return {r["source"]: r["n"] for r in rows}


def silent_patients(
    conn: psycopg.Connection, teams: list[str] | None, days: int, limit: int
) -> dict[str, Any]:
    """Patients whose newest reading of any metric is older than `days` days: how many,
    and the longest silent first."""
    params = {"teams": teams, "days": days, "limit": limit}
    silent = """SELECT l.patient_id, max(l.time) AS last_reading_at
                FROM patient_latest l
                WHERE %(teams)s::text[] IS NULL OR l.patient_id IN (
                    SELECT patient_id FROM patients WHERE team_id = ANY(%(teams)s))
                GROUP BY l.patient_id
                HAVING max(l.time) < now() - make_interval(days => %(days)s)"""
    items = _rows(
        conn,
        f"""SELECT s.patient_id, p.name, s.last_reading_at, count(*) OVER () AS total
            FROM ({silent}) s JOIN patients p USING (patient_id)
            ORDER BY s.last_reading_at LIMIT %(limit)s""",
        params,
    )
    return {"count": items[0]["total"] if items else 0, "items": items}


def weekly(
    conn: psycopg.Connection, teams: list[str] | None, first_monday: datetime, timezone: str
) -> list[dict[str, Any]]:
    """Per week from `first_monday` (the hospital's local midnight): alerts opened by tier
    and how many critical/high ones were acknowledged in time. Grouped by week and tier in
    SQL (a hash of a few dozen groups) and laid out per week here."""
    rows = _rows(
        conn,
        f"""SELECT time_bucket(interval '7 days', opened_at, %(since)s::timestamptz) AS week,
                   tier, count(*) AS n,
                   count(*) FILTER (WHERE tier IN ('critical', 'high')
                                    AND acknowledged_at <= {_DEADLINE_SQL}) AS in_time
            FROM alerts
            WHERE opened_at >= %(since)s
              AND (%(teams)s::text[] IS NULL OR team_id = ANY(%(teams)s))
            GROUP BY 1, 2""",
        {"since": first_monday, "teams": teams, **_PERIODS},
    )
    zone = ZoneInfo(timezone)
    weeks: dict[date, dict[str, Any]] = {}
    for row in rows:
        day = row["week"].astimezone(zone).date()
        week = weeks.setdefault(
            day,
            {
                "week": day,
                "critical": 0,
                "high": 0,
                "medium": 0,
                "low": 0,
                "in_time": 0,
                "with_deadline": 0,
            },
        )
        week[row["tier"]] = row["n"]
        week["in_time"] += row["in_time"]
        if row["tier"] in _PERIODS:
            week["with_deadline"] += row["n"]
    return [weeks[day] for day in sorted(weeks)]
