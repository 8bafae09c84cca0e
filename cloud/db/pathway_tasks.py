"""Pathway tasks at work: the sweep that starts due tasks, marks overdue ones and opens
no-show and closure follow-ups; finishing tasks, questionnaire answers and revisits.

A pathway task is a row of `programme_tasks` (the schedule, the source of the compliance
figures). When it falls due, work for a person opens an alert of kind `pathway` in the
patient's team queue (`GET /api/v1/queue`), with the same lifecycle, SLA escalation and
contact records as a clinical alert; resolving that alert completes the task (the sweep's
`sync_from_queue`), and finishing the task here closes the alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.alerts.rules import AlertCandidate
from cloud.alerts.thresholds import Tier
from cloud.auth import User
from cloud.db.alert_notify import announce
from cloud.db.care_store import record_event
from cloud.db.ingest_store import upsert_alerts
from cloud.programmes.errors import AnswersInvalid
from cloud.programmes.pathway import ActionKind
from cloud.programmes.questionnaires import score, shipped_questionnaires
from cloud.programmes.work_stats import is_overdue

# Sends an approved template to a patient; False when it could not go out.
Send = Callable[[str, str], bool]


REVISIT_LEAD = timedelta(days=3)


TASK_TIER = {
    ActionKind.FOLLOW_UP_CALL: Tier.LOW,
    ActionKind.QUESTIONNAIRE: Tier.LOW,
    ActionKind.LIFESTYLE_CHECK_IN: Tier.LOW,
    ActionKind.EDUCATION: Tier.LOW,
    ActionKind.REVISIT_REMINDER: Tier.LOW,
}


NO_SHOW = "no_show_follow_up"
SWEEP_BATCH = 500
CLOSURE = "closure"


def _open_queue_item(
    conn: psycopg.Connection,
    task: dict[str, Any],
    now: datetime,
    timezone: str,
    tier: Tier = Tier.LOW,
    title: str | None = None,
) -> uuid.UUID | None:
    candidate = AlertCandidate(
        patient_id=task["patient_id"],
        rule_id=f"pathway.{task['task_id']}",
        tier=tier,
        title=title or task["title"],
        explanation={
            "rule": f"pathway.{task['action']}",
            "summary": task["title"],
            "task_id": str(task["task_id"]),
            "enrolment_id": str(task["enrolment_id"]),
            "action": task["action"],
            "due_at": task["due_at"].isoformat(),
            "detail": task["detail"],
            "overdue": False,
            "readings": [],
        },
        kind="pathway",
    )
    done = upsert_alerts(conn, [candidate], now, timezone)
    return done[0][1] if done else None


def _activate(
    conn: psycopg.Connection,
    task: dict[str, Any],
    now: datetime,
    timezone: str,
    send: Send | None,
) -> str:
    kind = task["action"]
    if kind == ActionKind.MEASUREMENT_PLAN:
        for m in task["detail"]["measurements"]:
            conn.execute(
                """INSERT INTO measurement_plans (patient_id, metric, times_per_day, started_at,
                                                  ends_at, set_by)
                   VALUES (%s, %s, %s, %s, %s, 'pathway')
                   ON CONFLICT (patient_id, metric) DO UPDATE SET
                       times_per_day = EXCLUDED.times_per_day,
                       started_at = least(measurement_plans.started_at, EXCLUDED.started_at),
                       ends_at = EXCLUDED.ends_at, set_by = 'pathway'""",
                (
                    task["patient_id"],
                    m["metric"],
                    m["times_per_day"],
                    task["due_at"],
                    task["detail"]["ends_at"],
                ),
            )
        return "done"
    if kind in (ActionKind.EDUCATION, ActionKind.REVISIT_REMINDER):
        template = task["detail"]["template_id"]
        if send is not None and send(task["patient_id"], template):
            return "done"
        # No app to reach or the hospital has not approved the text: a person does it.
        title = "电话提醒复诊：" if kind == ActionKind.REVISIT_REMINDER else "电话宣教："
        _open_queue_item(conn, task, now, timezone, title=title + task["title"])
        return "open"
    tier = Tier.MEDIUM if kind == NO_SHOW else TASK_TIER.get(ActionKind(kind), Tier.LOW)
    _open_queue_item(conn, task, now, timezone, tier=tier)
    return "open"


def run_pathway_sweep(
    conn: psycopg.Connection,
    now: datetime,
    timezone: str,
    send: Send | None = None,
    *,
    enrolment_id: uuid.UUID | None = None,
) -> dict[str, int]:
    """Start the tasks that fell due, complete those whose queue item was resolved, mark
    overdue ones, open a follow-up for every revisit not made within its window and a
    closure task for every course that ran its length."""
    counts = {"activated": 0, "completed": 0, "overdue": 0, "no_shows": 0, "closures": 0}
    # Batches locked with SKIP LOCKED: several cloud processes may sweep side by side and
    # still start (and send) each task once. One enrolment's own run (right after it was
    # made) waits for the rows instead: a periodic sweep may have taken them a moment
    # earlier, and the enrolment is to return only once its due work has started (the
    # measurement plan its edge is sent). Only this side waits, so no deadlock.
    lock = "FOR UPDATE OF t" if enrolment_id is not None else "FOR UPDATE OF t SKIP LOCKED"
    while True:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            due = cur.execute(
                f"""SELECT t.* FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
                   WHERE t.status = 'scheduled' AND e.status = 'active'
                     AND t.due_at - CASE WHEN t.action = 'revisit_reminder' THEN %(lead)s
                                         ELSE interval '0' END <= %(now)s
                     AND (%(e)s::uuid IS NULL OR t.enrolment_id = %(e)s)
                   ORDER BY t.due_at LIMIT %(batch)s {lock}""",
                {"now": now, "lead": REVISIT_LEAD, "e": enrolment_id, "batch": SWEEP_BATCH},
            ).fetchall()
            for task in due:
                status = _activate(conn, task, now, timezone, send)
                cur.execute(
                    """UPDATE programme_tasks SET status = %s,
                           alert_id = (SELECT alert_id FROM alerts WHERE rule_id = %s
                                       ORDER BY opened_at DESC LIMIT 1),
                           completed_at = CASE WHEN %s = 'done' THEN %s END,
                           completed_by = CASE WHEN %s = 'done' THEN 'system' END
                       WHERE task_id = %s""",
                    (status, f"pathway.{task['task_id']}", status, now, status, task["task_id"]),
                )
        counts["activated"] += len(due)
        if len(due) < SWEEP_BATCH:
            break
    counts["completed"] = sync_from_queue(conn)
    counts["overdue"] = _mark_overdue(conn, now)
    counts["no_shows"] = _no_shows(conn, now, timezone)
    counts["closures"] = _course_ends(conn, now, timezone)
    return counts


def sync_from_queue(conn: psycopg.Connection) -> int:
    """A resolved queue item completes its task (who and when from the alert); a dismissed
    one cancels it."""
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE programme_tasks t SET
                   status = CASE WHEN a.status = 'resolved' THEN 'done' ELSE 'cancelled' END,
                   completed_at = a.closed_at,
                   completed_by = coalesce(
                       (SELECT e.actor_id FROM alert_events e WHERE e.alert_id = a.alert_id
                          AND e.to_status = a.status ORDER BY e.event_id DESC LIMIT 1),
                       a.assignee_id),
                   outcome = a.outcome_code
               FROM alerts a
               WHERE a.alert_id = t.alert_id AND t.status = 'open'
                 AND a.status IN ('resolved', 'dismissed')"""
        )
        return cur.rowcount


