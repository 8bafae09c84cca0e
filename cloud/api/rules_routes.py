"""Rule sets: read by clinical staff, approved by doctors, chosen per patient."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from cloud.alerts.rule_config import RuleSetError, default_rule_set_json, rule_set_from_json
from cloud.alerts.thresholds import DEFAULT_RULES
from cloud.api.deps import Conn, CurrentUser, patient_access, require
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import care_store

router = APIRouter(prefix="/api/v1")


@router.get("/rule-sets")
def list_rule_sets(conn: Conn, user: CurrentUser) -> dict[str, Any]:
    require(user, *TEAM_SCOPED, Role.QC_SUPERVISOR)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT name, version, approved_by, approved_at FROM rule_sets ORDER BY name"
        ).fetchall()
    builtin = {
        "name": DEFAULT_RULES.name,
        "version": DEFAULT_RULES.version,
        "approved_by": None,
        "approved_at": None,
        "builtin": True,
    }
    return {"items": [builtin, *rows]}


@router.get("/rule-sets/{name}")
def get_rule_set(conn: Conn, user: CurrentUser, name: str) -> dict[str, Any]:
    require(user, *TEAM_SCOPED, Role.QC_SUPERVISOR)
    if name == DEFAULT_RULES.name:
        return default_rule_set_json()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT definition FROM rule_sets WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise HTTPException(404, "no such rule set")
    definition: dict[str, Any] = row["definition"]
    return definition


@router.put("/rule-sets/{name}")
def approve_rule_set(
    conn: Conn, user: CurrentUser, name: str, definition: dict[str, Any]
) -> dict[str, Any]:
    """A doctor approves a rule set (a new version replaces the current one; every version
    is kept). It is refused when invalid or when it would switch off a critical rule."""
    require(user, Role.DOCTOR)
    if name == DEFAULT_RULES.name or definition.get("name") != name:
        raise HTTPException(422, "the definition's name must match and not be 'default'")
    try:
        rules = rule_set_from_json(definition)
    except RuleSetError as exc:
        raise HTTPException(422, exc.reason) from exc
    with conn.transaction():
        conn.execute(
            """INSERT INTO rule_sets (name, version, definition, approved_by)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version,
                   definition = EXCLUDED.definition, approved_by = EXCLUDED.approved_by,
                   approved_at = now()""",
            (name, rules.version, Jsonb(definition), user.user_id),
        )
        history = conn.execute(
            """INSERT INTO rule_set_history (name, version, definition, approved_by,
                                             approved_at)
               VALUES (%s, %s, %s, %s, now()) ON CONFLICT DO NOTHING RETURNING name""",
            (name, rules.version, Jsonb(definition), user.user_id),
        ).fetchone()
        if history is None:
            raise HTTPException(
                409,
                f"version {rules.version} of {name} was approved before; "
                "give the change a new version",
            )
    care_store.audit(conn, user, "approve_rule_set", None, name=name, version=rules.version)
    return {"name": name, "version": rules.version, "approved_by": user.user_id}


class PatientRuleSetIn(BaseModel):
    name: str | None
    """None returns the patient to the default rule set."""


@router.put("/patients/{patient_id}/rule-set")
def choose_rule_set(
    conn: Conn, user: CurrentUser, patient_id: str, body: PatientRuleSetIn
) -> dict[str, Any]:
    require(user, Role.DOCTOR, Role.CASE_MANAGER)
    patient_access(conn, user, patient_id, "choose_rule_set", rule_set=body.name)
    name = None if body.name in (None, DEFAULT_RULES.name) else body.name
    if (
        name is not None
        and conn.execute("SELECT 1 FROM rule_sets WHERE name = %s", (name,)).fetchone() is None
    ):
        raise HTTPException(422, f"no approved rule set {name!r}")
    conn.execute("UPDATE patients SET rule_set = %s WHERE patient_id = %s", (name, patient_id))
    return {"patient_id": patient_id, "rule_set": name or DEFAULT_RULES.name}
