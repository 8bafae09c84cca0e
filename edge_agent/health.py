"""The agent's local health endpoint: `GET /health` on loopback, for monitoring.

Plain asyncio, no web framework: one read-only JSON document about the running agent
(broker link, outbox depth and oldest age, devices, sessions, unassigned readings). It
answers 200 when the agent is healthy and 503 when it is degraded, so any HTTP check
(Zabbix, Uptime Kuma, a Windows scheduled task with curl) can watch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("carebridge.edge.health")

HealthReport = Callable[[], Awaitable[dict[str, Any]]]
"""Returns the document; its `status` is "ok" or "degraded"."""

_MAX_REQUEST = 8192


class HealthServer:
    def __init__(self, report: HealthReport, host: str = "127.0.0.1", port: int = 0) -> None:
        self._report = report
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health endpoint listening", extra={"url": self.url})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/health"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        line = request[:_MAX_REQUEST].split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
            await self._answer(writer, 405, {"error": "method_not_allowed"})
        elif parts[1].split("?", 1)[0] != "/health":
            await self._answer(writer, 404, {"error": "not_found"})
        else:
            try:
                body = await self._report()
            except Exception as exc:  # the endpoint must say so, not hang up
                log.exception("health report failed")
                body = {"status": "degraded", "error": f"{type(exc).__name__}: {exc}"}
            code = 200 if body.get("status") == "ok" else 503
            await self._answer(writer, code, body, head=parts[0] == "HEAD")

    async def _answer(
        self, writer: asyncio.StreamWriter, code: int, body: dict[str, Any], *, head: bool = False
    ) -> None:
        payload = json.dumps(body, ensure_ascii=False, default=str).encode()
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(
            code, "Service Unavailable"
        )
        writer.write(
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        )
        if not head:
            writer.write(payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
