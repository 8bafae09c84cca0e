"""The fleet of edges as the cloud last heard them (`GET /api/v1/edges`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from cloud.api.deps import Conn, CurrentUser, require
from cloud.auth import Role
from cloud.db import care_store, edge_status_store

router = APIRouter()

_FLEET_ROLES = (Role.ADMIN, Role.HEALTH_MANAGER)


@router.get("/api/v1/edges")
def list_edges(conn: Conn, user: CurrentUser) -> dict[str, Any]:
    require(user, *_FLEET_ROLES)
    care_store.audit(conn, user, "view_edges", None)
    return {"items": [edge_view(row) for row in edge_status_store.list_edges(conn)]}


def edge_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "edge_id": row["edge_id"],
        "mode": row["mode"],
        "label": row["label"],
        "disabled": row["disabled_at"] is not None,
        "state": row["state"] or "unknown",
        "state_since": _iso(row["state_since"]),
        "last_status_at": _iso(row["status_at"]),
        "last_heard_at": _iso(row["received_at"]),
        "agent_version": row["agent_version"],
        "outbox": {
            "pending": row["outbox_pending"],
            # As the edge measured it at `last_status_at`, not projected: a guess would lie.
            "oldest_pending_age_s": row["outbox_oldest_age_s"],
            "capacity": row["outbox_capacity"],
            "level": row["outbox_level"],
            "alarm": row["outbox_level"] not in (None, "ok"),
        },
        "devices": row["devices"],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
