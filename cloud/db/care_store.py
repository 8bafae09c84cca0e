"""Care-team data: people, patients, the alert work queue and its history, contacts, audit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.alerts.lifecycle import (
    ACK_WITHIN,
    OPEN_STATUSES,
    Action,
    EscalationTarget,
    Outcome,
    Status,
    Transition,
    due_escalation,
    transition,
)
from cloud.alerts.thresholds import Tier
from cloud.auth import (
    TEAM_SCOPED,
    Role,
    User,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from cloud.db.alert_notify import announce

OPEN = [s.value for s in OPEN_STATUSES]
TIER_RANK_SQL = "array_position(ARRAY['low','medium','high','critical'], a.tier)"


def create_team(conn: psycopg.Connection, team_id: str, name: str) -> None:
    conn.execute("INSERT INTO care_teams (team_id, name) VALUES (%s, %s)", (team_id, name))


def create_user(
    conn: psycopg.Connection,
    user_id: str,
    name: str,
    role: Role,
    password: str,
    teams: Sequence[str] = (),
) -> None:
    conn.execute(
        "INSERT INTO users (user_id, display_name, role, password_hash) VALUES (%s, %s, %s, %s)",
        (user_id, name, role.value, hash_password(password)),
    )
    for team in teams:
        conn.execute("INSERT INTO team_members (team_id, user_id) VALUES (%s, %s)", (team, user_id))


def set_team_lead(conn: psycopg.Connection, team_id: str, user_id: str) -> None:
    conn.execute("UPDATE care_teams SET lead_user_id = %s WHERE team_id = %s", (user_id, team_id))


def create_patient(
    conn: psycopg.Connection,
    patient_id: str,
    name: str,
    *,
    team_id: str,
    case_manager_id: str | None = None,
    doctor_id: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    cohorts: Sequence[str] = (),
) -> None:
    conn.execute(
        """INSERT INTO patients (patient_id, name, id_number, phone, team_id, case_manager_id,
                                 doctor_id, cohorts)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (patient_id, name, id_number, phone, team_id, case_manager_id, doctor_id, list(cohorts)),
    )


def issue_token(
    conn: psycopg.Connection, user_id: str, password: str, lifetime: timedelta
) -> str | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT password_hash FROM users WHERE user_id = %s AND active", (user_id,)
        ).fetchone()
    if row is None or not verify_password(password, row["password_hash"]):
        return None
    token, digest = new_token()
    conn.execute(
        "INSERT INTO api_tokens (token_hash, user_id, expires_at) VALUES (%s, %s, now() + %s)",
        (digest, user_id, lifetime),
    )
    return token


