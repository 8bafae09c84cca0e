"""The web pages over HTTP against the real stack: sign-in and the session cookie, pages by
role, team boundaries, CSRF refusal, unmasking identifiers with an audited reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx

from simulators.readings import SimulatedCuff
from tests.conftest import make_user
from tests.web.conftest import WebStack


def test_sign_in_sets_a_strict_http_only_cookie_and_sends_each_role_home(web_stack: WebStack):
    homes = {
        "cm-a": "/workbench",
        "doc-a": "/doctor",
        "hm-a": "/centre",
        "qc": "/workbench",
        "root": "/admin",
    }
    for username, home in homes.items():
        client = web_stack.signed_in(username)
        assert client.get("/").headers["location"] == home
        assert client.get(home).status_code == 200, (username, home)
    client = httpx.Client(base_url=web_stack.base_url)
    response = client.post(
        "/login",
        data={"username": "cm-a", "password": "correct horse battery staple"},
        headers={"Origin": web_stack.base_url},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    wrong = client.post(
        "/login",
        data={"username": "cm-a", "password": "nope"},
        headers={"Origin": web_stack.base_url},
    )
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text


def test_pages_need_a_session_and_are_zh_cn_first_with_english_switchable(web_stack: WebStack):
    anonymous = httpx.Client(base_url=web_stack.base_url, follow_redirects=False)
    response = anonymous.get("/patients/P-100")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/patients/P-100"
    client = web_stack.signed_in("cm-a")
    page = client.get("/workbench")
    assert '<html lang="zh-CN">' in page.text and "工作台" in page.text
    switched = client.get("/lang/en", headers={"Referer": f"{web_stack.base_url}/workbench"})
    assert switched.headers["location"] == "/workbench"
    assert "Workbench" in client.get("/workbench").text


def test_a_case_manager_of_another_team_gets_not_found_and_the_refusal_is_audited(
    web_stack: WebStack,
):
    other = web_stack.signed_in("cm-b")
    for path in ("/patients/P-100", "/patients/P-100/summary"):
        response = other.get(path)
        assert response.status_code == 404 and "无权查看" in response.text
    assert other.get("/api/v1/patients/P-100/readings").status_code == 404
    rows = web_stack.sql(
        "SELECT action FROM audit_log WHERE user_id = 'cm-b' AND patient_id = 'P-100'"
    )
    assert {"denied:view_patient", "denied:print_summary"} <= {r[0] for r in rows}
    own = web_stack.signed_in("cm-a").get("/patients/P-100")
    assert own.status_code == 200 and "张三明" in own.text


def test_identifiers_are_masked_and_shown_in_full_only_with_a_reason_and_a_role(
    web_stack: WebStack,
):
    client = web_stack.signed_in("cm-a")
    page = client.get("/patients/P-100").text
    assert "110101********1234" in page and "138****8000" in page
    assert "110101195001011234" not in page and "13800138000" not in page
    same_site = {"Origin": web_stack.base_url}
    url = "/web/patients/P-100/identifiers"
    assert client.post(url, json={"reason": ""}, headers=same_site).status_code == 422
    shown = client.post(url, json={"reason": "回电确认用药"}, headers=same_site)
    assert shown.status_code == 200
    assert shown.json()["phone"] == "13800138000"
    (detail,) = web_stack.sql(
        "SELECT detail FROM audit_log WHERE action = 'unmask_identifiers' AND user_id = 'cm-a'"
    )
    assert detail[0]["reason"] == "回电确认用药"
    qc = web_stack.signed_in("qc")
    assert qc.post(url, json={"reason": "抽查核对"}, headers=same_site).status_code == 403


def test_cookie_changes_from_another_site_are_refused(web_stack: WebStack):
    client = web_stack.signed_in("cm-a")
    body = {"channel": "call", "outcome": "reached"}
    for headers in ({"Origin": "http://evil.example"}, {}):
        refused = client.post("/api/v1/patients/P-100/contacts", json=body, headers=headers)
        assert refused.status_code == 403, headers
    allowed = client.post(
        "/api/v1/patients/P-100/contacts", json=body, headers={"Origin": web_stack.base_url}
    )
    assert allowed.status_code == 201
    assert client.post("/login", data={"username": "cm-a"}, headers={}).status_code == 403


def test_queue_filters_paginate_and_the_patient_page_lists_readings_and_history(
    web_stack: WebStack,
):
    cuff = SimulatedCuff("WEB-BP-1")
    web_stack.publish(cuff.measure(150, 95, 70, patient_id="P-100"))
    client = web_stack.signed_in("cm-a")
    deadline = time.monotonic() + 15
    while "WEB-BP-1" not in (page := client.get("/patients/P-100").text):
        assert time.monotonic() < deadline, (
            web_stack.sql("SELECT count(*) FROM readings"),
            page[-3000:],
        )
        time.sleep(0.2)
    assert "居家" in page and "150.0" in page
    spec = json.loads(page.split('id="chart-specs" type="application/json">')[1].split("<")[0])
    systolic = spec[0]["series"][0]
    assert systolic["metric"] == "systolic" and systolic["band"]["high"] == 135
    assert {"value": 180, "op": ">=", "tier": "critical", "target": False} in systolic["thresholds"]
    rows = client.get("/workbench/rows?tier=critical&team=team-b")
    assert rows.status_code == 200 and "队列为空" in rows.text


def test_every_screen_renders_for_its_roles(web_stack: WebStack):
    screens = {
        "cm-a": ["/workbench", "/dashboard", "/patients/P-100", "/patients/P-100/summary"],
        "doc-a": ["/doctor", "/dashboard", "/patients/P-100"],
        "hm-a": ["/centre", "/centre?patient=P-100", "/centre/patient-readings?patient=P-100"],
        "qc": ["/dashboard", "/workbench"],
    }
    for username, paths in screens.items():
        client = web_stack.signed_in(username)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (username, path, response.text[:400])
    assert web_stack.signed_in("cm-a").get("/doctor").status_code == 403
    assert web_stack.signed_in("root").get("/patients/P-100").status_code == 403


def test_dashboard_figures_for_a_team(web_stack: WebStack):
    make_user(web_stack.database_url, "cm-c", "case_manager", ("team-c",))
    web_stack.sql(
        """INSERT INTO patients (patient_id, name, team_id, case_manager_id)
           VALUES ('P-C1', '王五', 'team-c', 'cm-c')"""
    )
    # Four critical alerts a day old: acknowledged after 5, 10 and 20 minutes, and never.
    for n, minutes in enumerate((5, 10, 20, None)):
        web_stack.sql(
            """INSERT INTO alerts (patient_id, rule_id, tier, status, title, explanation,
                                   reading_ids, opened_at, team_id, ack_due_at,
                                   acknowledged_at)
               VALUES ('P-C1', %s, 'critical', %s, 'x', '{}', '{}', now() - interval '1 day',
                       'team-c', now() - interval '1 day' + interval '15 minutes',
                       now() - interval '1 day' + %s * interval '1 minute')""",
            f"dash.{n}",
            "open" if minutes is None else "resolved",
            minutes,
        )
    web_stack.sql(
        """INSERT INTO patient_latest (patient_id, metric, time, value, reading_id, source,
                                      item_json)
           SELECT p, m, t, v, r, s, patient_latest_item(p, m, t, v, r, s)
           FROM (VALUES ('P-C1', 'weight', now() - interval '10 days', 70.0,
                         gen_random_uuid(), 'home')) x(p, m, t, v, r, s)"""
    )
    page = web_stack.signed_in("cm-c").get("/dashboard?days=3").text
    assert '<p class="big" id="sla-share">50.0 %</p>' in page
    assert "10.0 分钟" in page and "超过 3 天无测量的患者: <strong>1</strong>" in page
    assert "王*" in page
    weeks = json.loads(page.split('id="weekly" type="application/json">')[1].split("</script>")[0])
    assert sum(w["critical"] for w in weeks) == 4
    assert sum(w["in_time"] for w in weeks) == 2 and sum(w["with_deadline"] for w in weeks) == 4


def test_readings_table_pages_through_every_reading_once(web_stack: WebStack):
    web_stack.sql(
        """INSERT INTO patients (patient_id, name, team_id, case_manager_id)
           VALUES ('P-300', '赵六', 'team-a', 'cm-a')"""
    )
    cuff = SimulatedCuff("WEB-BP-PAGES")
    start = datetime.now(UTC) - timedelta(hours=9)
    readings = []
    for n in range(9):
        readings += cuff.measure(120 + n, 80, 70, patient_id="P-300", at=start + timedelta(hours=n))
    web_stack.publish(readings)
    deadline = time.monotonic() + 15
    while web_stack.sql("SELECT count(*) FROM readings WHERE patient_id = 'P-300'")[0][0] < 36:
        assert time.monotonic() < deadline, "the readings were not stored"
        time.sleep(0.2)
    client = web_stack.signed_in("cm-a")
    seen: list[str] = []
    path = "/patients/P-300"
    for _ in range(3):
        page = client.get(path).text
        table = page.split('<table class="readings">')[1].split("</table>")[0]
        seen += table.split("<tbody>")[1].split("<tr>")[1:]
        if 'href="?before=' not in page:
            break
        path = "/patients/P-300?before=" + page.split('href="?before=')[1].split("#")[0]
    assert len(seen) == 36 and len(set(seen)) == 36


def test_workbench_filters_by_programme_enrolment_and_status(web_stack: WebStack):
    web_stack.sql(
        """INSERT INTO patients (patient_id, name, team_id, case_manager_id)
           VALUES ('P-400', '孙七', 'team-a', 'cm-a'), ('P-401', '周八', 'team-a', 'cm-a')"""
    )
    web_stack.add_programme("H-W", "prog-web", "高血压强化管理", "doc-a")
    web_stack.sql(
        """INSERT INTO enrolments (patient_id, programme_id, hospital_id, status, enrolled_at,
                                   ends_at, pathway_id, pathway_version, source, enrolled_by)
           VALUES ('P-400', 'prog-web', 'H-W', 'active', now(), now() + interval '30 days',
                   'pw-prog-web', 1, 'staff', 'doc-a')"""
    )
    for patient, status in (("P-400", "open"), ("P-401", "open"), ("P-400", "acknowledged")):
        web_stack.sql(
            """INSERT INTO alerts (patient_id, rule_id, tier, status, title, explanation,
                                   reading_ids, team_id)
               VALUES (%s, %s, 'medium', %s, %s, '{}', '{}', 'team-a')""",
            patient,
            f"filter.{status}",
            status,
            f"筛选测试 {patient} {status}",
        )
    client = web_stack.signed_in("cm-a")
    enrolled = client.get("/workbench/rows?programme=prog-web&tier=medium").text
    assert "筛选测试 P-400 open" in enrolled and "筛选测试 P-400 acknowledged" in enrolled
    assert "筛选测试 P-401" not in enrolled
    acknowledged = client.get("/workbench/rows?programme=prog-web&status=acknowledged").text
    assert "筛选测试 P-400 acknowledged" in acknowledged and "P-400 open" not in acknowledged
    assert "高血压强化管理" in client.get("/workbench").text


def test_doctor_sees_alerts_escalated_to_them_and_sets_a_target_with_a_reason(
    web_stack: WebStack,
):
    web_stack.sql(
        """INSERT INTO patients (patient_id, name, team_id, case_manager_id, doctor_id)
           VALUES ('P-500', '吴九', 'team-a', 'cm-a', 'doc-a')"""
    )
    web_stack.sql(
        """INSERT INTO alerts (patient_id, rule_id, tier, status, title, explanation,
                               reading_ids, team_id, assignee_id, escalation_level)
           VALUES ('P-500', 'doctor.view', 'high', 'escalated', '升级测试告警', '{}', '{}',
                   'team-a', 'doc-a', 1)"""
    )
    doctor = web_stack.signed_in("doc-a")
    page = doctor.get("/doctor").text
    escalated = page.split('id="esc-h"')[1].split('id="mine-h"')[0]
    assert "升级测试告警" in escalated and "P-500" in page.split('id="mine-h"')[1]
    assert 'id="target-form"' in doctor.get("/patients/P-500").text
    assert 'id="target-form"' not in web_stack.signed_in("cm-a").get("/patients/P-500").text
    response = doctor.put(
        "/api/v1/patients/P-500/targets/systolic",
        json={"low": 100, "high": 130, "reason": "合并糖尿病，目标更严"},
        headers={"Origin": web_stack.base_url},
    )
    assert response.status_code == 200, response.text
    page = doctor.get("/patients/P-500").text
    assert "合并糖尿病，目标更严" in page
    spec = json.loads(page.split('id="chart-specs" type="application/json">')[1].split("<")[0])
    assert spec[0]["series"][0]["band"] == {"low": 100.0, "high": 130.0, "doctor": True}
