"""Unassigned centre readings: listing them, and giving a measurement to its patient.

A centre reading taken with no patient session arrives with `patient_id` NULL and is
stored like any other, but ingest keeps it out of the daily rollups, the latest values and
the alert rules (they all need a patient). `assign_measurement` is the one way out, used by
the API (`POST /api/v1/measurements/{id}/assignment`) and by an edge's
`MeasurementAssignment` message alike: in one transaction it sets the patient on every
reading of the measurement, adds them to the rollups and latest values, runs the alert
rules on them exactly as ingest would have, records the assignment and audits it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from cloud.alerts.rules import SESSION_WINDOW, evaluate
from cloud.auth import User
from cloud.db import care_store, ingest_store
from cloud.db.edge_requests import decode_from_edge
from protocols.messages import AssignmentResult, AssignmentStatus, MeasurementAssignment

Via = Literal["api", "edge"]


@dataclass(frozen=True)
class AssignmentOutcome:
    status: AssignmentStatus
    measurement_id: uuid.UUID
    patient_id: str | None
    reading_ids: list[uuid.UUID] = field(default_factory=list)
    reason: str | None = None


def list_unassigned(
    conn: psycopg.Connection,
    *,
    edge_id: str | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Unassigned measurements, newest received first, `limit` per page."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT measurement_id, edge_id, device_kind, device_model, device_serial,
                      max(time) AS measured_at, max(received_at) AS received_at,
                      json_agg(json_build_object('reading_id', reading_id, 'metric', metric,
                                                 'value', value, 'unit', unit)
                               ORDER BY metric) AS values
               FROM readings
               WHERE patient_id IS NULL
                 AND (%(edge)s::text IS NULL OR edge_id = %(edge)s)
               GROUP BY measurement_id, edge_id, device_kind, device_model, device_serial
               -- On the group: a measurement's readings may differ in received_at by
               -- microseconds, and a page must not end inside one.
               HAVING %(before)s::timestamptz IS NULL OR max(received_at) < %(before)s
               ORDER BY max(received_at) DESC, measurement_id
               LIMIT %(limit)s""",
            {"edge": edge_id, "before": before, "limit": limit},
        ).fetchall()
    items = [
        {
            "measurement_id": str(row["measurement_id"]),
            "edge_id": row["edge_id"],
            "device": {
                "kind": row["device_kind"],
                "model": row["device_model"],
                "serial": row["device_serial"],
            },
            "measured_at": row["measured_at"].isoformat(),
            "received_at": row["received_at"].isoformat(),
            "values": row["values"],
        }
        for row in rows
    ]
    next_before = items[-1]["received_at"] if len(items) == limit else None
    return {"items": items, "next_before": next_before}


