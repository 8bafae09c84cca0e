"""Edge configurations from the API: republish on demand, and after the changes a home
edge's configuration follows (plans, enrolments), so the app sees them at once."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from cloud.api.deps import Conn, CurrentUser, Settings, require
from cloud.auth import Role
from cloud.db import care_store, edge_config_store
from cloud.db.edge_config_store import Publish
from cloud.db.edge_errors import EdgeUnknown
from cloud.settings import CloudSettings
from protocols.errors import CareBridgeError

log = logging.getLogger("carebridge.edge_config")

router = APIRouter(prefix="/api/v1")


def config_publisher(request: Request) -> Publish:
    publish: Publish = request.app.state.publisher.publish_config
    return publish


def republish_patient(
    conn: Any, request: Request, settings: CloudSettings, patient_id: str
) -> None:
    """The patient's home edges get their new configuration; on a broker failure the
    sweep sends it later (the row stays stale), and the request still succeeds."""
    edge_config_store.republish_for_patient(
        conn, config_publisher(request), patient_id, timezone=settings.timezone
    )


def publish_new_edge(conn: Any, request: Request, settings: CloudSettings, edge_id: str) -> None:
    """Right after provisioning: the first configuration is waiting (retained) when the
    agent first connects."""
    try:
        edge_config_store.publish_config(
            conn, config_publisher(request), edge_id, timezone=settings.timezone
        )
    except CareBridgeError as exc:
        log.warning(
            "first configuration not published; the sweep retries",
            extra={"edge_id": edge_id, "reason": exc.reason},
        )


@router.post("/edges/{edge_id}/config")
def republish_config(
    conn: Conn, user: CurrentUser, settings: Settings, request: Request, edge_id: str
) -> dict[str, Any]:
    """Publish the edge's configuration again now (retained), even if unchanged."""
    require(user, Role.ADMIN)
    try:
        outcome = edge_config_store.publish_config(
            conn, config_publisher(request), edge_id, timezone=settings.timezone, force=True
        )
    except EdgeUnknown:
        raise HTTPException(404, "no such edge") from None
    except CareBridgeError as exc:
        raise HTTPException(503, f"configuration not published, try again: {exc.reason}") from None
    care_store.audit(conn, user, "edge:config", None, edge_id=edge_id)
    return {
        "edge_id": outcome.edge_id,
        "published": outcome.published,
        "issued_at": outcome.issued_at.isoformat() if outcome.issued_at else None,
        "content_hash": outcome.content_hash,
    }
