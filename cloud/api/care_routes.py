"""Sign-in, the work queue, alert handling, contacts and per-patient targets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud.alerts.lifecycle import Action, Outcome, TransitionError
from cloud.api.deps import (
    Conn,
    CurrentUser,
    Limit,
    Offset,
    Settings,
    patient_access,
    require,
    user_from_request,
)
from cloud.api.edge_config_routes import republish_patient
from cloud.api.live import event_response
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import alert_notify, care_store
from cloud.notify import NotificationError, send_template
from protocols.metrics import Metric

router = APIRouter(prefix="/api/v1")

TOKEN_LIFETIME = timedelta(hours=12)
CLINICAL = (Role.CASE_MANAGER, Role.DOCTOR, Role.NURSE, Role.HEALTH_MANAGER)


class SignIn(BaseModel):
    username: str
    password: str


@router.post("/auth/token")
def sign_in(conn: Conn, body: SignIn) -> dict[str, Any]:
    token = care_store.issue_token(conn, body.username, body.password, TOKEN_LIFETIME)
    care_store.audit(conn, None, "sign_in" if token else "sign_in_failed", username=body.username)
    if token is None:
        raise HTTPException(401, "wrong user name or password")
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": int(TOKEN_LIFETIME.total_seconds()),
    }


@router.get("/me")
def me(user: CurrentUser) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "display_name": user.display_name,
        "role": user.role,
        "teams": sorted(user.team_ids),
    }


@router.get("/queue")
def work_queue(
    conn: Conn,
    user: CurrentUser,
    status: Annotated[list[str] | None, Query()] = None,
    tier: Annotated[list[Literal["critical", "high", "medium", "low"]] | None, Query()] = None,
    kind: Literal["clinical", "data_quality", "follow_up", "pathway", "rectification"]
    | None = None,
    mine: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The signed-in user's day as one list: severity first, then the acknowledgement due."""
    if user.role not in (*TEAM_SCOPED, Role.QC_SUPERVISOR):
        raise HTTPException(403, f"{user.role.value} has no work queue")
    result = care_store.queue(
        conn,
        user,
        statuses=status,
        tiers=list(tier) if tier else None,
        kind=kind,
        mine=mine,
        limit=limit,
        offset=offset,
    )
    care_store.audit(conn, user, "view_queue", None, count=len(result["items"]))
    return result


@router.get("/queue/events")
async def queue_events(request: Request) -> StreamingResponse:
    """Server-sent events: `event: alert` with `{alert_id, action, tier, status, team_id,
    patient_id}` whenever an alert the user may see opens or changes. Reload the item with
    GET /api/v1/alerts/{id}."""
    user = await run_in_threadpool(user_from_request, request)
    if user.role not in (*TEAM_SCOPED, Role.QC_SUPERVISOR):
        raise HTTPException(403, f"{user.role.value} has no work queue")
    return event_response(
        request,
        alert_notify.CHANNEL,
        "alert",
        lambda event: user.role is Role.QC_SUPERVISOR or event.get("team_id") in user.team_ids,
    )


