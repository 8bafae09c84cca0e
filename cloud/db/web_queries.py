"""Reads behind the staff web pages: each paginated or bounded, each served by an index."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cloud.auth import Role, User
from cloud.db import programme_store
from cloud.db.care_store import OPEN, TIER_RANK_SQL


def _rows(conn: psycopg.Connection, sql: str, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def _row(conn: psycopg.Connection, sql: str, params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params).fetchone()


def scope_teams(user: User) -> list[str] | None:
    """None: every team (QC supervisors read across teams); otherwise the user's teams."""
    return None if user.role is Role.QC_SUPERVISOR else sorted(user.team_ids)


def workbench(
    conn: psycopg.Connection,
    user: User,
    *,
    statuses: list[str] | None,
    tier: str | None,
    programme: str | None,
    team: str | None,
    mine: bool,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The queue as `care_store.queue` orders it (severity, then the acknowledgement due),
    with the web filters: programme (an active enrolment) and one of the user's teams."""
    teams = scope_teams(user)
    if team is not None:
        teams = [team] if teams is None or team in teams else []
    params = {
        "teams": teams,
        "statuses": statuses or OPEN,
        "tier": tier,
        "programme": programme,
        "me": user.user_id,
        "mine": mine,
        "limit": limit,
        "offset": offset,
    }
    where = """(%(teams)s::text[] IS NULL OR a.team_id = ANY(%(teams)s))
               AND a.status = ANY(%(statuses)s)
               AND (%(tier)s::text IS NULL OR a.tier = %(tier)s)
               AND (NOT %(mine)s OR a.assignee_id = %(me)s)
               AND (%(programme)s::text IS NULL OR EXISTS (
                   SELECT 1 FROM enrolments e WHERE e.patient_id = a.patient_id
                     AND e.programme_id = %(programme)s AND e.status = 'active'))"""
    items = _rows(
        conn,
        f"""SELECT a.alert_id, a.patient_id, p.name AS patient_name, a.rule_id, a.kind,
                   a.tier, a.status, a.title, a.opened_at, a.ack_due_at, a.assignee_id,
                   u.display_name AS assignee_name, a.team_id, a.escalation_level
            FROM alerts a LEFT JOIN patients p USING (patient_id)
            LEFT JOIN users u ON u.user_id = a.assignee_id
            WHERE {where}
            ORDER BY {TIER_RANK_SQL} DESC, a.ack_due_at NULLS LAST, a.opened_at
            LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    )
    counts = _rows(
        conn, f"SELECT a.tier, count(*) AS n FROM alerts a WHERE {where} GROUP BY a.tier", params
    )
    by_tier = {c["tier"]: c["n"] for c in counts}
    return {"items": items, "counts": by_tier, "total": sum(by_tier.values())}


def programmes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return _rows(
        conn,
        "SELECT programme_id, name, name_en FROM programmes WHERE active ORDER BY name LIMIT 200",
        (),
    )


def teams(conn: psycopg.Connection, team_ids: list[str] | None) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """SELECT team_id, name FROM care_teams
           WHERE %(ids)s::text[] IS NULL OR team_id = ANY(%(ids)s) ORDER BY name LIMIT 200""",
        {"ids": team_ids},
    )


def patient_profile(conn: psycopg.Connection, patient_id: str) -> dict[str, Any] | None:
    profile = _row(
        conn,
        """SELECT p.patient_id, p.name, p.id_number, p.phone, p.cohorts, p.team_id,
                  t.name AS team_name, p.case_manager_id, cm.display_name AS case_manager_name,
                  p.doctor_id, d.display_name AS doctor_name
           FROM patients p LEFT JOIN care_teams t USING (team_id)
           LEFT JOIN users cm ON cm.user_id = p.case_manager_id
           LEFT JOIN users d ON d.user_id = p.doctor_id
           WHERE p.patient_id = %s""",
        (patient_id,),
    )
    if profile is None:
        return None
    profile["enrolments"] = enrolment_progress(
        conn, teams=None, now=datetime.now(UTC), patient_id=patient_id, limit=10
    )
    return profile


def current_targets(conn: psycopg.Connection, patient_id: str) -> dict[str, dict[str, Any]]:
    rows = _rows(
        conn,
        """SELECT DISTINCT ON (metric) metric, low, high, reason, set_by, set_at
           FROM patient_targets WHERE patient_id = %s ORDER BY metric, set_at DESC""",
        (patient_id,),
    )
    return {r["metric"]: r for r in rows}


def latest_values(conn: psycopg.Connection, patient_id: str) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """SELECT metric, time AS measured_at, value, source FROM patient_latest
           WHERE patient_id = %s ORDER BY metric""",
        (patient_id,),
    )


def readings_page(
    conn: psycopg.Connection,
    patient_id: str,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on (measured time, reading id): the values of one
    measurement share a time, so the time alone would split or skip them at a page edge."""
    return _rows(
        conn,
        """SELECT reading_id, time AS measured_at, received_at, metric, value, unit,
                  device_kind, device_model, device_serial, source, flags, context
           FROM readings
           WHERE patient_id = %(p)s
             AND (%(t)s::timestamptz IS NULL OR (time, reading_id) < (%(t)s, %(id)s::uuid))
           ORDER BY time DESC, reading_id DESC LIMIT %(limit)s""",
        {
            "p": patient_id,
            "t": before[0] if before else None,
            "id": before[1] if before else None,
            "limit": limit,
        },
    )


def alert_history(conn: psycopg.Connection, patient_id: str, limit: int) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """SELECT a.alert_id, a.kind, a.tier, a.status, a.title, a.opened_at, a.closed_at,
                  a.outcome_code, u.display_name AS assignee_name
           FROM alerts a LEFT JOIN users u ON u.user_id = a.assignee_id
           WHERE a.patient_id = %s ORDER BY a.opened_at DESC LIMIT %s""",
        (patient_id, limit),
    )


def timeline(conn: psycopg.Connection, patient_id: str, limit: int) -> list[dict[str, Any]]:
    """Contacts and alert notes/actions of one patient, newest first."""
    return _rows(
        conn,
        """(SELECT c.at, 'contact' AS entry, c.channel AS what, c.outcome AS result, c.note,
                   u.display_name AS who
            FROM contact_records c LEFT JOIN users u ON u.user_id = c.user_id
            WHERE c.patient_id = %(p)s ORDER BY c.at DESC LIMIT %(limit)s)
           UNION ALL
           (SELECT e.at, 'alert' AS entry, e.action AS what, e.outcome_code AS result,
                   e.note, coalesce(u.display_name, e.actor_id) AS who
            FROM alerts a JOIN LATERAL (
                SELECT * FROM alert_events ev WHERE ev.alert_id = a.alert_id
                  AND (ev.note IS NOT NULL OR ev.outcome_code IS NOT NULL)
                ORDER BY ev.event_id DESC LIMIT %(limit)s) e ON true
            LEFT JOIN users u ON u.user_id = e.actor_id
            WHERE a.alert_id IN (SELECT alert_id FROM alerts WHERE patient_id = %(p)s
                                 ORDER BY opened_at DESC LIMIT %(limit)s))
           ORDER BY at DESC LIMIT %(limit)s""",
        {"p": patient_id, "limit": limit},
    )


def escalated_to(conn: psycopg.Connection, user: User, limit: int) -> list[dict[str, Any]]:
    """Open alerts escalated to this doctor (assigned to them, or of their patients)."""
    return _rows(
        conn,
        f"""SELECT a.alert_id, a.patient_id, p.name AS patient_name, a.kind, a.tier, a.status,
                   a.title, a.opened_at, a.ack_due_at, a.escalation_level
            FROM alerts a JOIN patients p USING (patient_id)
            WHERE a.status = ANY(%(open)s) AND a.escalation_level > 0
              AND (a.assignee_id = %(me)s OR p.doctor_id = %(me)s)
              AND a.team_id = ANY(%(teams)s)
            ORDER BY {TIER_RANK_SQL} DESC, a.ack_due_at NULLS LAST LIMIT %(limit)s""",
        {"open": OPEN, "me": user.user_id, "teams": sorted(user.team_ids), "limit": limit},
    )


def doctor_patients(
    conn: psycopg.Connection, user: User, limit: int, offset: int
) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """SELECT p.patient_id, p.name, p.cohorts,
                  (SELECT max(l.time) FROM patient_latest l
                   WHERE l.patient_id = p.patient_id) AS last_reading_at,
                  (SELECT count(*) FROM alerts a WHERE a.patient_id = p.patient_id
                     AND a.status = ANY(%(open)s)) AS open_alerts
           FROM patients p
           WHERE p.doctor_id = %(me)s AND p.team_id = ANY(%(teams)s)
           ORDER BY p.patient_id LIMIT %(limit)s OFFSET %(offset)s""",
        {
            "me": user.user_id,
            "teams": sorted(user.team_ids),
            "open": OPEN,
            "limit": limit,
            "offset": offset,
        },
    )


