"""Programmes: packages, pathways, enrolment (by staff or discharge list), pathway tasks,
questionnaires, revisits, withdrawal/refund, closure, and per-hospital message approval."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from cloud.api.deps import (
    Conn,
    CurrentUser,
    Limit,
    Offset,
    Settings,
    lookup_as,
    patient_access,
    require,
)
from cloud.api.edge_config_routes import republish_patient
from cloud.auth import TEAM_SCOPED, Role, User
from cloud.db import pathway_tasks, programme_store
from cloud.db.care_store import audit
from cloud.db.pathway_tasks import Send
from cloud.db.programme_store import Consent
from cloud.privacy import mask_name
from cloud.programmes.errors import EnrolmentRefused
from cloud.programmes.pathway import parse_pathway
from cloud.programmes.questionnaires import shipped_questionnaires, visible_questions

router = APIRouter(prefix="/api/v1")

STAFF = (*TEAM_SCOPED, Role.QC_SUPERVISOR, Role.ADMIN)
ENROLLERS = (Role.HEALTH_MANAGER, Role.CASE_MANAGER)
SIGNERS = (Role.DOCTOR, Role.QC_SUPERVISOR)


def _send(conn: Any, request: Request) -> Send:
    return pathway_tasks.template_sender(conn, request.app.state.publisher)


def _teams(user: User) -> list[str] | None:
    return None if user.role in (Role.QC_SUPERVISOR, Role.ADMIN) else sorted(user.team_ids)


def _enrolment_for(conn: Any, user: User, enrolment_id: uuid.UUID, action: str) -> str:
    patient_id = programme_store.enrolment_patient(conn, enrolment_id)
    if patient_id is None:
        raise HTTPException(404, "no such enrolment")
    patient_access(conn, user, patient_id, action, enrolment_id=str(enrolment_id))
    return patient_id


@router.get("/programmes")
def programmes(conn: Conn, user: CurrentUser, hospital_id: str | None = None) -> dict[str, Any]:
    """Service packages (服务套餐) with their course, price, pathway and measurement plan."""
    require(user, *STAFF)
    with conn.cursor(row_factory=dict_row) as cur:
        items = cur.execute(
            """SELECT g.*, h.name AS hospital_name,
                      (SELECT count(*) FROM enrolments e WHERE e.programme_id = g.programme_id
                         AND e.status = 'active') AS active_enrolments
               FROM programmes g JOIN hospitals h USING (hospital_id)
               WHERE (%s::text IS NULL OR g.hospital_id = %s) ORDER BY g.programme_id""",
            (hospital_id, hospital_id),
        ).fetchall()
    return {"items": items}


@router.get("/programmes/{programme_id}")
def programme(conn: Conn, user: CurrentUser, programme_id: str) -> dict[str, Any]:
    require(user, *STAFF)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT * FROM programmes WHERE programme_id = %s", (programme_id,)
        ).fetchone()
    if row is None:
        raise HTTPException(404, "no such programme")
    return row


@router.get("/pathways")
def pathways(conn: Conn, user: CurrentUser) -> dict[str, Any]:
    require(user, *STAFF)
    return {"items": programme_store.list_pathways(conn)}


@router.get("/pathways/{pathway_id}")
def pathway(
    conn: Conn, user: CurrentUser, pathway_id: str, version: int | None = None
) -> dict[str, Any]:
    require(user, *STAFF)
    with lookup_as(404):
        return programme_store.pathway(conn, pathway_id, version).model_dump(mode="json")


@router.post("/pathways", status_code=201)
def publish_pathway(
    conn: Conn, user: CurrentUser, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Publish a validated template version (422 `pathway_invalid` naming each problem).
    Running enrolments keep the version they started with."""
    require(user, *SIGNERS)
    template = parse_pathway(body, set(shipped_questionnaires()))
    created = programme_store.publish_pathway(conn, template, user.user_id)
    return {"pathway_id": template.pathway_id, "version": template.version, "created": created}


class ConsentIn(BaseModel):
    notice_version: str = Field(min_length=1)
    scope: list[Literal["monitoring", "call_recording", "share_with_hospital", "app_messages"]]
    channel: Literal["paper", "app", "verbal_recorded"]
    collected_at: datetime | None = None
    evidence_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class EnrolIn(BaseModel):
    patient_id: str
    programme_id: str
    department: str = ""
    consent: ConsentIn
    paid_cents: int | None = Field(default=None, ge=0)
    discharged_on: date | None = None


@router.post("/enrolments", status_code=201)
def enrol(
    conn: Conn, user: CurrentUser, settings: Settings, request: Request, body: EnrolIn
) -> dict[str, Any]:
    """入组 with recorded consent; the pathway becomes dated tasks."""
    require(user, *ENROLLERS)
    patient_access(conn, user, body.patient_id, "enrol", programme_id=body.programme_id)
    now = datetime.now(UTC)
    consent = Consent(
        body.consent.notice_version,
        list(body.consent.scope),
        body.consent.channel,
        user.user_id,
        body.consent.collected_at or now,
        body.consent.evidence_sha256,
    )
    try:
        enrolled = programme_store.enrol(
            conn,
            patient_id=body.patient_id,
            programme_id=body.programme_id,
            department=body.department,
            consent=consent,
            enrolled_by=user.user_id,
            enrolled_at=now,
            timezone=settings.timezone,
            paid_cents=body.paid_cents,
            discharged_on=body.discharged_on,
            send=_send(conn, request),
        )
    except EnrolmentRefused as exc:
        raise HTTPException(409, exc.reason) from exc
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    republish_patient(conn, request, settings, body.patient_id)
    return enrolled


