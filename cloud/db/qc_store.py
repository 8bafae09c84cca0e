"""The monthly QC score from the database, its audited sample, the supervisor's reviews and
rectification tasks, and the month's work statistics. The arithmetic is pure
(`cloud.programmes.qc_score`, `sampling`, `work_stats`); this module gathers the cohorts
(defined in docs/programmes.md, "QC score") and keeps the patients behind every figure."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row

from cloud.alerts.rules import AlertCandidate
from cloud.alerts.thresholds import Tier
from cloud.auth import User
from cloud.db.ingest_store import upsert_alerts
from cloud.privacy import mask_name
from cloud.programmes import qc_score, sampling, work_stats
from cloud.programmes.errors import SampleExists
from cloud.programmes.qc_score import Ratio


def month_window(month: str, timezone: str) -> tuple[date, datetime, datetime]:
    """`YYYY-MM` → its first day and [start, end) in the hospital's time zone."""
    year, mon = (int(p) for p in month.split("-"))
    if not 1 <= mon <= 12:
        raise ValueError("month must be 01-12")
    tz = ZoneInfo(timezone)
    first = date(year, mon, 1)
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    return first, datetime.combine(first, time(0), tz), datetime.combine(after, time(0), tz)


def _window(hospital_id: str, month: str, timezone: str, department: str | None) -> dict[str, Any]:
    first, start, end = month_window(month, timezone)
    return {
        "h": hospital_id,
        "first": first,
        "start": start,
        "end": end,
        "dept": department,
        "tz": timezone,
    }


def _ended_population(cur: psycopg.Cursor[Any], w: dict[str, Any]) -> list[dict[str, Any]]:
    """Enrolments whose management ended this month (closed, or course over); withdrawals
    are not here: their refund already counts against satisfaction."""
    return cur.execute(
        """SELECT e.enrolment_id, e.patient_id, p.name, e.department,
                  coalesce(e.closed_at, e.ends_at) AS ended_at
           FROM enrolments e JOIN patients p USING (patient_id)
           WHERE e.hospital_id = %(h)s AND e.status <> 'withdrawn'
             AND coalesce(e.closed_at, e.ends_at) >= %(start)s
             AND coalesce(e.closed_at, e.ends_at) < %(end)s
             AND (%(dept)s::text IS NULL OR e.department = %(dept)s)
           ORDER BY e.enrolment_id""",
        w,
    ).fetchall()


def _auto_compliance(cur: psycopg.Cursor[Any], enrolment_ids: list[uuid.UUID]) -> dict[str, Any]:
    """Completed to standard = every task due before management ended was done on time."""
    tasks = cur.execute(
        """SELECT t.enrolment_id, t.action, t.status, t.due_at, t.completed_at, t.grace_days
           FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
           WHERE t.enrolment_id = ANY(%s) AND t.status <> 'cancelled'
             AND t.due_at < coalesce(e.closed_at, e.ends_at)""",
        (enrolment_ids,),
    ).fetchall()
    result: dict[str, dict[str, int]] = {
        str(i): {"tasks_due": 0, "done_on_time": 0} for i in enrolment_ids
    }
    for task in tasks:
        entry = result[str(task["enrolment_id"])]
        entry["tasks_due"] += 1
        entry["done_on_time"] += int(work_stats.done_on_time(task))
    return {k: {**v, "compliant": v["done_on_time"] == v["tasks_due"]} for k, v in result.items()}


def recorded_sample(
    conn: psycopg.Connection, hospital_id: str, first: date
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM qc_samples WHERE hospital_id = %s AND month = %s", (hospital_id, first)
        ).fetchone()