def _mark_overdue(conn: psycopg.Connection, now: datetime) -> int:
    """An open task past its grace days is flagged on its queue item and raised to medium,
    once (the event records when)."""
    marked = 0
    with conn.cursor(row_factory=dict_row) as cur:
        late = cur.execute(
            """SELECT t.task_id, t.due_at, t.grace_days, t.status, a.alert_id, a.tier,
                      a.status AS alert_status
               FROM programme_tasks t JOIN alerts a ON a.alert_id = t.alert_id
               WHERE t.status = 'open' AND NOT coalesce((a.explanation->>'overdue')::boolean,
                                                        false)
                 AND a.status IN ('open', 'acknowledged', 'in_progress', 'escalated')"""
        ).fetchall()
        for task in late:
            if not is_overdue(task, now):
                continue
            with conn.transaction():
                cur.execute(
                    """UPDATE alerts SET explanation = explanation || %s,
                           tier = CASE WHEN tier = 'low' THEN 'medium' ELSE tier END,
                           updated_at = %s
                       WHERE alert_id = %s""",
                    (
                        Jsonb({"overdue": True, "overdue_since": now.isoformat()}),
                        now,
                        task["alert_id"],
                    ),
                )
                record_event(
                    conn,
                    task["alert_id"],
                    now,
                    None,
                    "task_overdue",
                    task["alert_status"],
                    task["alert_status"],
                    None,
                    "pathway task past its due date and grace days",
                )
                announce(conn, task["alert_id"], "task_overdue")
            marked += 1
    return marked


