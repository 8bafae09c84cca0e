"""Reading back a patient's measurements in the shapes clinicians use."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from cloud.api.deps import Conn, CurrentUser, Limit, Offset, Settings, patient_access, require
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import care_store
from cloud.db import readings_queries as q
from cloud.readings.charts import bucket_width
from cloud.readings.home_bp import HomeBpReading, home_bp_average
from protocols.metrics import Metric

router = APIRouter(prefix="/api/v1")


@router.get("/patients/{patient_id}/readings")
def patient_readings(
    conn: Conn,
    user: CurrentUser,
    patient_id: str,
    metric: Metric | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    points: Annotated[int | None, Query(ge=1, le=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    """Raw readings, newest first; with `points`, bucketed to at most that many points."""
    patient_access(conn, user, patient_id, "view_readings", metric=metric)
    if points is None:
        items = q.raw(conn, patient_id, metric, since, until, limit)
        return {"patient_id": patient_id, "items": items}
    if metric is None:
        raise HTTPException(422, "points needs a metric")
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since >= until:
        raise HTTPException(422, "since must be before until")
    width = bucket_width(until - since, points)
    buckets = q.bucketed(conn, patient_id, metric, since, until, width)
    return {
        "patient_id": patient_id,
        "metric": metric,
        "bucket_seconds": width.total_seconds(),
        "items": buckets,
    }


@router.get("/patients/{patient_id}/daily")
def patient_daily(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    patient_id: str,
    metric: Metric,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> dict[str, Any]:
    """Per-day count, min, max and mean (hospital calendar days), from the rollups."""
    patient_access(conn, user, patient_id, "view_daily", metric=metric)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    first = today - timedelta(days=days - 1)
    return {
        "patient_id": patient_id,
        "metric": metric,
        "items": q.daily(conn, patient_id, metric, first, today),
    }


@router.get("/patients/{patient_id}/latest")
def patient_latest(conn: Conn, user: CurrentUser, patient_id: str) -> dict[str, Any]:
    patient_access(conn, user, patient_id, "view_latest")
    return {"patient_id": patient_id, "items": q.latest_for(conn, [patient_id])}


class LatestQuery(BaseModel):
    patient_ids: list[str] = Field(min_length=1, max_length=20000)


@router.post("/latest")
def latest_for_patients(
    request: Request, conn: Conn, user: CurrentUser, query: LatestQuery
) -> Response:
    """The latest reading per metric for many patients at once (panels, dashboards).

    Response: `{"items": [{patient_id, metric, measured_at, value, reading_id, source}]}`.
    """
    require(user, Role.QC_SUPERVISOR, *TEAM_SCOPED)
    ids = query.patient_ids
    if user.role is not Role.QC_SUPERVISOR:
        ids = q.visible_patients(conn, ids, sorted(user.team_ids))
    care_store.audit(conn, user, "view_latest_many", None, patients=len(ids))
    pool = request.app.state.pool
    # A short wait for the second connection: a busy pool must not hold requests hostage.
    body = q.latest_for_panel_as_json(
        conn, lambda: pool.connection(timeout=0.05), ids, before=b'{"items":', after=b"}"
    )
    return Response(body, media_type="application/json")


@router.get("/patients/{patient_id}/home-bp-average")
def patient_home_bp_average(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    patient_id: str,
    days: Annotated[int, Query(ge=2, le=14)] = 7,
) -> dict[str, Any]:
    """The home-monitoring protocol's average: last `days` days, the first one discarded."""
    patient_access(conn, user, patient_id, "view_home_bp")
    zone = ZoneInfo(settings.timezone)
    first: date = datetime.now(zone).date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), zone)
    rows = q.home_bp(conn, patient_id, since, settings.timezone)
    result = home_bp_average(HomeBpReading(r["day"], r["systolic"], r["diastolic"]) for r in rows)
    return {"patient_id": patient_id, "window_days": days, **result.__dict__}


@router.get("/patients-without-readings")
def patients_without_readings(
    conn: Conn,
    user: CurrentUser,
    days: Annotated[int, Query(ge=1, le=365)] = 3,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Patients whose last reading of any metric is older than `days` days, oldest first."""
    require(user, Role.QC_SUPERVISOR, *TEAM_SCOPED)
    teams = None if user.role is Role.QC_SUPERVISOR else sorted(user.team_ids)
    care_store.audit(conn, user, "view_silent_patients", None, days=days)
    return {"days": days, "items": q.silent_patients(conn, days, limit, offset, teams)}
