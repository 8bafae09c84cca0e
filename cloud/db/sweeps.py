"""Periodic clinical sweeps: the database side of the trend and adherence rules, and the
check that a single critical blood pressure got its repeat. The rules themselves are pure
(`cloud.alerts.trends`, `cloud.alerts.adherence`); this module reads what they need and
turns their findings into alerts and reminders."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from cloud.alerts.adherence import (
    DEFAULT_POLICY,
    HEART_FAILURE_WEIGHT,
    STAGE_TIER,
    STAGE_TITLE,
    Stage,
    missed_stage,
)
from cloud.alerts.rules import REPEAT_DUE, AlertCandidate
from cloud.alerts.thresholds import Cohort
from cloud.db.alert_notify import announce
from cloud.db.care_store import record_event
from cloud.db.ingest_store import upsert_alerts

log = logging.getLogger("carebridge.sweeps")

TREND_HISTORY = timedelta(days=15)
TREND_BATCH = 500


def run_trend_sweep(conn: psycopg.Connection, now: datetime, timezone: str) -> int:
    """Judge the trends of the patients ingest queued; returns the alerts opened or raised."""
    # pandas takes half a second to import: the first sweep pays for it, a minute after a
    # cloud process starts, instead of every start.
    from cloud.alerts import trends

    touched = 0
    today = now.astimezone(ZoneInfo(timezone)).date()
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        queued = cur.execute(
            """DELETE FROM trend_queue WHERE patient_id IN (
                   SELECT patient_id FROM trend_queue ORDER BY queued_at
                   LIMIT %s FOR UPDATE SKIP LOCKED)
               RETURNING patient_id""",
            (TREND_BATCH,),
        ).fetchall()
        for item in queued:
            patient = cur.execute(
                "SELECT cohorts FROM patients WHERE patient_id = %s", (item["patient_id"],)
            ).fetchone()
            if patient is None or not patient["cohorts"]:
                continue
            rows = cur.execute(
                """SELECT time, metric, value, source, context->>'meal' AS meal
                   FROM readings WHERE patient_id = %s AND time >= %s AND time <= %s""",
                (item["patient_id"], now - TREND_HISTORY, now),
            ).fetchall()
            findings = trends.findings(set(patient["cohorts"]), rows, today, timezone)
            candidates = [
                AlertCandidate(
                    patient_id=item["patient_id"],
                    rule_id=f.rule_id,
                    tier=f.tier,
                    title=f.title_zh,
                    explanation={
                        "rule": f.rule_id,
                        "summary": f.reason,
                        "days": [d.isoformat() for d in f.days],
                        "readings": [],
                    },
                )
                for f in findings
            ]
            touched += sum(
                1
                for _c, _id, what in upsert_alerts(conn, candidates, now, timezone)
                if what != "readings_added"
            )
    return touched


def run_adherence_sweep(
    conn: psycopg.Connection,
    now: datetime,
    timezone: str,
    remind: Callable[[str], None] | None = None,
) -> int:
    """Follow-up tasks for patients behind their measurement plans. `remind(patient_id)`
    sends the approved reminder when a patient first falls two days behind."""
    with conn.cursor(row_factory=dict_row) as cur:
        plans = cur.execute(
            """SELECT m.patient_id, m.metric, m.started_at, l.time AS last_reading_at,
                      p.cohorts
               FROM measurement_plans m JOIN patients p USING (patient_id)
               LEFT JOIN patient_latest l
                      ON l.patient_id = m.patient_id AND l.metric = m.metric
               WHERE m.started_at <= %(now)s AND (m.ends_at IS NULL OR m.ends_at > %(now)s)""",
            {"now": now},
        ).fetchall()
    candidates = []
    for plan in plans:
        heart_failure_weight = (
            plan["metric"] == "weight" and Cohort.HEART_FAILURE.value in plan["cohorts"]
        )
        policy = HEART_FAILURE_WEIGHT if heart_failure_weight else DEFAULT_POLICY
        stage = missed_stage(plan["started_at"], plan["last_reading_at"], now, policy)
        if stage is None:
            continue
        last = plan["last_reading_at"].isoformat() if plan["last_reading_at"] else "never"
        candidates.append(
            AlertCandidate(
                patient_id=plan["patient_id"],
                rule_id=f"adherence.{plan['metric']}",
                tier=STAGE_TIER[stage],
                title=f"{STAGE_TITLE[stage]}（{plan['metric']}）",
                explanation={
                    "rule": f"adherence.{plan['metric']}",
                    "stage": stage.value,
                    "summary": f"no {plan['metric']} reading since {last}",
                    "readings": [],
                },
                kind="follow_up",
            )
        )
    with conn.transaction():
        done = upsert_alerts(conn, candidates, now, timezone)
    for candidate, _alert_id, what in done:
        if (
            what == "opened"
            and remind is not None
            and candidate.explanation["stage"] == Stage.REMIND
        ):
            remind(candidate.patient_id)
    return len([d for d in done if d[2] != "readings_added"])


def run_repeat_check(conn: psycopg.Connection, now: datetime) -> int:
    """A single critical blood pressure asks for a repeat within 15 minutes; when none came,
    the alert is escalated to the patient's doctor (never quietly dropped)."""
    escalated = 0
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        due = cur.execute(
            """SELECT a.alert_id, a.status, a.patient_id, a.opened_at, p.doctor_id
               FROM alerts a LEFT JOIN patients p USING (patient_id)
               WHERE a.rule_id = 'bp.crisis' AND a.explanation ? 'repeat_due_minutes'
                 AND a.status IN ('open', 'acknowledged', 'in_progress')
                 AND a.opened_at <= %s
                 AND NOT EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.alert_id
                                   AND e.action = 'no_repeat')
               FOR UPDATE OF a SKIP LOCKED""",
            (now - REPEAT_DUE,),
        ).fetchall()
        for alert in due:
            # A repeat that is still critical joins this same alert, so look for any other
            # cuff measurement in the 15 minutes after the one that raised it.
            repeated = cur.execute(
                """WITH first AS (
                       SELECT r.time, r.measurement_id FROM readings r, alerts a
                       WHERE a.alert_id = %(id)s AND r.reading_id = ANY(a.reading_ids)
                         AND r.metric = 'systolic' ORDER BY r.time LIMIT 1)
                   SELECT 1 FROM readings r, first
                   WHERE r.patient_id = %(p)s AND r.metric = 'systolic'
                     AND r.time > first.time AND r.time <= first.time + %(due)s
                     AND r.measurement_id <> first.measurement_id
                   LIMIT 1""",
                {"id": alert["alert_id"], "p": alert["patient_id"], "due": REPEAT_DUE},
            ).fetchone()
            if repeated:
                continue
            cur.execute(
                """UPDATE alerts SET status = 'escalated', escalation_level = escalation_level + 1,
                       assignee_id = coalesce(%s, assignee_id), updated_at = %s
                   WHERE alert_id = %s""",
                (alert["doctor_id"], now, alert["alert_id"]),
            )
            record_event(
                conn,
                alert["alert_id"],
                now,
                None,
                "no_repeat",
                alert["status"],
                "escalated",
                None,
                "no repeat measurement within 15 minutes; escalated to the doctor",
                target="doctor",
                to_user=alert["doctor_id"],
            )
            announce(conn, alert["alert_id"], "no_repeat")
            escalated += 1
    return escalated
