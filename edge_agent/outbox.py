"""The durable outbox: every reading stays on disk until the cloud acknowledges its id.

SQLite in WAL mode with synchronous=FULL: when `add` returns, the reading survives a power
cut, and only then is the device record considered taken. Nothing is ever purged by age;
a reading leaves only when the cloud says it stored it, and one the cloud refused stays,
marked rejected with the reason, for support to inspect. The ids of acknowledged readings
are kept (a few dozen bytes each) so `states` can still answer `acked` for them and a
device record read again after its ack is not queued a second time.

The outbox is bounded by a number of readings. Crossing the warning and critical levels is
logged once per crossing and shown in the status; only when it is completely full does
`add` refuse, with `OutboxFullError`, and only readings whose device keeps the record in
its own memory to give again; what a device forgot once handed over is stored past the
bound, logged as critical.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from edge_agent.local_schema import ensure_schema
from edge_agent.settings import EdgeSettings
from edge_agent.sqlite_calls import fetch_all, fetch_one, run, run_many
from protocols.errors import CareBridgeError
from protocols.messages import Ack
from protocols.reading import Reading

log = logging.getLogger("carebridge.edge.outbox")

DEFAULT_MAX_READINGS = 1_000_000
"""About 140 days of a 50-device centre at 20 readings a device a day, ~1 GB of disk."""

# SQLite's historic limit on bound parameters is 999.
_CHUNK = 500


class OutboxLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    FULL = "full"


def outbox_level(
    depth: int, capacity: int, warn_ratio: float, critical_ratio: float
) -> OutboxLevel:
    """How close a queue of `depth` readings is to the outbox's `capacity`."""
    if depth >= capacity:
        return OutboxLevel.FULL
    if depth >= capacity * critical_ratio:
        return OutboxLevel.CRITICAL
    if depth >= capacity * warn_ratio:
        return OutboxLevel.WARNING
    return OutboxLevel.OK


def alarm_text(level: OutboxLevel, depth: int, capacity: int) -> str | None:
    """What the status shows an operator (zh-CN first), None when all is well."""
    if level is OutboxLevel.OK:
        return None
    used = f"{depth}/{capacity}"
    if level is OutboxLevel.FULL:
        return (
            f"待上传队列已满（{used}），新读数被拒收并留在设备中；请立即恢复网络或联系技术支持。"
            f" / Outbox full ({used}): new readings are refused and stay on the devices; "
            "restore the network or call support now."
        )
    return (
        f"待上传队列接近上限（{used}），请检查网络连接。"
        f" / Outbox nearly full ({used}): check the network connection."
    )


class OutboxFullError(CareBridgeError):
    """The outbox holds its maximum: the reading was not taken and must stay on the device."""

    code = "outbox_full"


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    in_flight: int
    rejected: int
    oldest_pending_age_s: float | None
    capacity: int = DEFAULT_MAX_READINGS
    level: OutboxLevel = OutboxLevel.OK
    alarm: str | None = None


