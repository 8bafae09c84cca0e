"""The durable outbox: every reading stays on disk until the cloud acknowledges its id.

SQLite in WAL mode with synchronous=FULL: when `add` returns, the reading survives a power
cut, and only then is the device record considered taken. Nothing is ever purged by age;
a reading leaves only when the cloud says it stored it, and one the cloud refused stays,
marked rejected with the reason, for support to inspect.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from protocols.messages import Ack
from protocols.reading import Reading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    reading_id    TEXT PRIMARY KEY,
    body          TEXT NOT NULL,
    enqueued_at   REAL NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    batch_id      TEXT,
    sent_at       REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    reject_code   TEXT,
    reject_reason TEXT
);
CREATE INDEX IF NOT EXISTS outbox_sendable ON outbox (state, sent_at, enqueued_at);
"""


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    in_flight: int
    rejected: int
    oldest_pending_age_s: float | None


@dataclass(frozen=True)
class OutboundBatch:
    batch_id: uuid.UUID
    readings: list[Reading]


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(_SCHEMA)
        await self._db.commit()
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

    async def add(self, readings: Iterable[Reading], *, now: float | None = None) -> int:
        """Store readings durably; return how many were new (a re-read record is ignored)."""
        at = time.time() if now is None else now
        rows = [(str(r.reading_id), r.model_dump_json(), at) for r in readings]
        before = self.db.total_changes
        await self.db.executemany(
            "INSERT OR IGNORE INTO outbox (reading_id, body, enqueued_at) VALUES (?, ?, ?)", rows
        )
        await self.db.commit()
        return self.db.total_changes - before

    async def take_batch(
        self, limit: int, *, resend_after_s: float, now: float | None = None
    ) -> OutboundBatch | None:
        """The oldest readings not in flight (or whose ack is overdue), marked as sent."""
        at = time.time() if now is None else now
        cursor = await self.db.execute(
            "SELECT reading_id, body FROM outbox WHERE state = 'pending' "
            "AND (sent_at IS NULL OR sent_at < ?) ORDER BY enqueued_at, reading_id LIMIT ?",
            (at - resend_after_s, limit),
        )
        rows = list(await cursor.fetchall())
        if not rows:
            return None
        batch_id = uuid.uuid4()
        await self.db.executemany(
            "UPDATE outbox SET batch_id = ?, sent_at = ?, attempts = attempts + 1 "
            "WHERE reading_id = ?",
            [(str(batch_id), at, row[0]) for row in rows],
        )
        await self.db.commit()
        return OutboundBatch(batch_id, [Reading.model_validate_json(row[1]) for row in rows])

    async def apply_ack(self, ack: Ack) -> None:
        """Forget what the cloud stored; keep what it refused, with its reason."""
        await self.db.executemany(
            "DELETE FROM outbox WHERE reading_id = ?", [(str(rid),) for rid in ack.stored]
        )
        await self.db.executemany(
            "UPDATE outbox SET state = 'rejected', reject_code = ?, reject_reason = ? "
            "WHERE reading_id = ?",
            [(r.code, r.reason, str(r.reading_id)) for r in ack.rejected if r.reading_id],
        )
        await self.db.commit()

    async def release_in_flight(self) -> None:
        """After a lost connection, make in-flight readings sendable again at once."""
        await self.db.execute("UPDATE outbox SET sent_at = NULL WHERE state = 'pending'")
        await self.db.commit()

    async def stats(self, *, now: float | None = None) -> OutboxStats:
        at = time.time() if now is None else now
        cursor = await self.db.execute(
            "SELECT "
            "  sum(state = 'pending'), sum(state = 'pending' AND sent_at IS NOT NULL), "
            "  sum(state = 'rejected'), min(CASE WHEN state = 'pending' THEN enqueued_at END) "
            "FROM outbox"
        )
        row = await cursor.fetchone()
        assert row is not None  # an aggregate always yields a row
        pending, in_flight, rejected, oldest = row
        return OutboxStats(
            pending=pending or 0,
            in_flight=in_flight or 0,
            rejected=rejected or 0,
            oldest_pending_age_s=None if oldest is None else max(0.0, at - oldest),
        )

    async def pending_ids(self) -> Sequence[str]:
        cursor = await self.db.execute("SELECT reading_id FROM outbox WHERE state = 'pending'")
        return [row[0] for row in await cursor.fetchall()]
