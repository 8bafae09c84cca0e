"""The programme and quality pages: a hospital's service packages with the enrolled
patients' pathway progress (项目与入组), and the month's QC score with its drill-down,
audited sample, work statistics and exports (质控). Figures come from the same store
functions as `/api/v1/enrolments` and `/api/v1/qc/...`, so page and API cannot disagree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from cloud.api.deps import Conn
from cloud.auth import Role
from cloud.db import care_store, qc_store, web_queries
from cloud.web import i18n
from cloud.web.pages import PAGE_SIZE
from cloud.web.render import Page, PageError, page_for

router = APIRouter(include_in_schema=False)

PROGRAMME_ROLES = (Role.CASE_MANAGER, Role.HEALTH_MANAGER, Role.QC_SUPERVISOR, Role.ADMIN)
QC_ROLES = (Role.QC_SUPERVISOR, Role.ADMIN)
ENROLMENT_STATUSES = ("active", "withdrawn", "closed")
COMPONENTS = ("pathway_compliance", "satisfaction", "revisit_timeliness")
DRILL_DOWNS = (*COMPONENTS, "bonus")
EXPORTS = ("score", "departments", "work_stats", "enrolments")
TREND_MONTHS = 6
JS_TEXTS = ("qc.", "common.", "dlg.")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _hospital(conn: Conn, params: Mapping[str, str]) -> tuple[dict[str, Any] | None, list[Any]]:
    """The chosen hospital, else the first with packages; None when there is none."""
    found = web_queries.hospitals(conn)
    chosen = next((h for h in found if h["hospital_id"] == params.get("hospital")), None)
    return chosen or (found[0] if found else None), found


def _page_no(params: Mapping[str, str]) -> int:
    text = params.get("page", "1")
    return max(1, int(text)) if text.isdigit() else 1


@router.get("/programmes", response_class=HTMLResponse)
def programmes(request: Request, conn: Conn) -> Response:
    page = page_for(request, conn)
    page.require(*PROGRAMME_ROLES)
    params = request.query_params
    hospital, hospitals = _hospital(conn, params)
    packages = web_queries.packages(conn, hospital["hospital_id"]) if hospital else []
    known = {p["programme_id"] for p in packages}
    # Unknown values are ignored rather than refused: a stale bookmark still opens.
    programme = params.get("programme") if params.get("programme") in known else None
    status = params.get("status") if params.get("status") in ENROLMENT_STATUSES else None
    page_no = _page_no(params)
    rows: list[dict[str, Any]] = []
    shows_patients = page.user.role is not Role.ADMIN
    if hospital and shows_patients:
        # One row more than shown tells whether there is a next page.
        rows = web_queries.enrolment_progress(
            conn,
            teams=web_queries.scope_teams(page.user),
            now=datetime.now(UTC),
            hospital_id=hospital["hospital_id"],
            programme_id=programme,
            status=status,
            limit=PAGE_SIZE + 1,
            offset=(page_no - 1) * PAGE_SIZE,
        )
        care_store.audit(conn, page.user, "view_enrolments", None, count=len(rows), via="web")
    return page.render(
        "programmes.html",
        hospital=hospital,
        hospitals=hospitals,
        packages=packages,
        enrolments=rows[:PAGE_SIZE],
        has_next=len(rows) > PAGE_SIZE,
        shows_patients=shows_patients,
        filters={"programme": programme, "status": status},
        statuses=ENROLMENT_STATUSES,
        page_no=page_no,
    )


def last_month(timezone: str, now: datetime) -> str:
    first = now.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def _months_before(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first."""
    year, mon = (int(p) for p in month.split("-"))
    months = []
    for back in range(count - 1, -1, -1):
        index = year * 12 + mon - 1 - back
        months.append(date(index // 12, index % 12 + 1, 1).strftime("%Y-%m"))
    return months


def _qc_page(request: Request, conn: Conn) -> tuple[Page, dict[str, Any] | None, list[Any], str]:
    page = page_for(request, conn)
    page.require(*QC_ROLES)
    timezone = request.app.state.settings.timezone
    hospital, hospitals = _hospital(conn, request.query_params)
    asked = request.query_params.get("month", "")
    month = asked if _MONTH.match(asked) else last_month(timezone, datetime.now(UTC))
    return page, hospital, hospitals, month


def _trend(
    conn: Conn, hospital_id: str, month: str, timezone: str, this_month: dict[str, Any]
) -> list[dict[str, Any]]:
    """The total of each recent month in which anybody was measured; `this_month` is the
    page's own month, scored already."""
    trend = []
    for each in _months_before(month, TREND_MONTHS):
        score = (
            this_month
            if each == month
            else qc_store.monthly_score(conn, hospital_id, each, timezone)["score"]
        )
        if any(score[c]["applicable"] for c in COMPONENTS):
            trend.append({"month": each, "total": score["total"]})
    return trend


@router.get("/qc", response_class=HTMLResponse)
def qc(request: Request, conn: Conn) -> Response:
    page, hospital, hospitals, month = _qc_page(request, conn)
    if hospital is None:
        return page.render("qc.html", hospital=None, hospitals=[], month=month)
    timezone = request.app.state.settings.timezone
    hospital_id = hospital["hospital_id"]
    result = qc_store.monthly_score(conn, hospital_id, month, timezone)
    sample = qc_store.recorded_sample(conn, hospital_id, qc_store.month_window(month, timezone)[0])
    work = qc_store.work_statistics(conn, hospital_id, month, timezone, datetime.now(UTC))
    care_store.audit(
        conn, page.user, "view_qc_score", None, hospital_id=hospital_id, month=month, via="web"
    )
    staff = [w["user_id"] for w in work["workload"]]
    detail = qc_store.sample_detail(conn, sample["sample_id"]) if sample else None
    if detail is not None:
        staff.append(detail["drawn_by"])
        staff += [c["reviewed_by"] for c in detail["cases"] if c["reviewed_by"]]
    return page.render(
        "qc.html",
        hospital=hospital,
        hospitals=hospitals,
        month=month,
        result=result,
        score=result["score"],
        components=COMPONENTS,
        departments=qc_store.departments(conn, hospital_id, month, timezone),
        trend=_trend(conn, hospital_id, month, timezone, result["score"]),
        sample=detail,
        work=work,
        names=web_queries.user_names(conn, staff),
        exports=EXPORTS,
        shows_patients=page.user.role is not Role.ADMIN,
        can_review=page.user.role is Role.QC_SUPERVISOR,
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


@router.get("/qc/patients", response_class=HTMLResponse)
def qc_patients(request: Request, conn: Conn, component: str) -> Response:
    """The patients behind one figure of the month's score (of one department if given)."""
    page, hospital, _hospitals, month = _qc_page(request, conn)
    page.require(Role.QC_SUPERVISOR)
    if hospital is None or component not in DRILL_DOWNS:
        raise PageError(404, "err.not_found")
    department = request.query_params.get("department") or None
    result = qc_store.monthly_score(
        conn, hospital["hospital_id"], month, request.app.state.settings.timezone, department
    )
    care_store.audit(
        conn,
        page.user,
        "view_qc_drill_down",
        None,
        hospital_id=hospital["hospital_id"],
        month=month,
        component=component,
        via="web",
    )
    rows = result["drill_down"][component]
    page_no = _page_no(request.query_params)
    return page.render(
        "qc_patients.html",
        hospital=hospital,
        month=month,
        component=component,
        department=department,
        figure=result["score"][component] if component in COMPONENTS else None,
        total=len(rows),
        rows=rows[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE],
        page_no=page_no,
        has_next=len(rows) > page_no * PAGE_SIZE,
    )
