"""The running agent, composed: outbox + uplink (`EdgeAgent`), device links, assignment
sync and the health endpoint, all on one event loop until `stop` is set.

`python -m edge_agent run` calls `run_agent` with the platform's Bluetooth; tests pass the
bumble-backed bleak backends. A failure of the Bluetooth side (no adapter, the adapter
unplugged) is logged and retried; the outbox keeps syncing whatever happens to devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from edge_agent.agent import EdgeAgent
from edge_agent.assignment_sync import AssignmentSync
from edge_agent.device_links import DeviceLinks, LinkOptions
from edge_agent.health import HealthServer
from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox, OutboxLevel
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink

log = logging.getLogger("carebridge.edge")

_BLUETOOTH_RETRY_S = 30.0
_STOP_GRACE_S = 5.0


def device_zone(settings: EdgeSettings) -> tzinfo:
    """The zone device clocks are set to: configured, or this machine's own."""
    if settings.device_timezone:
        return ZoneInfo(settings.device_timezone)
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


def link_options(settings: EdgeSettings) -> LinkOptions:
    return LinkOptions(
        connect_timeout=settings.connect_timeout_s,
        idle_timeout=settings.device_idle_timeout_s,
        watchdog=settings.link_watchdog_s,
        resync_after=settings.resync_after_s,
        max_links=settings.max_device_links,
        clock_tolerance=timedelta(seconds=settings.clock_tolerance_s),
    )


@dataclass
class Bluetooth:
    """The bleak backends and their keywords; all None/empty is the platform's own."""

    scanner_backend: type[BaseBleakScanner] | None = None
    client_backend: type[BaseBleakClient] | None = None
    scanner_kwargs: dict[str, Any] | None = None
    client_kwargs: dict[str, Any] | None = None


@dataclass
class RunningAgent:
    agent: EdgeAgent
    links: DeviceLinks
    state: LocalState
    sync: AssignmentSync
    health: HealthServer | None


@contextlib.asynccontextmanager
async def running_agent(
    settings: EdgeSettings,
    stop: asyncio.Event,
    *,
    bluetooth: Bluetooth | None = None,
    options: LinkOptions | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[RunningAgent]:
    """Everything running; leaving the block sets `stop` and waits for a clean end."""
    ble = bluetooth or Bluetooth()
    loop = asyncio.get_running_loop()
    async with Outbox.from_settings(settings) as outbox:
        state = await LocalState.attach(outbox.db)
        uplink = MqttUplink(settings, loop)
        agent = EdgeAgent(settings, outbox, uplink)
        sync = AssignmentSync(
            edge_id=settings.edge_id,
            state=state,
            reading_states=outbox.states,
            publish=uplink.publish,
            now=now,
        )
        uplink.extra_topics[sync.result_topic] = sync.on_result_payload
        links = DeviceLinks(
            state=state,
            sink=agent,
            mode=settings.mode,
            zone=device_zone(settings),
            home_patient_id=settings.home_patient_id,
            scanner_backend=ble.scanner_backend,
            client_backend=ble.client_backend,
            scanner_kwargs=ble.scanner_kwargs,
            client_kwargs=ble.client_kwargs,
            options=options or link_options(settings),
            now=now,
        )
        agent.device_statuses = links.device_statuses
        running = RunningAgent(agent, links, state, sync, None)
        if settings.health_port:
            health = HealthServer(
                lambda: health_report(settings, running),
                settings.health_host,
                settings.health_port,
            )
            try:
                await health.start()
                running.health = health
            except OSError as exc:  # monitoring is not worth losing readings over
                log.error("health endpoint not started", extra={"reason": str(exc)})
        syncing = asyncio.create_task(agent.run(stop))
        helpers = [
            asyncio.create_task(_keep_running("bluetooth", lambda: links.run(stop), stop)),
            asyncio.create_task(sync.run(stop)),
        ]
        try:
            yield running
        finally:
            stop.set()
            # The outbox side ends cleanly (final status); a Bluetooth stack that hangs
            # (a dead adapter, no D-Bus) must not keep the process from stopping.
            _done, stuck = await asyncio.wait(helpers, timeout=_STOP_GRACE_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(syncing, *helpers, return_exceptions=True)
            if running.health is not None:
                await running.health.stop()


async def run_agent(settings: EdgeSettings, stop: asyncio.Event) -> None:
    async with running_agent(settings, stop):
        await stop.wait()


async def _keep_running(
    what: str, start: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await start()
        except Exception as exc:
            log.error(
                f"{what} stopped; retrying",
                extra={"reason": f"{type(exc).__name__}: {exc}", "retry_in_s": _BLUETOOTH_RETRY_S},
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_BLUETOOTH_RETRY_S):
                    await stop.wait()


async def health_report(settings: EdgeSettings, running: RunningAgent) -> dict[str, Any]:
    """`GET /health`: ok when the broker link is up and the outbox is not filling up."""
    agent = running.agent
    stats = await agent.outbox.stats()
    link = agent.uplink.link_state()
    ok = link.state == "connected" and stats.level is OutboxLevel.OK
    return {
        "status": "ok" if ok else "degraded",
        "edge_id": settings.edge_id,
        "mode": settings.mode,
        "broker": {
            "state": link.state,
            "connected_since": link.connected_since,
            "last_error": link.last_error,
        },
        "last_ack_at": agent.last_ack_at,
        "outbox": {
            "pending": stats.pending,
            "in_flight": stats.in_flight,
            "rejected": stats.rejected,
            "oldest_pending_age_s": stats.oldest_pending_age_s,
            "level": stats.level.value,
            "alarm": stats.alarm,
        },
        "devices": running.links.status(),
        "unassigned": await running.state.counts(),
    }