@router.get("/alerts")
def list_alerts(
    conn: Conn, user: CurrentUser, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Open alerts the user may see (the queue without its filters)."""
    return work_queue(conn, user, None, None, None, False, limit, offset)


def _alert_for(conn: Conn, user: CurrentUser, alert_id: uuid.UUID, action: str) -> str:
    patient = care_store.alert_patient(conn, alert_id)
    if patient is None:
        raise HTTPException(404, "no such alert")
    patient_access(conn, user, patient, action, alert_id=str(alert_id))
    return patient


@router.get("/alerts/{alert_id}")
def get_alert(conn: Conn, user: CurrentUser, alert_id: uuid.UUID) -> dict[str, Any]:
    """An alert with its readings, its full history and the contacts made about it."""
    _alert_for(conn, user, alert_id, "view_alert")
    detail = care_store.alert_detail(conn, alert_id)
    assert detail is not None
    return detail


class ActionIn(BaseModel):
    action: Action
    outcome_code: Outcome | None = None
    note: str = Field(default="", max_length=4000)


@router.post("/alerts/{alert_id}/actions")
def act_on_alert(
    conn: Conn, user: CurrentUser, alert_id: uuid.UUID, body: ActionIn
) -> dict[str, Any]:
    require(user, *CLINICAL)
    _alert_for(conn, user, alert_id, f"alert_{body.action.value}")
    try:
        change = care_store.apply_action(
            conn, alert_id, user, body.action, body.outcome_code, body.note, datetime.now(UTC)
        )
    except TransitionError as exc:
        raise HTTPException(409, exc.reason) from exc
    return {"alert_id": alert_id, "from": change.from_status, "to": change.to_status}


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


@router.post("/alerts/{alert_id}/notes", status_code=201)
def add_note(conn: Conn, user: CurrentUser, alert_id: uuid.UUID, body: NoteIn) -> dict[str, Any]:
    require(user, *CLINICAL)
    _alert_for(conn, user, alert_id, "alert_note")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT status FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    assert row is not None
    care_store.record_event(
        conn,
        alert_id,
        datetime.now(UTC),
        user.user_id,
        "note",
        row["status"],
        row["status"],
        None,
        body.note,
    )
    return {"alert_id": alert_id, "note": body.note}


class AssignIn(BaseModel):
    assignee_id: str | None
    """None returns the alert to the team pool."""
    note: str = Field(default="", max_length=1000)


@router.post("/alerts/{alert_id}/assignment")
def reassign(conn: Conn, user: CurrentUser, alert_id: uuid.UUID, body: AssignIn) -> dict[str, Any]:
    require(user, *CLINICAL)
    _alert_for(conn, user, alert_id, "alert_assign")
    care_store.assign(conn, alert_id, body.assignee_id, user, datetime.now(UTC), body.note)
    return {"alert_id": alert_id, "assignee_id": body.assignee_id}


class ContactIn(BaseModel):
    channel: Literal["call", "sms", "app", "wechat"]
    direction: Literal["outbound", "inbound"] = "outbound"
    outcome: Literal["reached", "no_answer", "busy", "wrong_number", "message_sent", "message_read"]
    note: str = Field(default="", max_length=4000)
    alert_id: uuid.UUID | None = None
    at: datetime | None = None


@router.post("/patients/{patient_id}/contacts", status_code=201)
def record_contact(
    conn: Conn, user: CurrentUser, patient_id: str, body: ContactIn
) -> dict[str, Any]:
    """A call, SMS or message with the patient, kept as an original record."""
    require(user, *CLINICAL)
    patient_access(conn, user, patient_id, "record_contact")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO contact_records (patient_id, alert_id, user_id, channel, direction,
                                            outcome, note, at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) RETURNING *""",
            (
                patient_id,
                body.alert_id,
                user.user_id,
                body.channel,
                body.direction,
                body.outcome,
                body.note,
                body.at,
            ),
        ).fetchone()
    assert row is not None
    return row


@router.get("/patients/{patient_id}/contacts")
def list_contacts(
    conn: Conn, user: CurrentUser, patient_id: str, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    patient_access(conn, user, patient_id, "view_contacts")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT * FROM contact_records WHERE patient_id = %s
               ORDER BY at DESC LIMIT %s OFFSET %s""",
            (patient_id, limit, offset),
        ).fetchall()
    return {"items": rows}


class TargetIn(BaseModel):
    low: float | None = None
    high: float | None = None
    reason: str = Field(min_length=4, max_length=1000)


@router.put("/patients/{patient_id}/targets/{metric}")
def set_target(
    conn: Conn, user: CurrentUser, patient_id: str, metric: Metric, body: TargetIn
) -> dict[str, Any]:
    """A doctor's target for this patient, which takes precedence over the default target
    rules (never over the critical ones). Kept with its reason; earlier targets stay."""
    require(user, Role.DOCTOR)
    if body.low is None and body.high is None:
        raise HTTPException(422, "give a low or a high bound")
    if body.low is not None and body.high is not None and body.low >= body.high:
        raise HTTPException(422, "low must be below high")
    patient_access(
        conn,
        user,
        patient_id,
        "set_target",
        metric=metric.value,
        low=body.low,
        high=body.high,
        reason=body.reason,
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO patient_targets (patient_id, metric, low, high, set_by, reason)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING *""",
            (patient_id, metric.value, body.low, body.high, user.user_id, body.reason),
        ).fetchone()
    assert row is not None
    return row


