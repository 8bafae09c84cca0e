"""Issue 8 on a real TimescaleDB, the clock in the test's hands: enrolment instantiates the
pathway into dated tasks in the work queue; missed measurements run reminder → call →
escalation; refunds lower satisfaction; a constructed month scores the hand-computed value;
the audited sample redraws identically from its recorded seed."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from cloud.alerts.lifecycle import Action, Outcome
from cloud.auth import Role, User
from cloud.db import care_store, pathway_tasks, programme_store, qc_store, sweeps
from cloud.programmes.errors import PathwayInvalid, SampleExists
from cloud.programmes.pathway import shipped_pathways
from tests.conftest import make_user

TZ = "Asia/Shanghai"
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
H = "H1"
CM = User("cm-p", "CM", Role.CASE_MANAGER, frozenset({"team-p"}))
QC = User("qc-p", "QC", Role.QC_SUPERVISOR, frozenset())


@pytest.fixture
def conn(database_url):
    make_user(database_url, "cm-p", "case_manager", ("team-p",))
    make_user(database_url, "qc-p", "qc_supervisor")
    with psycopg.connect(database_url, autocommit=True) as connection:
        programme_store.install_defaults(connection, H, "测试医院", "qc-p")
        yield connection


def patient(conn, pid: str) -> str:
    care_store.create_patient(conn, pid, "张三明", team_id="team-p", case_manager_id="cm-p")
    return pid


def consent(at: datetime = NOW) -> programme_store.Consent:
    return programme_store.Consent("v2026.1", ["monitoring", "call_recording"], "paper", "cm-p", at)


def enrol(conn, pid, package="p03", at=NOW, send=None, department="心内科"):
    return programme_store.enrol(
        conn,
        patient_id=patient(conn, pid),
        programme_id=f"{H}-{package}",
        department=department,
        consent=consent(at),
        enrolled_by="cm-p",
        enrolled_at=at,
        timezone=TZ,
        send=send,
    )


def queue_titles(conn):
    items = care_store.queue(
        conn, CM, statuses=None, tiers=None, kind="pathway", mine=False, limit=100, offset=0
    )["items"]
    return [(i["title"], i["tier"]) for i in items]


def test_enrolling_in_the_hypertension_pathway_creates_the_dated_tasks(conn):
    sent = []
    made = enrol(conn, "HT-1", send=lambda p, t: sent.append((p, t)) or True)
    tasks = {t["action_key"]: t for t in made["tasks"]}
    assert made["pathway_id"] == "hypertension" and made["pathway_version"] == 1
    assert len(tasks) == 20
    assert tasks["call_first"]["due_at"] == datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
    assert tasks["revisit_month1"]["due_at"] == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert made["consents"][0]["notice_version"] == "v2026.1"
    # Day 0 ran at once: the plan is in force and the education went out as an approved text.
    assert tasks["bp_plan_intensive"]["status"] == "done"
    assert tasks["edu_home_bp"]["status"] == "done"
    assert sent == [("HT-1", "edu_htn_home_bp")]
    plan = conn.execute(
        "SELECT metric, times_per_day, started_at FROM measurement_plans WHERE patient_id = 'HT-1'"
    ).fetchall()
    assert plan == [("systolic", 2, NOW)]
    cohorts = conn.execute("SELECT cohorts FROM patients WHERE patient_id = 'HT-1'").fetchone()
    assert cohorts == (["hypertension"],)
    assert queue_titles(conn) == []

    # The next morning the first call is in the case manager's queue beside the alerts.
    pathway_tasks.run_pathway_sweep(conn, NOW + timedelta(days=1), TZ)
    assert queue_titles(conn) == [("出院首次电话随访", "low")]
    # Two days later (grace 1 day used up) it is marked overdue and counted.
    done = pathway_tasks.run_pathway_sweep(conn, NOW + timedelta(days=3), TZ)
    assert done["overdue"] == 1
    assert ("出院首次电话随访", "medium") in queue_titles(conn)
    progress = programme_store.enrolment(conn, made["enrolment_id"], NOW + timedelta(days=3))
    assert progress["tasks_overdue"] == 1  # the call; the day-3 form is within its grace
    # Resolving the queue item completes the task.
    call = next(t for t in progress["tasks"] if t["action_key"] == "call_first")
    for action in (Action.ACKNOWLEDGE, Action.RESOLVE):
        care_store.apply_action(
            conn,
            call["alert_id"],
            CM,
            action,
            Outcome.PATIENT_REACHED_ADVISED if action is Action.RESOLVE else None,
            "",
            NOW + timedelta(days=3, hours=1),
        )
    pathway_tasks.run_pathway_sweep(conn, NOW + timedelta(days=3, hours=1), TZ)
    progress = programme_store.enrolment(conn, made["enrolment_id"], NOW + timedelta(days=3))
    call = next(t for t in progress["tasks"] if t["action_key"] == "call_first")
    assert (call["status"], call["completed_by"]) == ("done", "cm-p")


def test_an_enrolments_own_run_waits_for_a_task_another_sweep_is_starting(conn, database_url):
    """The enrolment returns once its due work has started, even when a periodic sweep
    took the task a moment before: the plan is in force when its edge is configured."""
    made = enrol(conn, "HT-9")
    call = next(t for t in made["tasks"] if t["action_key"] == "call_first")
    tomorrow = NOW + timedelta(days=1)
    finished = threading.Event()
    outcome: dict[str, dict[str, int]] = {}

    def own_run() -> None:
        with psycopg.connect(database_url, autocommit=True) as own:
            outcome["counts"] = pathway_tasks.run_pathway_sweep(
                own, tomorrow, TZ, enrolment_id=made["enrolment_id"]
            )
        finished.set()

    with psycopg.connect(database_url) as other_sweep:  # a transaction, holding the row
        other_sweep.execute(
            "SELECT 1 FROM programme_tasks WHERE task_id = %s FOR UPDATE", (call["task_id"],)
        )
        runner = threading.Thread(target=own_run)
        runner.start()
        assert not finished.wait(1.0), "the enrolment's run went past a task being started"
        other_sweep.execute(
            "UPDATE programme_tasks SET status = 'open' WHERE task_id = %s", (call["task_id"],)
        )
        other_sweep.commit()
        runner.join(30)

    assert finished.is_set()
    assert outcome["counts"]["activated"] == 0  # the other sweep started it; not twice


def test_a_new_template_version_does_not_rewrite_running_enrolments(conn):
    first = enrol(conn, "HT-1")
    data = shipped_pathways()["hypertension"].model_dump(mode="json")
    data["phases"][0]["actions"][2]["title"] = "出院首次电话随访（新版）"
    with pytest.raises(PathwayInvalid, match="new version"):
        programme_store.publish_pathway(
            conn, type(shipped_pathways()["hypertension"]).model_validate(data), "qc-p"
        )
    data["version"] = 2
    programme_store.publish_pathway(
        conn, type(shipped_pathways()["hypertension"]).model_validate(data), "qc-p"
    )
    second = enrol(conn, "HT-2")
    old = programme_store.enrolment(conn, first["enrolment_id"])
    assert old["pathway_version"] == 1
    assert "出院首次电话随访" in [t["title"] for t in old["tasks"]]
    assert second["pathway_version"] == 2
    assert "出院首次电话随访（新版）" in [t["title"] for t in second["tasks"]]


def test_a_patient_who_skips_measurements_gets_reminder_then_call_then_escalation(conn):
    enrol(conn, "HT-1")
    reminded: list[str] = []

    def adherence_alert():
        return conn.execute(
            "SELECT tier, kind FROM alerts WHERE patient_id = 'HT-1' AND rule_id LIKE 'adherence.%'"
        ).fetchall()

    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=1), TZ, remind=reminded.append)
    assert adherence_alert() == [] and reminded == []
    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=2), TZ, remind=reminded.append)
    assert adherence_alert() == [("low", "follow_up")] and reminded == ["HT-1"]
    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=3), TZ, remind=reminded.append)
    assert adherence_alert() == [("medium", "follow_up")]
    sweeps.run_adherence_sweep(conn, NOW + timedelta(days=7), TZ, remind=reminded.append)
    assert adherence_alert() == [("high", "follow_up")]
    assert reminded == ["HT-1"]


def test_a_missed_revisit_opens_a_no_show_follow_up(conn):
    kept = enrol(conn, "HT-1", package="p02")
    missed = enrol(conn, "HT-2", package="p02")
    # revisit_month1 is due day 28 (30 Nov) with a ±7 day window.
    pathway_tasks.record_revisit(conn, kept["enrolment_id"], date(2026, 12, 2), CM)
    pathway_tasks.run_pathway_sweep(conn, datetime(2026, 12, 7, 2, tzinfo=UTC), TZ)
    assert conn.execute(
        "SELECT count(*) FROM programme_tasks WHERE action = 'no_show_follow_up'"
    ).fetchone() == (0,)
    pathway_tasks.run_pathway_sweep(conn, datetime(2026, 12, 8, 2, tzinfo=UTC), TZ)
    rows = conn.execute(
        """SELECT t.patient_id, a.tier, a.kind FROM programme_tasks t JOIN alerts a USING (alert_id)
           WHERE t.action = 'no_show_follow_up'"""
    ).fetchall()
    assert rows == [("HT-2", "medium", "pathway")]
    assert missed["enrolment_id"] != kept["enrolment_id"]


def test_a_high_risk_questionnaire_raises_a_task(conn):
    made = enrol(conn, "HT-1")
    form = next(t for t in made["tasks"] if t["action_key"] == "form_week1")
    result = pathway_tasks.record_response(
        conn,
        patient_id="HT-1",
        questionnaire_id="htn_follow_up",
        answers={
            "symptoms": ["chest_pain"],
            "medication": "always",
            "salt": "light",
            "exercise_days": 6,
        },
        channel="call",
        user=CM,
        now=NOW + timedelta(days=3),
        timezone=TZ,
        task_id=form["task_id"],
    )
    assert (result["risk_level"], result["score"]) == ("high", 4)
    tier = conn.execute(
        "SELECT tier FROM alerts WHERE alert_id = %s", (result["raised_alert_id"],)
    ).fetchone()
    assert tier == ("high",)
    task = conn.execute(
        "SELECT status FROM programme_tasks WHERE task_id = %s", (form["task_id"],)
    ).fetchone()
    assert task == ("done",)


def test_withdrawal_with_refund_ends_the_tasks_and_lowers_satisfaction(conn):
    made = [enrol(conn, f"S-{n}") for n in range(4)]
    before = qc_store.monthly_score(conn, H, "2026-11", TZ)["score"]["satisfaction"]
    assert (before["numerator"], before["denominator"]) == (4, 4)
    programme_store.withdraw(
        conn, made[0]["enrolment_id"], CM, "搬家到外地", 29500, NOW + timedelta(days=5)
    )
    after = qc_store.monthly_score(conn, H, "2026-11", TZ)["score"]["satisfaction"]
    assert (after["numerator"], after["denominator"], after["rate_pct"]) == (3, 4, 75.0)
    assert after["points"] == 30.0 < before["points"]
    left = conn.execute(
        "SELECT DISTINCT status FROM programme_tasks WHERE enrolment_id = %s AND status "
        "NOT IN ('done')",
        (made[0]["enrolment_id"],),
    ).fetchall()
    assert left == [("cancelled",)]
    plan_end = conn.execute(
        "SELECT ends_at FROM measurement_plans WHERE patient_id = 'S-0'"
    ).fetchone()
    assert plan_end == (NOW + timedelta(days=5),)


def test_a_constructed_month_scores_the_hand_computed_worked_example_2(conn):
    """clinical_rules.md §5 example 2: pathway 70 %, non-refund 85 %, revisit 40 % → 75."""
    oct20 = datetime(2026, 10, 20, 2, tzinfo=UTC)
    oct10 = datetime(2026, 10, 10, 2, tzinfo=UTC)
    nov5 = datetime(2026, 11, 5, 2, tzinfo=UTC)
    ended = [enrol(conn, f"A-{n}", package="p01", at=oct20) for n in range(10)]  # end 3 Nov
    revisit = [enrol(conn, f"B-{n}", package="p03", at=oct10) for n in range(5)]  # due 7 Nov
    later = [enrol(conn, f"C-{n}", package="p03", at=nov5) for n in range(5)]
    for e in later[:3]:
        programme_store.withdraw(
            conn, e["enrolment_id"], CM, "不满意", 10000, datetime(2026, 11, 10, 2, tzinfo=UTC)
        )
    for e, day in zip(
        revisit, (date(2026, 11, 8), date(2026, 11, 1), date(2026, 11, 20)), strict=False
    ):
        pathway_tasks.record_revisit(conn, e["enrolment_id"], day, CM)
    sample = qc_store.draw_sample(conn, H, "2026-11", "qc-p", TZ, seed=11, fraction=1.0)
    assert sorted(str(s) for s in sample["sampled"]) == sorted(
        str(e["enrolment_id"]) for e in ended
    )
    for n, e in enumerate(ended):
        qc_store.review(
            conn,
            sample["sample_id"],
            e["enrolment_id"],
            compliant=n < 7,
            points=None,
            note="",
            user=QC,
            now=NOW,
            timezone=TZ,
            rectification="随访记录不完整" if n == 9 else None,
        )
    result = qc_store.monthly_score(conn, H, "2026-11", TZ)
    score = result["score"]
    assert [
        (c["numerator"], c["denominator"])
        for c in (score["pathway_compliance"], score["satisfaction"], score["revisit_timeliness"])
    ] == [(7, 10), (17, 20), (2, 5)]
    assert (
        score["pathway_compliance"]["points"],
        score["satisfaction"]["points"],
        score["revisit_timeliness"]["points"],
    ) == (20.0, 35.0, 20.0)
    assert score["total"] == 75.0
    assert score["payment_deduction_pct"] == 15.0
    assert not result["provisional"]
    # Every figure drills down to its patients (names masked).
    assert len(result["drill_down"]["revisit_timeliness"]) == 5
    assert {r["patient"] for r in result["drill_down"]["satisfaction"]} == {"张*明"}
    # A praise letter adds a point; the rectification is a task in the team's queue.
    qc_store.record_recognition(
        conn,
        hospital_id=H,
        department="心内科",
        patient_id="A-0",
        kind="praise",
        occurred_on=date(2026, 11, 15),
        note="锦旗",
        user=QC,
    )
    assert qc_store.monthly_score(conn, H, "2026-11", TZ)["score"]["total"] == 76.0
    rect = care_store.queue(
        conn, CM, statuses=None, tiers=None, kind="rectification", mine=False, limit=10, offset=0
    )["items"]
    assert [r["title"] for r in rect] == ["质控整改：随访记录不完整"]
    depts = qc_store.departments(conn, H, "2026-11", TZ)
    assert [d["department"] for d in depts] == ["心内科"]


def test_the_sample_is_identical_when_redrawn_with_the_recorded_seed(conn):
    oct20 = datetime(2026, 10, 20, 2, tzinfo=UTC)
    for n in range(25):
        enrol(conn, f"E-{n:02d}", package="p01", at=oct20)
    sample = qc_store.draw_sample(conn, H, "2026-11", "qc-p", TZ)
    assert len(sample["population"]) == 25 and len(sample["sampled"]) == 3
    check = qc_store.redraw(conn, sample["sample_id"])
    assert check["identical"] and check["seed"] == sample["seed"]
    with pytest.raises(SampleExists):
        qc_store.draw_sample(conn, H, "2026-11", "qc-p", TZ)
    # A recorded sample that was changed afterwards no longer matches its redraw.
    conn.execute(
        "UPDATE qc_samples SET sampled = sampled[1:2] WHERE sample_id = %s", (sample["sample_id"],)
    )
    assert qc_store.redraw(conn, sample["sample_id"])["identical"] is False


def test_a_finished_course_asks_for_closure_with_a_generated_summary(conn):
    made = enrol(conn, "HT-1", package="p01")
    pathway_tasks.run_pathway_sweep(conn, NOW + timedelta(days=13), TZ)
    assert "疗程结束，请结案并发送结案小结" not in [t for t, _ in queue_titles(conn)]
    done = pathway_tasks.run_pathway_sweep(conn, NOW + timedelta(days=14), TZ)
    assert done["closures"] == 1
    assert "疗程结束，请结案并发送结案小结" in [t for t, _ in queue_titles(conn)]
    closed = programme_store.close_enrolment(
        conn, made["enrolment_id"], CM, NOW + timedelta(days=14, hours=2), TZ
    )
    summary = closed["closure_summary"]
    assert closed["status"] == "closed"
    assert "路径任务" in summary["text_zh"] and summary["tasks"]["due"] > 0
    assert queue_titles(conn) == []  # the closure task is done, the rest left the queue
    closure = conn.execute(
        "SELECT status FROM programme_tasks WHERE enrolment_id = %s AND action = 'closure'",
        (made["enrolment_id"],),
    ).fetchone()
    assert closure == ("done",)
    # The 2-week course's plan ended with its phase, at the end of day 13.
    plan_end = conn.execute(
        "SELECT ends_at FROM measurement_plans WHERE patient_id = 'HT-1'"
    ).fetchone()
    assert plan_end == (datetime(2026, 11, 15, 16, 0, tzinfo=UTC),)
    sent = programme_store.mark_summary_sent(
        conn,
        made["enrolment_id"],
        CM,
        NOW + timedelta(days=14, hours=1),
        None,
        lambda p, t: t == "closure_summary",
    )
    assert sent["summary_reviewed_by"] == "cm-p"
    assert sent["closure_summary"]["delivered_in_app"] is True