def _add_open_task(
    conn: psycopg.Connection,
    source: dict[str, Any],
    *,
    action: str,
    action_key: str,
    title: str,
    detail: dict[str, Any],
    now: datetime,
    timezone: str,
    tier: Tier,
) -> None:
    """A task the pathway did not schedule but its course calls for, open at once."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO programme_tasks (enrolment_id, patient_id, phase, action_key,
                   action, title, detail, due_at, grace_days, status)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, 'open')
               ON CONFLICT (enrolment_id, action_key) DO NOTHING RETURNING *""",
            (
                source["enrolment_id"],
                source["patient_id"],
                source["phase"],
                action_key,
                action,
                title,
                Jsonb(detail),
                now,
            ),
        ).fetchone()
        if row is None:
            return
        alert_id = _open_queue_item(conn, row, now, timezone, tier=tier)
        cur.execute(
            "UPDATE programme_tasks SET alert_id = %s WHERE task_id = %s",
            (alert_id, row["task_id"]),
        )


def _no_shows(conn: psycopg.Connection, now: datetime, timezone: str) -> int:
    """A revisit not recorded within its window gets an active follow-up (复诊未到主动随访)."""
    with conn.cursor(row_factory=dict_row) as cur:
        missed = cur.execute(
            """SELECT t.* FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
               WHERE t.action = 'revisit_reminder' AND t.status IN ('open', 'done')
                 AND e.status = 'active'
                 AND t.due_at + make_interval(days => (t.detail->>'window_days')::int + 1)
                     <= %(now)s
                 AND NOT EXISTS (
                     SELECT 1 FROM revisits r WHERE r.enrolment_id = t.enrolment_id
                       AND abs(r.visited_on - (t.due_at AT TIME ZONE %(tz)s)::date)
                           <= (t.detail->>'window_days')::int)
                 AND NOT EXISTS (
                     SELECT 1 FROM programme_tasks n WHERE n.enrolment_id = t.enrolment_id
                       AND n.action_key = 'no_show:' || t.action_key)""",
            {"now": now, "tz": timezone},
        ).fetchall()
    for task in missed:
        _add_open_task(
            conn,
            task,
            action=NO_SHOW,
            action_key=f"no_show:{task['action_key']}",
            title=f"未按时复诊，请主动随访（{task['title']}）",
            detail={
                "revisit_task_id": str(task["task_id"]),
                "script": ["了解未复诊原因", "协助预约复诊", "告知医生"],
            },
            now=now,
            timezone=timezone,
            tier=Tier.MEDIUM,
        )
    return len(missed)


def _course_ends(conn: psycopg.Connection, now: datetime, timezone: str) -> int:
    """A course that ran its length asks the case manager to close it (结案) with a summary."""
    with conn.cursor(row_factory=dict_row) as cur:
        ended = cur.execute(
            """SELECT e.enrolment_id, e.patient_id, 'closure' AS phase FROM enrolments e
               WHERE e.status = 'active' AND e.ends_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM programme_tasks t
                                 WHERE t.enrolment_id = e.enrolment_id
                                   AND t.action_key = 'closure')""",
            (now,),
        ).fetchall()
    for enrolment in ended:
        _add_open_task(
            conn,
            enrolment,
            action=CLOSURE,
            action_key="closure",
            title="疗程结束，请结案并发送结案小结",
            detail={"script": ["核对管理记录", "生成并审阅结案小结", "发送给患者"]},
            now=now,
            timezone=timezone,
            tier=Tier.LOW,
        )
    return len(ended)


