"""Registers and reports exported for the hospital."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from psycopg.rows import dict_row

from cloud.api.deps import Conn, CurrentUser, Settings, require
from cloud.auth import TEAM_SCOPED, Role
from cloud.db import care_store
from cloud.privacy import mask_name

router = APIRouter(prefix="/api/v1/reports")

REGISTER_COLUMNS = [
    ("alert_id", "编号"),
    ("patient", "患者"),
    ("patient_id", "患者ID"),
    ("finding", "危急情况"),
    ("received_at", "接收时间"),
    ("acknowledged_at", "确认时间"),
    ("responder", "处理人"),
    ("patient_contacted_at", "联系患者时间"),
    ("doctor_informed", "已通知医生"),
    ("outcome", "处理结果"),
    ("advice", "处理意见"),
    ("closed_at", "结案时间"),
]


@router.get("/critical-register")
def critical_register(
    conn: Conn,
    user: CurrentUser,
    settings: Settings,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
) -> Response:
    """The month's critical alerts as a 危急值登记本 (CSV, UTF-8 with BOM for Excel): receipt,
    acknowledgement, responder, patient contacted, doctor informed, outcome. Names masked."""
    require(user, Role.QC_SUPERVISOR, *TEAM_SCOPED)
    year, mon = (int(part) for part in month.split("-"))
    if not 1 <= mon <= 12:
        raise HTTPException(422, "month must be 01-12")
    first = date(year, mon, 1)
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    teams = None if user.role is Role.QC_SUPERVISOR else sorted(user.team_ids)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT a.alert_id, p.name, a.patient_id, a.title AS finding,
                      a.opened_at AS received_at, a.acknowledged_at,
                      (SELECT e.actor_id FROM alert_events e WHERE e.alert_id = a.alert_id
                         AND e.action = 'acknowledge' ORDER BY e.event_id LIMIT 1) AS responder,
                      (SELECT min(c.at) FROM contact_records c WHERE c.alert_id = a.alert_id
                         AND c.outcome = 'reached') AS patient_contacted_at,
                      (a.outcome_code = 'doctor_informed' OR EXISTS (
                         SELECT 1 FROM alert_events e WHERE e.alert_id = a.alert_id
                           AND e.detail->>'target' = 'doctor')) AS doctor_informed,
                      a.outcome_code AS outcome,
                      (SELECT e.note FROM alert_events e WHERE e.alert_id = a.alert_id
                         AND e.to_status IN ('resolved', 'dismissed')
                         ORDER BY e.event_id DESC LIMIT 1) AS advice,
                      a.closed_at
               FROM alerts a LEFT JOIN patients p USING (patient_id)
               WHERE a.tier = 'critical' AND a.kind = 'clinical'
                 AND (a.opened_at AT TIME ZONE %(tz)s)::date >= %(first)s
                 AND (a.opened_at AT TIME ZONE %(tz)s)::date < %(after)s
                 AND (%(teams)s::text[] IS NULL OR a.team_id = ANY(%(teams)s))
               ORDER BY a.opened_at""",
            {"tz": settings.timezone, "first": first, "after": after, "teams": teams},
        ).fetchall()
    care_store.audit(conn, user, "export_critical_register", None, month=month, rows=len(rows))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _key, label in REGISTER_COLUMNS])
    for row in rows:
        row["patient"] = mask_name(row.pop("name") or "")
        row["doctor_informed"] = "是" if row["doctor_informed"] else "否"
        writer.writerow(["" if row[key] is None else row[key] for key, _label in REGISTER_COLUMNS])
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="critical-register-{month}.csv"'},
    )
