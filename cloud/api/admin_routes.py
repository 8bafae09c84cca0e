"""Administration: care teams, users, patients. Administrators manage people, not
clinical data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from psycopg import errors
from pydantic import BaseModel, Field

from cloud.alerts.thresholds import Cohort
from cloud.api.deps import Conn, CurrentUser, require
from cloud.auth import Role
from cloud.db import care_store

router = APIRouter(prefix="/api/v1/admin")

Id = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")


class TeamIn(BaseModel):
    team_id: str = Id
    name: str = Field(max_length=128)
    lead_user_id: str | None = None


class UserIn(BaseModel):
    user_id: str = Id
    display_name: str = Field(max_length=64)
    role: Role
    password: str = Field(min_length=10, max_length=256)
    teams: list[str] = []


class PatientIn(BaseModel):
    patient_id: str = Id
    name: str = Field(max_length=64)
    team_id: str
    case_manager_id: str | None = None
    doctor_id: str | None = None
    id_number: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    cohorts: list[Cohort] = []


def _created(action: Any) -> None:
    try:
        action()
    except errors.UniqueViolation as exc:
        raise HTTPException(409, "already exists") from exc
    except errors.ForeignKeyViolation as exc:
        raise HTTPException(
            422, f"refers to something that does not exist: {exc.diag.message_detail}"
        ) from exc


@router.post("/teams", status_code=201)
def create_team(conn: Conn, user: CurrentUser, team: TeamIn) -> dict[str, Any]:
    require(user, Role.ADMIN)
    _created(lambda: care_store.create_team(conn, team.team_id, team.name))
    if team.lead_user_id:
        care_store.set_team_lead(conn, team.team_id, team.lead_user_id)
    care_store.audit(conn, user, "create_team", None, team=team.team_id)
    return team.model_dump()


@router.post("/users", status_code=201)
def create_user(conn: Conn, user: CurrentUser, new: UserIn) -> dict[str, Any]:
    require(user, Role.ADMIN)
    with conn.transaction():
        _created(
            lambda: care_store.create_user(
                conn, new.user_id, new.display_name, new.role, new.password, new.teams
            )
        )
    care_store.audit(conn, user, "create_user", None, user=new.user_id, role=new.role.value)
    return new.model_dump(exclude={"password"})


@router.post("/patients", status_code=201)
def create_patient(conn: Conn, user: CurrentUser, patient: PatientIn) -> dict[str, Any]:
    require(user, Role.ADMIN, Role.HEALTH_MANAGER)
    _created(
        lambda: care_store.create_patient(
            conn,
            patient.patient_id,
            patient.name,
            team_id=patient.team_id,
            case_manager_id=patient.case_manager_id,
            doctor_id=patient.doctor_id,
            id_number=patient.id_number,
            phone=patient.phone,
            cohorts=[c.value for c in patient.cohorts],
        )
    )
    care_store.audit(conn, user, "create_patient", patient.patient_id)
    return {"patient_id": patient.patient_id}