# --- work on tasks -------------------------------------------------------------------------


def close_queue_item(
    conn: psycopg.Connection,
    alert_id: uuid.UUID | None,
    actor: str,
    outcome: str | None,
    note: str,
    now: datetime,
    to_status: str = "resolved",
) -> None:
    """Close a task's queue item directly: finishing the task is the resolution."""
    if alert_id is None:
        return
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """UPDATE alerts a SET status = %s, closed_at = %s, updated_at = %s,
                   outcome_code = %s, acknowledged_at = coalesce(acknowledged_at, %s)
               FROM (SELECT status FROM alerts WHERE alert_id = %s FOR UPDATE) before
               WHERE a.alert_id = %s
                 AND a.status IN ('open', 'acknowledged', 'in_progress', 'escalated')
               RETURNING before.status""",
            (to_status, now, now, outcome, now, alert_id, alert_id),
        ).fetchone()
    if row is not None:
        record_event(
            conn,
            alert_id,
            now,
            actor,
            "task_finished",
            row["status"],
            to_status,
            outcome,
            note or None,
        )
        announce(conn, alert_id, "task_finished")


def complete_task(
    conn: psycopg.Connection,
    task_id: uuid.UUID,
    user: User,
    outcome: str,
    note: str,
    now: datetime,
) -> dict[str, Any]:
    """`completed` or `unreachable` (missed: closed, not done to standard)."""
    status = "done" if outcome == "completed" else "missed"
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        task = cur.execute(
            """UPDATE programme_tasks SET status = %s, completed_at = %s, completed_by = %s,
                   outcome = %s
               WHERE task_id = %s AND status IN ('scheduled', 'open') RETURNING *""",
            (status, now, user.user_id, outcome, task_id),
        ).fetchone()
        if task is None:
            raise LookupError(f"no open task {task_id}")
        close_queue_item(
            conn,
            task["alert_id"],
            user.user_id,
            "patient_reached_advised" if status == "done" else "unreachable_after_attempts",
            note,
            now,
        )
    return task


def record_response(
    conn: psycopg.Connection,
    *,
    patient_id: str,
    questionnaire_id: str,
    answers: dict[str, Any],
    channel: str,
    user: User,
    now: datetime,
    timezone: str,
    task_id: uuid.UUID | None = None,
    response_id: uuid.UUID | None = None,
    answered_at: datetime | None = None,
) -> dict[str, Any]:
    """Score and store one answered form; a risky score raises a follow-up task.

    `response_id` (the app's answer id) makes a resend harmless: the form is stored once
    and the repeat gets the first one's result, with `duplicate` true. `answered_at`
    (default `now`) is when the patient answered, which may be before it reached us."""
    form = shipped_questionnaires().get(questionnaire_id)
    if form is None:
        raise LookupError(f"no questionnaire {questionnaire_id}")
    result = score(form, answers)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        if response_id is not None:
            stored = cur.execute(
                """SELECT response_id, patient_id, score, risk_level FROM questionnaire_responses
                   WHERE response_id = %s""",
                (response_id,),
            ).fetchone()
            if stored is not None:
                if stored["patient_id"] != patient_id:
                    raise AnswersInvalid("this answer id is another patient's")
                return {
                    "response_id": stored["response_id"],
                    "score": stored["score"],
                    "risk_level": stored["risk_level"],
                    "label": result.label,
                    "asked": result.asked,
                    "raised_alert_id": None,
                    "duplicate": True,
                }
        enrolment_row = cur.execute(
            """SELECT enrolment_id FROM enrolments WHERE patient_id = %s AND status = 'active'
               ORDER BY enrolled_at DESC LIMIT 1""",
            (patient_id,),
        ).fetchone()
        row = cur.execute(
            """INSERT INTO questionnaire_responses (response_id, patient_id, enrolment_id,
                   task_id, questionnaire_id, version, answers, score, risk_level, channel,
                   entered_by, answered_at)
               VALUES (coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       %s)
               RETURNING response_id""",
            (
                response_id,
                patient_id,
                enrolment_row["enrolment_id"] if enrolment_row else None,
                task_id,
                questionnaire_id,
                form.version,
                Jsonb(answers),
                result.score,
                result.risk_level,
                channel,
                user.user_id,
                answered_at or now,
            ),
        ).fetchone()
        assert row is not None
        if task_id is not None:
            complete_task(conn, task_id, user, "completed", f"questionnaire {result.score:g}", now)
        raised = None
        if result.task_tier:
            done = upsert_alerts(
                conn,
                [
                    AlertCandidate(
                        patient_id=patient_id,
                        rule_id=f"questionnaire.{questionnaire_id}",
                        tier=Tier(result.task_tier),
                        title=result.task_title or result.label,
                        explanation={
                            "rule": f"questionnaire.{questionnaire_id}",
                            "summary": f"score {result.score:g}: {result.label}",
                            "response_id": str(row["response_id"]),
                            "answers": answers,
                            "readings": [],
                        },
                        kind="follow_up",
                    )
                ],
                now,
                timezone,
            )
            raised = done[0][1] if done else None
    return {
        "response_id": row["response_id"],
        "score": result.score,
        "risk_level": result.risk_level,
        "label": result.label,
        "asked": result.asked,
        "raised_alert_id": raised,
        "duplicate": False,
    }