@router.post("/enrolments/discharge-list", status_code=201)
def import_discharge_list(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    request: Request,
    hospital_id: str,
    team_id: str,
    body: Annotated[str, Body(media_type="text/csv")],
    filename: str = "",
) -> dict[str, Any]:
    """A discharge list as CSV (docs/programmes.md): new patients join `team_id`; every row
    is enrolled or returned with its line and reason (and kept for inspection)."""
    require(user, *ENROLLERS)
    if team_id not in user.team_ids:
        raise HTTPException(403, "import into one of your own care teams")
    result = programme_store.import_discharge_list(
        conn,
        body,
        hospital_id=hospital_id,
        team_id=team_id,
        user=user,
        now=datetime.now(UTC),
        timezone=settings.timezone,
        filename=filename,
        send=_send(conn, request),
    )
    audit(
        conn,
        user,
        "discharge_list_import",
        None,
        import_id=str(result["import_id"]),
        accepted=len(result["accepted"]),
        rejected=len(result["rejected"]),
    )
    return result


@router.get("/enrolments")
def enrolments(
    conn: Conn,
    user: CurrentUser,
    programme_id: str | None = None,
    hospital_id: str | None = None,
    patient_id: str | None = None,
    status: Literal["active", "withdrawn", "closed"] | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Enrolled patients with pathway progress: tasks done / due / overdue, current phase."""
    require(user, *STAFF)
    if user.role is Role.ADMIN:
        raise HTTPException(403, "administrators see no clinical data")
    items = programme_store.list_enrolments(
        conn,
        teams=_teams(user),
        now=datetime.now(UTC),
        programme_id=programme_id,
        hospital_id=hospital_id,
        status=status,
        patient_id=patient_id,
        limit=limit,
        offset=offset,
    )
    for item in items:
        item["patient_name"] = mask_name(item["patient_name"])
    audit(conn, user, "view_enrolments", None, count=len(items))
    return {"items": items}


@router.get("/enrolments/{enrolment_id}")
def enrolment(conn: Conn, user: CurrentUser, enrolment_id: uuid.UUID) -> dict[str, Any]:
    require(user, *TEAM_SCOPED, Role.QC_SUPERVISOR)
    _enrolment_for(conn, user, enrolment_id, "view_enrolment")
    found = programme_store.enrolment(conn, enrolment_id, datetime.now(UTC))
    assert found is not None
    return found


class WithdrawalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
    refund_cents: int = Field(ge=0)


@router.post("/enrolments/{enrolment_id}/withdrawal")
def withdraw(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    request: Request,
    enrolment_id: uuid.UUID,
    body: WithdrawalIn,
) -> dict[str, Any]:
    """Withdrawal and refund (退费); a refund counts as dissatisfaction in the QC score."""
    require(user, *ENROLLERS)
    patient_id = _enrolment_for(conn, user, enrolment_id, "withdraw_enrolment")
    with lookup_as(409):
        withdrawn = programme_store.withdraw(
            conn, enrolment_id, user, body.reason, body.refund_cents, datetime.now(UTC)
        )
    republish_patient(conn, request, settings, patient_id)
    return withdrawn


@router.post("/enrolments/{enrolment_id}/closure")
def close(
    conn: Conn, user: CurrentUser, settings: Settings, enrolment_id: uuid.UUID
) -> dict[str, Any]:
    """结案: generates the closure summary for the case manager to review."""
    require(user, Role.CASE_MANAGER)
    _enrolment_for(conn, user, enrolment_id, "close_enrolment")
    with lookup_as(409):
        return programme_store.close_enrolment(
            conn, enrolment_id, user, datetime.now(UTC), settings.timezone
        )


class SummaryIn(BaseModel):
    text_zh: str | None = Field(default=None, max_length=8000)
    """The reviewed text, when the case manager edited it."""


@router.post("/enrolments/{enrolment_id}/closure/sent")
def send_summary(
    conn: Conn, user: CurrentUser, request: Request, enrolment_id: uuid.UUID, body: SummaryIn
) -> dict[str, Any]:
    require(user, Role.CASE_MANAGER)
    _enrolment_for(conn, user, enrolment_id, "send_closure_summary")
    with lookup_as(409):
        return programme_store.mark_summary_sent(
            conn, enrolment_id, user, datetime.now(UTC), body.text_zh, _send(conn, request)
        )


class CompletionIn(BaseModel):
    outcome: Literal["completed", "unreachable"]
    note: str = Field(default="", max_length=4000)


@router.post("/programme-tasks/{task_id}/completion")
def complete_task(
    conn: Conn, user: CurrentUser, task_id: uuid.UUID, body: CompletionIn
) -> dict[str, Any]:
    """Finish a pathway task (its queue item closes with it)."""
    require(user, *TEAM_SCOPED)
    patient_id = pathway_tasks.task_patient(conn, task_id)
    if patient_id is None:
        raise HTTPException(404, "no such task")
    patient_access(conn, user, patient_id, "complete_task", task_id=str(task_id))
    with lookup_as(409):
        return pathway_tasks.complete_task(
            conn, task_id, user, body.outcome, body.note, datetime.now(UTC)
        )


@router.get("/questionnaires")
def questionnaires(user: CurrentUser) -> dict[str, Any]:
    return {"items": [q.model_dump(mode="json") for q in shipped_questionnaires().values()]}


@router.post("/questionnaires/{questionnaire_id}/visible-questions")
def next_questions(
    user: CurrentUser, questionnaire_id: str, answers: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """The skip logic for a form being filled in: which questions to show now."""
    form = shipped_questionnaires().get(questionnaire_id)
    if form is None:
        raise HTTPException(404, "no such questionnaire")
    return {"questions": [q.id for q in visible_questions(form, answers)]}


class ResponseIn(BaseModel):
    patient_id: str
    questionnaire_id: str
    answers: dict[str, Any]
    channel: Literal["app", "call"]
    task_id: uuid.UUID | None = None


@router.post("/questionnaire-responses", status_code=201)
def answer(conn: Conn, user: CurrentUser, settings: Settings, body: ResponseIn) -> dict[str, Any]:
    """A form answered by the patient in the app (a patient account whose user id is the
    patient id) or entered by staff during a call; scored, and a risky score raises a task."""
    if user.role is Role.PATIENT:
        if user.user_id != body.patient_id or body.channel != "app":
            raise HTTPException(404, "no such patient")
    else:
        require(user, *TEAM_SCOPED)
        patient_access(conn, user, body.patient_id, "questionnaire_response")
    with lookup_as(404):
        return pathway_tasks.record_response(
            conn,
            patient_id=body.patient_id,
            questionnaire_id=body.questionnaire_id,
            answers=body.answers,
            channel=body.channel,
            user=user,
            now=datetime.now(UTC),
            timezone=settings.timezone,
            task_id=body.task_id,
        )


class RevisitIn(BaseModel):
    visited_on: date
    note: str = Field(default="", max_length=1000)


@router.post("/enrolments/{enrolment_id}/revisits", status_code=201)
def record_revisit(
    conn: Conn, user: CurrentUser, enrolment_id: uuid.UUID, body: RevisitIn
) -> dict[str, Any]:
    """A revisit (复诊) recorded by hand (a HIS feed will use source `his`)."""
    require(user, *TEAM_SCOPED)
    _enrolment_for(conn, user, enrolment_id, "record_revisit")
    return pathway_tasks.record_revisit(conn, enrolment_id, body.visited_on, user, body.note)


@router.get("/hospitals/{hospital_id}/message-templates")
def message_templates(conn: Conn, user: CurrentUser, hospital_id: str) -> dict[str, Any]:
    """SMS / app templates and whether this hospital approved each (only those go out)."""
    require(user, *STAFF)
    return {"items": programme_store.hospital_templates(conn, hospital_id)}


class TemplateIn(BaseModel):
    template_id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,47}$")
    title: str = Field(min_length=1, max_length=60)
    body: str = Field(min_length=1, max_length=500)
    severity: Literal["info", "advice", "urgent"] = "info"


@router.post("/message-templates", status_code=201)
def draft_template(conn: Conn, user: CurrentUser, body: TemplateIn) -> dict[str, Any]:
    """A new SMS / app message text; it goes out only after a hospital approves it."""
    require(user, Role.CASE_MANAGER, Role.HEALTH_MANAGER, Role.QC_SUPERVISOR, Role.ADMIN)
    try:
        programme_store.draft_template(conn, body.template_id, body.title, body.body, body.severity)
    except UniqueViolation as exc:
        raise HTTPException(409, f"template {body.template_id} exists") from exc
    audit(conn, user, "template_drafted", None, template_id=body.template_id)
    return {**body.model_dump(), "approved": False}


class ApprovalIn(BaseModel):
    approved: bool


@router.put("/hospitals/{hospital_id}/message-templates/{template_id}/approval")
def approve_template(
    conn: Conn, user: CurrentUser, hospital_id: str, template_id: str, body: ApprovalIn
) -> dict[str, Any]:
    require(user, *SIGNERS)
    if body.approved:
        programme_store.approve_template(conn, hospital_id, template_id, user.user_id)
    else:
        programme_store.revoke_template(conn, hospital_id, template_id)
    audit(
        conn,
        user,
        "template_approval",
        None,
        hospital_id=hospital_id,
        template_id=template_id,
        approved=body.approved,
    )
    return {"hospital_id": hospital_id, "template_id": template_id, "approved": body.approved}
