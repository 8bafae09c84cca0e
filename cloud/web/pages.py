"""The staff pages: workbench, patient, printable summary, centre station, doctor view,
dashboard. Each reads through bounded queries and the same access rules as the API."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from cloud.alerts.lifecycle import Outcome
from cloud.api.deps import Conn, user_from_request
from cloud.api.live import event_response
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import care_store, reading_notify, web_queries
from cloud.db import dashboard_queries as dash
from cloud.web import assets, charts, i18n
from cloud.web.render import Page, PageError, language, page_for, render
from cloud.web.session_routes import UNMASK_ROLES
from protocols.metrics import Metric

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
READINGS_PAGE = 30
TIERS = ("critical", "high", "medium", "low")
OPEN_STATUSES = ("open", "acknowledged", "in_progress", "escalated")
RESOLVE_OUTCOMES = [
    o.value for o in Outcome if o not in (Outcome.FALSE_ALARM, Outcome.DEVICE_OR_ENTRY_ERROR)
]
CONTACT_CHANNELS = ("call", "sms", "app", "wechat")
CONTACT_OUTCOMES = ("reached", "no_answer", "busy", "wrong_number", "message_sent", "message_read")
QUEUE_ROLES = (*TEAM_SCOPED, Role.QC_SUPERVISOR)
CENTRE_ROLES = (Role.HEALTH_MANAGER, Role.CASE_MANAGER, Role.NURSE)
JS_TEXTS = (
    "wb.",
    "dlg.",
    "tier.",
    "status.",
    "common.",
    "pt.",
    "source.",
    "centre.",
    "dash.",
    "metric.",
    "device.",
)


@dataclass(frozen=True)
class WorkbenchFilters:
    status: str | None
    tier: str | None
    programme: str | None
    team: str | None
    mine: bool
    page: int

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> WorkbenchFilters:
        """Unknown values are ignored rather than refused: a stale bookmark still opens."""
        page = params.get("page", "1")
        return cls(
            status=params.get("status") if params.get("status") in OPEN_STATUSES else None,
            tier=params.get("tier") if params.get("tier") in TIERS else None,
            programme=params.get("programme") or None,
            team=params.get("team") or None,
            mine=params.get("mine") in ("1", "true", "on"),
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def query(self, conn: Conn, page: Page) -> dict[str, Any]:
        return web_queries.workbench(
            conn,
            page.user,
            statuses=[self.status] if self.status else None,
            tier=self.tier,
            programme=self.programme,
            team=self.team,
            mine=self.mine,
            limit=PAGE_SIZE,
            offset=(self.page - 1) * PAGE_SIZE,
        )


def _workbench_page(request: Request, conn: Conn) -> tuple[Page, WorkbenchFilters]:
    page = page_for(request, conn)
    page.require(*QUEUE_ROLES)
    return page, WorkbenchFilters.from_params(request.query_params)


def _queue_view(
    page: Page, filters: WorkbenchFilters, conn: Conn, template: str, **extra: Any
) -> Response:
    queue = filters.query(conn, page)
    care_store.audit(conn, page.user, "view_queue", None, count=len(queue["items"]), via="web")
    return page.render(
        template,
        queue=queue,
        filters=filters,
        tiers=TIERS,
        can_act=page.user.role in TEAM_SCOPED,
        page_size=PAGE_SIZE,
        **extra,
    )


@router.get("/workbench", response_class=HTMLResponse)
def workbench(request: Request, conn: Conn) -> Response:
    page, filters = _workbench_page(request, conn)
    return _queue_view(
        page,
        filters,
        conn,
        "workbench.html",
        statuses=OPEN_STATUSES,
        programmes=web_queries.programmes(conn),
        teams=web_queries.teams(conn, web_queries.scope_teams(page.user)),
        outcomes=RESOLVE_OUTCOMES,
        channels=CONTACT_CHANNELS,
        contact_outcomes=CONTACT_OUTCOMES,
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


@router.get("/workbench/rows", response_class=HTMLResponse)
def workbench_rows(request: Request, conn: Conn) -> Response:
    """The queue's table body and counts, for the live refresh after an event."""
    page, filters = _workbench_page(request, conn)
    return _queue_view(page, filters, conn, "_queue_rows.html")


