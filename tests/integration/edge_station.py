"""A whole edge agent (`edge_agent.runtime.running_agent`) on emulated BLE devices, against
the real cloud, Mosquitto and TimescaleDB of the `cloud` fixture. Shared by the device-side
acceptance tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port
from edge_agent.backoff import DEVICE_RETRY, RetryPolicy
from edge_agent.device_links import LinkOptions
from edge_agent.runtime import Bluetooth, RunningAgent, running_agent
from edge_agent.settings import EdgeSettings
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from tests.integration.test_tracer import _register as register_edge

FAST_LINKS = LinkOptions(
    # The agent's own default. Connecting includes GATT discovery, which bumble emulates in
    # Python beside everything else the test runs: on a busy 2-core machine it took longer
    # than 5 s, every attempt timed out mid-discovery, and a device never delivered.
    connect_timeout=20.0,
    idle_timeout=0.6,
    watchdog=10.0,
    resync_after=0.2,
    max_links=8,
    # Retries in tenths of a second: the tests are about what is stored, not about waiting.
    backoff={kind: RetryPolicy(0.1, 1.5, 0.5) for kind in DEVICE_RETRY},
)


def edge_settings(
    broker: LocalMosquitto, tmp_path: Path, edge_id: str, **extra: Any
) -> EdgeSettings:
    return EdgeSettings(
        edge_id=edge_id,
        mqtt_port=broker.port,
        outbox_path=tmp_path / "edge" / "outbox.sqlite3",
        credentials_path=tmp_path / "edge" / "no-credentials.json",
        linger_ms=10,
        health_port=free_port(),
        **extra,
    )


@asynccontextmanager
async def edge_on_radio(
    settings: EdgeSettings, options: LinkOptions = FAST_LINKS
) -> AsyncIterator[RunningAgent]:
    """The agent on the innermost running `SimulatedRadio` (the bumble backend's default)."""
    stop = asyncio.Event()
    bluetooth = Bluetooth(scanner_backend=BumbleScanner, client_backend=BumbleClient)
    async with running_agent(settings, stop, bluetooth=bluetooth, options=options) as running:
        yield running


async def eventually(check: Callable[[], Any], what: str, within: float = 20.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return result
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out after {within}s waiting for {what}")


def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


__all__ = [
    "FAST_LINKS",
    "edge_on_radio",
    "edge_settings",
    "eventually",
    "register_edge",
    "rows",
]
