"""The programme and QC screens over HTTP on the README demo's data (hospital H-SXZX, 18
enrolments, last month's sample, reviews and score): who may open them, packages and
enrolled patients with pathway progress, filters and pagination, and every QC figure on
the page equal to what `/api/v1/qc/...` answers for the same month."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from devstack.demo import DEMO_PASSWORD
from devstack.demo_programmes import HOSPITAL
from tests.conftest import make_user
from tests.web.conftest import WebStack

FIGURE = re.compile(r'data-figure="([^"]+)">([^<]*)<')


def demo_user(stack: WebStack, username: str) -> httpx.Client:
    return stack.signed_in(username, DEMO_PASSWORD)


def figures(html: str) -> dict[str, str]:
    return dict(FIGURE.findall(html))


def shown(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def table(html: str, table_id: str) -> str:
    return html.split(f'<table id="{table_id}"')[1].split("</table>")[0]


def enrolment_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-enrolment="([^"]+)">', table(html, "enrolments"))


def test_programmes_page_shows_packages_and_each_enrolments_progress_to_its_roles(
    web_stack: WebStack, demo_programmes: dict[str, object]
):
    cm = demo_user(web_stack, "cm01")
    page = cm.get(f"/programmes?hospital={HOSPITAL}")
    assert page.status_code == 200 and "项目与入组" in page.text
    assert table(page.text, "packages").count("<tr>") == 11  # header + the ten packages
    api = cm.get("/api/v1/enrolments", params={"hospital_id": HOSPITAL}).json()["items"]
    assert len(api) == 18
    assert sorted(enrolment_rows(page.text)) == sorted(str(e["enrolment_id"]) for e in api)
    running = next(e for e in api if e["status"] == "active" and e["tasks_overdue"] == 0)
    row = page.text.split(f'<tr data-enrolment="{running["enrolment_id"]}">')[1].split("</tr>")[0]
    assert f'href="/patients/{running["patient_id"]}"' in row
    assert f"已完成 {running['tasks_done']} / 已到期 {running['tasks_due']}" in row
    assert "无逾期" in row and "下一项" in row
    withdrawn = cm.get(f"/programmes?hospital={HOSPITAL}&status=withdrawn").text
    assert enrolment_rows(withdrawn) == [
        str(e["enrolment_id"]) for e in api if e["status"] == "withdrawn"
    ]
    p06 = cm.get(f"/programmes?hospital={HOSPITAL}&programme={HOSPITAL}-p06").text
    assert sorted(enrolment_rows(p06)) == sorted(
        str(e["enrolment_id"]) for e in api if e["programme_id"] == f"{HOSPITAL}-p06"
    )
    assert demo_user(web_stack, "qc01").get("/programmes").status_code == 200
    admin = demo_user(web_stack, "admin").get("/programmes")
    assert admin.status_code == 200 and 'id="enrolments"' not in admin.text
    assert demo_user(web_stack, "doc01").get("/programmes").status_code == 403
    other_team = web_stack.signed_in("cm-a").get(f"/programmes?hospital={HOSPITAL}").text
    assert enrolment_rows(other_team) == [] and "暂无入组患者" in other_team
    english = cm.get("/lang/en", headers={"Referer": f"{web_stack.base_url}/programmes"})
    assert "Programmes and enrolments" in cm.get(english.headers["location"]).text


def test_patient_page_shows_the_enrolments_pathway_progress(
    web_stack: WebStack, demo_programmes: dict[str, object]
):
    cm = demo_user(web_stack, "cm01")
    (progress,) = cm.get("/api/v1/enrolments", params={"patient_id": "P-0009"}).json()["items"]
    page = cm.get("/patients/P-0009").text
    block = page.split('<li class="enrolment">')[1].split("</li>")[0]
    assert "路径进度" in block
    assert f"已完成 {progress['tasks_done']} / 已到期 {progress['tasks_due']}" in block


def test_enrolled_patients_and_a_drill_down_page_through_every_row_once(web_stack: WebStack):
    make_user(web_stack.database_url, "cm-pg", "case_manager", ("team-pg",))
    web_stack.add_programme("H-PG", "prog-pg", "分页套餐", "cm-pg")
    web_stack.sql(
        """INSERT INTO patients (patient_id, name, team_id, case_manager_id)
           SELECT 'PG-' || i, '分页' || i, 'team-pg', 'cm-pg' FROM generate_series(1, 55) i"""
    )
    web_stack.sql(
        """INSERT INTO enrolments (patient_id, programme_id, hospital_id, status, enrolled_at,
                                   ends_at, pathway_id, pathway_version, source, enrolled_by)
           SELECT 'PG-' || i, 'prog-pg', 'H-PG', 'active', now() - i * interval '1 minute',
                  now() + interval '30 days', 'pw-prog-pg', 1, 'staff', 'cm-pg'
           FROM generate_series(1, 55) i"""
    )
    client = web_stack.signed_in("cm-pg")
    first = client.get("/programmes?hospital=H-PG").text
    assert len(enrolment_rows(first)) == 50 and "page=2" in first
    second = client.get("/programmes?hospital=H-PG&page=2").text
    assert len(enrolment_rows(second)) == 5 and "page=3" not in second
    assert len(set(enrolment_rows(first)) | set(enrolment_rows(second))) == 55
    qc = web_stack.signed_in("qc")
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    drill = f"/qc/patients?hospital=H-PG&month={month}&component=satisfaction"
    pages = [qc.get(drill).text, qc.get(f"{drill}&page=2").text]
    listed = [re.findall(r'<tr data-patient="([^"]+)">', table(p, "drill-down")) for p in pages]
    assert [len(rows) for rows in listed] == [50, 5] and "page=2" in pages[0]
    assert set(listed[0]) | set(listed[1]) == {f"PG-{n}" for n in range(1, 56)}


def test_qc_page_figures_equal_the_api_for_the_seeded_month(
    web_stack: WebStack, demo_programmes: dict[str, object]
):
    qc = demo_user(web_stack, "qc01")
    month = str(demo_programmes["month"])
    page = qc.get(f"/qc?hospital={HOSPITAL}")  # last month by default
    assert page.status_code == 200 and f"质控 · 绍兴市中心医院（演示） · {month}" in page.text
    assert figures(qc.get(f"/qc?hospital={HOSPITAL}&month={month}").text) == figures(page.text)
    api = qc.get("/api/v1/qc/score", params={"hospital_id": HOSPITAL, "month": month}).json()
    score = api["score"]
    shown_figures = figures(page.text)
    assert shown_figures["total"] == shown(score["total"]) == shown(demo_programmes["total"])
    assert shown_figures["payment_deduction_pct"] == shown(score["payment_deduction_pct"])
    for name in ("pathway_compliance", "satisfaction", "revisit_timeliness"):
        for field in ("points", "rate_pct", "deduction"):
            assert shown_figures[f"{name}.{field}"] == shown(score[name][field]), (name, field)
    assert shown_figures["sample.seed"] == str(api["sample"]["seed"]) == "20261101"
    assert shown_figures["sample.sampled"] == str(api["sample"]["sampled"])
    departments = qc.get(
        "/api/v1/qc/departments", params={"hospital_id": HOSPITAL, "month": month}
    ).json()["items"]
    dept_table = table(page.text, "departments")
    for dept in departments:
        row = dept_table.split(f'data-department="{dept["department"]}">')[1].split("</tr>")[0]
        assert f"<strong>{shown(dept['score']['total'])}</strong>" in row
    work = qc.get("/api/v1/qc/work-stats", params={"hospital_id": HOSPITAL, "month": month})
    follow_ups = work.json()["follow_ups"]
    assert shown_figures["work.due"] == str(follow_ups["due"])
    assert shown_figures["work.done"] == str(follow_ups["done"])
    assert "⬇ 月度质控报告（PDF）" in page.text
    for report in ("score", "work_stats"):
        query = f"hospital_id={HOSPITAL}&amp;month={month}&amp;report={report}"
        link = f"/api/v1/qc/export.xlsx?{query}"
        assert link in page.text
        download = qc.get(link.replace("&amp;", "&"))
        assert download.status_code == 200 and download.content[:2] == b"PK"


def test_each_qc_figure_drills_down_to_the_patients_behind_it(
    web_stack: WebStack, demo_programmes: dict[str, object]
):
    qc = demo_user(web_stack, "qc01")
    month = str(demo_programmes["month"])
    for department in (None, "心内科"):
        params = {"hospital_id": HOSPITAL, "month": month}
        if department:
            params["department"] = department
        api = qc.get("/api/v1/qc/score", params=params).json()
        for component, rows in api["drill_down"].items():
            path = f"/qc/patients?hospital={HOSPITAL}&month={month}&component={component}"
            if department:
                path += f"&department={department}"
            page = qc.get(path)
            assert page.status_code == 200, (component, page.text[:300])
            listed = re.findall(r'<tr data-patient="([^"]+)">', table(page.text, "drill-down"))
            assert listed == [r["patient_id"] for r in rows], component
            if component != "bonus":
                shown_figures = figures(page.text)
                assert shown_figures["numerator"] == str(api["score"][component]["numerator"])
                assert shown_figures["denominator"] == str(api["score"][component]["denominator"])
    overview = qc.get(f"/qc?hospital={HOSPITAL}&month={month}").text
    assert f"/qc/patients?hospital={HOSPITAL}&amp;month={month}&amp;component=satisfaction" in (
        overview
    )


def test_qc_pages_are_for_qc_supervisors_and_administrators_only(
    web_stack: WebStack, demo_programmes: dict[str, object]
):
    for username in ("cm01", "doc01", "hm01"):
        assert demo_user(web_stack, username).get("/qc").status_code == 403, username
    admin = demo_user(web_stack, "admin")
    overview = admin.get(f"/qc?hospital={HOSPITAL}")
    assert overview.status_code == 200 and 'data-figure="total"' in overview.text
    assert "/qc/patients" not in overview.text and "export.xlsx" not in overview.text
    assert "/patients/P-" not in overview.text
    assert admin.get("/qc/patients?component=satisfaction").status_code == 403
    qc = demo_user(web_stack, "qc01")
    assert qc.get(f"/qc/patients?hospital={HOSPITAL}&component=nonsense").status_code == 404
    qc.get("/lang/en", headers={"Referer": f"{web_stack.base_url}/qc"})
    english = qc.get(f"/qc?hospital={HOSPITAL}").text
    assert "Quality control" in english and "Pathway compliance" in english
    assert "质控" in [a for a in re.findall(r'<a href="/qc"[^>]*>([^<]+)</a>', overview.text)]
