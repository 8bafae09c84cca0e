"""The agent process is killed (SIGKILL) in the middle of publishing and started again:
nothing is lost and nothing is stored twice. Real `python -m edge_agent run`, Mosquitto and
TimescaleDB; the backlog is paced so the kill lands while batches are in flight."""

from __future__ import annotations

import asyncio
import os
import signal

from devstack.edge import start_edge_agent
from edge_agent.outbox import Outbox
from protocols.messages import EdgeState
from simulators.readings import SimulatedGlucoseMeter
from tests.conftest import wait_for
from tests.integration.edge_support import (
    edge_env,
    fast_edge_settings,
    register_edge,
    retained_status,
    start_ingest,
    stored,
)

EDGE = "edge-sigkill"
TOTAL = 3000


def test_sigkill_mid_publish_then_restart_loses_nothing_and_stores_nothing_twice(
    database_url, broker, tmp_path
):
    register_edge(database_url, EDGE)
    settings = fast_edge_settings(
        EDGE,
        tmp_path / "edge",
        broker.port,
        drain_rate_readings_per_s=1000,
        drain_burst_readings=100,
        in_flight_batches=4,
    )
    meters = [SimulatedGlucoseMeter(f"GLU-K{i}") for i in range(30)]
    readings = [
        r for n in range(TOTAL // 30) for m in meters for r in m.measure(5.5, patient_id="P1")
    ]
    ids = [r.reading_id for r in readings]

    async def fill() -> None:
        async with Outbox.from_settings(settings) as outbox:
            assert await outbox.add(readings) == TOTAL

    asyncio.run(fill())
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(edge_env(settings), CAREBRIDGE_EDGE_LOG_LEVEL="warning")
    worker = start_ingest(database_url, broker.port, "ingest-sigkill")
    log = tmp_path / "agent.log"
    try:
        first = start_edge_agent(env, log)
        try:
            # Kill once some batches are stored and well before the backlog is through.
            wait_for(lambda: stored(database_url, ids)[0] >= 300, timeout=30, message="first acks")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        at_kill, _ = stored(database_url, ids)
        assert at_kill < TOTAL, "the kill came after the backlog was through"
        # The broker announced the death with the last will (retained, so the cloud and
        # anyone subscribing later see it): offline, no time, since the will is written early.
        will = retained_status(broker.port, EDGE)
        assert (will.state, will.at) == (EdgeState.OFFLINE, None)

        second = start_edge_agent(env, log)
        try:
            wait_for(lambda: stored(database_url, ids)[1] == TOTAL, timeout=60, message="drain")

            async def all_acked() -> bool:
                async with Outbox.from_settings(settings) as outbox:
                    return set((await outbox.states(ids)).values()) == {"acked"}

            wait_for(lambda: asyncio.run(all_acked()), timeout=15, message="acks in the outbox")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(15) == 0, log.read_text()[-3000:]
        goodbye = retained_status(broker.port, EDGE)
        assert goodbye.state is EdgeState.OFFLINE and goodbye.at is not None
        assert goodbye.outbox_pending == 0
    finally:
        worker.stop()

    assert stored(database_url, ids) == (TOTAL, TOTAL)
