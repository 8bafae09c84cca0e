"""The agent's sync loop: outbox → batches → MQTT, acks → outbox.

Devices hand readings to `submit`; they are on disk before it returns. The loop sends
the oldest readings first, keeps a bounded window of batches in flight, resends a batch
whose ack is overdue (ids make that safe), and after a reconnect resends what was in
flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from edge_agent.outbox import Outbox, OutboxStats
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from protocols.messages import Ack, EdgeConfig, EdgeState, EdgeStatus, ReadingsBatch
from protocols.reading import Reading

log = logging.getLogger("carebridge.edge")

AGENT_VERSION = "0.1.0"


class EdgeAgent:
    def __init__(self, settings: EdgeSettings, outbox: Outbox, uplink: MqttUplink) -> None:
        self.settings = settings
        self.outbox = outbox
        self.uplink = uplink
        self.config: EdgeConfig | None = None
        self.last_ack_at: datetime | None = None
        self._in_flight: dict[uuid.UUID, int] = {}
        self._resend_in_flight = False
        self._wake = asyncio.Event()
        uplink.on_connection_lost = self._connection_lost

    async def submit(self, readings: Iterable[Reading]) -> int:
        """Take readings from a device: durable on return. Returns how many were new."""
        added = await self.outbox.add(readings)
        if added:
            self._wake.set()
        return added

    async def stats(self) -> OutboxStats:
        return await self.outbox.stats()

    async def run(self, stop: asyncio.Event) -> None:
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
            self.uplink.stop()

    async def _send_what_fits(self) -> None:
        while len(self._in_flight) < self.settings.in_flight_batches:
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
            self._in_flight[batch.batch_id] = len(batch.readings)

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
                self.config = message
                log.info("configuration received", extra={"issued_at": str(message.issued_at)})
            else:
                log.info("patient notification", extra={"patient_id": message.patient_id})

    async def _wait(self, stop: asyncio.Event) -> None:
        """Sleep until a reading, an ack, a (re)connection or the linger ends."""
        self._wake.clear()
        waiters = [
            asyncio.create_task(self._wake.wait()),
            asyncio.create_task(self.uplink.inbound_ready()),
            asyncio.create_task(stop.wait()),
        ]
        if not self.uplink.connected.is_set():
            waiters.append(asyncio.create_task(self.uplink.connected.wait()))
        timeout = self.settings.ack_timeout_s if self._in_flight else 1.0
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

    async def _report_status(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.uplink.connected.is_set():
                stats = await self.outbox.stats()
                self.uplink.publish_status(
                    EdgeStatus(
                        edge_id=self.settings.edge_id,
                        state=EdgeState.ONLINE,
                        at=datetime.now(UTC),
                        agent_version=AGENT_VERSION,
                        outbox_pending=stats.pending,
                        outbox_oldest_age_s=stats.oldest_pending_age_s,
                    )
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.status_interval_s)
