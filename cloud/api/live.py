"""Live alert changes: one LISTEN connection per cloud process, fanned out to every open
server-sent-event stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg

from cloud.db.alert_notify import CHANNEL, parse

log = logging.getLogger("carebridge.live")

_QUEUE_SIZE = 1000


class AlertFeed:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._subscribers: set[asyncio.Queue[dict[str, str]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="alert-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, str]]]:
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(_QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def _publish(self, event: dict[str, str]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                # A stalled client loses its oldest notices, never the feed for everyone;
                # the client reloads the queue on reconnect anyway.
                queue.get_nowait()
            queue.put_nowait(event)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    async for notice in conn.notifies():
                        self._publish(parse(notice.payload))
            except psycopg.OperationalError as exc:
                self.listening.clear()
                log.warning("alert feed lost the database", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
