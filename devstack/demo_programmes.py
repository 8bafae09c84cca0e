"""Demo programmes for `python -m devstack.demo`: seed 001's ten packages at a demo hospital,
the three shipped pathways, enrolled demo patients with pathway progress, and a complete
last month (ended courses, revisits, a refund, the audited sample with reviews, a praise
letter) so the QC dashboard has a score to show. Runs once per database; the same seed
gives the same data."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from cloud.auth import Role, User
from cloud.db import pathway_tasks, programme_store, qc_store
from cloud.settings import CloudSettings

HOSPITAL = "H-SXZX"
HOSPITAL_NAME = "绍兴市中心医院（演示）"
CASE_MANAGER = User("cm01", "个管师 王芳", Role.CASE_MANAGER, frozenset({"team-cardio"}))
QC = User("qc01", "质控 陈静", Role.QC_SUPERVISOR, frozenset())
SAMPLE_SEED = 20261101
# (patient, package, days before last month began, department)
ENDED_LAST_MONTH = [(f"P-{n:04d}", "p01", 5, "心内科") for n in range(1, 7)] + [
    ("P-0007", "p06", 3, "内分泌科"),
    ("P-0008", "p06", 2, "内分泌科"),
]
RUNNING = [
    ("P-0009", "p03", 20, "心内科"),
    ("P-0010", "p03", 20, "心内科"),
    ("P-0011", "p03", 18, "心内科"),
    ("P-0012", "p04", 21, "内分泌科"),
    ("P-0013", "p04", 19, "内分泌科"),
    ("P-0014", "p03", 22, "心内科"),
]
RECENT = [
    ("P-0015", "p02", 6, "心内科"),
    ("P-0016", "p05", 10, "心内科"),
    ("P-0017", "p02", 3, "心内科"),
    ("P-0018", "p04", 8, "内分泌科"),
]


def _consent(at: datetime) -> programme_store.Consent:
    return programme_store.Consent(
        "知情同意书 v2026.1",
        ["monitoring", "call_recording", "share_with_hospital"],
        "paper",
        "hm01",
        at,
    )


def _work_the_day(
    conn: psycopg.Connection,
    day_start: datetime,
    rng: random.Random,
    leave_open: bool,
    timezone: str,
) -> None:
    """What the case manager did that day: most due tasks done, a few calls unanswered."""
    with conn.cursor(row_factory=dict_row) as cur:
        open_tasks = cur.execute(
            """SELECT task_id, enrolment_id, patient_id, action FROM programme_tasks
               WHERE status = 'open' AND due_at < %s ORDER BY due_at""",
            (day_start + timedelta(days=1),),
        ).fetchall()
    for task in open_tasks:
        if leave_open or rng.random() < 0.08:
            continue
        at = day_start + timedelta(hours=10, minutes=rng.randrange(0, 300))
        if task["action"] in ("follow_up_call", "no_show_follow_up", "lifestyle_check_in"):
            if rng.random() < 0.2:
                conn.execute(
                    """INSERT INTO contact_records (patient_id, user_id, channel, direction,
                           outcome, note, at) VALUES (%s, 'cm01', 'call', 'outbound',
                           'no_answer', '', %s)""",
                    (task["patient_id"], at - timedelta(minutes=30)),
                )
            conn.execute(
                """INSERT INTO contact_records (patient_id, user_id, channel, direction,
                       outcome, note, at) VALUES (%s, 'cm01', 'call', 'outbound', 'reached',
                       '按随访脚本完成', %s)""",
                (task["patient_id"], at),
            )
        if task["action"] == "closure":
            programme_store.close_enrolment(conn, task["enrolment_id"], CASE_MANAGER, at, timezone)
            programme_store.mark_summary_sent(
                conn, task["enrolment_id"], CASE_MANAGER, at, None, None
            )
            continue
        pathway_tasks.complete_task(
            conn, task["task_id"], CASE_MANAGER, "completed", "演示：已完成", at
        )


def seed_programmes(
    database_url: str,
    now: datetime | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Seed once; returns (and announces) what the demo shows: hospital, last month, score."""
    timezone = CloudSettings().timezone
    tz = ZoneInfo(timezone)
    now = now or datetime.now(UTC)
    this_month = now.astimezone(tz).date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    last = last_month.strftime("%Y-%m")
    with psycopg.connect(database_url, autocommit=True) as conn:
        seeded = conn.execute("SELECT 1 FROM hospitals WHERE hospital_id = %s", (HOSPITAL,))
        if seeded.fetchone() is None:
            _seed(conn, now, tz, timezone, last_month, last)
        total = qc_store.monthly_score(conn, HOSPITAL, last, timezone)["score"]["total"]
    if announce is not None:
        announce(
            f"programmes: 10 packages at {HOSPITAL} {HOSPITAL_NAME}; QC score {last}: {total:g}"
            f" (GET /api/v1/qc/score?hospital_id={HOSPITAL}&month={last} as qc01)"
        )
    return {"hospital_id": HOSPITAL, "month": last, "total": total}