@router.get("/patients/{patient_id}/targets")
def list_targets(conn: Conn, user: CurrentUser, patient_id: str) -> dict[str, Any]:
    patient_access(conn, user, patient_id, "view_targets")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM patient_targets WHERE patient_id = %s ORDER BY set_at DESC",
            (patient_id,),
        ).fetchall()
    return {"items": rows}


class NotificationIn(BaseModel):
    template_id: str
    alert_id: uuid.UUID | None = None


@router.get("/notification-templates")
def notification_templates(conn: Conn, user: CurrentUser) -> dict[str, Any]:
    """The approved messages that may be sent to patients (nothing else can be)."""
    require(user, *CLINICAL)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT template_id, title, body, severity FROM notification_templates
               WHERE active AND approved_at IS NOT NULL ORDER BY template_id"""
        ).fetchall()
    return {"items": rows}


@router.post("/patients/{patient_id}/notifications", status_code=201)
def notify_patient(
    conn: Conn, user: CurrentUser, request: Request, patient_id: str, body: NotificationIn
) -> dict[str, Any]:
    """Send an approved template to the patient's app; it is kept as a contact record."""
    require(user, *CLINICAL)
    patient_access(conn, user, patient_id, "notify_patient", template=body.template_id)
    try:
        return send_template(
            conn,
            request.app.state.publisher,
            patient_id=patient_id,
            template_id=body.template_id,
            sender_id=user.user_id,
            alert_id=body.alert_id,
        )
    except NotificationError as exc:
        raise HTTPException(409, exc.reason) from exc


class AvailabilityIn(BaseModel):
    away: bool


@router.put("/me/availability")
def set_availability(conn: Conn, user: CurrentUser, body: AvailabilityIn) -> dict[str, Any]:
    """Away: new alerts for my patients go to my team's pool instead of to me."""
    require(user, *CLINICAL)
    conn.execute("UPDATE users SET away = %s WHERE user_id = %s", (body.away, user.user_id))
    care_store.audit(conn, user, "set_availability", None, away=body.away)
    return {"user_id": user.user_id, "away": body.away}


class PlanIn(BaseModel):
    times_per_day: int = Field(ge=1, le=8)
    started_at: datetime | None = None
    ends_at: datetime | None = None


@router.put("/patients/{patient_id}/measurement-plans/{metric}")
def set_measurement_plan(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    request: Request,
    patient_id: str,
    metric: Metric,
    body: PlanIn,
) -> dict[str, Any]:
    """What the patient should measure and how often; the adherence sweep follows it."""
    require(user, Role.CASE_MANAGER, Role.DOCTOR, Role.HEALTH_MANAGER)
    patient_access(conn, user, patient_id, "set_measurement_plan", metric=metric.value)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """INSERT INTO measurement_plans (patient_id, metric, times_per_day, started_at,
                                              ends_at, set_by)
               VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s)
               ON CONFLICT (patient_id, metric) DO UPDATE SET
                   times_per_day = EXCLUDED.times_per_day, started_at = EXCLUDED.started_at,
                   ends_at = EXCLUDED.ends_at, set_by = EXCLUDED.set_by
               RETURNING *""",
            (
                patient_id,
                metric.value,
                body.times_per_day,
                body.started_at,
                body.ends_at,
                user.user_id,
            ),
        ).fetchone()
    assert row is not None
    republish_patient(conn, request, settings, patient_id)
    return row


@router.get("/patients/{patient_id}/measurement-plans")
def list_measurement_plans(conn: Conn, user: CurrentUser, patient_id: str) -> dict[str, Any]:
    patient_access(conn, user, patient_id, "view_measurement_plans")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM measurement_plans WHERE patient_id = %s ORDER BY metric",
            (patient_id,),
        ).fetchall()
    return {"items": rows}
