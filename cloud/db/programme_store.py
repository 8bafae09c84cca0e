"""Programmes in the database: hospitals, packages, pathway versions, per-hospital
template approval, enrolment with consent (by staff or discharge list), withdrawal with
refund, closure with its summary, and enrolments with their pathway progress. The tasks an
enrolment becomes are worked in `cloud.db.pathway_tasks`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.auth import User
from cloud.db.pathway_tasks import Send, complete_task, end_tasks, run_pathway_sweep
from cloud.programmes import discharge_list
from cloud.programmes.closure import DEFAULT_TARGETS, ClosureFacts, build_summary
from cloud.programmes.errors import EnrolmentRefused, PathwayInvalid
from cloud.programmes.instantiate import instantiate
from cloud.programmes.packages import Package, measurement_plan
from cloud.programmes.pathway import Pathway, parse_pathway
from cloud.programmes.questionnaires import shipped_questionnaires
from cloud.programmes.work_stats import done_on_time


@dataclass(frozen=True)
class Consent:
    notice_version: str
    scope: list[str]
    channel: str
    collected_by: str
    collected_at: datetime
    evidence_sha256: str | None = None


# --- configuration -------------------------------------------------------------------------


def ensure_hospital(conn: psycopg.Connection, hospital_id: str, name: str) -> None:
    conn.execute(
        "INSERT INTO hospitals (hospital_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (hospital_id, name),
    )


def publish_pathway(conn: psycopg.Connection, pathway: Pathway, approved_by: str) -> bool:
    """Store a version; False when it was there already. A changed body under a used
    version number is refused: running enrolments point at that exact content."""
    definition = pathway.model_dump(mode="json")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT definition FROM pathway_templates WHERE pathway_id = %s AND version = %s",
            (pathway.pathway_id, pathway.version),
        ).fetchone()
        if row is not None:
            if row["definition"] != definition:
                raise PathwayInvalid(
                    f"{pathway.pathway_id} v{pathway.version} exists with other content; "
                    "publish it as a new version"
                )
            return False
        cur.execute(
            """INSERT INTO pathway_templates (pathway_id, version, disease, definition,
                                              approved_by) VALUES (%s, %s, %s, %s, %s)""",
            (pathway.pathway_id, pathway.version, pathway.disease, Jsonb(definition), approved_by),
        )
    return True


def pathway(conn: psycopg.Connection, pathway_id: str, version: int | None = None) -> Pathway:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT definition FROM pathway_templates
               WHERE pathway_id = %s AND (%s::int IS NULL OR version = %s)
               ORDER BY version DESC LIMIT 1""",
            (pathway_id, version, version),
        ).fetchone()
    if row is None:
        raise LookupError(f"no pathway {pathway_id}" + (f" v{version}" if version else ""))
    return parse_pathway(row["definition"], set(shipped_questionnaires()))