def _seed(
    conn: psycopg.Connection,
    now: datetime,
    tz: ZoneInfo,
    timezone: str,
    last_month: date,
    last: str,
) -> None:
    rng = random.Random(SAMPLE_SEED)
    programme_store.install_defaults(conn, HOSPITAL, HOSPITAL_NAME, "doc01")
    start_of_last = datetime.combine(last_month, time(0), tz)
    plan = [
        (p, pkg, start_of_last - timedelta(days=d), dept)
        for p, pkg, d, dept in ENDED_LAST_MONTH + RUNNING
    ]
    plan += [(p, pkg, now - timedelta(days=d), dept) for p, pkg, d, dept in RECENT]
    plan.sort(key=lambda item: item[2])
    enrolled: dict[str, uuid.UUID] = {}
    day = plan[0][2].astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    pending = list(plan)
    while day < now:
        for patient_id, package, at, department in [
            p for p in pending if p[2] < day + timedelta(days=1)
        ]:
            made = programme_store.enrol(
                conn,
                patient_id=patient_id,
                programme_id=f"{HOSPITAL}-{package}",
                department=department,
                consent=_consent(at),
                enrolled_by="hm01",
                enrolled_at=at,
                timezone=timezone,
            )
            enrolled[patient_id] = made["enrolment_id"]
            pending.remove((patient_id, package, at, department))
        sweep_at = min(day + timedelta(hours=9, minutes=30), now)
        pathway_tasks.run_pathway_sweep(conn, sweep_at, timezone)
        _events_of_the_day(conn, day, enrolled, tz, last_month)
        _work_the_day(conn, day, rng, now - day < timedelta(days=2), timezone)
        pathway_tasks.sync_from_queue(conn)
        day += timedelta(days=1)
    sample = qc_store.draw_sample(conn, HOSPITAL, last, "qc01", timezone, seed=SAMPLE_SEED)
    detail = qc_store.sample_detail(conn, sample["sample_id"]) or {}
    for case in detail.get("cases", []):
        compliant = bool(case["auto"]["compliant"])
        qc_store.review(
            conn,
            sample["sample_id"],
            case["enrolment_id"],
            compliant=compliant,
            points=None,
            note="抽查随访记录" if compliant else "部分随访未按时完成",
            user=QC,
            now=now,
            timezone=timezone,
            rectification=None if compliant else "补齐随访记录并说明延误原因",
        )
    qc_store.record_recognition(
        conn,
        hospital_id=HOSPITAL,
        department="心内科",
        patient_id="P-0009",
        kind="praise",
        occurred_on=last_month + timedelta(days=14),
        note="患者家属送来锦旗",
        user=QC,
    )


def _events_of_the_day(
    conn: psycopg.Connection,
    day: datetime,
    enrolled: dict[str, uuid.UUID],
    tz: ZoneInfo,
    last_month: date,
) -> None:
    """Revisits made (some late, one missed) and one refund in the middle of last month."""
    local = day.date()
    visits = {"P-0009": 8, "P-0010": 9, "P-0012": 6, "P-0013": 20, "P-0011": 25}
    for patient_id, offset in visits.items():
        if patient_id in enrolled and local == last_month + timedelta(days=offset):
            pathway_tasks.record_revisit(
                conn,
                enrolled[patient_id],
                local,
                CASE_MANAGER,
                "门诊复诊（演示）",
            )
    if "P-0014" in enrolled and local == last_month + timedelta(days=11):
        programme_store.withdraw(
            conn,
            enrolled["P-0014"],
            CASE_MANAGER,
            "患者转至外院治疗，申请退费",
            29500,
            datetime.combine(local, time(15), tz),
        )
