"""The hospital discharge list (出院患者名单) as CSV: parsing and row validation. Pure.

Format (docs/programmes.md): UTF-8 (a BOM from Excel is accepted), comma separated, a
header row naming the columns below in any order. A row that fails validation is returned
as a reject with its line number, a stable code and the raw text; the good rows still go in.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from cloud.programmes.errors import DischargeListInvalid

REQUIRED = (
    "patient_id",
    "name",
    "phone",
    "department",
    "discharged_on",
    "programme_id",
    "consent_notice_version",
    "consent_scope",
    "consent_channel",
    "consent_collected_at",
)
OPTIONAL = ("id_number", "paid_yuan", "consent_collected_by")
CHANNELS = frozenset({"paper", "app", "verbal_recorded"})
SCOPES = frozenset({"monitoring", "call_recording", "share_with_hospital", "app_messages"})
_PATIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PHONE = re.compile(r"^1\d{10}$")


@dataclass(frozen=True)
class DischargeRow:
    line: int
    patient_id: str
    name: str
    phone: str
    id_number: str | None
    department: str
    discharged_on: date
    programme_id: str
    consent_notice_version: str
    consent_scope: list[str]
    consent_channel: str
    consent_collected_at: datetime
    consent_collected_by: str | None
    paid_cents: int | None


@dataclass(frozen=True)
class Reject:
    line: int
    code: str
    reason: str
    raw: str


class _RowError(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _row(line: int, cells: dict[str, str]) -> DischargeRow:
    for column in REQUIRED:
        if not cells.get(column, "").strip():
            raise _RowError("missing_value", f"{column} is empty")
    value = {k: (v or "").strip() for k, v in cells.items()}
    if not _PATIENT_ID.match(value["patient_id"]):
        raise _RowError("bad_patient_id", "patient_id: letters, digits, - and _ only")
    if not _PHONE.match(value["phone"]):
        raise _RowError("bad_phone", "phone must be an 11-digit mainland mobile number")
    try:
        discharged = date.fromisoformat(value["discharged_on"])
    except ValueError as exc:
        raise _RowError("bad_date", "discharged_on must be YYYY-MM-DD") from exc
    try:
        collected = datetime.fromisoformat(value["consent_collected_at"])
    except ValueError as exc:
        raise _RowError("bad_date", "consent_collected_at must be an ISO date-time") from exc
    if collected.tzinfo is None:
        raise _RowError("bad_date", "consent_collected_at needs a UTC offset, e.g. +08:00")
    scope = [s.strip() for s in value["consent_scope"].split(";") if s.strip()]
    unknown = sorted(set(scope) - SCOPES)
    if unknown or "monitoring" not in scope:
        raise _RowError("bad_consent", f"consent_scope must include monitoring; unknown: {unknown}")
    if value["consent_channel"] not in CHANNELS:
        raise _RowError("bad_consent", f"consent_channel must be one of {sorted(CHANNELS)}")
    paid = None
    if value.get("paid_yuan"):
        try:
            paid = int(Decimal(value["paid_yuan"]) * 100)
        except InvalidOperation as exc:
            raise _RowError("bad_amount", "paid_yuan must be a number") from exc
        if paid < 0:
            raise _RowError("bad_amount", "paid_yuan cannot be negative")
    return DischargeRow(
        line=line,
        patient_id=value["patient_id"],
        name=value["name"],
        phone=value["phone"],
        id_number=value.get("id_number") or None,
        department=value["department"],
        discharged_on=discharged,
        programme_id=value["programme_id"],
        consent_notice_version=value["consent_notice_version"],
        consent_scope=scope,
        consent_channel=value["consent_channel"],
        consent_collected_at=collected,
        consent_collected_by=value.get("consent_collected_by") or None,
        paid_cents=paid,
    )


def parse(text: str) -> tuple[list[DischargeRow], list[Reject]]:
    """Rows and rejects; DischargeListInvalid when the file itself is unusable."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DischargeListInvalid(f"the header lacks columns: {missing}")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise DischargeListInvalid(f"unknown columns: {unknown}")
    reader.fieldnames = header
    rows: list[DischargeRow] = []
    rejects: list[Reject] = []
    seen: set[tuple[str, str]] = set()
    for cells in reader:
        line = reader.line_num
        raw = lines[line - 1] if line - 1 < len(lines) else ""
        if None in cells:
            rejects.append(Reject(line, "extra_cells", "more cells than header columns", raw))
            continue
        try:
            row = _row(line, cells)
        except _RowError as exc:
            rejects.append(Reject(line, exc.code, exc.reason, raw))
            continue
        if (row.patient_id, row.programme_id) in seen:
            rejects.append(
                Reject(line, "duplicate_row", "the same patient and programme again", raw)
            )
            continue
        seen.add((row.patient_id, row.programme_id))
        rows.append(row)
    return rows, rejects
