"""The agent's own state beside the outbox: devices, sessions, unassigned readings.

Tables in the outbox's SQLite file (WAL, synchronous=FULL; `attach` to the outbox's
connection, as `edge_agent.downlink` does), which the running agent and the CLI (`pair`,
`session open`, `assign`, ...) share: what staff do on the station is on disk before the
command returns, and the agent sees it on its next look. Tables:

- `devices`: every device heard advertising, and whether staff paired it; per paired device
  its identity (DIS), last stored record sequence number, clock offset and last error.
- `sessions`: centre patient sessions, kept after they end so late downloads of records
  measured during one are still attributed to it.
- `members`, `member_choice`: the home household and the member chosen for a measurement.
- `unassigned`: centre measurements with no patient, and the staff's assignment of each
  until the cloud confirms it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from edge_agent.attribution import MemberChoice, PatientSession
from edge_agent.sqlite_calls import fetch_all, fetch_one, run, run_many
from protocols.reading import Reading


def _ts(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("state times carry a time zone")
    return moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, slots=True)
class KnownDevice:
    address: str
    name: str | None
    catalogue_id: str | None
    kind: str | None
    connectable: bool
    rssi: int | None
    last_seen_at: datetime
    paired_at: datetime | None
    serial: str | None
    model: str | None
    manufacturer: str | None
    last_connected_at: datetime | None
    last_sequence: int | None
    clock_offset_s: float | None
    battery_percent: int | None
    failures: int
    last_error_code: str | None
    last_error: str | None
    retry_at: datetime | None
    bond: bool = False
    """Connect with BLE pairing (bonding, encryption): devices that refuse otherwise."""
    clock_skew_s: float | None = None
    """The last offset found beyond the tolerance (later sessions, after the agent set the
    clock, read about 0 in `clock_offset_s`), and when."""
    clock_skew_at: datetime | None = None

    @property
    def paired(self) -> bool:
        return self.paired_at is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "catalogue_id": self.catalogue_id,
            "kind": self.kind,
            "connectable": self.connectable,
            "paired": self.paired,
            "serial": self.serial,
            "model": self.model,
            "last_seen_at": _iso(self.last_seen_at),
            "last_connected_at": _iso(self.last_connected_at),
            "last_sequence": self.last_sequence,
            "clock_offset_s": self.clock_offset_s,
            "battery_percent": self.battery_percent,
            "failures": self.failures,
            "last_error_code": self.last_error_code,
            "last_error": self.last_error,
            "retry_at": _iso(self.retry_at),
            "bond": self.bond,
            "clock_skew_s": self.clock_skew_s,
            "clock_skew_at": _iso(self.clock_skew_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class UnassignedMeasurement:
    measurement_id: uuid.UUID
    device_key: str
    device: dict[str, Any]
    measured_at: datetime
    received_at: datetime
    reason: str
    reading_ids: list[str]
    values: list[dict[str, Any]]
    state: str
    assignment_id: str | None
    patient_id: str | None
    staff_id: str | None
    note: str | None
    result_reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "measurement_id": str(self.measurement_id),
            "device_key": self.device_key,
            "device": self.device,
            "measured_at": self.measured_at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "reason": self.reason,
            "values": self.values,
            "state": self.state,
            "patient_id": self.patient_id,
            "staff_id": self.staff_id,
            "result_reason": self.result_reason,
        }


_DEVICE_FIELDS = tuple(f.name for f in fields(KnownDevice))
_DEVICE_COLUMNS = ", ".join(_DEVICE_FIELDS)
_DEVICE_TIMES = ("last_seen_at", "paired_at", "last_connected_at", "retry_at", "clock_skew_at")
_SESSION_COLUMNS = (
    "session_id, device_key, patient_id, staff_id, opened_at, last_activity_at, timeout_s, "
    "closed_at"
)
_UNASSIGNED_COLUMNS = (
    "measurement_id, device_key, device, measured_at, received_at, reason, reading_ids, "
    "summary, state, assignment_id, patient_id, staff_id, note, result_reason"
)
_UPDATABLE = frozenset(
    {
        "serial",
        "model",
        "manufacturer",
        "last_connected_at",
        "clock_offset_s",
        "clock_checked_at",
        "battery_percent",
        "failures",
        "last_error_code",
        "last_error",
        "retry_at",
        "clock_skew_s",
        "clock_skew_at",
    }
)
SEQUENCE_MODULUS = 65536


def sequence_is_newer(candidate: int, stored: int | None) -> bool:
    """Whether `candidate` comes after `stored`, with 16-bit wrap-around (GLS numbers wrap
    at 65535): a number more than half the range below the stored one has wrapped."""
    if stored is None:
        return True
    ahead = (candidate - stored) % SEQUENCE_MODULUS
    return 0 < ahead < SEQUENCE_MODULUS // 2


class LocalState:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def attach(cls, db: aiosqlite.Connection) -> LocalState:
        """The state in the database of `db`: the outbox's connection, whose `open` brought
        the file's schema up to date (`edge_agent.local_schema`)."""
        return cls(db)

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        changed = await run(self.db, sql, params)
        await self.db.commit()
        return changed

    # -- devices -----------------------------------------------------------------------

    async def device_seen(
        self,
        address: str,
        *,
        name: str | None,
        catalogue_id: str | None,
        kind: str | None,
        connectable: bool,
        rssi: int | None,
        now: datetime,
    ) -> None:
        at = _ts(now)
        await self._write(
            """INSERT INTO devices (address, name, catalogue_id, kind, connectable, rssi,
                                    first_seen_at, last_seen_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (address) DO UPDATE SET
                   name = coalesce(excluded.name, name), rssi = excluded.rssi,
                   last_seen_at = excluded.last_seen_at,
                   catalogue_id = coalesce(catalogue_id, excluded.catalogue_id),
                   kind = coalesce(kind, excluded.kind)""",
            (address.upper(), name, catalogue_id, kind, int(connectable), rssi, at, at),
        )

    async def pair(
        self,
        address: str,
        *,
        catalogue_id: str,
        kind: str,
        now: datetime,
        name: str | None = None,
        bond: bool = False,
    ) -> KnownDevice:
        """Accept a device: from now on the agent connects to it (and only to such)."""
        at = _ts(now)
        await self._write(
            """INSERT INTO devices (address, name, catalogue_id, kind, first_seen_at,
                                    last_seen_at, paired_at, bond)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (address) DO UPDATE SET paired_at = excluded.paired_at,
                   catalogue_id = excluded.catalogue_id, kind = excluded.kind,
                   name = coalesce(excluded.name, name), bond = excluded.bond,
                   failures = 0, retry_at = NULL""",
            (address.upper(), name, catalogue_id, kind, at, at, at, int(bond)),
        )
        found = await self.device(address)
        assert found is not None  # just written
        return found

    async def unpair(self, address: str) -> bool:
        """Stop using a device; its history (sequence, sessions) is kept for a re-pair."""
        return (
            await self._write(
                "UPDATE devices SET paired_at = NULL WHERE address = ? AND paired_at IS NOT NULL",
                (address.upper(),),
            )
            > 0
        )

    async def devices(self, *, paired_only: bool = False) -> list[KnownDevice]:
        where = "WHERE paired_at IS NOT NULL" if paired_only else ""
        rows = await fetch_all(
            self.db, f"SELECT {_DEVICE_COLUMNS} FROM devices {where} ORDER BY address"
        )
        return [_device(row) for row in rows]

    async def device(self, address: str) -> KnownDevice | None:
        row = await fetch_one(
            self.db, f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE address = ?", (address.upper(),)
        )
        return None if row is None else _device(row)

    async def update_device(self, address: str, **fields: object) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not device fields: {sorted(unknown)}")
        values = [_ts(v) if isinstance(v, datetime) else v for v in fields.values()]
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self._write(
            f"UPDATE devices SET {assignments} WHERE address = ?", (*values, address.upper())
        )

    async def store_sequence(self, address: str, sequence: int) -> None:
        """Remember the device's newest stored record; never moves backwards (but wraps)."""
        current = await self.device(address)
        if current is not None and not sequence_is_newer(sequence, current.last_sequence):
            return
        await self._write(
            "UPDATE devices SET last_sequence = ? WHERE address = ?", (sequence, address.upper())
        )

    # -- centre sessions ---------------------------------------------------------------

    async def open_session(
        self,
        device_key: str,
        patient_id: str,
        *,
        staff_id: str | None,
        now: datetime,
        lasts: timedelta,
    ) -> PatientSession:
        """Open a patient session on a device, ending the one open there."""
        at = _ts(now)
        session = PatientSession(
            session_id=uuid.uuid4().hex,
            device_key=device_key.upper(),
            patient_id=patient_id,
            staff_id=staff_id,
            opened_at=now,
            last_activity_at=now,
            timeout=lasts,
        )
        await run(
            self.db,
            "UPDATE sessions SET closed_at = min(?, last_activity_at + timeout_s) "
            "WHERE device_key = ? AND closed_at IS NULL",
            (at, session.device_key),
        )
        await run(
            self.db,
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                session.session_id,
                session.device_key,
                patient_id,
                staff_id,
                at,
                at,
                lasts.total_seconds(),
            ),
        )
        await self.db.commit()
        return session

    async def close_session(
        self, *, now: datetime, device_key: str | None = None, session_id: str | None = None
    ) -> int:
        """End the open session on a device (or one by id); returns how many ended."""
        if (device_key is None) == (session_id is None):
            raise ValueError("name a device or a session")
        column, value = (
            ("device_key", device_key.upper()) if device_key else ("session_id", session_id)
        )
        return await self._write(
            "UPDATE sessions SET closed_at = min(?, last_activity_at + timeout_s) "
            f"WHERE {column} = ? AND closed_at IS NULL",
            (_ts(now), value),
        )

    async def sessions(
        self, *, device_key: str | None = None, since: datetime | None = None
    ) -> list[PatientSession]:
        """Sessions (open and ended) on a device, or all, that were still open at `since`."""
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE 1 = 1"
        params: list[Any] = []
        if device_key is not None:
            sql += " AND device_key = ?"
            params.append(device_key.upper())
        if since is not None:
            sql += " AND coalesce(closed_at, last_activity_at + timeout_s) >= ?"
            params.append(_ts(since))
        rows = await fetch_all(self.db, sql + " ORDER BY opened_at", params)
        return [_session(row) for row in rows]

    async def touch_session(self, session: PatientSession, at: datetime) -> None:
        touched = session.touched(at)
        if touched is session:
            return
        await self._write(
            "UPDATE sessions SET last_activity_at = max(last_activity_at, ?) "
            "WHERE session_id = ? AND closed_at IS NULL",
            (_ts(touched.last_activity_at), session.session_id),
        )

    # -- home household ----------------------------------------------------------------

    async def add_member(self, patient_id: str, display_name: str) -> None:
        await self._write(
            "INSERT INTO members (patient_id, display_name) VALUES (?, ?) "
            "ON CONFLICT (patient_id) DO UPDATE SET display_name = excluded.display_name",
            (patient_id, display_name),
        )

    async def remove_member(self, patient_id: str) -> bool:
        return await self._write("DELETE FROM members WHERE patient_id = ?", (patient_id,)) > 0

    async def members(self) -> dict[str, str]:
        rows = await fetch_all(self.db, "SELECT patient_id, display_name FROM members")
        return {row[0]: row[1] for row in rows}

    async def choose_member(self, patient_id: str, *, now: datetime, lasts: timedelta) -> None:
        if patient_id not in await self.members():
            raise KeyError(f"{patient_id} 不是本家庭成员 / is not a member of this household")
        await self._write(
            "INSERT INTO member_choice (one, patient_id, chosen_at, expires_at) "
            "VALUES (1, ?, ?, ?) ON CONFLICT (one) DO UPDATE SET patient_id = excluded.patient_id,"
            " chosen_at = excluded.chosen_at, expires_at = excluded.expires_at",
            (patient_id, _ts(now), _ts(now + lasts)),
        )

    async def member_choice(self) -> MemberChoice | None:
        row = await fetch_one(
            self.db, "SELECT patient_id, chosen_at, expires_at FROM member_choice WHERE one = 1"
        )
        if row is None:
            return None
        return MemberChoice(
            row[0], datetime.fromtimestamp(row[1], UTC), datetime.fromtimestamp(row[2], UTC)
        )

    # -- unassigned centre readings ----------------------------------------------------

    async def add_unassigned(
        self, device_key: str, readings: Sequence[Reading], reason: str
    ) -> int:
        """Keep centre readings that have no patient, one row per measurement."""
        rows = []
        for measurement in _by_measurement(readings):
            first = measurement[0]
            values = [
                {
                    "reading_id": str(r.reading_id),
                    "metric": r.metric.value,
                    "value": r.value,
                    "unit": r.unit,
                }
                for r in measurement
            ]
            device = {
                "kind": first.device.kind.value,
                "model": first.device.model,
                "serial": first.device.serial,
            }
            rows.append(
                (
                    str(first.measurement_id),
                    device_key.upper(),
                    json.dumps(device),
                    _ts(first.measured_at),
                    _ts(first.received_at),
                    reason,
                    json.dumps([v["reading_id"] for v in values]),
                    json.dumps(values, ensure_ascii=False),
                )
            )
        # rowcount, not total_changes: other tasks share this connection between awaits.
        added = await run_many(
            self.db,
            "INSERT OR IGNORE INTO unassigned (measurement_id, device_key, device, measured_at, "
            "received_at, reason, reading_ids, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        await self.db.commit()
        return max(0, added)

    async def unassigned(
        self, *, states: Iterable[str] | None = None
    ) -> list[UnassignedMeasurement]:
        sql = f"SELECT {_UNASSIGNED_COLUMNS} FROM unassigned"
        params: list[str] = []
        if states is not None:
            wanted = list(states)
            sql += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params = wanted
        rows = await fetch_all(self.db, sql + " ORDER BY received_at DESC", params)
        return [_unassigned(row) for row in rows]

    async def request_assignment(
        self,
        measurement_id: uuid.UUID,
        patient_id: str,
        *,
        staff_id: str | None,
        note: str | None,
        now: datetime,
    ) -> str:
        """Staff's decision, durable at once; the agent sends it once the readings are in
        the cloud. Returns the assignment id. KeyError for an unknown measurement,
        ValueError when it is assigned to someone else already."""
        row = await fetch_one(
            self.db,
            "SELECT state, patient_id, assignment_id FROM unassigned WHERE measurement_id = ?",
            (str(measurement_id),),
        )
        if row is None:
            raise KeyError(f"没有该待分配测量 / no unassigned measurement {measurement_id}")
        state, current, assignment_id = row
        if state in ("requested", "sent", "assigned") and current is not None:
            if current != patient_id:
                raise ValueError(
                    f"该测量已分配给 {current} / measurement {measurement_id} is already "
                    f"given to {current}"
                )
            return str(assignment_id)
        assignment_id = uuid.uuid4().hex
        await self._write(
            "UPDATE unassigned SET state = 'requested', assignment_id = ?, patient_id = ?, "
            "staff_id = ?, note = ?, requested_at = ?, sent_at = NULL, result_reason = NULL "
            "WHERE measurement_id = ?",
            (assignment_id, patient_id, staff_id, note, _ts(now), str(measurement_id)),
        )
        return assignment_id

    async def mark_assignment_sent(self, assignment_id: str, now: datetime) -> None:
        await self._write(
            "UPDATE unassigned SET state = 'sent', sent_at = ? "
            "WHERE assignment_id = ? AND state IN ('requested', 'sent')",
            (_ts(now), assignment_id),
        )

    async def apply_assignment_result(
        self, assignment_id: str, status: str, reason: str | None
    ) -> bool:
        return (
            await self._write(
                "UPDATE unassigned SET state = ?, result_reason = ? WHERE assignment_id = ?",
                (status, reason, assignment_id),
            )
            > 0
        )

    async def counts(self) -> dict[str, int]:
        rows = await fetch_all(self.db, "SELECT state, count(*) FROM unassigned GROUP BY state")
        return {row[0]: row[1] for row in rows}


def _by_measurement(readings: Sequence[Reading]) -> list[list[Reading]]:
    groups: dict[uuid.UUID, list[Reading]] = {}
    for reading in readings:
        groups.setdefault(reading.measurement_id, []).append(reading)
    return list(groups.values())


def _device(row: Sequence[Any]) -> KnownDevice:
    values = dict(zip(_DEVICE_FIELDS, row, strict=True))
    for name in _DEVICE_TIMES:
        values[name] = _dt(values[name])
    values["connectable"] = bool(values["connectable"])
    values["bond"] = bool(values["bond"])
    return KnownDevice(**values)


def _session(row: Sequence[Any]) -> PatientSession:
    session_id, device_key, patient_id, staff_id, opened, activity, timeout_s, closed = row
    return PatientSession(
        session_id=session_id,
        device_key=device_key,
        patient_id=patient_id,
        staff_id=staff_id,
        opened_at=datetime.fromtimestamp(opened, UTC),
        last_activity_at=datetime.fromtimestamp(activity, UTC),
        timeout=timedelta(seconds=timeout_s),
        closed_at=_dt(closed),
    )


def _unassigned(row: Sequence[Any]) -> UnassignedMeasurement:
    (
        measurement_id,
        device_key,
        device,
        measured,
        received,
        reason,
        reading_ids,
        summary,
        state,
        assignment_id,
        patient_id,
        staff_id,
        note,
        result_reason,
    ) = row
    return UnassignedMeasurement(
        measurement_id=uuid.UUID(measurement_id),
        device_key=device_key,
        device=json.loads(device),
        measured_at=datetime.fromtimestamp(measured, UTC),
        received_at=datetime.fromtimestamp(received, UTC),
        reason=reason,
        reading_ids=json.loads(reading_ids),
        values=json.loads(summary),
        state=state,
        assignment_id=assignment_id,
        patient_id=patient_id,
        staff_id=staff_id,
        note=note,
        result_reason=result_reason,
    )
