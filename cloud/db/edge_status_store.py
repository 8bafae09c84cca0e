"""The latest `EdgeStatus` of each edge (migration 0013) and the fleet view built on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from protocols.messages import EdgeState, EdgeStatus


def record_status(conn: psycopg.Connection, status: EdgeStatus, received_at: datetime) -> None:
    """Keep `status` as the edge's latest; `state_since` moves only on a change of state.

    A last will carries no time: the cloud's receive time stands in for when it went offline.
    """
    conn.execute(
        """INSERT INTO edge_status (edge_id, state, state_since, status_at, received_at,
                                    agent_version, outbox_pending, outbox_oldest_age_s,
                                    outbox_capacity, outbox_level, devices)
           VALUES (%(edge_id)s, %(state)s, %(since)s, %(at)s, %(received_at)s,
                   %(agent_version)s, %(pending)s, %(oldest)s, %(capacity)s, %(level)s,
                   %(devices)s)
           ON CONFLICT (edge_id) DO UPDATE SET
               state_since = CASE WHEN edge_status.state = EXCLUDED.state
                                  THEN edge_status.state_since ELSE EXCLUDED.state_since END,
               state = EXCLUDED.state,
               status_at = COALESCE(EXCLUDED.status_at, edge_status.status_at),
               received_at = EXCLUDED.received_at,
               agent_version = COALESCE(EXCLUDED.agent_version, edge_status.agent_version),
               outbox_pending = COALESCE(EXCLUDED.outbox_pending, edge_status.outbox_pending),
               outbox_oldest_age_s = CASE WHEN EXCLUDED.outbox_pending IS NULL
                                          THEN edge_status.outbox_oldest_age_s
                                          ELSE EXCLUDED.outbox_oldest_age_s END,
               outbox_capacity = COALESCE(EXCLUDED.outbox_capacity, edge_status.outbox_capacity),
               outbox_level = COALESCE(EXCLUDED.outbox_level, edge_status.outbox_level),
               devices = CASE WHEN EXCLUDED.state = 'offline' AND EXCLUDED.status_at IS NULL
                              THEN edge_status.devices ELSE EXCLUDED.devices END""",
        {
            "edge_id": status.edge_id,
            "state": status.state.value,
            "since": status.at or received_at,
            "at": status.at,
            "received_at": received_at,
            "agent_version": status.agent_version,
            "pending": status.outbox_pending,
            "oldest": status.outbox_oldest_age_s,
            "capacity": status.outbox_capacity,
            "level": status.outbox_level,
            "devices": Jsonb([d.model_dump(mode="json") for d in status.devices]),
        },
    )


@dataclass(frozen=True)
class EdgeConcern:
    edge_id: str
    reason: str
    """`offline` or `outbox_<level>`."""
    since: datetime | None


def concerns(
    edges: list[dict[str, Any]], *, now: datetime, offline_after: timedelta
) -> list[EdgeConcern]:
    """Edges someone should look at: offline too long, or an outbox filling up."""
    found = []
    for edge in edges:
        if edge["disabled_at"] is not None:
            continue
        if edge["state"] == EdgeState.OFFLINE and edge["state_since"] <= now - offline_after:
            found.append(EdgeConcern(edge["edge_id"], "offline", edge["state_since"]))
        if edge["outbox_level"] not in (None, "ok"):
            found.append(
                EdgeConcern(edge["edge_id"], f"outbox_{edge['outbox_level']}", edge["status_at"])
            )
    return found


def list_edges(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every edge provisioned or heard from, with its latest status (None where never heard)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT COALESCE(e.edge_id, s.edge_id) AS edge_id, e.mode, e.label,
                      e.disabled_at, s.state, s.state_since, s.status_at, s.received_at,
                      s.agent_version, s.outbox_pending, s.outbox_oldest_age_s,
                      s.outbox_capacity, s.outbox_level, COALESCE(s.devices, '[]') AS devices
               FROM edges e FULL JOIN edge_status s ON s.edge_id = e.edge_id
               ORDER BY 1"""
        ).fetchall()
