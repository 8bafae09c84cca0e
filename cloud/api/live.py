"""Live alert changes and new centre readings: one LISTEN connection per cloud process,
fanned out to every open server-sent-event stream of that channel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import StreamingResponse

from cloud.db import alert_notify, reading_notify

log = logging.getLogger("carebridge.live")

_QUEUE_SIZE = 1000
_PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    alert_notify.CHANNEL: alert_notify.parse,
    reading_notify.CHANNEL: reading_notify.parse,
}


class AlertFeed:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {
            channel: set() for channel in _PARSERS
        }
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
    async def subscribe(
        self, channel: str = alert_notify.CHANNEL
    ) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_QUEUE_SIZE)
        self._subscribers[channel].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[channel].discard(queue)

    def _publish(self, channel: str, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(channel, ())):
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
                    for channel in _PARSERS:
                        await conn.execute(f"LISTEN {channel}")
                    self.listening.set()
                    delay = 0.5
                    async for notice in conn.notifies():
                        self._publish(notice.channel, _PARSERS[notice.channel](notice.payload))
            except psycopg.OperationalError as exc:
                self.listening.clear()
                log.warning("alert feed lost the database", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


async def event_stream(
    request: Request,
    feed: AlertFeed,
    channel: str,
    event_name: str,
    wanted: Callable[[dict[str, Any]], bool],
) -> AsyncIterator[str]:
    """Server-sent events of one channel's notices that `wanted` lets through, with a
    keep-alive comment every 15 s so proxies do not close an idle stream.

    The first comment, `: connected`, comes once this stream hears every notice from then
    on: subscribed, and the feed listening to the database."""
    async with feed.subscribe(channel) as queue:
        await feed.listening.wait()
        yield ": connected\n\n"
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if wanted(event):
                yield f"event: {event_name}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


def event_response(
    request: Request, channel: str, event_name: str, wanted: Callable[[dict[str, Any]], bool]
) -> StreamingResponse:
    stream = event_stream(request, request.app.state.feed, channel, event_name, wanted)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
