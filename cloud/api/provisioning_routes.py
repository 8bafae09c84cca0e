"""Provisioning: staff issue one-time enrolment codes; an edge trades one for its identity
and its own broker account (`POST /api/v1/provision`, no sign-in: the code is the secret)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, model_validator

from cloud.api.deps import Conn, CurrentUser, Settings, patient_access, require
from cloud.api.edge_config_routes import publish_new_edge
from cloud.auth import Role
from cloud.db import care_store, provisioning_store
from cloud.db.edge_errors import EdgeUnknown
from cloud.provisioning.broker_accounts import (
    BrokerAccountError,
    BrokerAccounts,
    NoBrokerAccounts,
    PasswordFileAccounts,
)
from cloud.provisioning.rate_limit import FailureLimiter
from cloud.settings import CloudSettings

router = APIRouter()

# Who may enrol what: a centre PC is the centre's business; a home app belongs to a patient
# and may be set up by anyone who cares for that patient.
_CENTRE_ROLES = (Role.ADMIN, Role.HEALTH_MANAGER)
_HOME_ROLES = (Role.ADMIN, Role.HEALTH_MANAGER, Role.CASE_MANAGER, Role.NURSE, Role.DOCTOR)


class EnrolmentCodeRequest(BaseModel):
    mode: Literal["centre", "home"]
    patient_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    label: str | None = Field(default=None, max_length=128)
    ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _patient_for_home(self) -> EnrolmentCodeRequest:
        if (self.mode == "home") != (self.patient_id is not None):
            raise ValueError("patient_id is required for mode home and not allowed for centre")
        return self


class ProvisionRequest(BaseModel):
    code: str = Field(min_length=4, max_length=32)
    agent_version: str | None = Field(default=None, max_length=64)


def broker_accounts(settings: CloudSettings) -> BrokerAccounts:
    if settings.mqtt_password_file is None:
        return NoBrokerAccounts()
    pid_file = Path(settings.mqtt_pid_file) if settings.mqtt_pid_file else None
    return PasswordFileAccounts(Path(settings.mqtt_password_file), pid_file)


@router.post("/api/v1/enrolment-codes", status_code=201)
def issue_enrolment_code(
    conn: Conn, user: CurrentUser, body: EnrolmentCodeRequest
) -> dict[str, Any]:
    if body.mode == "centre":
        require(user, *_CENTRE_ROLES)
        care_store.audit(conn, user, "enrolment_code:issue", None, mode="centre", label=body.label)
    else:
        require(user, *_HOME_ROLES)
        assert body.patient_id is not None
        patient_access(conn, user, body.patient_id, "enrolment_code:issue", mode="home")
    return provisioning_store.issue_code(
        conn,
        mode=body.mode,
        patient_id=body.patient_id,
        label=body.label,
        issued_by=user.user_id,
        ttl=timedelta(minutes=body.ttl_minutes),
    )


_limiter_lock = threading.Lock()


def _failure_limiter(request: Request, settings: CloudSettings) -> FailureLimiter:
    with _limiter_lock:
        limiter: FailureLimiter | None = getattr(request.app.state, "provision_limiter", None)
        if limiter is None:
            limiter = FailureLimiter(
                settings.provision_failure_limit,
                timedelta(seconds=settings.provision_failure_window_s),
            )
            request.app.state.provision_limiter = limiter
        return limiter


@router.post("/api/v1/provision", status_code=201)
def provision(
    conn: Conn, settings: Settings, body: ProvisionRequest, request: Request
) -> dict[str, Any]:
    accounts = broker_accounts(settings)
    limiter = _failure_limiter(request, settings)
    client = request.client.host if request.client else "unknown"
    with _limiter_lock:
        wait = limiter.retry_after(client, datetime.now(UTC))
    if wait is not None:
        raise HTTPException(
            429,
            "too many wrong enrolment codes from this address, try again later",
            headers={"Retry-After": str(max(int(wait), 1))},
        )
    try:
        edge = provisioning_store.redeem(
            conn, body.code, agent_version=body.agent_version, create_account=accounts.add
        )
    except BrokerAccountError as exc:
        # The code is still unused (the transaction rolled back): trying again is safe.
        raise HTTPException(503, f"broker account not created, try again: {exc.reason}") from None
    except (provisioning_store.CodeUnknown, provisioning_store.CodeSpent) as exc:
        with _limiter_lock:
            limiter.failed(client, datetime.now(UTC))
        status = 404 if isinstance(exc, provisioning_store.CodeUnknown) else 410
        raise HTTPException(status, exc.reason) from None
    care_store.audit(
        conn, None, "edge:provision", edge.patient_id, edge_id=edge.edge_id, mode=edge.mode
    )
    publish_new_edge(conn, request, settings, edge.edge_id)
    return {
        "edge_id": edge.edge_id,
        "mode": edge.mode,
        "patient_id": edge.patient_id,
        "mqtt": {
            "host": settings.provision_mqtt_host or settings.mqtt_host,
            "port": settings.provision_mqtt_port or settings.mqtt_port,
            "username": edge.username,
            "password": edge.password,
            "tls": settings.provision_mqtt_tls,
        },
    }


@router.delete("/api/v1/edges/{edge_id}/credentials")
def revoke_edge(conn: Conn, user: CurrentUser, settings: Settings, edge_id: str) -> dict[str, Any]:
    """Disable an edge and remove its broker account: it can no longer log in, and the
    ingest refuses its readings. Its stored readings and history stay."""
    require(user, Role.ADMIN)
    accounts = broker_accounts(settings)
    try:
        revoked = provisioning_store.revoke(conn, edge_id, remove_account=accounts.remove)
    except BrokerAccountError as exc:
        raise HTTPException(503, f"broker account not removed, try again: {exc.reason}") from None
    except EdgeUnknown:
        raise HTTPException(404, "no such edge") from None
    care_store.audit(
        conn, user, "edge:revoke", None, edge_id=edge_id, account=revoked.removed_username
    )
    return {
        "edge_id": revoked.edge_id,
        "disabled_at": revoked.disabled_at.isoformat(),
        "broker_account_removed": revoked.removed_username is not None,
    }