def _patient_page(request: Request, conn: Conn, patient_id: str, action: str) -> Page:
    page = page_for(request, conn)
    page.require(*QUEUE_ROLES)
    if not care_store.can_see_patient(conn, page.user, patient_id):
        care_store.audit(conn, page.user, f"denied:{action}", patient_id, via="web")
        raise PageError(404, "err.not_found")
    care_store.audit(conn, page.user, action, patient_id, via="web")
    return page


def _charts_for(profile: dict[str, Any], targets: dict[str, dict[str, Any]]) -> list[Any]:
    return [charts.chart_spec(name, profile["cohorts"], targets) for name in charts.CHARTS]


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(request: Request, conn: Conn, patient_id: str, before: str | None = None) -> Response:
    page = _patient_page(request, conn, patient_id, "view_patient")
    profile = web_queries.patient_profile(conn, patient_id)
    if profile is None:
        raise PageError(404, "err.not_found")
    targets = web_queries.current_targets(conn, patient_id)
    cursor = _parse_cursor(before)
    readings = web_queries.readings_page(conn, patient_id, cursor, READINGS_PAGE)
    for row in readings:
        row["tier"] = _tier(row["metric"], row["value"], profile["cohorts"])
    return page.render(
        "patient.html",
        profile=profile,
        targets=targets,
        latest=web_queries.latest_values(conn, patient_id),
        chart_specs=_charts_for(profile, targets),
        readings=readings,
        next_before=_cursor(readings[-1]) if len(readings) == READINGS_PAGE else None,
        alerts=web_queries.alert_history(conn, patient_id, 20),
        timeline=web_queries.timeline(conn, patient_id, 30),
        can_unmask=page.user.role in UNMASK_ROLES,
        can_set_target=page.user.role is Role.DOCTOR,
        can_act=page.user.role in TEAM_SCOPED,
        target_metrics=[m.value for m in Metric if m.value in _TARGETABLE],
        channels=CONTACT_CHANNELS,
        contact_outcomes=CONTACT_OUTCOMES,
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


_TARGETABLE = {"systolic", "diastolic", "glucose", "pulse_rate", "spo2", "weight"}


def _tier(metric: str, value: float, cohorts: list[str]) -> str | None:
    try:
        known = Metric(metric)
    except ValueError:
        return None
    tier = charts.tier_of(value, charts.context_free_thresholds(known, cohorts))
    return tier.value if tier else None


def _parse_cursor(text: str | None) -> tuple[datetime, uuid.UUID] | None:
    """`<iso time>~<reading id>` of the last row shown; anything else starts at the top."""
    time_text, _, id_text = (text or "").partition("~")
    try:
        return datetime.fromisoformat(time_text), uuid.UUID(id_text)
    except ValueError:
        return None


def _cursor(row: dict[str, Any]) -> str:
    return f"{row['measured_at'].isoformat()}~{row['reading_id']}"


@router.get("/patients/{patient_id}/summary", response_class=HTMLResponse)
def patient_summary(request: Request, conn: Conn, patient_id: str) -> Response:
    page = _patient_page(request, conn, patient_id, "print_summary")
    profile = web_queries.patient_profile(conn, patient_id)
    if profile is None:
        raise PageError(404, "err.not_found")
    targets = web_queries.current_targets(conn, patient_id)
    return page.render(
        "summary.html",
        profile=profile,
        targets=targets,
        latest=web_queries.latest_values(conn, patient_id),
        chart_specs=[
            charts.chart_spec(name, profile["cohorts"], targets)
            for name in ("blood_pressure", "glucose")
        ],
        alerts=web_queries.alert_history(conn, patient_id, 8),
        printed_at=datetime.now(UTC),
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


@router.get("/centre", response_class=HTMLResponse)
def centre(request: Request, conn: Conn, patient: str | None = None) -> Response:
    page = page_for(request, conn)
    page.require(*CENTRE_ROLES)
    current = None
    matches: list[dict[str, Any]] = []
    if patient:
        text = patient.strip()
        matches = web_queries.find_patients(conn, page.user, text, 10)
        exact = [m for m in matches if m["patient_id"] == text]
        if exact or len(matches) == 1:
            current = (exact or matches)[0]
            care_store.audit(conn, page.user, "centre_select", current["patient_id"], via="web")
    return page.render(
        "centre.html",
        query=patient or "",
        current=current,
        matches=matches,
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


@router.get("/centre/patient-readings", response_class=HTMLResponse)
def centre_patient_readings(request: Request, conn: Conn, patient: str) -> Response:
    """The chosen patient's readings of the last 12 hours, for the station's live panel."""
    page = _patient_page(request, conn, patient, "centre_view_readings")
    since = datetime.now(UTC) - timedelta(hours=12)
    rows = web_queries.recent_for_patient(conn, patient, since, 40)
    return page.render("_centre_readings.html", readings=rows)


@router.get("/centre/events")
async def centre_events(request: Request, edge_id: str | None = None) -> StreamingResponse:
    """Server-sent events: `event: readings` with `{edge_id, readings}` once per ingest
    flush that stored new centre readings (of `edge_id` only, when given). The station
    page reloads its panels on each; it carries no patient data itself."""
    user = await run_in_threadpool(user_from_request, request)
    if user.role not in CENTRE_ROLES:
        raise HTTPException(403, f"{user.role.value} has no centre station")
    return event_response(
        request,
        reading_notify.CHANNEL,
        "readings",
        lambda event: edge_id is None or event.get("edge_id") == edge_id,
    )


@router.get("/doctor", response_class=HTMLResponse)
def doctor(
    request: Request, conn: Conn, page_no: Annotated[int, Query(alias="page", ge=1)] = 1
) -> Response:
    page = page_for(request, conn)
    page.require(Role.DOCTOR)
    care_store.audit(conn, page.user, "view_doctor_lists", None, via="web")
    return page.render(
        "doctor.html",
        escalated=web_queries.escalated_to(conn, page.user, PAGE_SIZE),
        patients=web_queries.doctor_patients(conn, page.user, PAGE_SIZE, (page_no - 1) * PAGE_SIZE),
        page_no=page_no,
        page_size=PAGE_SIZE,
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request, conn: Conn, days: Annotated[int, Query(ge=1, le=90)] = 3
) -> Response:
    page = page_for(request, conn)
    page.require(Role.CASE_MANAGER, Role.DOCTOR, Role.QC_SUPERVISOR)
    teams = web_queries.scope_teams(page.user)
    settings = request.app.state.settings
    now = datetime.now(UTC)
    today = datetime.now(ZoneInfo(settings.timezone)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    care_store.audit(conn, page.user, "view_dashboard", None, via="web")
    first_monday = today - timedelta(days=today.weekday(), weeks=11)
    weeks = dash.weekly(conn, teams, first_monday, settings.timezone)
    return page.render(
        "dashboard.html",
        open_by_tier=dash.open_by_tier(conn, teams),
        tiers=TIERS,
        ack=dash.acknowledgement(conn, teams, now - timedelta(days=30)),
        by_source=dash.readings_by_source(conn, teams, today),
        silent=dash.silent_patients(conn, teams, days, 20),
        days=days,
        weeks=weeks,
        texts=i18n.client_texts(page.lang, JS_TEXTS),
    )


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, conn: Conn) -> Response:
    page = page_for(request, conn)
    page.require(Role.ADMIN)
    return page.render("admin.html")


def install(app: FastAPI) -> None:
    """Add the web UI to the cloud app: its routes, its own static files and error pages."""
    from cloud.web import programme_pages, session_routes

    app.include_router(session_routes.router)
    app.include_router(router)
    app.include_router(programme_pages.router)
    app.mount("/static", StaticFiles(directory=str(assets.STATIC)), name="static")

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        if exc.status == 401:
            target = request.url.path
            if request.url.query:
                target += f"?{request.url.query}"
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return render(
            request,
            "error.html",
            language(request),
            None,
            status=exc.status,
            message_key=exc.message_key,
            detail=exc.detail,
        )