def list_pathways(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT DISTINCT ON (pathway_id) pathway_id, version, disease,
                      definition->>'name' AS name, definition->>'name_en' AS name_en,
                      approved_by, created_at
               FROM pathway_templates ORDER BY pathway_id, version DESC"""
        ).fetchall()


def install_packages(
    conn: psycopg.Connection, hospital_id: str, packages: list[Package]
) -> list[str]:
    """Create or update a hospital's packages; ids are `<hospital>-<key>`."""
    ids = []
    for package in packages:
        plan = measurement_plan(pathway(conn, package.pathway_id), package.duration_days)
        programme_id = f"{hospital_id}-{package.key}"
        conn.execute(
            """INSERT INTO programmes (programme_id, hospital_id, name, name_en, disease,
                   duration_days, price_cents, pathway_id, measurement_plan, care_team_roles,
                   description)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (programme_id) DO UPDATE SET name = EXCLUDED.name,
                   name_en = EXCLUDED.name_en, disease = EXCLUDED.disease,
                   duration_days = EXCLUDED.duration_days, price_cents = EXCLUDED.price_cents,
                   pathway_id = EXCLUDED.pathway_id,
                   measurement_plan = EXCLUDED.measurement_plan,
                   care_team_roles = EXCLUDED.care_team_roles,
                   description = EXCLUDED.description""",
            (
                programme_id,
                hospital_id,
                package.name,
                package.name_en,
                package.disease,
                package.duration_days,
                package.price_cents,
                package.pathway_id,
                Jsonb(plan),
                package.care_team_roles,
                package.description,
            ),
        )
        ids.append(programme_id)
    return ids


def draft_template(
    conn: psycopg.Connection, template_id: str, title: str, body: str, severity: str
) -> None:
    """A new SMS / app text, sent to nobody until a hospital approves it."""
    conn.execute(
        """INSERT INTO notification_templates (template_id, title, body, severity)
           VALUES (%s, %s, %s, %s)""",
        (template_id, title, body, severity),
    )


def approve_template(
    conn: psycopg.Connection, hospital_id: str, template_id: str, approver: str
) -> None:
    """The hospital's sign-off; a drafted text is centrally approved by its first hospital."""
    conn.execute(
        """UPDATE notification_templates SET approved_by = %s, approved_at = now()
           WHERE template_id = %s AND approved_at IS NULL""",
        (approver, template_id),
    )
    conn.execute(
        """INSERT INTO hospital_template_approvals (hospital_id, template_id, approved_by)
           VALUES (%s, %s, %s)
           ON CONFLICT (hospital_id, template_id) DO UPDATE
               SET approved_by = EXCLUDED.approved_by, approved_at = now(), revoked_at = NULL""",
        (hospital_id, template_id, approver),
    )


def revoke_template(conn: psycopg.Connection, hospital_id: str, template_id: str) -> None:
    conn.execute(
        """UPDATE hospital_template_approvals SET revoked_at = now()
           WHERE hospital_id = %s AND template_id = %s""",
        (hospital_id, template_id),
    )


def hospital_templates(conn: psycopg.Connection, hospital_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT t.template_id, t.title, t.body, t.severity, t.active,
                      t.approved_at IS NOT NULL AS centrally_approved,
                      h.approved_by, h.approved_at,
                      (h.approved_at IS NOT NULL AND h.revoked_at IS NULL
                       AND t.approved_at IS NOT NULL AND t.active) AS may_send
               FROM notification_templates t
               LEFT JOIN hospital_template_approvals h
                      ON h.template_id = t.template_id AND h.hospital_id = %s
               ORDER BY t.template_id""",
            (hospital_id,),
        ).fetchall()


# --- enrolment -----------------------------------------------------------------------------


def enrol(
    conn: psycopg.Connection,
    *,
    patient_id: str,
    programme_id: str,
    department: str,
    consent: Consent,
    enrolled_by: str,
    enrolled_at: datetime,
    timezone: str,
    source: str = "staff",
    paid_cents: int | None = None,
    discharged_on: date | None = None,
    send: Send | None = None,
) -> dict[str, Any]:
    """Enrol with recorded consent and instantiate the pathway's current version into dated
    tasks; the day's due work (measurement plan, education) starts at once."""
    if "monitoring" not in consent.scope:
        raise EnrolmentRefused("consent must cover monitoring (PIPL art. 29 separate consent)")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        programme = cur.execute(
            "SELECT * FROM programmes WHERE programme_id = %s AND active", (programme_id,)
        ).fetchone()
        if programme is None:
            raise LookupError(f"no active programme {programme_id}")
        patient = cur.execute(
            "SELECT cohorts FROM patients WHERE patient_id = %s FOR UPDATE", (patient_id,)
        ).fetchone()
        if patient is None:
            raise LookupError(f"no patient {patient_id}")
        template = pathway(conn, programme["pathway_id"])
        if cur.execute(
            """SELECT 1 FROM enrolments WHERE patient_id = %s AND programme_id = %s
               AND status = 'active'""",
            (patient_id, programme_id),
        ).fetchone():
            raise EnrolmentRefused(f"{patient_id} is already enrolled in {programme_id}")
        ends_at = enrolled_at + timedelta(days=programme["duration_days"])
        row = cur.execute(
            """INSERT INTO enrolments (patient_id, programme_id, hospital_id, department,
                   status, enrolled_at, ends_at, pathway_id, pathway_version, source,
                   enrolled_by, discharged_on, paid_cents)
               VALUES (%s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, %s, %s, %s)
               RETURNING enrolment_id""",
            (
                patient_id,
                programme_id,
                programme["hospital_id"],
                department,
                enrolled_at,
                ends_at,
                template.pathway_id,
                template.version,
                source,
                enrolled_by,
                discharged_on,
                programme["price_cents"] if paid_cents is None else paid_cents,
            ),
        ).fetchone()
        assert row is not None
        enrolment_id = row["enrolment_id"]
        cur.execute(
            """INSERT INTO consents (enrolment_id, patient_id, notice_version, scope, channel,
                   collected_by, collected_at, evidence_sha256)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                enrolment_id,
                patient_id,
                consent.notice_version,
                consent.scope,
                consent.channel,
                consent.collected_by,
                consent.collected_at,
                consent.evidence_sha256,
            ),
        )
        planned = instantiate(template, enrolled_at, programme["duration_days"], timezone)
        for task in planned:
            cur.execute(
                """INSERT INTO programme_tasks (enrolment_id, patient_id, phase, action_key,
                       action, title, detail, due_at, grace_days)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    enrolment_id,
                    patient_id,
                    task.phase,
                    task.action_key,
                    task.action.value,
                    task.title,
                    Jsonb(task.detail),
                    task.due_at,
                    task.grace_days,
                ),
            )
        if template.cohort not in patient["cohorts"]:
            # The pathway's cohort switches on that disease's alert and trend rules.
            cur.execute(
                "UPDATE patients SET cohorts = array_append(cohorts, %s) WHERE patient_id = %s",
                (template.cohort, patient_id),
            )
    run_pathway_sweep(conn, enrolled_at, timezone, send, enrolment_id=enrolment_id)
    return enrolment(conn, enrolment_id) or {}


def import_discharge_list(
    conn: psycopg.Connection,
    text: str,
    *,
    hospital_id: str,
    team_id: str,
    user: User,
    now: datetime,
    timezone: str,
    filename: str = "",
    send: Send | None = None,
) -> dict[str, Any]:
    """Create missing patients and enrol each good row; every refused row is kept in
    `discharge_imports` with its line, code and raw text."""
    rows, rejects = discharge_list.parse(text)
    rejected = [r.__dict__ for r in rejects]
    accepted = []
    for row in rows:
        try:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                programme = cur.execute(
                    "SELECT hospital_id FROM programmes WHERE programme_id = %s",
                    (row.programme_id,),
                ).fetchone()
                if programme is None or programme["hospital_id"] != hospital_id:
                    raise EnrolmentRefused(f"no programme {row.programme_id} at {hospital_id}")
                cur.execute(
                    """INSERT INTO patients (patient_id, name, id_number, phone, team_id)
                       VALUES (%s, %s, %s, %s, %s) ON CONFLICT (patient_id) DO NOTHING""",
                    (row.patient_id, row.name, row.id_number, row.phone, team_id),
                )
                collector = row.consent_collected_by or user.user_id
                if not cur.execute(
                    "SELECT 1 FROM users WHERE user_id = %s", (collector,)
                ).fetchone():
                    raise EnrolmentRefused(f"consent_collected_by {collector} is no user")
                made = enrol(
                    conn,
                    patient_id=row.patient_id,
                    programme_id=row.programme_id,
                    department=row.department,
                    consent=Consent(
                        row.consent_notice_version,
                        row.consent_scope,
                        row.consent_channel,
                        collector,
                        row.consent_collected_at,
                    ),
                    enrolled_by=user.user_id,
                    enrolled_at=now,
                    timezone=timezone,
                    source="discharge_list",
                    paid_cents=row.paid_cents,
                    discharged_on=row.discharged_on,
                    send=send,
                )
            accepted.append(
                {
                    "line": row.line,
                    "patient_id": row.patient_id,
                    "enrolment_id": made["enrolment_id"],
                }
            )
        except (EnrolmentRefused, LookupError) as exc:
            reason = exc.reason if isinstance(exc, EnrolmentRefused) else str(exc)
            rejected.append(
                {"line": row.line, "code": "enrolment_refused", "reason": reason, "raw": ""}
            )
    rejected.sort(key=lambda r: r["line"])
    with conn.cursor(row_factory=dict_row) as cur:
        record = cur.execute(
            """INSERT INTO discharge_imports (hospital_id, imported_by, imported_at, filename,
                   accepted, rejected, raw) VALUES (%s, %s, %s, %s, %s, %s, %s)
               RETURNING import_id""",
            (hospital_id, user.user_id, now, filename, len(accepted), Jsonb(rejected), text),
        ).fetchone()
    assert record is not None
    return {"import_id": record["import_id"], "accepted": accepted, "rejected": rejected}


# --- the pathway sweep ---------------------------------------------------------------------


# --- work on tasks -------------------------------------------------------------------------


def withdraw(
    conn: psycopg.Connection,
    enrolment_id: uuid.UUID,
    user: User,
    reason: str,
    refund_cents: int,
    now: datetime,
) -> dict[str, Any]:
    """Withdrawal (退出) and refund (退费): a refund counts as dissatisfaction in the score.
    Scheduled tasks are cancelled, open ones leave the queue, measurement plans end."""
    if not reason.strip():
        raise EnrolmentRefused("a withdrawal needs a reason")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """UPDATE enrolments SET status = 'withdrawn', withdrawn_at = %s,
                   withdrawal_reason = %s, refunded = %s > 0, refund_cents = %s
               WHERE enrolment_id = %s AND status = 'active' RETURNING *""",
            (now, reason, refund_cents, refund_cents, enrolment_id),
        ).fetchone()
        if row is None:
            raise LookupError(f"no active enrolment {enrolment_id}")
        end_tasks(conn, enrolment_id, user, now, "enrolment withdrawn: " + reason)
    return row


