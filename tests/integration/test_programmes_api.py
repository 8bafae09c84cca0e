"""Issue 8 through the real cloud process (`python -m cloud serve`, real TimescaleDB and
Mosquitto): enrolment and the discharge list over HTTP, pathway tasks in GET /api/v1/queue,
per-hospital template approval, the QC score, its sample, XLSX and PDF exports."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import psycopg
from openpyxl import load_workbook

from cloud.db import care_store, programme_store
from tests.conftest import bearer, make_user

CONSENT = {
    "notice_version": "v2026.1",
    "scope": ["monitoring", "call_recording"],
    "channel": "paper",
}
CSV = (
    "patient_id,name,phone,department,discharged_on,programme_id,consent_notice_version,"
    "consent_scope,consent_channel,consent_collected_at\n"
    "D-1,李秀英,13900001111,心内科,2026-11-20,H1-p02,v2026.1,monitoring,paper,"
    "2026-11-20T10:00:00+08:00\n"
    "D-2,王志明,1390000,心内科,2026-11-20,H1-p02,v2026.1,monitoring,paper,"
    "2026-11-20T10:00:00+08:00\n"
)


def _setup(url: str) -> dict[str, str]:
    tokens = {
        "cm": make_user(url, "cm-a", "case_manager", ("team-a",)),
        "qc": make_user(url, "qc-a", "qc_supervisor"),
        "doc": make_user(url, "doc-a", "doctor", ("team-a",)),
        "other": make_user(url, "cm-b", "case_manager", ("team-b",)),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        programme_store.install_defaults(conn, "H1", "演示医院", "qc-a")
        care_store.create_patient(conn, "P-1", "张三明", team_id="team-a", case_manager_id="cm-a")
        conn.execute("INSERT INTO edges (edge_id, mode) VALUES ('home-1', 'home')")
        # A home reading so the patient's app can be reached with approved messages.
        conn.execute(
            """INSERT INTO readings (time, reading_id, measurement_id, patient_id, edge_id,
                   device_kind, device_model, device_serial, record_key, metric, value, unit,
                   received_at, source)
               VALUES (now(), gen_random_uuid(), gen_random_uuid(), 'P-1', 'home-1',
                       'blood_pressure', 'M', 'S', 'k', 'systolic', 128, 'mmHg', now(), 'home')"""
        )
    return tokens


def test_enrolment_tasks_queue_templates_and_qc_over_http(cloud, database_url):
    tokens = _setup(database_url)
    base = cloud.base_url
    cm, qc = bearer(tokens["cm"]), bearer(tokens["qc"])

    programmes = httpx.get(
        f"{base}/api/v1/programmes", params={"hospital_id": "H1"}, headers=cm
    ).json()["items"]
    assert len(programmes) == 10
    assert programmes[0]["measurement_plan"][0]["metric"] == "systolic"

    made = httpx.post(
        f"{base}/api/v1/enrolments",
        headers=cm,
        json={
            "patient_id": "P-1",
            "programme_id": "H1-p03",
            "department": "心内科",
            "consent": CONSENT,
        },
    ).json()
    assert made["pathway_id"] == "hypertension"
    assert len(made["tasks"]) == 20
    education = next(t for t in made["tasks"] if t["action"] == "education")
    assert education["status"] == "done"  # the approved text went to the patient's app
    again = httpx.post(
        f"{base}/api/v1/enrolments",
        headers=cm,
        json={"patient_id": "P-1", "programme_id": "H1-p03", "consent": CONSENT},
    )
    assert again.status_code == 409
    hidden = httpx.get(
        f"{base}/api/v1/enrolments/{made['enrolment_id']}", headers=bearer(tokens["other"])
    )
    assert hidden.status_code == 404

    progress = httpx.get(
        f"{base}/api/v1/enrolments", params={"programme_id": "H1-p03"}, headers=cm
    ).json()["items"]
    assert [(p["patient_name"], p["tasks_total"], p["current_phase"]) for p in progress] == [
        ("张*明", 20, "出院稳定期")
    ]

    # A task finished from the queue API; a revoked template no longer goes out.
    task = next(t for t in made["tasks"] if t["action_key"] == "call_first")
    done = httpx.post(
        f"{base}/api/v1/programme-tasks/{task['task_id']}/completion",
        headers=cm,
        json={"outcome": "completed", "note": "已接通"},
    )
    assert done.status_code == 200 and done.json()["status"] == "done"
    revoke = httpx.put(
        f"{base}/api/v1/hospitals/H1/message-templates/bp_remeasure/approval",
        headers=bearer(tokens["doc"]),
        json={"approved": False},
    )
    assert revoke.status_code == 200
    drafted = httpx.post(
        f"{base}/api/v1/message-templates",
        headers=cm,
        json={
            "template_id": "flu_vaccine",
            "title": "流感疫苗提醒",
            "body": "秋冬季请及时接种流感疫苗。",
        },
    )
    assert drafted.status_code == 201
    listed = httpx.get(f"{base}/api/v1/hospitals/H1/message-templates", headers=cm).json()
    assert {t["template_id"]: t["may_send"] for t in listed["items"]}["flu_vaccine"] is False
    unapproved = httpx.post(
        f"{base}/api/v1/patients/P-1/notifications", headers=cm, json={"template_id": "flu_vaccine"}
    )
    assert unapproved.status_code == 409
    approve = httpx.put(
        f"{base}/api/v1/hospitals/H1/message-templates/flu_vaccine/approval",
        headers=bearer(tokens["doc"]),
        json={"approved": True},
    )
    assert approve.status_code == 200
    sent = httpx.post(
        f"{base}/api/v1/patients/P-1/notifications", headers=cm, json={"template_id": "flu_vaccine"}
    )
    assert sent.status_code == 201
    refused = httpx.post(
        f"{base}/api/v1/patients/P-1/notifications",
        headers=cm,
        json={"template_id": "bp_remeasure"},
    )
    assert refused.status_code == 409
    assert "not approved by hospital H1" in refused.text

    # Questionnaire entered during a call: skip logic and a raised task in the queue.
    visible = httpx.post(
        f"{base}/api/v1/questionnaires/htn_follow_up/visible-questions",
        headers=cm,
        json={"medication": "stopped"},
    ).json()
    assert "stop_reason" in visible["questions"]
    scored = httpx.post(
        f"{base}/api/v1/questionnaire-responses",
        headers=cm,
        json={
            "patient_id": "P-1",
            "questionnaire_id": "htn_follow_up",
            "channel": "call",
            "answers": {
                "symptoms": ["weakness"],
                "medication": "always",
                "salt": "light",
                "exercise_days": 5,
            },
        },
    ).json()
    assert scored["risk_level"] == "high"
    queue = httpx.get(f"{base}/api/v1/queue", headers=cm).json()["items"]
    assert "随访表提示高风险，请当天联系患者并告知医生" in [i["title"] for i in queue]

    # Discharge list: one good row enrolled, one refused with its line and reason.
    imported = httpx.post(
        f"{base}/api/v1/enrolments/discharge-list",
        params={"hospital_id": "H1", "team_id": "team-a", "filename": "出院名单.csv"},
        headers={**cm, "Content-Type": "text/csv"},
        content=CSV.encode(),
    ).json()
    assert [a["patient_id"] for a in imported["accepted"]] == ["D-1"]
    assert [(r["line"], r["code"]) for r in imported["rejected"]] == [(3, "bad_phone")]

    # Refund, then the QC score of the month, the sample, and the exports.
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    withdrawn = httpx.post(
        f"{base}/api/v1/enrolments/{imported['accepted'][0]['enrolment_id']}/withdrawal",
        headers=cm,
        json={"reason": "不需要了", "refund_cents": 9900},
    )
    assert withdrawn.json()["refunded"] is True
    score = httpx.get(
        f"{base}/api/v1/qc/score", params={"hospital_id": "H1", "month": month}, headers=qc
    ).json()
    satisfaction = score["score"]["satisfaction"]
    assert (satisfaction["numerator"], satisfaction["denominator"]) == (1, 2)
    sample = httpx.post(
        f"{base}/api/v1/qc/samples",
        headers=qc,
        json={"hospital_id": "H1", "month": month, "seed": 42},
    )
    assert sample.status_code == 201 and sample.json()["seed"] == 42
    check = httpx.get(
        f"{base}/api/v1/qc/samples/{sample.json()['sample_id']}/redraw", headers=qc
    ).json()
    assert check["identical"] is True

    for report in ("score", "departments", "work_stats", "enrolments"):
        xlsx = httpx.get(
            f"{base}/api/v1/qc/export.xlsx",
            headers=qc,
            params={"hospital_id": "H1", "month": month, "report": report},
        )
        assert xlsx.status_code == 200, report
        book = load_workbook(io.BytesIO(xlsx.content))
        assert book.worksheets[0].max_row >= 2, report
    pdf = httpx.get(
        f"{base}/api/v1/qc/monthly-report.pdf",
        headers=qc,
        params={"hospital_id": "H1", "month": month},
    )
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    pages = pdf.content.count(b"/Type /Page") - pdf.content.count(b"/Type /Pages")
    assert pages == 3
    assert b"NotoSansCJK" in pdf.content  # the zh-CN font is embedded
    stats = httpx.get(
        f"{base}/api/v1/qc/work-stats", headers=qc, params={"hospital_id": "H1", "month": month}
    ).json()
    assert stats["follow_ups"]["done"] == 1
    assert stats["workload"] == [{"user_id": "cm-a", "tasks_done": 1, "calls": 0, "messages": 1}]