def record_revisit(
    conn: psycopg.Connection,
    enrolment_id: uuid.UUID,
    visited_on: date,
    user: User,
    note: str = "",
    source: str = "manual",
) -> dict[str, Any]:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "SELECT patient_id FROM enrolments WHERE enrolment_id = %s", (enrolment_id,)
        ).fetchone()
        if found is None:
            raise LookupError(f"no enrolment {enrolment_id}")
        row = cur.execute(
            """INSERT INTO revisits (enrolment_id, patient_id, visited_on, source, recorded_by,
                                     note)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING *""",
            (enrolment_id, found["patient_id"], visited_on, source, user.user_id, note),
        ).fetchone()
    assert row is not None
    return row


def end_tasks(
    conn: psycopg.Connection, enrolment_id: uuid.UUID, user: User, now: datetime, note: str
) -> None:
    """An enrolment that ends (withdrawn or closed): what was still to do is cancelled, its
    queue items leave the queue, and the pathway's measurement plans stop."""
    with conn.cursor(row_factory=dict_row) as cur:
        open_items = cur.execute(
            """UPDATE programme_tasks SET status = 'cancelled'
               WHERE enrolment_id = %s AND status IN ('scheduled', 'open')
               RETURNING alert_id""",
            (enrolment_id,),
        ).fetchall()
        cur.execute(
            """UPDATE measurement_plans m SET ends_at = %s FROM enrolments e
               WHERE e.enrolment_id = %s AND m.patient_id = e.patient_id
                 AND m.set_by = 'pathway' AND (m.ends_at IS NULL OR m.ends_at > %s)""",
            (now, enrolment_id, now),
        )
    for item in open_items:
        close_queue_item(
            conn, item["alert_id"], user.user_id, "false_alarm", note, now, to_status="dismissed"
        )


def task_patient(conn: psycopg.Connection, task_id: uuid.UUID) -> str | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT patient_id FROM programme_tasks WHERE task_id = %s", (task_id,)
        ).fetchone()
    return None if row is None else str(row["patient_id"])


def template_sender(conn: psycopg.Connection, publisher: Any) -> Send:
    """Send through `cloud.notify` (approved centrally and by the hospital, kept as a
    contact record); False when it cannot go out, so a person takes the task over."""
    from cloud.notify import NotificationError, send_template

    def send(patient_id: str, template_id: str) -> bool:
        try:
            send_template(
                conn, publisher, patient_id=patient_id, template_id=template_id, sender_id="system"
            )
        except NotificationError:
            return False
        return True

    return send