def close_enrolment(
    conn: psycopg.Connection,
    enrolment_id: uuid.UUID,
    user: User,
    now: datetime,
    timezone: str,
) -> dict[str, Any]:
    """Closure (结案): generate the summary; the case manager reviews and sends it."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        e = cur.execute(
            """SELECT e.*, p.name AS patient_name, g.name AS programme_name
               FROM enrolments e JOIN patients p USING (patient_id)
               JOIN programmes g USING (programme_id)
               WHERE e.enrolment_id = %s AND e.status = 'active' FOR UPDATE OF e""",
            (enrolment_id,),
        ).fetchone()
        if e is None:
            raise LookupError(f"no active enrolment {enrolment_id}")
        facts = _closure_facts(cur, e, now, timezone)
        summary = build_summary(facts)
        closure = cur.execute(
            """SELECT task_id FROM programme_tasks
               WHERE enrolment_id = %s AND action = 'closure' AND status = 'open'""",
            (enrolment_id,),
        ).fetchone()
        if closure is not None:
            complete_task(conn, closure["task_id"], user, "completed", "结案", now)
        end_tasks(conn, enrolment_id, user, now, "enrolment closed")
        row = cur.execute(
            """UPDATE enrolments SET status = 'closed', closed_at = %s, closure_summary = %s
               WHERE enrolment_id = %s RETURNING *""",
            (now, Jsonb(summary), enrolment_id),
        ).fetchone()
    assert row is not None
    return row


def _closure_facts(
    cur: psycopg.Cursor[Any], e: dict[str, Any], now: datetime, timezone: str
) -> ClosureFacts:
    period = {"p": e["patient_id"], "from": e["enrolled_at"], "to": now, "tz": timezone}
    readings = {
        r["metric"]: r["n"]
        for r in cur.execute(
            """SELECT metric, count(DISTINCT measurement_id) AS n FROM readings
               WHERE patient_id = %(p)s AND time >= %(from)s AND time <= %(to)s
                 AND metric IN ('systolic', 'glucose', 'weight', 'spo2')
               GROUP BY metric""",
            period,
        ).fetchall()
    }
    means = {
        r["metric"]: r["mean"]
        for r in cur.execute(
            """SELECT metric, avg(value) AS mean FROM readings
               WHERE patient_id = %(p)s AND time > %(to)s::timestamptz - interval '7 days'
                 AND time <= %(to)s AND metric IN ('systolic', 'diastolic', 'glucose')
                 AND (metric <> 'glucose' OR context->>'meal' IN ('fasting', 'before_meal'))
               GROUP BY metric""",
            period,
        ).fetchall()
    }
    alerts = cur.execute(
        """SELECT count(*) AS opened, count(closed_at) AS closed FROM alerts
           WHERE patient_id = %(p)s AND kind IN ('clinical', 'follow_up')
             AND opened_at >= %(from)s AND opened_at <= %(to)s""",
        period,
    ).fetchone()
    tasks = cur.execute(
        """SELECT action, status, due_at, completed_at, grace_days FROM programme_tasks
           WHERE enrolment_id = %s AND due_at <= %s AND status <> 'cancelled'""",
        (e["enrolment_id"], now),
    ).fetchall()
    plan = cur.execute(
        """WITH days AS (
               SELECT generate_series((%(from)s AT TIME ZONE %(tz)s)::date,
                                      (%(to)s AT TIME ZONE %(tz)s)::date - 1, '1 day')::date AS d)
           SELECT count(*) AS plan_days,
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM readings r, measurement_plans m
                      WHERE m.patient_id = %(p)s AND r.patient_id = %(p)s
                        AND r.metric = m.metric
                        AND (r.time AT TIME ZONE %(tz)s)::date = days.d)) AS measured
           FROM days""",
        period,
    ).fetchone()
    revisits = cur.execute(
        "SELECT count(*) AS n FROM revisits WHERE enrolment_id = %s", (e["enrolment_id"],)
    ).fetchone()
    assert alerts is not None and plan is not None and revisits is not None
    tz_date = now.date().isoformat()
    return ClosureFacts(
        patient_name=e["patient_name"],
        programme_name=e["programme_name"],
        enrolled_on=e["enrolled_at"].date().isoformat(),
        closed_on=tz_date,
        readings=readings,
        last_week_means=means,
        alerts_opened=alerts["opened"],
        alerts_closed=alerts["closed"],
        tasks_due=len(tasks),
        tasks_done_on_time=sum(1 for t in tasks if done_on_time(t)),
        plan_days=plan["plan_days"],
        plan_days_measured=plan["measured"],
        revisits=revisits["n"],
        targets=DEFAULT_TARGETS,
    )


def mark_summary_sent(
    conn: psycopg.Connection,
    enrolment_id: uuid.UUID,
    user: User,
    now: datetime,
    summary_text: str | None,
    send: Send | None,
) -> dict[str, Any]:
    """The case manager reviewed (and possibly edited) the summary; it goes to the patient
    as the approved `closure_summary` message and is kept with the enrolment."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        e = cur.execute(
            """SELECT * FROM enrolments WHERE enrolment_id = %s AND status = 'closed'
               FOR UPDATE""",
            (enrolment_id,),
        ).fetchone()
        if e is None:
            raise LookupError(f"no closed enrolment {enrolment_id}")
        summary = dict(e["closure_summary"] or {})
        if summary_text:
            summary["text_zh"] = summary_text
        delivered = send(e["patient_id"], "closure_summary") if send else False
        summary["delivered_in_app"] = delivered
        row = cur.execute(
            """UPDATE enrolments SET closure_summary = %s, summary_reviewed_by = %s,
                   summary_sent_at = %s WHERE enrolment_id = %s RETURNING *""",
            (Jsonb(summary), user.user_id, now, enrolment_id),
        ).fetchone()
    assert row is not None
    return row


