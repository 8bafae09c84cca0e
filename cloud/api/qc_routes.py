"""Quality control: the monthly score per hospital and department with drill-down, the
audited sample and its reviews and rectifications, work statistics, XLSX and PDF exports."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from cloud.api.deps import Conn, CurrentUser, Settings, lookup_as, require
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import care_store, programme_store, qc_store
from cloud.programmes.errors import SampleExists
from cloud.reports import qc_sheets
from cloud.reports.xlsx import workbook

router = APIRouter(prefix="/api/v1/qc")

READERS = (*TEAM_SCOPED, Role.QC_SUPERVISOR)
SAMPLERS = (Role.QC_SUPERVISOR, Role.DOCTOR)
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _hospital_name(conn: Any, hospital_id: str) -> str:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "SELECT name FROM hospitals WHERE hospital_id = %s", (hospital_id,)
        ).fetchone()
    if found is None:
        raise HTTPException(404, "no such hospital")
    return str(found["name"])


@router.get("/score")
def score(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    hospital_id: str,
    month: Month,
    department: str | None = None,
) -> dict[str, Any]:
    """The month's score (out of 100, bonus, payment deduction), each figure with the
    patients behind it (names masked)."""
    require(user, *READERS)
    _hospital_name(conn, hospital_id)
    result = qc_store.monthly_score(conn, hospital_id, month, settings.timezone, department)
    care_store.audit(conn, user, "view_qc_score", None, hospital_id=hospital_id, month=month)
    return result


@router.get("/departments")
def departments(
    conn: Conn, user: CurrentUser, settings: Settings, hospital_id: str, month: Month
) -> dict[str, Any]:
    require(user, *READERS)
    return {"items": qc_store.departments(conn, hospital_id, month, settings.timezone)}


class SampleIn(BaseModel):
    hospital_id: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    seed: int | None = Field(default=None, ge=0, lt=2**62)
    fraction: float = Field(default=0.10, gt=0, le=1)


@router.post("/samples", status_code=201)
def draw_sample(
    conn: Conn, user: CurrentUser, settings: Settings, body: SampleIn
) -> dict[str, Any]:
    """Draw the month's 10 % sample once; population and seed are recorded for the audit."""
    require(user, *SAMPLERS)
    _hospital_name(conn, body.hospital_id)
    try:
        row = qc_store.draw_sample(
            conn,
            body.hospital_id,
            body.month,
            user.user_id,
            settings.timezone,
            body.seed,
            body.fraction,
        )
    except SampleExists as exc:
        raise HTTPException(409, exc.reason) from exc
    care_store.audit(conn, user, "qc_sample_drawn", None, sample_id=str(row["sample_id"]))
    return qc_store.sample_detail(conn, row["sample_id"]) or {}


@router.get("/samples")
def find_sample(
    conn: Conn, user: CurrentUser, settings: Settings, hospital_id: str, month: Month
) -> dict[str, Any]:
    require(user, *READERS)
    first, _start, _end = qc_store.month_window(month, settings.timezone)
    row = qc_store.recorded_sample(conn, hospital_id, first)
    if row is None:
        raise HTTPException(404, "no sample drawn for that month")
    return qc_store.sample_detail(conn, row["sample_id"]) or {}


@router.get("/samples/{sample_id}")
def sample(conn: Conn, user: CurrentUser, sample_id: uuid.UUID) -> dict[str, Any]:
    require(user, *READERS)
    found = qc_store.sample_detail(conn, sample_id)
    if found is None:
        raise HTTPException(404, "no such sample")
    return found


@router.get("/samples/{sample_id}/redraw")
def redraw(conn: Conn, user: CurrentUser, sample_id: uuid.UUID) -> dict[str, Any]:
    """The auditor's check: the recorded seed and population give the recorded sample."""
    require(user, *READERS)
    with lookup_as(404):
        return qc_store.redraw(conn, sample_id)


class ReviewIn(BaseModel):
    compliant: bool
    points: float | None = Field(default=None, ge=0, le=100)
    note: str = Field(default="", max_length=4000)
    rectification: str | None = Field(default=None, min_length=1, max_length=1000)
    """When set, a rectification (整改) task opens in the patient's team queue."""


