"""What the cloud sends down: the edge's configuration and patients' notifications.

Both are kept in the outbox's SQLite file, so a centre that restarts while offline still
knows its device bindings, patient list and measurement plan, and the app still shows a
notification received before the restart. The device side and the app read them here
(`config`, `notifications`) or subscribe with `on_config` / `on_notification`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import aiosqlite

from edge_agent.sqlite_calls import fetch_all, fetch_one, run
from protocols.errors import CareBridgeError
from protocols.messages import EdgeConfig, PatientNotification, decode, encode

log = logging.getLogger("carebridge.edge.downlink")

def newer_config(current: EdgeConfig | None, incoming: EdgeConfig, edge_id: str) -> bool:
    """Whether `incoming` should replace `current`: it must be ours and not older (a
    retained copy delivered again after a reconnect must not undo a newer one)."""
    if incoming.edge_id != edge_id:
        return False
    return current is None or incoming.issued_at >= current.issued_at


class Downlink:
    def __init__(self, edge_id: str) -> None:
        self._conn: aiosqlite.Connection | None = None
        self.edge_id = edge_id
        self.config: EdgeConfig | None = None
        self.on_config: list[Callable[[EdgeConfig], None]] = []
        self.on_notification: list[Callable[[PatientNotification], None]] = []

    @property
    def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("downlink is not open")
        return self._conn

    async def open(self, db: aiosqlite.Connection) -> None:
        """Load what was kept; `db` is the outbox's connection (one SQLite file, its schema
        brought up to date when the outbox opened)."""
        self._conn = db
        row = await fetch_one(self._db, "SELECT body FROM edge_config WHERE slot = 1")
        if row is not None:
            try:
                self.config = decode(row[0].encode(), EdgeConfig)
            except CareBridgeError as exc:
                log.error("stored configuration unreadable", extra={"reason": exc.reason})

    async def apply_config(self, config: EdgeConfig) -> bool:
        """Keep and announce a configuration; False when it was not ours or was older."""
        if not newer_config(self.config, config, self.edge_id):
            log.warning(
                "configuration ignored",
                extra={"for_edge": config.edge_id, "issued_at": str(config.issued_at)},
            )
            return False
        await run(
            self._db,
            "INSERT OR REPLACE INTO edge_config (slot, issued_at, body, received_at) "
            "VALUES (1, ?, ?, ?)",
            (config.issued_at.isoformat(), encode(config).decode(), time.time()),
        )
        await self._db.commit()
        self.config = config
        log.info(
            "configuration received",
            extra={
                "issued_at": str(config.issued_at),
                "devices": len(config.device_bindings),
                "patients": len(config.centre_patients),
            },
        )
        for callback in self.on_config:
            callback(config)
        return True

    async def add_notification(self, note: PatientNotification) -> bool:
        """Keep a notification for the app; False when it was a redelivery already kept."""
        added = await run(
            self._db,
            "INSERT OR IGNORE INTO notifications "
            "(notification_id, patient_id, created_at, body, received_at) VALUES (?, ?, ?, ?, ?)",
            (
                str(note.notification_id),
                note.patient_id,
                note.created_at.isoformat(),
                encode(note).decode(),
                time.time(),
            ),
        )
        await self._db.commit()
        if added < 1:
            return False
        log.info("patient notification received", extra={"patient_id": note.patient_id})
        for callback in self.on_notification:
            callback(note)
        return True

    async def notifications(
        self, patient_id: str | None = None, *, unread_only: bool = False
    ) -> list[PatientNotification]:
        """Newest first."""
        clauses, params = [], []
        if patient_id is not None:
            clauses.append("patient_id = ?")
            params.append(patient_id)
        if unread_only:
            clauses.append("read_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await fetch_all(
            self._db, f"SELECT body FROM notifications {where} ORDER BY created_at DESC", params
        )
        return [decode(row[0].encode(), PatientNotification) for row in rows]

    async def mark_read(self, notification_id: uuid.UUID) -> None:
        await run(
            self._db,
            "UPDATE notifications SET read_at = coalesce(read_at, ?) WHERE notification_id = ?",
            (time.time(), str(notification_id)),
        )
        await self._db.commit()
