"""Unassigned centre readings: the list staff work through, and assigning one to a patient."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from cloud.api.deps import Conn, CurrentUser, Settings, patient_access, require
from cloud.auth import Role
from cloud.db import assignment_store, care_store
from protocols.messages import AssignmentStatus

router = APIRouter(prefix="/api/v1")

_ROLES = (Role.HEALTH_MANAGER, Role.CASE_MANAGER, Role.ADMIN)


class AssignmentIn(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=500)


@router.get("/unassigned-readings")
def unassigned_readings(
    conn: Conn,
    user: CurrentUser,
    edge_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: datetime | None = None,
) -> dict[str, Any]:
    """Centre measurements taken with no patient session, newest first."""
    require(user, *_ROLES)
    care_store.audit(conn, user, "view_unassigned_readings", None, edge_id=edge_id)
    return assignment_store.list_unassigned(conn, edge_id=edge_id, before=before, limit=limit)


@router.post("/measurements/{measurement_id}/assignment")
def assign_measurement(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    measurement_id: uuid.UUID,
    body: AssignmentIn,
) -> dict[str, Any]:
    """Give an unassigned measurement to a patient: its readings then count in rollups and
    alert rules as if they had arrived with that patient. 409 if someone else has it."""
    require(user, *_ROLES)
    if user.role is not Role.ADMIN:  # administrators set sites up and see every patient
        patient_access(
            conn,
            user,
            body.patient_id,
            "open_assign_measurement",
            measurement_id=str(measurement_id),
        )
    outcome = assignment_store.assign_measurement(
        conn,
        measurement_id,
        body.patient_id,
        via="api",
        timezone=settings.timezone,
        user=user,
        note=body.note,
    )
    if outcome.status is AssignmentStatus.CONFLICT:
        raise HTTPException(409, "该测量已分配给其他患者 / already assigned to another patient")
    if outcome.status is AssignmentStatus.NOT_FOUND:
        raise HTTPException(404, outcome.reason or "not found")
    return {
        "measurement_id": str(measurement_id),
        "patient_id": outcome.patient_id,
        "reading_ids": [str(rid) for rid in outcome.reading_ids],
    }
