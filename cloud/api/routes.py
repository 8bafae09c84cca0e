"""HTTP endpoints. Each is a thin query over the database; rules live elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from cloud.api.broker_probe import broker_answers
from cloud.api.deps import Conn, CurrentUser, Limit, Offset, require
from cloud.auth import Role
from cloud.db import edge_status_store
from cloud.settings import CloudSettings

router = APIRouter()


@router.get("/health")
def health(request: Request, response: Response) -> dict[str, Any]:
    settings: CloudSettings = request.app.state.settings
    database: dict[str, Any] = {"up": False}
    workers: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    try:
        with request.app.state.pool.connection(timeout=3) as conn:
            conn.row_factory = dict_row
            database = conn.execute(
                """SELECT true AS up, current_setting('server_version') AS version,
                          (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')
                              AS timescaledb"""
            ).fetchone()
            workers = conn.execute(
                # Up: alive lately and granted its subscriptions, so receiving its share.
                """SELECT worker_id, last_seen_at, messages, readings, dead_letters,
                          subscribed, broker_problem,
                          last_seen_at > now() - make_interval(secs => %s) AND subscribed AS up
                   FROM ingest_workers ORDER BY worker_id""",
                (settings.ingest_worker_stale_s,),
            ).fetchall()
            edges = edge_status_store.list_edges(conn)
    except psycopg.Error as exc:
        database = {"up": False, "error": str(exc).strip()}
    worker = request.app.state.worker
    broker_up = (
        worker.broker_connected
        if worker is not None
        else broker_answers(
            settings.mqtt_host,
            settings.mqtt_port,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
        )
    )
    ingest_up = any(w["up"] for w in workers)
    healthy = bool(database.get("up")) and broker_up and ingest_up
    response.status_code = 200 if healthy else 503
    return {
        "status": "up" if healthy else "down",
        "database": database,
        "broker": {"up": broker_up, "host": settings.mqtt_host, "port": settings.mqtt_port},
        "ingest": {"up": ingest_up, "workers": workers},
        # Reported, not counted against the cloud's own health: a centre PC switched off
        # for the night is not the cloud being down.
        "edges": {
            "attention": [
                {"edge_id": c.edge_id, "reason": c.reason, "since": c.since}
                for c in edge_status_store.concerns(
                    edges,
                    now=datetime.now(UTC),
                    offline_after=timedelta(minutes=settings.edge_offline_warn_minutes),
                )
            ]
        },
    }


@router.get("/api/v1/dead-letters")
def list_dead_letters(
    conn: Conn, user: CurrentUser, limit: Limit = 50, offset: Offset = 0, code: str | None = None
) -> dict[str, Any]:
    require(user, Role.ADMIN)
    where = "code = %(code)s" if code else "true"
    params = {"code": code, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"""SELECT dead_letter_id, received_at, edge_id, topic, code, reason, reading_id,
                   item_index, payload, replayed_at, replays, repeats, last_repeat_at
            FROM dead_letters WHERE {where}
            ORDER BY dead_letter_id DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    for row in rows:
        # Raw bytes as received; shown as text so support staff can read them.
        row["payload"] = bytes(row["payload"]).decode("utf-8", errors="backslashreplace")
    total = conn.execute(f"SELECT count(*) AS n FROM dead_letters WHERE {where}", params).fetchone()
    return {"items": rows, "total": total["n"], "limit": limit, "offset": offset}


class EdgeRegistration(BaseModel):
    edge_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    mode: Literal["centre", "home"]
    label: str | None = Field(default=None, max_length=128)


@router.post("/api/v1/edges", status_code=201)
def register_edge(conn: Conn, user: CurrentUser, edge: EdgeRegistration) -> dict[str, Any]:
    require(user, Role.ADMIN)
    row = conn.execute(
        """INSERT INTO edges (edge_id, mode, label) VALUES (%s, %s, %s)
           ON CONFLICT (edge_id) DO NOTHING
           RETURNING edge_id, mode, label, created_at""",
        (edge.edge_id, edge.mode, edge.label),
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=409, detail=f"edge {edge.edge_id!r} already exists")
    return row


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text format: this process's ingest worker."""
    worker = request.app.state.worker
    body = generate_latest(worker.metrics.registry) if worker is not None else b""
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
