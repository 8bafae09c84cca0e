"""Loading an edge's configuration inputs, and publishing it once per change.

`publish_config` holds the edge's `edge_configs` row locked while it builds, publishes and
records, so two cloud processes never interleave one edge's configurations, and a change
committed meanwhile marks the row stale again (the migration's triggers wait for the lock).
The configuration goes out only when its content differs from the last one published (or
when forced); `issued_at` always moves forward (`next_issued_at`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from cloud.db.edge_errors import EdgeUnknown
from cloud.privacy import mask_name
from cloud.programmes.questionnaires import shipped_questionnaires
from cloud.provisioning.edge_config import (
    Built,
    CentreInputs,
    Device,
    HomeInputs,
    Plan,
    RevisitTask,
    build_edge_config,
    next_issued_at,
)
from protocols.errors import CareBridgeError
from protocols.messages import EdgeConfig

log = logging.getLogger("carebridge.edge_config")

Publish = Callable[[EdgeConfig], None]
"""Sends one configuration retained to its edge; raises when the broker did not take it."""

SWEEP_BATCH = 200


@dataclass(frozen=True)
class Outcome:
    edge_id: str
    published: bool
    """False when the content was unchanged (nothing sent) or the edge is disabled."""
    issued_at: datetime | None
    content_hash: str | None


def _home_inputs(cur: psycopg.Cursor[Any], patient_id: str, timezone: str) -> HomeInputs:
    plans = cur.execute(
        "SELECT metric, times_per_day, started_at, ends_at FROM measurement_plans "
        "WHERE patient_id = %s",
        (patient_id,),
    ).fetchall()
    revisits = cur.execute(
        """SELECT t.due_at, coalesce((t.detail->>'window_days')::int, 7) AS window_days,
                  t.title,
                  EXISTS (SELECT 1 FROM revisits r WHERE r.enrolment_id = t.enrolment_id
                          AND abs(r.visited_on - (t.due_at AT TIME ZONE %(tz)s)::date)
                              <= coalesce((t.detail->>'window_days')::int, 7)) AS visited
           FROM programme_tasks t JOIN enrolments e USING (enrolment_id)
           WHERE t.patient_id = %(p)s AND e.status = 'active'
             AND t.action = 'revisit_reminder' AND t.status <> 'cancelled'""",
        {"p": patient_id, "tz": timezone},
    ).fetchall()
    form_ids = cur.execute(
        """SELECT DISTINCT a->>'questionnaire' AS questionnaire_id
           FROM enrolments e
           JOIN pathway_templates p
             ON p.pathway_id = e.pathway_id AND p.version = e.pathway_version
           CROSS JOIN LATERAL jsonb_array_elements(p.definition->'phases') ph
           CROSS JOIN LATERAL jsonb_array_elements(ph->'actions') a
           WHERE e.patient_id = %s AND e.status = 'active' AND a ? 'questionnaire'""",
        (patient_id,),
    ).fetchall()
    devices = cur.execute(
        """SELECT kind, serial, patient_id FROM device_bindings
           WHERE patient_id = %s AND upper_inf(during) AND lower(during) <= now()""",
        (patient_id,),
    ).fetchall()
    shipped = shipped_questionnaires()
    forms = []
    for row in form_ids:
        form = shipped.get(row["questionnaire_id"])
        if form is None:
            log.warning("pathway names an unknown questionnaire", extra=row)
        else:
            forms.append(form)
    return HomeInputs(
        patient_id=patient_id,
        plans=[Plan(**row) for row in plans],
        revisits=[RevisitTask(**row) for row in revisits],
        questionnaires=forms,
        devices=[Device(**row) for row in devices],
    )


def _centre_inputs(cur: psycopg.Cursor[Any], edge_id: str) -> CentreInputs:
    devices = cur.execute(
        """SELECT kind, serial FROM devices
           WHERE owner_type = 'centre' AND owner_id = %s AND retired_at IS NULL""",
        (edge_id,),
    ).fetchall()
    # The centre's patients: those of the care teams of the staff member who issued the
    # centre's enrolment code (docs/edge_uplink.md).
    patients = cur.execute(
        """SELECT p.patient_id, p.name FROM patients p
           WHERE p.team_id IN (SELECT m.team_id FROM enrolment_codes c
                               JOIN team_members m ON m.user_id = c.issued_by
                               WHERE c.edge_id = %s)""",
        (edge_id,),
    ).fetchall()
    return CentreInputs(
        devices=[Device(row["kind"], row["serial"]) for row in devices],
        patients=[(row["patient_id"], mask_name(row["name"])) for row in patients],
    )


def build_for_edge(
    conn: psycopg.Connection, edge_id: str, *, timezone: str, now: datetime, issued_at: datetime
) -> Built | None:
    """The configuration `edge_id` should hold now; None for a disabled edge."""
    with conn.cursor(row_factory=dict_row) as cur:
        edge = cur.execute(
            "SELECT mode, patient_id, disabled_at FROM edges WHERE edge_id = %s", (edge_id,)
        ).fetchone()
        if edge is None:
            raise EdgeUnknown(edge_id)
        if edge["disabled_at"] is not None:
            return None
        inputs: HomeInputs | CentreInputs
        if edge["mode"] == "home" and edge["patient_id"] is not None:
            inputs = _home_inputs(cur, edge["patient_id"], timezone)
        elif edge["mode"] == "home":
            inputs = HomeInputs(patient_id="")  # never provisioned for a patient
        else:
            inputs = _centre_inputs(cur, edge_id)
    if isinstance(inputs, HomeInputs) and not inputs.patient_id:
        return None
    return build_edge_config(edge_id, inputs, issued_at=issued_at, now=now, timezone=timezone)


def publish_config(
    conn: psycopg.Connection,
    publish: Publish,
    edge_id: str,
    *,
    timezone: str,
    now: datetime | None = None,
    force: bool = False,
) -> Outcome:
    """Build `edge_id`'s configuration and publish it if it changed (always when `force`)."""
    at = now or datetime.now(UTC)
    with conn.cursor(row_factory=tuple_row) as cur:
        if cur.execute("SELECT 1 FROM edges WHERE edge_id = %s", (edge_id,)).fetchone() is None:
            raise EdgeUnknown(edge_id)
        # The row exists before the transaction, so a change committed while we build marks
        # it stale (and waits for our lock) instead of being missed.
        cur.execute(
            "INSERT INTO edge_configs (edge_id, stale) VALUES (%s, true) ON CONFLICT DO NOTHING",
            (edge_id,),
        )
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        held = cur.execute(
            "SELECT issued_at, content_hash FROM edge_configs WHERE edge_id = %s FOR UPDATE",
            (edge_id,),
        ).fetchone()
        assert held is not None
        issued_at = next_issued_at(at, held["issued_at"])
        built = build_for_edge(conn, edge_id, timezone=timezone, now=at, issued_at=issued_at)
        if built is None:
            cur.execute(
                "UPDATE edge_configs SET stale = false, refresh_at = NULL WHERE edge_id = %s",
                (edge_id,),
            )
            return Outcome(edge_id, False, held["issued_at"], held["content_hash"])
        if not force and built.content_hash == held["content_hash"]:
            cur.execute(
                "UPDATE edge_configs SET stale = false, refresh_at = %s WHERE edge_id = %s",
                (built.refresh_at, edge_id),
            )
            return Outcome(edge_id, False, held["issued_at"], held["content_hash"])
        publish(built.config)
        cur.execute(
            """UPDATE edge_configs SET issued_at = %s, content_hash = %s, published_at = %s,
                   refresh_at = %s, stale = false
               WHERE edge_id = %s""",
            (issued_at, built.content_hash, at, built.refresh_at, edge_id),
        )
    log.info(
        "edge configuration published",
        extra={"edge_id": edge_id, "issued_at": issued_at.isoformat(), "forced": force},
    )
    return Outcome(edge_id, True, issued_at, built.content_hash)


