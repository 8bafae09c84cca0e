"""The cloud's view of its edges: retained `EdgeStatus` → `edge_status` → `GET /api/v1/edges`
and `/health`. Real edge agents, Mosquitto, `python -m cloud serve`, TimescaleDB."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from cloud.db import edge_status_store
from devstack.cloud import CloudProcess
from devstack.edge import start_edge_agent
from edge_agent.agent import EdgeAgent
from edge_agent.device_links import device_statuses
from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox
from edge_agent.uplink import MqttUplink
from protocols.messages import DeviceStatus, EdgeState, EdgeStatus
from protocols.reading import DeviceKind
from simulators.readings import SimulatedGlucoseMeter
from tests.conftest import bearer, make_user, running_cloud, wait_for
from tests.integration.edge_support import edge_env, fast_edge_settings, register_edge

CENTRE = "centre-status"
STRAY = "stray-status"
"""Never registered: the cloud acks nothing of it, so its outbox fills up."""


@pytest.fixture
def fleet_cloud(database_url, broker, tmp_path):
    # Offline for more than ~1 s counts, so the test need not wait minutes.
    with running_cloud(
        database_url, broker, tmp_path, CAREBRIDGE_EDGE_OFFLINE_WARN_MINUTES="0.02"
    ) as process:
        yield process


def _edges(cloud: CloudProcess, token: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{cloud.base_url}/api/v1/edges", headers=bearer(token), timeout=5)
    assert response.status_code == 200, response.text
    return {e["edge_id"]: e for e in response.json()["items"]}


def _reporting(edge: dict[str, Any]) -> bool:
    """Online with a full status (outbox and devices) from the agent itself."""
    return edge.get("state") == "online" and edge.get("outbox", {}).get("capacity") is not None


def _attention(cloud: CloudProcess) -> set[tuple[str, str]]:
    body = httpx.get(f"{cloud.base_url}/health", timeout=5).json()
    return {(a["edge_id"], a["reason"]) for a in body["edges"]["attention"]}


async def test_edges_report_devices_outbox_alarm_and_going_offline(
    database_url, broker, fleet_cloud, tmp_path
):
    register_edge(database_url, CENTRE)
    admin = make_user(database_url, "admin-fleet", "admin")
    manager = make_user(database_url, "hm-fleet", "health_manager")
    nurse = make_user(database_url, "nurse-fleet", "nurse")
    now = datetime.now(UTC)
    centre_settings = fast_edge_settings(CENTRE, tmp_path / "centre", broker.port)
    stray_settings = fast_edge_settings(
        STRAY, tmp_path / "stray", broker.port, outbox_max_readings=10
    )
    stop = asyncio.Event()
    async with (
        Outbox.from_settings(centre_settings) as centre_outbox,
        Outbox.from_settings(stray_settings) as stray_outbox,
    ):
        state = await LocalState.attach(centre_outbox.db)
        await state.pair(
            "AA:BB:CC:00:00:01", catalogue_id="sig-glucose", kind="glucose_meter", now=now
        )
        await state.update_device(
            "AA:BB:CC:00:00:01",
            serial="GM-7781",
            model="Accu-Chek Instant",
            battery_percent=64,
            last_error_code="timeout",
        )
        centre = EdgeAgent(
            centre_settings, centre_outbox, MqttUplink(centre_settings, asyncio.get_running_loop())
        )

        async def paired_devices() -> list[DeviceStatus]:
            return device_statuses(await state.devices(paired_only=True), {})

        centre.device_statuses = paired_devices
        stray = EdgeAgent(
            stray_settings, stray_outbox, MqttUplink(stray_settings, asyncio.get_running_loop())
        )
        meter = SimulatedGlucoseMeter("GLU-STRAY")
        readings = [r for n in range(9) for r in meter.measure(5.0 + n / 10, patient_id="P1")]
        assert await stray.submit(readings) == 9  # 9 of 10: past the 0.8 warning ratio

        running = [asyncio.create_task(a.run(stop)) for a in (centre, stray)]
        try:

            def both_online() -> dict[str, dict[str, Any]] | None:
                # Online and reporting: the broker connection's bare "online" comes before
                # the agent's first full status with its outbox.
                edges = _edges(fleet_cloud, admin)
                reported = [_reporting(edges.get(edge, {})) for edge in (CENTRE, STRAY)]
                return edges if all(reported) else None

            edges = await asyncio.to_thread(wait_for, both_online, 15, 0.2, "edges online")
            seen = edges[CENTRE]
            assert seen["mode"] == "centre"
            assert seen["outbox"]["level"] == "ok" and seen["outbox"]["alarm"] is False
            assert seen["outbox"]["capacity"] == centre_settings.outbox_max_readings
            assert seen["outbox"]["pending"] == 0
            assert seen["last_status_at"] is not None
            [device] = seen["devices"]
            assert device["serial"] == "GM-7781" and device["kind"] == "glucose_meter"
            assert device["model"] == "Accu-Chek Instant" and device["battery_percent"] == 64
            assert device["last_error_kind"] == "timeout" and device["connected"] is False
            assert device["address"] == "AA:BB:CC:00:00:01"

            assert edges[STRAY]["outbox"]["level"] == "warning"
            assert edges[STRAY]["outbox"]["alarm"] is True
            assert edges[STRAY]["outbox"]["pending"] == 9
            assert edges[STRAY]["outbox"]["oldest_pending_age_s"] >= 0
            attention = await asyncio.to_thread(_attention, fleet_cloud)
            assert (STRAY, "outbox_warning") in attention
            assert not any(edge == CENTRE for edge, _ in attention)

            by_manager = await asyncio.to_thread(_edges, fleet_cloud, manager)
            assert by_manager[CENTRE]["state"] == "online"
            refused = await asyncio.to_thread(
                httpx.get, f"{fleet_cloud.base_url}/api/v1/edges", headers=bearer(nurse), timeout=5
            )
            assert refused.status_code == 403
        finally:
            stop.set()
            await asyncio.gather(*running)

    def centre_offline() -> dict[str, Any] | None:
        seen = _edges(fleet_cloud, admin)[CENTRE]
        return seen if seen["state"] == "offline" else None

    gone = await asyncio.to_thread(wait_for, centre_offline, 10, 0.2, "centre offline")
    assert gone["state_since"] is not None
    assert gone["devices"][0]["serial"] == "GM-7781"  # the clean stop's final status
    await asyncio.to_thread(
        wait_for,
        lambda: (CENTRE, "offline") in _attention(fleet_cloud),
        10,
        0.2,
        "the offline centre listed by /health",
    )


def test_a_last_will_keeps_what_the_edge_said_last_and_dates_the_outage(database_url):
    edge = "will-edge"
    online_at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    device = DeviceStatus(serial="BP-1", kind=DeviceKind.BLOOD_PRESSURE_MONITOR, connected=True)
    online = EdgeStatus(
        edge_id=edge,
        state=EdgeState.ONLINE,
        at=online_at,
        outbox_pending=3,
        outbox_oldest_age_s=12.0,
        outbox_capacity=100,
        outbox_level="ok",
        devices=[device],
    )
    will = EdgeStatus(edge_id=edge, state=EdgeState.OFFLINE)
    died = online_at + timedelta(minutes=5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        edge_status_store.record_status(conn, online, online_at)
        edge_status_store.record_status(conn, online, online_at + timedelta(seconds=30))
        edge_status_store.record_status(conn, will, died)
        edge_status_store.record_status(conn, will, died + timedelta(hours=1))  # redelivered
        [row] = [r for r in edge_status_store.list_edges(conn) if r["edge_id"] == edge]
    assert row["state"] == "offline" and row["state_since"] == died
    assert row["status_at"] == online_at  # the last time the edge itself spoke
    assert row["outbox_pending"] == 3 and row["outbox_oldest_age_s"] == 12.0
    assert row["devices"] == [device.model_dump(mode="json")]
    later = died + timedelta(minutes=20)
    found = edge_status_store.concerns([row], now=later, offline_after=timedelta(minutes=15))
    assert [(c.edge_id, c.reason, c.since) for c in found] == [(edge, "offline", died)]
    recent = edge_status_store.concerns(
        [row], now=died + timedelta(minutes=1), offline_after=timedelta(minutes=15)
    )
    assert recent == []


def test_a_killed_agent_shows_offline_through_its_last_will(database_url, broker, cloud, tmp_path):
    edge = "killed-status"
    register_edge(database_url, edge)
    admin = make_user(database_url, "admin-will", "admin")
    settings = fast_edge_settings(edge, tmp_path / "edge", broker.port, health_port=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(edge_env(settings), CAREBRIDGE_EDGE_LOG_LEVEL="warning")
    agent = start_edge_agent(env, tmp_path / "agent.log")
    try:
        wait_for(
            # A cold `python -m edge_agent run` on a busy 2-core machine may take a while.
            lambda: _reporting(_edges(cloud, admin).get(edge, {})),
            40,
            0.2,
            "the agent online",
        )
        online = _edges(cloud, admin)[edge]
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    dead = wait_for(
        lambda: (e := _edges(cloud, admin)[edge])["state"] == "offline" and e,
        30,
        0.2,
        "the will",
    )
    assert dead["last_status_at"] >= online["last_status_at"]  # kept from the last online one
    assert dead["state_since"] >= dead["last_status_at"]
    assert dead["outbox"]["capacity"] == settings.outbox_max_readings