def draw_sample(
    conn: psycopg.Connection,
    hospital_id: str,
    month: str,
    drawn_by: str,
    timezone: str,
    seed: int | None = None,
    fraction: float = sampling.DEFAULT_FRACTION,
) -> dict[str, Any]:
    """Draw and record the month's sample (once per hospital and month)."""
    w = _window(hospital_id, month, timezone, None)
    seed = sampling.new_seed() if seed is None else seed
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        population = [str(r["enrolment_id"]) for r in _ended_population(cur, w)]
        picked = sampling.draw(population, seed, fraction)
        try:
            row = cur.execute(
                """INSERT INTO qc_samples (hospital_id, month, seed, fraction, population,
                                           sampled, drawn_by)
                   VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *""",
                (hospital_id, w["first"], seed, fraction, population, picked, drawn_by),
            ).fetchone()
        except UniqueViolation as exc:
            raise SampleExists(f"{hospital_id} {month} already has its sample") from exc
    assert row is not None
    return row


def redraw(conn: psycopg.Connection, sample_id: uuid.UUID) -> dict[str, Any]:
    """What an auditor does: draw again from the recorded population and seed."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM qc_samples WHERE sample_id = %s", (sample_id,)).fetchone()
    if row is None:
        raise LookupError(f"no sample {sample_id}")
    again = sampling.draw([str(p) for p in row["population"]], row["seed"], row["fraction"])
    recorded = sorted(str(s) for s in row["sampled"])
    return {
        "sample_id": sample_id,
        "seed": row["seed"],
        "fraction": row["fraction"],
        "population": len(row["population"]),
        "recorded": recorded,
        "redrawn": again,
        "identical": again == recorded,
    }


def review(
    conn: psycopg.Connection,
    sample_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    *,
    compliant: bool,
    points: float | None,
    note: str,
    user: User,
    now: datetime,
    timezone: str,
    rectification: str | None = None,
) -> dict[str, Any]:
    """A supervisor's verdict on a sampled case; a rectification (整改) becomes a task in the
    patient's team queue (alert kind `rectification`)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        sample = cur.execute(
            "SELECT sampled FROM qc_samples WHERE sample_id = %s", (sample_id,)
        ).fetchone()
        if sample is None or enrolment_id not in sample["sampled"]:
            raise LookupError(f"enrolment {enrolment_id} is not in sample {sample_id}")
        cur.execute(
            """INSERT INTO qc_reviews (sample_id, enrolment_id, compliant, points, note,
                                       reviewed_by, reviewed_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (sample_id, enrolment_id) DO UPDATE SET compliant = EXCLUDED.compliant,
                   points = EXCLUDED.points, note = EXCLUDED.note,
                   reviewed_by = EXCLUDED.reviewed_by, reviewed_at = EXCLUDED.reviewed_at""",
            (sample_id, enrolment_id, compliant, points, note, user.user_id, now),
        )
        opened = None
        if rectification:
            patient = cur.execute(
                "SELECT patient_id FROM enrolments WHERE enrolment_id = %s", (enrolment_id,)
            ).fetchone()
            assert patient is not None
            rectification_id = uuid.uuid4()
            done = upsert_alerts(
                conn,
                [
                    AlertCandidate(
                        patient_id=patient["patient_id"],
                        rule_id=f"qc.rectification.{rectification_id}",
                        tier=Tier.MEDIUM,
                        title=f"质控整改：{rectification}",
                        explanation={
                            "rule": "qc.rectification",
                            "summary": rectification,
                            "sample_id": str(sample_id),
                            "enrolment_id": str(enrolment_id),
                            "reviewed_by": user.user_id,
                            "readings": [],
                        },
                        kind="rectification",
                    )
                ],
                now,
                timezone,
            )
            opened = done[0][1]
            cur.execute(
                """INSERT INTO qc_rectifications (rectification_id, sample_id, enrolment_id,
                       alert_id, issue, opened_by, opened_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                (
                    rectification_id,
                    sample_id,
                    enrolment_id,
                    opened,
                    rectification,
                    user.user_id,
                    now,
                ),
            )
    return {
        "sample_id": sample_id,
        "enrolment_id": enrolment_id,
        "compliant": compliant,
        "rectification_alert_id": opened,
    }


def sample_detail(conn: psycopg.Connection, sample_id: uuid.UUID) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM qc_samples WHERE sample_id = %s", (sample_id,)).fetchone()
        if row is None:
            return None
        auto = _auto_compliance(cur, list(row["sampled"]))
        cases = cur.execute(
            """SELECT e.enrolment_id, e.patient_id, p.name, e.department, e.programme_id,
                      r.compliant, r.points, r.note, r.reviewed_by, r.reviewed_at
               FROM unnest(%s::uuid[]) AS s(id) JOIN enrolments e ON e.enrolment_id = s.id
               JOIN patients p USING (patient_id)
               LEFT JOIN qc_reviews r ON r.sample_id = %s AND r.enrolment_id = e.enrolment_id
               ORDER BY e.enrolment_id""",
            (row["sampled"], sample_id),
        ).fetchall()
        rectifications = cur.execute(
            """SELECT q.rectification_id, q.enrolment_id, q.issue, q.opened_by, q.opened_at,
                      q.alert_id, a.status AS alert_status
               FROM qc_rectifications q JOIN alerts a USING (alert_id)
               WHERE q.sample_id = %s ORDER BY q.opened_at""",
            (sample_id,),
        ).fetchall()
    for case in cases:
        case["patient"] = mask_name(case.pop("name"))
        case["auto"] = auto[str(case["enrolment_id"])]
    row["cases"] = cases
    row["rectifications"] = rectifications
    row["population_size"] = len(row.pop("population"))
    return row


def _masked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        if "name" in row:
            row["patient"] = mask_name(row.pop("name"))
    return rows


def monthly_score(
    conn: psycopg.Connection,
    hospital_id: str,
    month: str,
    timezone: str,
    department: str | None = None,
) -> dict[str, Any]:
    """The month's score with the patients behind each figure (names masked)."""
    w = _window(hospital_id, month, timezone, department)
    sample = recorded_sample(conn, hospital_id, w["first"])
    with conn.cursor(row_factory=dict_row) as cur:
        ended = _ended_population(cur, w)
        if sample is not None:
            in_sample = {str(s) for s in sample["sampled"]}
            cases = [r for r in ended if str(r["enrolment_id"]) in in_sample]
        else:
            # No sample recorded yet: a provisional figure over every ended case.
            cases = ended
        auto = _auto_compliance(cur, [c["enrolment_id"] for c in cases])
        reviews = {}
        if sample is not None:
            reviews = {
                str(r["enrolment_id"]): r["compliant"]
                for r in cur.execute(
                    "SELECT enrolment_id, compliant FROM qc_reviews WHERE sample_id = %s",
                    (sample["sample_id"],),
                ).fetchall()
            }
        for case in cases:
            key = str(case["enrolment_id"])
            case.update(auto[key])
            case["reviewed"] = key in reviews
            case["compliant"] = reviews.get(key, case["compliant"])
        under_management = cur.execute(
            """SELECT DISTINCT ON (e.patient_id) e.patient_id, p.name, e.department,
                      e.enrolment_id, e.refunded AND e.withdrawn_at >= %(start)s
                          AND e.withdrawn_at < %(end)s AS refunded_this_month,
                      e.withdrawal_reason
               FROM enrolments e JOIN patients p USING (patient_id)
               WHERE e.hospital_id = %(h)s AND e.enrolled_at < %(end)s
                 AND coalesce(e.withdrawn_at, e.closed_at, e.ends_at) >= %(start)s
                 AND (%(dept)s::text IS NULL OR e.department = %(dept)s)
               ORDER BY e.patient_id,
                        (e.refunded AND e.withdrawn_at >= %(start)s
                         AND e.withdrawn_at < %(end)s) DESC""",
            w,
        ).fetchall()
        revisit_tasks = cur.execute(
            """SELECT t.patient_id, p.name, e.department, t.task_id, t.enrolment_id, t.due_at,
                      (t.detail->>'window_days')::int AS window_days,
                      EXISTS (SELECT 1 FROM revisits r WHERE r.enrolment_id = t.enrolment_id
                                AND abs(r.visited_on - (t.due_at AT TIME ZONE %(tz)s)::date)
                                    <= (t.detail->>'window_days')::int) AS timely
               FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
               JOIN patients p ON p.patient_id = t.patient_id
               WHERE e.hospital_id = %(h)s AND t.action = 'revisit_reminder'
                 AND t.status <> 'cancelled'
                 AND t.due_at >= %(start)s AND t.due_at < %(end)s
                 AND (%(dept)s::text IS NULL OR e.department = %(dept)s)
               ORDER BY t.patient_id, t.due_at""",
            w,
        ).fetchall()
        recognitions = cur.execute(
            """SELECT r.kind, r.patient_id, p.name, r.department, r.occurred_on, r.note
               FROM qc_recognitions r JOIN patients p USING (patient_id)
               WHERE r.hospital_id = %(h)s AND r.occurred_on >= %(first)s
                 AND r.occurred_on < (%(first)s::date + interval '1 month')
                 AND (%(dept)s::text IS NULL OR r.department = %(dept)s)
               ORDER BY r.occurred_on""",
            w,
        ).fetchall()
    revisit_patients: dict[str, bool] = {}
    for task in revisit_tasks:
        # A patient is timely only if every revisit due this month was made in its window.
        revisit_patients[task["patient_id"]] = (
            revisit_patients.get(task["patient_id"], True) and task["timely"]
        )
    score = qc_score.monthly_score(
        Ratio(sum(1 for c in cases if c["compliant"]), len(cases)),
        Ratio(
            sum(1 for p in under_management if not p["refunded_this_month"]), len(under_management)
        ),
        Ratio(sum(revisit_patients.values()), len(revisit_patients)),
        praise_letters=sum(1 for r in recognitions if r["kind"] == "praise"),
        major_abnormalities=sum(1 for r in recognitions if r["kind"] == "major_abnormality"),
    )
    return {
        "hospital_id": hospital_id,
        "department": department,
        "month": month,
        "score": asdict(score),
        "sample": None
        if sample is None
        else {
            "sample_id": sample["sample_id"],
            "seed": sample["seed"],
            "fraction": sample["fraction"],
            "population": len(sample["population"]),
            "sampled": len(sample["sampled"]),
            "drawn_at": sample["drawn_at"],
        },
        "provisional": sample is None,
        "drill_down": {
            "pathway_compliance": _masked(cases),
            "satisfaction": _masked(under_management),
            "revisit_timeliness": _masked(revisit_tasks),
            "bonus": _masked(recognitions),
        },
    }


def departments(
    conn: psycopg.Connection, hospital_id: str, month: str, timezone: str
) -> list[dict[str, Any]]:
    w = _window(hospital_id, month, timezone, None)
    with conn.cursor(row_factory=dict_row) as cur:
        names = [
            r["department"]
            for r in cur.execute(
                """SELECT DISTINCT department FROM enrolments WHERE hospital_id = %(h)s
                     AND enrolled_at < %(end)s
                     AND coalesce(withdrawn_at, closed_at, ends_at) >= %(start)s
                   ORDER BY 1""",
                w,
            ).fetchall()
        ]
    result = []
    for name in names:
        figures = monthly_score(conn, hospital_id, month, timezone, name)
        result.append({"department": name, "score": figures["score"]})
    return result


def work_statistics(
    conn: psycopg.Connection, hospital_id: str, month: str, timezone: str, now: datetime
) -> dict[str, Any]:
    w = _window(hospital_id, month, timezone, None)
    with conn.cursor(row_factory=dict_row) as cur:
        tasks = cur.execute(
            """SELECT t.action, t.status, t.due_at, t.completed_at, t.completed_by, t.grace_days,
                      t.patient_id
               FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
               WHERE e.hospital_id = %(h)s AND t.due_at >= %(start)s AND t.due_at < %(end)s""",
            w,
        ).fetchall()
        patients = [
            r["patient_id"]
            for r in cur.execute(
                """SELECT DISTINCT patient_id FROM enrolments WHERE hospital_id = %(h)s
                     AND enrolled_at < %(end)s
                     AND coalesce(withdrawn_at, closed_at, ends_at) >= %(start)s""",
                w,
            ).fetchall()
        ]
        contacts = cur.execute(
            """SELECT patient_id, user_id, channel, direction, outcome, at FROM contact_records
               WHERE patient_id = ANY(%(p)s) AND at >= %(start)s AND at < %(end)s""",
            {**w, "p": patients},
        ).fetchall()
        alerts = cur.execute(
            """SELECT tier, opened_at, acknowledged_at FROM alerts
               WHERE patient_id = ANY(%(p)s) AND kind IN ('clinical', 'follow_up')
                 AND opened_at >= %(start)s AND opened_at < %(end)s""",
            {**w, "p": patients},
        ).fetchall()
        plan_days = cur.execute(
            """WITH plan AS (
                   SELECT m.patient_id, m.metric, m.times_per_day,
                          greatest(m.started_at, %(start)s) AS s,
                          least(coalesce(m.ends_at, %(end)s), %(end)s, %(now)s) AS e
                   FROM measurement_plans m WHERE m.patient_id = ANY(%(p)s)),
               days AS (
                   SELECT plan.*, d::date AS day FROM plan,
                          generate_series((plan.s AT TIME ZONE %(tz)s)::date,
                                          (plan.e AT TIME ZONE %(tz)s)::date - 1,
                                          interval '1 day') AS d
                   WHERE plan.e > plan.s),
               counted AS (
                   SELECT days.patient_id, days.metric, days.day, days.times_per_day,
                          (SELECT count(DISTINCT r.measurement_id) FROM readings r
                           WHERE r.patient_id = days.patient_id AND r.metric = days.metric
                             AND r.time >= (days.day::timestamp AT TIME ZONE %(tz)s)
                             AND r.time < ((days.day + 1)::timestamp AT TIME ZONE %(tz)s))
                              AS n
                   FROM days)
               SELECT patient_id, metric, count(*) AS plan_days,
                      count(*) FILTER (WHERE n > 0) AS days_measured,
                      count(*) FILTER (WHERE n >= times_per_day) AS days_complete
               FROM counted GROUP BY patient_id, metric""",
            {**w, "p": patients, "now": now},
            # Never prepared: PostgreSQL's generic plan for this query (chosen after a few
            # runs on one pooled connection) took 11 s instead of 0.2 s for 10,000 patients.
            prepare=False,
        ).fetchall()
    scheduled_calls = {t["patient_id"] for t in tasks if t["action"] == "follow_up_call"}
    return {
        "hospital_id": hospital_id,
        "month": month,
        "follow_ups": work_stats.follow_ups(tasks, now),
        "connection": work_stats.connection_rates(contacts, scheduled_calls),
        "workload": work_stats.workload(tasks, contacts),
        "acknowledgement": work_stats.acknowledgement_times(alerts),
        "adherence": work_stats.adherence(plan_days),
        "adherence_by_patient": plan_days,
    }


def record_recognition(
    conn: psycopg.Connection,
    *,
    hospital_id: str,
    department: str,
    patient_id: str,
    kind: str,
    occurred_on: date,
    note: str,
    user: User,
) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO qc_recognitions (hospital_id, department, patient_id, kind,
                   occurred_on, note, recorded_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *""",
            (hospital_id, department, patient_id, kind, occurred_on, note, user.user_id),
        ).fetchone()
    assert row is not None
    return row