def republish_for_patient(
    conn: psycopg.Connection, publish: Publish, patient_id: str, *, timezone: str
) -> list[Outcome]:
    """After a change to a patient's plan or enrolment: their home edges' new configuration.

    A broker failure is logged, not raised: the change itself is committed, the row stays
    stale, and the sweep publishes on its next run."""
    with conn.cursor(row_factory=tuple_row) as cur:
        edges = cur.execute(
            "SELECT edge_id FROM edges WHERE patient_id = %s AND disabled_at IS NULL "
            "AND provisioned_at IS NOT NULL",
            (patient_id,),
        ).fetchall()
    done = []
    for (edge_id,) in edges:
        try:
            done.append(publish_config(conn, publish, edge_id, timezone=timezone))
        except CareBridgeError as exc:
            log.warning(
                "edge configuration not published; the sweep retries",
                extra={"edge_id": edge_id, "reason": exc.reason},
            )
    return done


def run_config_sweep(
    conn: psycopg.Connection, publish: Publish, now: datetime, timezone: str
) -> int:
    """Publish the configurations that are stale, due for a time-driven refresh, or were
    never published; the number actually sent."""
    with conn.cursor(row_factory=tuple_row) as cur:
        candidates = cur.execute(
            """SELECT e.edge_id FROM edges e LEFT JOIN edge_configs c USING (edge_id)
               WHERE e.disabled_at IS NULL AND e.provisioned_at IS NOT NULL
                 AND (c.edge_id IS NULL OR c.stale OR c.content_hash IS NULL
                      OR c.refresh_at <= %s)
               ORDER BY e.edge_id LIMIT %s""",
            (now, SWEEP_BATCH),
        ).fetchall()
    sent = 0
    for (edge_id,) in candidates:
        try:
            sent += publish_config(conn, publish, edge_id, timezone=timezone, now=now).published
        except EdgeUnknown:
            continue  # gone from the registry since the query: nothing to send it
        except CareBridgeError as exc:
            # The broker link is down: the rest would fail alike, so wait for the next round.
            log.warning(
                "edge configuration not published; trying again next sweep",
                extra={"edge_id": edge_id, "reason": exc.reason},
            )
            break
        except ValueError:
            # Data the protocol refuses (an unknown metric in a plan): one edge's problem,
            # kept in the log; the other edges still get theirs.
            log.exception("edge configuration could not be built", extra={"edge_id": edge_id})
    return sent


__all__ = [
    "Outcome",
    "Publish",
    "build_for_edge",
    "publish_config",
    "republish_for_patient",
    "run_config_sweep",
]
