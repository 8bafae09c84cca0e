"""The device registry: who owns a device, and which patient a home device belonged to when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from cloud.api.deps import Conn, CurrentUser, require
from cloud.auth import Role
from protocols.reading import DeviceKind

router = APIRouter(prefix="/api/v1/devices")

# Who hands devices out: centre staff, and administrators setting up a site.
_DEVICE_ROLES = (Role.ADMIN, Role.HEALTH_MANAGER, Role.CASE_MANAGER)

Serial = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")


class DeviceIn(BaseModel):
    serial: str = Serial
    kind: DeviceKind
    model: str = Field(max_length=128)
    manufacturer: str | None = Field(default=None, max_length=128)
    owner_type: Literal["centre", "patient"]
    owner_id: str = Field(min_length=1, max_length=64)


class BindingIn(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64)
    starts_at: datetime | None = None
    """Defaults to now; the previous binding ends where this one starts."""


@router.post("", status_code=201)
def register_device(conn: Conn, user: CurrentUser, device: DeviceIn) -> dict[str, Any]:
    require(user, *_DEVICE_ROLES)
    row = conn.execute(
        """INSERT INTO devices (serial, kind, model, manufacturer, owner_type, owner_id)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING *""",
        (
            device.serial,
            device.kind.value,
            device.model,
            device.manufacturer,
            device.owner_type,
            device.owner_id,
        ),
    ).fetchone()
    if row is None:
        raise HTTPException(409, f"{device.kind.value} {device.serial} is already registered")
    return row


@router.get("/{kind}/{serial}")
def get_device(conn: Conn, user: CurrentUser, kind: DeviceKind, serial: str) -> dict[str, Any]:
    require(user, *_DEVICE_ROLES)
    device = conn.execute(
        "SELECT * FROM devices WHERE kind = %s AND serial = %s", (kind.value, serial)
    ).fetchone()
    if device is None:
        raise HTTPException(404, "no such device")
    bindings = conn.execute(
        """SELECT binding_id, patient_id, lower(during) AS starts_at, upper(during) AS ends_at
           FROM device_bindings WHERE kind = %s AND serial = %s ORDER BY lower(during)""",
        (kind.value, serial),
    ).fetchall()
    return {**device, "bindings": bindings}


@router.post("/{kind}/{serial}/bindings", status_code=201)
def bind_device(
    conn: Conn, user: CurrentUser, kind: DeviceKind, serial: str, binding: BindingIn
) -> dict[str, Any]:
    """Give a home device to a patient from `starts_at` on, ending the current holder's time."""
    require(user, *_DEVICE_ROLES)
    starts_at = binding.starts_at or datetime.now(UTC)
    with conn.transaction():
        device = conn.execute(
            "SELECT owner_type FROM devices WHERE kind = %s AND serial = %s FOR UPDATE",
            (kind.value, serial),
        ).fetchone()
        if device is None:
            raise HTTPException(404, "no such device")
        conn.execute(
            """UPDATE device_bindings SET during = tstzrange(lower(during), %s)
               WHERE kind = %s AND serial = %s AND upper_inf(during) AND lower(during) < %s""",
            (starts_at, kind.value, serial, starts_at),
        )
        try:
            row = conn.execute(
                """INSERT INTO device_bindings (kind, serial, patient_id, during)
                   VALUES (%s, %s, %s, tstzrange(%s, NULL))
                   RETURNING binding_id, patient_id, lower(during) AS starts_at""",
                (kind.value, serial, binding.patient_id, starts_at),
            ).fetchone()
        except psycopg.errors.ExclusionViolation as exc:
            raise HTTPException(
                409, "the device is already bound to a patient from that time on"
            ) from exc
    return row
