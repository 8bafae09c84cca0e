"""A broker outage while a centre keeps measuring: real edge agent, Mosquitto, TimescaleDB.

The broker is stopped long enough for hundreds of readings to queue in the outbox and for
several reconnect attempts (time is compressed: the backoff is set to tens of milliseconds),
then started again; every reading reaches the database exactly once. Along the way: the
retained status, and the downlink (configuration, a patient notification).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from edge_agent.agent import EdgeAgent
from edge_agent.outbox import Outbox
from edge_agent.uplink import MqttUplink
from protocols import topics
from protocols.messages import (
    EdgeConfig,
    EdgeMode,
    EdgeState,
    NotificationSeverity,
    PatientNotification,
    PatientRef,
    encode,
)
from simulators.readings import SimulatedGlucoseMeter
from tests.integration.edge_support import (
    fast_edge_settings,
    publish_downlink,
    register_edge,
    retained_status,
    start_ingest,
    stored,
)

EDGE = "edge-outage"
CONFIG = EdgeConfig(
    edge_id=EDGE,
    issued_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    mode=EdgeMode.CENTRE,
    centre_patients=[PatientRef(patient_id="P1", display_name="张*明")],
)
NOTE = PatientNotification(
    notification_id=uuid.uuid4(),
    patient_id="P1",
    template_id="bp-recheck",
    severity=NotificationSeverity.ADVICE,
    title="请复测血压",
    body="请休息五分钟后复测。",
    created_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
)


async def _until(predicate, within_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_broker_outage_queues_hundreds_and_then_delivers_each_reading_once(
    database_url, broker, tmp_path
):
    register_edge(database_url, EDGE)
    worker = start_ingest(database_url, broker.port, "ingest-outage")
    settings = fast_edge_settings(EDGE, tmp_path / "edge", broker.port)
    meters = [SimulatedGlucoseMeter(f"GLU-{i}") for i in range(10)]
    produced = []

    async def measure(rounds: int) -> None:
        for n in range(rounds):
            readings = [r for m in meters for r in m.measure(5.0 + n % 7, patient_id="P1")]
            assert await agent.submit(readings) == len(readings)
            produced.extend(readings)
            await asyncio.sleep(0.02)

    try:
        async with Outbox.from_settings(settings) as outbox:
            uplink = MqttUplink(settings, asyncio.get_running_loop())
            agent = EdgeAgent(settings, outbox, uplink)
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            try:
                await asyncio.wait_for(uplink.connected.wait(), 10)

                await measure(10)
                await _until(lambda: _pending_is(outbox, 0), 15, "the first readings to be acked")
                online = await asyncio.to_thread(retained_status, broker.port, EDGE)
                assert online.state is EdgeState.ONLINE

                # Downlink: the retained configuration and a patient notification arrive.
                await asyncio.to_thread(
                    publish_downlink, broker.port, topics.config(EDGE), encode(CONFIG), retain=True
                )
                await asyncio.to_thread(
                    publish_downlink,
                    broker.port,
                    topics.notifications(EDGE),
                    encode(NOTE),
                    retain=False,
                )
                await _until(lambda: _has_downlink(agent), 10, "configuration and notification")
                assert agent.config == CONFIG

                await asyncio.to_thread(broker.stop)
                failures_before = uplink.failed_attempts
                await measure(40)  # 400 readings with no broker, over about 1.5 s
                await asyncio.sleep(0.5)
                during = await outbox.stats()
                attempts_during = uplink.failed_attempts - failures_before
                assert during.pending >= 300, during
                assert attempts_during >= 3, f"only {attempts_during} reconnect attempts"
                assert uplink.link_state().state == "connecting"

                await asyncio.to_thread(broker.start)
                await measure(5)
                await _until(lambda: _pending_is(outbox, 0), 30, "the backlog to drain")
                states = await outbox.states([r.reading_id for r in produced])
                assert set(states.values()) == {"acked"}
            finally:
                stop.set()
                await asyncio.wait_for(running, 10)
    finally:
        worker.stop()

    ids = {r.reading_id for r in produced}
    assert len(ids) == len(produced) == 550
    assert stored(database_url, ids) == (550, 550)


async def _has_downlink(agent: EdgeAgent) -> bool:
    return agent.config is not None and len(await agent.downlink.notifications("P1")) == 1


async def _pending_is(outbox: Outbox, count: int) -> bool:
    return (await outbox.stats()).pending == count