def assign_measurement(
    conn: psycopg.Connection,
    measurement_id: uuid.UUID,
    patient_id: str,
    *,
    via: Via,
    timezone: str,
    user: User | None = None,
    staff_id: str | None = None,
    edge_id: str | None = None,
    assignment_id: uuid.UUID | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> AssignmentOutcome:
    """Give every reading of an unassigned measurement to `patient_id` (see module doc)."""
    at = now or datetime.now(UTC)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        done = cur.execute(
            "SELECT patient_id, reading_ids FROM measurement_assignments "
            "WHERE measurement_id = %s FOR UPDATE",
            (measurement_id,),
        ).fetchone()
        if done is not None and done["patient_id"] != patient_id:
            return AssignmentOutcome(
                AssignmentStatus.CONFLICT,
                measurement_id,
                done["patient_id"],
                list(done["reading_ids"]),
                "已分配给其他患者 / already assigned",
            )
        known = cur.execute("SELECT 1 FROM patients WHERE patient_id = %s", (patient_id,))
        if known.fetchone() is None:
            return AssignmentOutcome(
                AssignmentStatus.NOT_FOUND,
                measurement_id,
                None,
                reason="未知患者 / unknown patient",
            )
        rows = cur.execute(
            """SELECT time, reading_id, measurement_id, patient_id, device_kind, device_model,
                      device_serial,
                      record_key, metric, value, unit, received_at, device_time, context, flags,
                      source, staff_id
               FROM readings WHERE measurement_id = %s AND patient_id IS NULL
               ORDER BY metric FOR UPDATE""",
            (measurement_id,),
        ).fetchall()
        if not rows and done is not None:
            # The same assignment again (a resent message, a second click): nothing to do.
            return AssignmentOutcome(
                AssignmentStatus.ASSIGNED, measurement_id, patient_id, list(done["reading_ids"])
            )
        if not rows:
            return AssignmentOutcome(
                AssignmentStatus.NOT_FOUND,
                measurement_id,
                None,
                reason="未找到该待分配测量 / no unassigned measurement with this id is stored",
            )
        readings = [
            ingest_store.stored_reading(row).model_copy(
                update={"patient_id": patient_id, "staff_id": row["staff_id"] or staff_id}
            )
            for row in rows
        ]
        # Read before the update, so these readings do not come back as their own history.
        history = ingest_store.recent_blood_pressure(conn, readings, SESSION_WINDOW)
        cur.execute(_ASSIGN, {"p": patient_id, "m": measurement_id, "s": staff_id, "tz": timezone})
        # Readings of the measurement that came in a later batch than the first assignment
        # join it; the row then lists them all.
        reading_ids = [*(done["reading_ids"] if done else ()), *(r.reading_id for r in readings)]
        cur.execute(
            """INSERT INTO measurement_assignments (measurement_id, patient_id, reading_ids, via,
                   assigned_by, staff_id, edge_id, assignment_id, note, assigned_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (measurement_id) DO UPDATE SET reading_ids = EXCLUDED.reading_ids""",
            (
                measurement_id,
                patient_id,
                reading_ids,
                via,
                user.user_id if user else None,
                staff_id,
                edge_id,
                assignment_id,
                note,
                at,
            ),
        )
        profiles = ingest_store.patient_profiles(conn, [patient_id])
        candidates = evaluate(readings, history=history, profiles=profiles)
        ingest_store.queue_for_trends(conn, [patient_id])
        ingest_store.upsert_alerts(conn, candidates, at, timezone)
        care_store.audit(
            conn,
            user,
            "assign_measurement",
            patient_id,
            measurement_id=str(measurement_id),
            via=via,
            edge_id=edge_id,
            staff_id=staff_id,
            note=note,
        )
    return AssignmentOutcome(AssignmentStatus.ASSIGNED, measurement_id, patient_id, reading_ids)


# Ingest's own rollup and latest-value upserts, over the readings this assignment gives
# a patient.
_ASSIGN = f"""
WITH ins AS (
    UPDATE readings SET patient_id = %(p)s, staff_id = coalesce(staff_id, %(s)s)
    WHERE measurement_id = %(m)s AND patient_id IS NULL
    RETURNING reading_id, patient_id, metric, time, value, source
), {ingest_store.ROLLUPS_OF_INS}
SELECT reading_id FROM ins
"""


def apply_edge_assignment(
    conn: psycopg.Connection, topic: str, payload: bytes, timezone: str
) -> tuple[str, AssignmentResult] | None:
    """An edge's `MeasurementAssignment` applied; the answer to publish to that edge.

    None when the message is unusable (unreadable, another edge's, unknown edge): it is
    kept as a dead letter with its reason, as every bad input is."""
    decoded = decode_from_edge(conn, topic, payload, MeasurementAssignment)
    if decoded is None:
        return None
    edge_id, message = decoded
    outcome = assign_measurement(
        conn,
        message.measurement_id,
        message.patient_id,
        via="edge",
        timezone=timezone,
        staff_id=message.staff_id,
        edge_id=edge_id,
        assignment_id=message.assignment_id,
        note=message.note,
    )
    result = AssignmentResult(
        assignment_id=message.assignment_id,
        measurement_id=message.measurement_id,
        status=outcome.status,
        patient_id=outcome.patient_id,
        reading_ids=outcome.reading_ids,
        reason=outcome.reason,
    )
    return edge_id, result


__all__ = [
    "AssignmentOutcome",
    "apply_edge_assignment",
    "assign_measurement",
    "list_unassigned",
]