# --- reading back --------------------------------------------------------------------------

PROGRESS_SQL = """
    SELECT e.enrolment_id, e.patient_id, p.name AS patient_name, p.team_id, e.programme_id,
           g.name AS programme_name, e.hospital_id, e.department, e.status, e.enrolled_at,
           e.ends_at, e.pathway_id, e.pathway_version, e.source, e.withdrawn_at,
           e.withdrawal_reason, e.refunded, e.refund_cents, e.closed_at, e.summary_sent_at,
           count(t.task_id) FILTER (WHERE t.status <> 'cancelled') AS tasks_total,
           count(t.task_id) FILTER (WHERE t.status = 'done') AS tasks_done,
           count(t.task_id) FILTER (WHERE t.status IN ('scheduled', 'open')
               AND t.due_at + make_interval(days => t.grace_days + 1) <= %(now)s)
               AS tasks_overdue,
           count(t.task_id) FILTER (WHERE t.due_at <= %(now)s AND t.status <> 'cancelled')
               AS tasks_due,
           min(t.due_at) FILTER (WHERE t.status IN ('scheduled', 'open')) AS next_due_at,
           CASE WHEN e.status <> 'active' THEN NULL
                WHEN e.ends_at <= %(now)s THEN '疗程结束'
                ELSE (SELECT ph.value->>'name' FROM jsonb_array_elements(pt.definition->'phases') ph
                      WHERE (ph.value->>'start_day')::int
                            <= extract(day FROM %(now)s - e.enrolled_at)
                      ORDER BY (ph.value->>'start_day')::int DESC LIMIT 1) END AS current_phase
    FROM enrolments e JOIN patients p USING (patient_id)
    JOIN programmes g USING (programme_id)
    JOIN pathway_templates pt ON pt.pathway_id = e.pathway_id AND pt.version = e.pathway_version
    LEFT JOIN programme_tasks t ON t.enrolment_id = e.enrolment_id
"""


