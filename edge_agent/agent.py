"""The agent's sync loop: outbox → batches → MQTT, acks → outbox, downlink → `Downlink`.

Devices hand readings to `submit`; they are on disk before it returns. The loop sends
the oldest readings first, paced by a token bucket, keeps a bounded window of batches in
flight, resends a batch whose ack is overdue (ids make that safe), and after a reconnect
resends what was in flight at once. The running agent writes its link state next to the
outbox, so `python -m edge_agent status` (another process) can show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.downlink import Downlink
from edge_agent.drain import TokenBucket
from edge_agent.outbox import Outbox, OutboxStats
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from protocols.messages import (
    Ack,
    DeviceStatus,
    EdgeConfig,
    EdgeState,
    EdgeStatus,
    ReadingsBatch,
)
from protocols.reading import Reading

log = logging.getLogger("carebridge.edge")

AGENT_VERSION = "0.1.0"


def link_state_path(settings: EdgeSettings) -> Path:
    return settings.outbox_path.with_name("uplink-state.json")


def read_link_state(settings: EdgeSettings) -> dict[str, Any] | None:
    """What the running agent last wrote about its broker link (None if it never ran)."""
    try:
        data: dict[str, Any] = json.loads(link_state_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data


class EdgeAgent:
    def __init__(self, settings: EdgeSettings, outbox: Outbox, uplink: MqttUplink) -> None:
        self.settings = settings
        self.outbox = outbox
        self.uplink = uplink
        self.downlink = Downlink(settings.edge_id)
        self.last_ack_at: datetime | None = None
        self.device_statuses: Callable[[], Awaitable[list[DeviceStatus]]] | None = None
        """Set by whoever runs the device side (`runtime`), for the retained status."""
        self._in_flight: dict[uuid.UUID, float] = {}
        """Batch id → when it was sent (monotonic); an overdue one frees its slot."""
        self._resend_in_flight = False
        self._pace = TokenBucket(settings.drain_rate_readings_per_s, settings.drain_burst_readings)
        self._paced_for_s = 0.0
        self._wake = asyncio.Event()
        uplink.on_connection_lost = self._connection_lost

    @property
    def config(self) -> EdgeConfig | None:
        """The latest configuration from the cloud (kept across restarts)."""
        return self.downlink.config

    async def submit(self, readings: Iterable[Reading], *, device_keeps: bool = True) -> int:
        """Take readings from a device: durable on return. Returns how many were new.

        Raises `edge_agent.outbox.OutboxFullError` when the outbox is full and
        `device_keeps` (the device still holds the records): they were not taken and stay
        on the device. Records the device forgot are stored past the bound.
        """
        added = await self.outbox.add(readings, device_keeps=device_keeps)
        if added:
            self._wake.set()
        return added

    async def stats(self) -> OutboxStats:
        return await self.outbox.stats()

    async def run(self, stop: asyncio.Event) -> None:
        await self.downlink.open(self.outbox.db)
        self.uplink.start()
        status_task = asyncio.create_task(self._report_status(stop))
        try:
            while not stop.is_set():
                if self._resend_in_flight:
                    self._resend_in_flight = False
                    await self.outbox.release_in_flight()
                await self._handle_inbound()
                if self.uplink.connected.is_set():
                    await self._send_what_fits()
                await self._wait(stop)
        finally:
            status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status_task
            self.uplink.on_connection_lost = None
            final = await self._status(EdgeState.OFFLINE)
            await asyncio.to_thread(self.uplink.stop, final)
            await self._write_link_state(final)

    async def _send_what_fits(self) -> None:
        self._expire_overdue()
        self._paced_for_s = 0.0
        while len(self._in_flight) < self.settings.in_flight_batches:
            wait = self._pace.wait_s(self.settings.batch_max_readings, time.monotonic())
            if wait > 0:
                self._paced_for_s = wait
                return
            batch = await self.outbox.take_batch(
                self.settings.batch_max_readings, resend_after_s=self.settings.ack_timeout_s
            )
            if batch is None:
                return
            message = ReadingsBatch(
                edge_id=self.settings.edge_id,
                batch_id=batch.batch_id,
                sent_at=datetime.now(UTC),
                readings=batch.readings,
            )
            if not self.uplink.publish_batch(message):
                # paho would not take it; the readings stay pending and go with a later batch.
                await self.outbox.release_in_flight()
                return
            self._pace.take(len(batch.readings), time.monotonic())
            self._in_flight[batch.batch_id] = time.monotonic()

    def _expire_overdue(self) -> None:
        deadline = time.monotonic() - self.settings.ack_timeout_s
        for batch_id, sent in list(self._in_flight.items()):
            if sent < deadline:
                # Its readings are overdue in the outbox too; take_batch sends them again.
                del self._in_flight[batch_id]

    async def _handle_inbound(self) -> None:
        while not self.uplink.inbound.empty():
            message = self.uplink.inbound.get_nowait()
            if isinstance(message, Ack):
                await self.outbox.apply_ack(message)
                self._in_flight.pop(message.batch_id, None)
                self.last_ack_at = datetime.now(UTC)
                if message.rejected:
                    log.warning(
                        "cloud refused readings",
                        extra={
                            "count": len(message.rejected),
                            "first_reason": message.rejected[0].reason,
                        },
                    )
            elif isinstance(message, EdgeConfig):
                await self.downlink.apply_config(message)
            else:
                await self.downlink.add_notification(message)

    async def _wait(self, stop: asyncio.Event) -> None:
        """Sleep until a reading, an ack, a (re)connection, the pace or the linger ends."""
        self._wake.clear()
        waiters = [
            asyncio.create_task(self._wake.wait()),
            asyncio.create_task(self.uplink.inbound_ready()),
            asyncio.create_task(stop.wait()),
        ]
        if not self.uplink.connected.is_set():
            waiters.append(asyncio.create_task(self.uplink.connected.wait()))
        timeout = self.settings.ack_timeout_s if self._in_flight else 1.0
        if self._paced_for_s > 0 and len(self._in_flight) < self.settings.in_flight_batches:
            timeout = min(timeout, self._paced_for_s)
        _done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        # Let more readings of a burst gather into the same batch.
        await asyncio.sleep(self.settings.linger_ms / 1000)

    def _connection_lost(self) -> None:
        # Acks for what was in flight may never come; resend it as soon as we reconnect.
        self._in_flight.clear()
        self._resend_in_flight = True
        self._wake.set()

    async def _status(self, state: EdgeState) -> EdgeStatus:
        stats = await self.outbox.stats()
        return EdgeStatus(
            edge_id=self.settings.edge_id,
            state=state,
            at=datetime.now(UTC),
            agent_version=AGENT_VERSION,
            outbox_pending=stats.pending,
            outbox_oldest_age_s=stats.oldest_pending_age_s,
            outbox_capacity=stats.capacity,
            outbox_level=stats.level.value,
            devices=await self.device_statuses() if self.device_statuses else [],
        )

    async def _report_status(self, stop: asyncio.Event) -> None:
        """Retained status on every (re)connection and every `status_interval_s`."""
        while not stop.is_set():
            status = await self._status(EdgeState.ONLINE)
            if self.uplink.connected.is_set():
                self.uplink.publish_status(status)
            await self._write_link_state(status)
            waiters = [asyncio.create_task(stop.wait())]
            if not self.uplink.connected.is_set():
                waiters.append(asyncio.create_task(self.uplink.connected.wait()))
            _done, pending = await asyncio.wait(
                waiters,
                timeout=self.settings.status_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()

    async def _write_link_state(self, status: EdgeStatus) -> None:
        link = asdict(self.uplink.link_state())
        stats = await self.outbox.stats()
        record = {
            "edge_id": self.settings.edge_id,
            "written_at": datetime.now(UTC).isoformat(),
            "agent_pid": os.getpid(),
            "broker": {
                **link,
                "host": self.settings.mqtt_host,
                "port": self.settings.mqtt_port,
                "connected_since": link["connected_since"].isoformat()
                if link["connected_since"]
                else None,
            },
            "last_ack_at": self.last_ack_at.isoformat() if self.last_ack_at else None,
            "outbox_level": stats.level.value,
            "outbox_alarm": stats.alarm,
            "status_state": status.state.value,
        }
        path = link_state_path(self.settings)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2))
        tmp.replace(path)