@dataclass(frozen=True)
class OutboundBatch:
    batch_id: uuid.UUID
    readings: list[Reading]


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_readings: int = DEFAULT_MAX_READINGS,
        warn_ratio: float = 0.8,
        critical_ratio: float = 0.95,
    ) -> None:
        if not 0 < warn_ratio <= critical_ratio <= 1 or max_readings < 1:
            raise ValueError("need max_readings >= 1 and 0 < warn_ratio <= critical_ratio <= 1")
        self.path = path
        self.max_readings = max_readings
        self.warn_ratio = warn_ratio
        self.critical_ratio = critical_ratio
        self._db: aiosqlite.Connection | None = None
        self._depth = 0
        """Rows held (pending and rejected), kept in step with every change we make."""
        self._level = OutboxLevel.OK

    @classmethod
    def from_settings(cls, settings: EdgeSettings) -> Outbox:
        return cls(
            settings.outbox_path,
            max_readings=settings.outbox_max_readings,
            warn_ratio=settings.outbox_warn_ratio,
            critical_ratio=settings.outbox_critical_ratio,
        )

    async def open(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connecting = aiosqlite.connect(self.path)
        try:
            self._db = await connecting
        except sqlite3.Error:
            # aiosqlite 0.22 queues its thread's stop without awaiting it; unless the thread
            # ends while the loop runs, it reports to a closed loop with a traceback on
            # stderr (omnilib/aiosqlite#389).
            thread = getattr(connecting, "_thread", None)
            if thread is not None:
                await asyncio.to_thread(thread.join, 5)
            raise
        try:
            await fetch_all(self._db, "PRAGMA journal_mode=WAL")
            await run(self._db, "PRAGMA synchronous=FULL")
            await ensure_schema(self._db)
        except BaseException:
            # aiosqlite's thread would outlive us (and keep the process from exiting).
            await self.close()
            raise
        await self._recount()
        self._level = self._current_level()
        if self._level is not OutboxLevel.OK:
            self._log_level(self._level)
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    @property
    def depth(self) -> int:
        return self._depth

    async def add(
        self, readings: Iterable[Reading], *, now: float | None = None, device_keeps: bool = True
    ) -> int:
        """Store readings durably; return how many were new (a re-read record is ignored).

        Raises OutboxFullError, storing none of them, when they do not all fit and
        `device_keeps` says the device still holds the records to give them again (a
        glucose meter's memory). Records a device forgot once it handed them over (a cuff,
        an oximeter's spot-check, a scale, a broadcast) are stored past the bound instead:
        refused, they would be lost.
        """
        at = time.time() if now is None else now
        rows = [(str(r.reading_id), r.model_dump_json(), at, str(r.reading_id)) for r in readings]
        if not rows:
            return 0
        if self._depth + len(rows) > self.max_readings:
            await self._recount()  # another process may have drained it
        if self._depth + len(rows) > self.max_readings:
            self._set_level(OutboxLevel.FULL)
            if not device_keeps:
                log.critical(
                    "outbox full: readings the device no longer holds are stored past its bound",
                    extra={"added": len(rows), "depth": self._depth, "max": self.max_readings},
                )
            else:
                log.critical(
                    "outbox full: readings refused, they stay on the device",
                    extra={"refused": len(rows), "depth": self._depth, "max": self.max_readings},
                )
                raise OutboxFullError(
                    f"outbox holds {self._depth} of {self.max_readings} readings; "
                    f"{len(rows)} more refused and left on the device"
                )
        # rowcount, not total_changes: other tasks share this connection between awaits.
        added = await run_many(
            self.db,
            "INSERT OR IGNORE INTO outbox (reading_id, body, enqueued_at) SELECT ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM acked WHERE reading_id = ?)",
            rows,
        )
        await self.db.commit()
        added = max(0, added)
        self._depth += added
        self._set_level(self._current_level())
        return added

    async def take_batch(
        self, limit: int, *, resend_after_s: float, now: float | None = None
    ) -> OutboundBatch | None:
        """The oldest readings not in flight (or whose ack is overdue), marked as sent."""
        at = time.time() if now is None else now
        rows = await fetch_all(
            self.db,
            "SELECT reading_id, body FROM outbox WHERE state = 'pending' "
            "AND (sent_at IS NULL OR sent_at < ?) ORDER BY enqueued_at, reading_id LIMIT ?",
            (at - resend_after_s, limit),
        )
        if not rows:
            return None
        batch_id = uuid.uuid4()
        await run_many(
            self.db,
            "UPDATE outbox SET batch_id = ?, sent_at = ?, attempts = attempts + 1 "
            "WHERE reading_id = ?",
            [(str(batch_id), at, row[0]) for row in rows],
        )
        await self.db.commit()
        return OutboundBatch(batch_id, [Reading.model_validate_json(row[1]) for row in rows])

    async def apply_ack(self, ack: Ack, *, now: float | None = None) -> None:
        """Forget the bodies the cloud stored (keeping their ids); keep what it refused."""
        at = time.time() if now is None else now
        stored = [str(rid) for rid in ack.stored]
        deleted = await run_many(
            self.db, "DELETE FROM outbox WHERE reading_id = ?", [(rid,) for rid in stored]
        )
        deleted = max(0, deleted)
        await run_many(
            self.db,
            "INSERT OR IGNORE INTO acked (reading_id, acked_at) VALUES (?, ?)",
            [(rid, at) for rid in stored],
        )
        await run_many(
            self.db,
            "UPDATE outbox SET state = 'rejected', reject_code = ?, reject_reason = ? "
            "WHERE reading_id = ?",
            [(r.code, r.reason, str(r.reading_id)) for r in ack.rejected if r.reading_id],
        )
        await self.db.commit()
        self._depth = max(0, self._depth - deleted)
        self._set_level(self._current_level())

    async def release_in_flight(self) -> None:
        """After a lost connection, make in-flight readings sendable again at once."""
        await run(
            self.db,
            "UPDATE outbox SET sent_at = NULL WHERE state = 'pending' AND sent_at IS NOT NULL",
        )
        await self.db.commit()

    async def states(self, reading_ids: Iterable[uuid.UUID | str]) -> dict[str, str]:
        """Where each reading is: pending | in_flight | acked | rejected | unknown."""
        ids = list(dict.fromkeys(str(rid) for rid in reading_ids))
        found = dict.fromkeys(ids, "unknown")
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await fetch_all(
                self.db,
                "SELECT reading_id, CASE WHEN state = 'rejected' THEN 'rejected' "
                "WHEN sent_at IS NOT NULL THEN 'in_flight' ELSE 'pending' END "
                f"FROM outbox WHERE reading_id IN ({marks}) "
                f"UNION ALL SELECT reading_id, 'acked' FROM acked WHERE reading_id IN ({marks})",
                chunk + chunk,
            )
            for rid, state in rows:
                found[rid] = state
        return found

    async def stats(self, *, now: float | None = None) -> OutboxStats:
        at = time.time() if now is None else now
        row = await fetch_one(
            self.db,
            "SELECT "
            "  sum(state = 'pending'), sum(state = 'pending' AND sent_at IS NOT NULL), "
            "  sum(state = 'rejected'), min(CASE WHEN state = 'pending' THEN enqueued_at END) "
            "FROM outbox",
        )
        assert row is not None  # an aggregate always yields a row
        pending, in_flight, rejected, oldest = row
        self._depth = (pending or 0) + (rejected or 0)
        level = self._current_level()
        self._set_level(level)
        return OutboxStats(
            pending=pending or 0,
            in_flight=in_flight or 0,
            rejected=rejected or 0,
            oldest_pending_age_s=None if oldest is None else max(0.0, at - oldest),
            capacity=self.max_readings,
            level=level,
            alarm=alarm_text(level, self._depth, self.max_readings),
        )

    async def pending_ids(self) -> Sequence[str]:
        rows = await fetch_all(self.db, "SELECT reading_id FROM outbox WHERE state = 'pending'")
        return [row[0] for row in rows]

    # levels ------------------------------------------------------------------------------

    async def _recount(self) -> None:
        row = await fetch_one(self.db, "SELECT count(*) FROM outbox")
        self._depth = int(row[0]) if row else 0

    def _current_level(self) -> OutboxLevel:
        return outbox_level(self._depth, self.max_readings, self.warn_ratio, self.critical_ratio)

    def _set_level(self, level: OutboxLevel) -> None:
        if level is not self._level:
            self._level = level
            self._log_level(level)

    def _log_level(self, level: OutboxLevel) -> None:
        extra = {"level": level.value, "depth": self._depth, "max": self.max_readings}
        if level is OutboxLevel.OK:
            log.info("outbox back below its warning level", extra=extra)
        elif level is OutboxLevel.WARNING:
            log.warning("outbox filling up: check the uplink", extra=extra)
        else:
            log.error("outbox nearly or completely full: readings will be refused", extra=extra)