def user_for_token(conn: psycopg.Connection, token: str) -> User | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT u.user_id, u.display_name, u.role,
                      coalesce(array_agg(m.team_id) FILTER (WHERE m.team_id IS NOT NULL), '{}')
                          AS teams
               FROM api_tokens t JOIN users u USING (user_id)
               LEFT JOIN team_members m ON m.user_id = u.user_id
               WHERE t.token_hash = %s AND t.expires_at > now() AND u.active
               GROUP BY u.user_id""",
            (token_hash(token),),
        ).fetchone()
    if row is None:
        return None
    return User(row["user_id"], row["display_name"], Role(row["role"]), frozenset(row["teams"]))


def can_see_patient(conn: psycopg.Connection, user: User, patient_id: str) -> bool:
    if user.role is Role.QC_SUPERVISOR:
        return True
    if user.role not in TEAM_SCOPED:
        return False
    row = conn.execute(
        "SELECT 1 FROM patients WHERE patient_id = %s AND team_id = ANY(%s)",
        (patient_id, list(user.team_ids)),
    ).fetchone()
    return row is not None


def audit(
    conn: psycopg.Connection,
    user: User | None,
    action: str,
    patient_id: str | None = None,
    **detail: Any,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (user_id, action, patient_id, detail) VALUES (%s, %s, %s, %s)",
        (user.user_id if user else None, action, patient_id, Jsonb(detail)),
    )


def queue(
    conn: psycopg.Connection,
    user: User,
    *,
    statuses: list[str] | None,
    tiers: list[str] | None,
    kind: str | None,
    mine: bool,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The user's work: alerts and tasks of their teams' patients, most urgent first."""
    params = {
        "teams": list(user.team_ids),
        "statuses": statuses or OPEN,
        "tiers": tiers,
        "kind": kind,
        "me": user.user_id,
        "mine": mine,
        "limit": limit,
        "offset": offset,
        "all_teams": user.role is Role.QC_SUPERVISOR,
    }
    where = """(%(all_teams)s OR a.team_id = ANY(%(teams)s))
               AND a.status = ANY(%(statuses)s)
               AND (%(tiers)s::text[] IS NULL OR a.tier = ANY(%(tiers)s))
               AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
               AND (NOT %(mine)s OR a.assignee_id = %(me)s)"""
    with conn.cursor(row_factory=dict_row) as cur:
        items = cur.execute(
            f"""SELECT a.alert_id, a.patient_id, p.name AS patient_name, a.rule_id, a.kind,
                       a.tier, a.status, a.title, a.opened_at, a.updated_at, a.ack_due_at,
                       a.assignee_id, a.team_id, a.escalation_level, a.reading_ids,
                       a.explanation
                FROM alerts a LEFT JOIN patients p USING (patient_id)
                WHERE {where}
                ORDER BY {TIER_RANK_SQL} DESC, a.ack_due_at NULLS LAST, a.opened_at
                LIMIT %(limit)s OFFSET %(offset)s""",
            params,
        ).fetchall()
        counts = cur.execute(
            f"SELECT a.tier, count(*) AS n FROM alerts a WHERE {where} GROUP BY a.tier", params
        ).fetchall()
    return {
        "items": items,
        "counts": {c["tier"]: c["n"] for c in counts},
        "total": sum(c["n"] for c in counts),
    }


def alert_detail(conn: psycopg.Connection, alert_id: uuid.UUID) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        alert = cur.execute("SELECT * FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
        if alert is None:
            return None
        alert["readings"] = cur.execute(
            """SELECT reading_id, time AS measured_at, received_at, metric, value, unit,
                      device_kind, device_serial, source, flags, context
               FROM readings WHERE reading_id = ANY(%s) AND patient_id = %s ORDER BY time""",
            (alert["reading_ids"], alert["patient_id"]),
        ).fetchall()
        alert["history"] = cur.execute(
            """SELECT event_id, at, actor_id, action, from_status, to_status, outcome_code,
                      note, detail
               FROM alert_events WHERE alert_id = %s ORDER BY event_id""",
            (alert_id,),
        ).fetchall()
        alert["contacts"] = cur.execute(
            "SELECT * FROM contact_records WHERE alert_id = %s ORDER BY at", (alert_id,)
        ).fetchall()
    return alert


def alert_patient(conn: psycopg.Connection, alert_id: uuid.UUID) -> str | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT patient_id FROM alerts WHERE alert_id = %s", (alert_id,)
        ).fetchone()
    return None if row is None else str(row["patient_id"])