def recent_for_patient(
    conn: psycopg.Connection, patient_id: str, since: datetime, limit: int
) -> list[dict[str, Any]]:
    return _rows(
        conn,
        """SELECT time AS measured_at, received_at, metric, value, unit, device_kind,
                  device_serial, edge_id, source, flags
           FROM readings WHERE patient_id = %s AND time >= %s
           ORDER BY time DESC, metric LIMIT %s""",
        (patient_id, since, limit),
    )


def find_patients(
    conn: psycopg.Connection, user: User, text: str, limit: int
) -> list[dict[str, Any]]:
    """Patients of the user's teams whose id starts with, or whose name contains, `text`."""
    return _rows(
        conn,
        """SELECT patient_id, name FROM patients
           WHERE (%(teams)s::text[] IS NULL OR team_id = ANY(%(teams)s))
             AND (patient_id = %(text)s OR patient_id LIKE %(prefix)s OR name LIKE %(infix)s)
           ORDER BY patient_id LIMIT %(limit)s""",
        {
            "teams": scope_teams(user),
            "text": text,
            "prefix": f"{text}%",
            "infix": f"%{text}%",
            "limit": limit,
        },
    )


def hospitals(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Hospitals with their package count, the one with most packages first: the page's
    default when none is chosen."""
    return _rows(
        conn,
        """SELECT * FROM (
               SELECT h.hospital_id, h.name,
                      (SELECT count(*) FROM programmes g WHERE g.hospital_id = h.hospital_id)
                          AS packages
               FROM hospitals h) found
           ORDER BY packages DESC, hospital_id LIMIT 200""",
        (),
    )


def packages(conn: psycopg.Connection, hospital_id: str) -> list[dict[str, Any]]:
    """A hospital's service packages with the name of the pathway each one follows."""
    return _rows(
        conn,
        """SELECT g.programme_id, g.name, g.name_en, g.disease, g.duration_days, g.price_cents,
                  g.pathway_id, g.active,
                  (SELECT pt.definition->>'name' FROM pathway_templates pt
                   WHERE pt.pathway_id = g.pathway_id ORDER BY pt.version DESC LIMIT 1)
                      AS pathway_name,
                  (SELECT count(*) FROM enrolments e WHERE e.programme_id = g.programme_id
                     AND e.status = 'active') AS active_enrolments
           FROM programmes g WHERE g.hospital_id = %s ORDER BY g.programme_id LIMIT 200""",
        (hospital_id,),
    )


def enrolment_progress(
    conn: psycopg.Connection,
    *,
    teams: list[str] | None,
    now: datetime,
    hospital_id: str | None = None,
    programme_id: str | None = None,
    status: str | None = None,
    patient_id: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The API's enrolment progress (`programme_store.list_enrolments`) with what a page also
    shows: the package's English name and the title of the next task."""
    rows = programme_store.list_enrolments(
        conn,
        teams=teams,
        now=now,
        hospital_id=hospital_id,
        programme_id=programme_id,
        status=status,
        patient_id=patient_id,
        limit=limit,
        offset=offset,
    )
    extra = _rows(
        conn,
        """SELECT e.enrolment_id, g.name_en,
                  (SELECT t.title FROM programme_tasks t
                   WHERE t.enrolment_id = e.enrolment_id AND t.status IN ('scheduled', 'open')
                   ORDER BY t.due_at, t.action_key LIMIT 1) AS next_task
           FROM enrolments e JOIN programmes g USING (programme_id)
           WHERE e.enrolment_id = ANY(%s)""",
        ([r["enrolment_id"] for r in rows],),
    )
    by_id = {r.pop("enrolment_id"): r for r in extra}
    for row in rows:
        row.update(by_id[row["enrolment_id"]])
        row["name"] = row["programme_name"]
    return rows


def user_names(conn: psycopg.Connection, user_ids: list[str]) -> dict[str, str]:
    rows = _rows(
        conn,
        "SELECT user_id, display_name FROM users WHERE user_id = ANY(%s)",
        (user_ids,),
    )
    return {r["user_id"]: r["display_name"] for r in rows}