def list_enrolments(
    conn: psycopg.Connection,
    *,
    teams: list[str] | None,
    now: datetime,
    programme_id: str | None = None,
    hospital_id: str | None = None,
    status: str | None = None,
    patient_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            PROGRESS_SQL
            + """WHERE (%(teams)s::text[] IS NULL OR p.team_id = ANY(%(teams)s))
                   AND (%(programme)s::text IS NULL OR e.programme_id = %(programme)s)
                   AND (%(hospital)s::text IS NULL OR e.hospital_id = %(hospital)s)
                   AND (%(status)s::text IS NULL OR e.status = %(status)s)
                   AND (%(patient)s::text IS NULL OR e.patient_id = %(patient)s)
                 GROUP BY e.enrolment_id, p.patient_id, g.programme_id, pt.pathway_id,
                          pt.version
                 ORDER BY e.enrolled_at DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {
                "teams": teams,
                "programme": programme_id,
                "hospital": hospital_id,
                "status": status,
                "patient": patient_id,
                "now": now,
                "limit": limit,
                "offset": offset,
            },
        ).fetchall()


def enrolment(
    conn: psycopg.Connection, enrolment_id: uuid.UUID, now: datetime | None = None
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            PROGRESS_SQL
            + """WHERE e.enrolment_id = %(id)s
                 GROUP BY e.enrolment_id, p.patient_id, g.programme_id, pt.pathway_id,
                          pt.version""",
            {"id": enrolment_id, "now": now or datetime.now().astimezone()},
        ).fetchone()
        if row is None:
            return None
        row["closure_summary"] = cur.execute(
            "SELECT closure_summary FROM enrolments WHERE enrolment_id = %s", (enrolment_id,)
        ).fetchone()["closure_summary"]  # type: ignore[index]
        row["tasks"] = cur.execute(
            """SELECT task_id, phase, action_key, action, title, detail, due_at, grace_days,
                      status, alert_id, completed_at, completed_by, outcome
               FROM programme_tasks WHERE enrolment_id = %s ORDER BY due_at, action_key""",
            (enrolment_id,),
        ).fetchall()
        row["consents"] = cur.execute(
            """SELECT consent_id, notice_version, scope, channel, collected_by, collected_at,
                      evidence_sha256 FROM consents WHERE enrolment_id = %s ORDER BY consent_id""",
            (enrolment_id,),
        ).fetchall()
        row["responses"] = cur.execute(
            """SELECT response_id, questionnaire_id, version, score, risk_level, channel,
                      entered_by, answered_at FROM questionnaire_responses
               WHERE enrolment_id = %s ORDER BY answered_at""",
            (enrolment_id,),
        ).fetchall()
        row["revisits"] = cur.execute(
            """SELECT revisit_id, visited_on, source, recorded_by, recorded_at, note
               FROM revisits WHERE enrolment_id = %s ORDER BY visited_on""",
            (enrolment_id,),
        ).fetchall()
    return row


def enrolment_patient(conn: psycopg.Connection, enrolment_id: uuid.UUID) -> str | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT patient_id FROM enrolments WHERE enrolment_id = %s", (enrolment_id,)
        ).fetchone()
    return None if row is None else str(row["patient_id"])


def install_defaults(
    conn: psycopg.Connection, hospital_id: str, name: str, approver: str
) -> list[str]:
    """A hospital with the shipped pathways, seed 001's packages and every active template
    approved: the demo configuration and a first install's starting point."""
    from cloud.programmes.packages import load_packages
    from cloud.programmes.pathway import shipped_pathways

    ensure_hospital(conn, hospital_id, name)
    for shipped in shipped_pathways().values():
        publish_pathway(conn, shipped, approver)
    ids = install_packages(conn, hospital_id, load_packages())
    with conn.cursor(row_factory=dict_row) as cur:
        templates = cur.execute(
            """SELECT template_id FROM notification_templates
               WHERE active AND approved_at IS NOT NULL"""
        ).fetchall()
    for template in templates:
        approve_template(conn, hospital_id, template["template_id"], approver)
    return ids