def record_event(
    conn: psycopg.Connection,
    alert_id: uuid.UUID,
    at: datetime,
    actor: str | None,
    action: str,
    from_status: str | None,
    to_status: str,
    outcome: str | None = None,
    note: str | None = None,
    **detail: Any,
) -> None:
    conn.execute(
        """INSERT INTO alert_events (alert_id, at, actor_id, action, from_status, to_status,
                                     outcome_code, note, detail)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (alert_id, at, actor, action, from_status, to_status, outcome, note, Jsonb(detail)),
    )


def apply_action(
    conn: psycopg.Connection,
    alert_id: uuid.UUID,
    user: User,
    action: Action,
    outcome: Outcome | None,
    note: str,
    now: datetime,
) -> Transition:
    """Apply one lifecycle action under a row lock; raises TransitionError when not allowed."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT status FROM alerts WHERE alert_id = %s FOR UPDATE", (alert_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no alert {alert_id}")
        current = Status(row["status"])
        change = transition(current, action, outcome=outcome, note=note)
        conn.execute(
            """UPDATE alerts SET status = %(to)s, updated_at = %(now)s,
                   acknowledged_at = CASE WHEN %(ack)s THEN coalesce(acknowledged_at, %(now)s)
                                          ELSE acknowledged_at END,
                   assignee_id = CASE WHEN %(ack)s THEN coalesce(assignee_id, %(me)s)
                                      ELSE assignee_id END,
                   closed_at = CASE WHEN %(closing)s THEN %(now)s ELSE closed_at END,
                   outcome_code = coalesce(%(outcome)s, outcome_code)
               WHERE alert_id = %(id)s""",
            {
                "to": change.to_status.value,
                "now": now,
                "me": user.user_id,
                "ack": action in (Action.ACKNOWLEDGE, Action.START),
                "closing": action in (Action.RESOLVE, Action.DISMISS),
                "outcome": outcome.value if outcome else None,
                "id": alert_id,
            },
        )
        record_event(
            conn,
            alert_id,
            now,
            user.user_id,
            action.value,
            current.value,
            change.to_status.value,
            outcome.value if outcome else None,
            note or None,
        )
        announce(conn, alert_id, action.value)
    return change


def assign(
    conn: psycopg.Connection,
    alert_id: uuid.UUID,
    assignee: str | None,
    actor: User,
    now: datetime,
    note: str,
) -> None:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT status, assignee_id FROM alerts WHERE alert_id = %s FOR UPDATE", (alert_id,)
        ).fetchone()
        if row is None:
            raise LookupError(f"no alert {alert_id}")
        status, before = row["status"], row["assignee_id"]
        conn.execute(
            "UPDATE alerts SET assignee_id = %s, updated_at = %s WHERE alert_id = %s",
            (assignee, now, alert_id),
        )
        record_event(
            conn,
            alert_id,
            now,
            actor.user_id,
            "assign",
            status,
            status,
            None,
            note or None,
            before=before,
            after=assignee,
        )
        announce(conn, alert_id, "assign")


def run_escalations(conn: psycopg.Connection, now: datetime) -> list[dict[str, Any]]:
    """Escalate every alert whose acknowledgement deadline has passed, one rung at a time:
    first to the patient's doctor, then to the team lead. Returns what was escalated."""
    done = []
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        due = cur.execute(
            """SELECT a.alert_id, a.status, a.tier, a.escalation_level, a.ack_due_at,
                       p.doctor_id, t.lead_user_id
                FROM alerts a LEFT JOIN patients p USING (patient_id)
                LEFT JOIN care_teams t ON t.team_id = a.team_id
                WHERE a.status IN ('open', 'escalated') AND a.ack_due_at <= %s
                ORDER BY a.ack_due_at FOR UPDATE OF a SKIP LOCKED""",
            (now,),
        ).fetchall()
        for alert in due:
            target = due_escalation(
                Status(alert["status"]), alert["escalation_level"], alert["ack_due_at"], now
            )
            if target is None:
                continue
            to_user = (
                alert["doctor_id"] if target is EscalationTarget.DOCTOR else alert["lead_user_id"]
            )
            period = ACK_WITHIN.get(Tier(alert["tier"]), timedelta(hours=4))
            cur.execute(
                """UPDATE alerts SET status = 'escalated', escalation_level = escalation_level + 1,
                       assignee_id = coalesce(%s, assignee_id), ack_due_at = %s, updated_at = %s
                   WHERE alert_id = %s""",
                (to_user, now + period, now, alert["alert_id"]),
            )
            record_event(
                conn,
                alert["alert_id"],
                now,
                None,
                "sla_escalate",
                alert["status"],
                "escalated",
                None,
                f"acknowledgement overdue; escalated to {target}",
                target=target.value,
                to_user=to_user,
                level=alert["escalation_level"] + 1,
            )
            announce(conn, alert["alert_id"], "sla_escalate")
            done.append({"alert_id": alert["alert_id"], "target": target.value, "to_user": to_user})
    return done