@router.put("/samples/{sample_id}/reviews/{enrolment_id}")
def review(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    sample_id: uuid.UUID,
    enrolment_id: uuid.UUID,
    body: ReviewIn,
) -> dict[str, Any]:
    require(user, *SAMPLERS)
    with lookup_as(404):
        result = qc_store.review(
            conn,
            sample_id,
            enrolment_id,
            compliant=body.compliant,
            points=body.points,
            note=body.note,
            user=user,
            now=datetime.now(UTC),
            timezone=settings.timezone,
            rectification=body.rectification,
        )
    care_store.audit(
        conn,
        user,
        "qc_review",
        None,
        sample_id=str(sample_id),
        enrolment_id=str(enrolment_id),
        compliant=body.compliant,
    )
    return result


class RecognitionIn(BaseModel):
    hospital_id: str
    department: str = ""
    patient_id: str
    kind: Literal["praise", "major_abnormality"]
    occurred_on: date
    note: str = Field(default="", max_length=1000)


@router.post("/recognitions", status_code=201)
def recognition(conn: Conn, user: CurrentUser, body: RecognitionIn) -> dict[str, Any]:
    """A bonus point: a praise letter (表扬信/锦旗) or a major abnormality handled in time."""
    require(user, Role.QC_SUPERVISOR, Role.HEALTH_MANAGER, Role.DOCTOR)
    return qc_store.record_recognition(
        conn,
        hospital_id=body.hospital_id,
        department=body.department,
        patient_id=body.patient_id,
        kind=body.kind,
        occurred_on=body.occurred_on,
        note=body.note,
        user=user,
    )


@router.get("/work-stats")
def work_stats(
    conn: Conn, user: CurrentUser, settings: Settings, hospital_id: str, month: Month
) -> dict[str, Any]:
    """应访/实访, connection rate at call and patient level, workload per staff member, time
    to acknowledge alerts, adherence to measurement plans."""
    require(user, *READERS)
    return qc_store.work_statistics(conn, hospital_id, month, settings.timezone, datetime.now(UTC))


REPORTS = Literal["score", "departments", "work_stats", "enrolments"]


@router.get("/export.xlsx")
def export_xlsx(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    hospital_id: str,
    month: Month,
    report: REPORTS = "score",
    department: str | None = None,
) -> Response:
    """Any QC/programme report as an XLSX workbook (names masked)."""
    require(user, *READERS)
    _hospital_name(conn, hospital_id)
    if report == "score":
        sheets = qc_sheets.score_sheets(
            qc_store.monthly_score(conn, hospital_id, month, settings.timezone, department)
        )
    elif report == "departments":
        sheets = qc_sheets.department_sheets(
            qc_store.departments(conn, hospital_id, month, settings.timezone)
        )
    elif report == "work_stats":
        sheets = qc_sheets.work_stat_sheets(
            qc_store.work_statistics(conn, hospital_id, month, settings.timezone, datetime.now(UTC))
        )
    else:
        from cloud.privacy import mask_name

        rows = programme_store.list_enrolments(
            conn,
            teams=None if user.role is Role.QC_SUPERVISOR else sorted(user.team_ids),
            now=datetime.now(UTC),
            hospital_id=hospital_id,
            limit=100000,
        )
        for row in rows:
            row["patient"] = mask_name(row.pop("patient_name"))
        sheets = qc_sheets.enrolment_sheets(rows)
    care_store.audit(
        conn, user, "export_xlsx", None, report=report, hospital_id=hospital_id, month=month
    )
    return Response(
        workbook(sheets),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{report}-{month}.xlsx"'},
    )


@router.get("/monthly-report.pdf")
def monthly_pdf(
    conn: Conn, user: CurrentUser, settings: Settings, hospital_id: str, month: Month
) -> Response:
    """The month's QC report with charts, for the hospital's quality meeting."""
    # matplotlib takes about a second to import: the first PDF pays for it, not every
    # start of every cloud process.
    from cloud.reports.pdf import monthly_report

    require(user, *READERS)
    name = _hospital_name(conn, hospital_id)
    result = qc_store.monthly_score(conn, hospital_id, month, settings.timezone)
    pdf = monthly_report(
        name,
        result,
        qc_store.departments(conn, hospital_id, month, settings.timezone),
        qc_store.work_statistics(conn, hospital_id, month, settings.timezone, datetime.now(UTC)),
    )
    care_store.audit(conn, user, "export_pdf", None, hospital_id=hospital_id, month=month)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="qc-{month}.pdf"'},
    )
