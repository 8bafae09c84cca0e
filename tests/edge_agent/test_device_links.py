"""`DeviceLinks` and the scan on the simulated radio, with a plain list as the reading sink:
failures are retried by kind (and recorded), a silent link trips the watchdog, home
readings go to the owner or the chosen family member, unpaired devices are never read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.backoff import DEVICE_RETRY, FailureKind
from edge_agent.device_links import DeviceLinks, LinkOptions, scan_once
from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox
from edge_agent.runtime import device_zone
from edge_agent.settings import EdgeSettings
from protocols.reading import Reading
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.blood_pressure_monitor import BloodPressureMonitor
from simulators.ble.devices.xiaomi_scale import XiaomiBodyCompositionScale
from simulators.ble.peripheral import EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.integration.edge_station import eventually

CUFF = "C0:DE:00:00:10:01"
FAKE_METER = "C0:DE:00:00:18:99"
SCALE = "C0:DE:00:00:1B:01"


class Sink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.device_keeps: set[bool] = set()

    async def submit(self, readings: Sequence[Reading], *, device_keeps: bool = True) -> int:
        self.readings.extend(readings)
        self.device_keeps.add(device_keeps)
        return len(readings)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[LocalState]:
    async with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        yield await LocalState.attach(outbox.db)


@asynccontextmanager
async def links_running(
    state: LocalState, sink: Sink, **options: float
) -> AsyncIterator[DeviceLinks]:
    settings = EdgeSettings()
    links = DeviceLinks(
        state=state,
        sink=sink,
        mode=options.pop("mode", "centre"),  # type: ignore[arg-type]
        home_patient_id="P-OWNER",
        zone=device_zone(settings),
        scanner_backend=BumbleScanner,
        client_backend=BumbleClient,
        options=LinkOptions(connect_timeout=5, **options),  # type: ignore[arg-type]
        rand=lambda: 0.5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(links.run(stop))
    try:
        yield links
    finally:
        stop.set()
        await task


async def test_a_scan_records_what_the_catalogue_knows_for_pairing(state: LocalState) -> None:
    async with SimulatedRadio() as radio:
        await radio.add(BloodPressureMonitor(address=CUFF))
        await radio.add(EmulatedPeripheral(name="Unknown", address="C0:DE:00:00:00:77"))
        heard = await scan_once(state, 0.3, backend=BumbleScanner)
    assert [(d.address, d.catalogue_id, d.paired) for d in heard] == [
        (CUFF, "sig-blood-pressure", False)
    ]


async def test_a_device_lacking_its_profile_waits_an_hour_and_says_why(state: LocalState) -> None:
    sink = Sink()
    async with SimulatedRadio() as radio:
        # Advertises the glucose service but has none: the catalogue's driver cannot work.
        await radio.add(EmulatedPeripheral(name="Fake", address=FAKE_METER, service_uuids=[0x1808]))
        await state.pair(FAKE_METER, catalogue_id="sig-glucose", kind="glucose_meter",
                         now=datetime.now(UTC))  # fmt: skip
        async with links_running(state, sink):

            async def failed_once():
                device = await state.device(FAKE_METER)
                return device if device is not None and device.failures else None

            device = await eventually(failed_once, "the failed session recorded")
    assert device.last_error_code == FailureKind.PROFILE_MISMATCH.value
    assert "glucose measurement" in (device.last_error or "")
    wait = device.retry_at - datetime.now(UTC)
    assert timedelta(minutes=55) < wait <= timedelta(hours=1)
    assert DEVICE_RETRY[FailureKind.PROFILE_MISMATCH].first_s == 3600
    assert sink.readings == []


async def test_a_link_up_but_silent_is_cut_by_the_watchdog(state: LocalState) -> None:
    sink = Sink()
    async with SimulatedRadio() as radio:
        await radio.add(BloodPressureMonitor(address=CUFF))  # nothing in memory: silent
        await state.pair(CUFF, catalogue_id="sig-blood-pressure", kind="blood_pressure_monitor",
                         now=datetime.now(UTC))  # fmt: skip
        async with links_running(state, sink, idle_timeout=30.0, watchdog=0.5) as links:

            async def cut():
                device = await state.device(CUFF)
                return device if device is not None and device.failures else None

            device = await eventually(cut, "the watchdog to end the silent session")
            assert links.links[CUFF].last_failure is not None
    assert device.last_error_code == FailureKind.TIMEOUT.value


class FailingOnceSink(Sink):
    """A sink whose first submit fails, as a full disk or a locked file would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def submit(self, readings: Sequence[Reading], *, device_keeps: bool = True) -> int:
        if not self.failures:
            self.failures += 1
            raise OSError("disk I/O error")
        return await super().submit(readings, device_keeps=device_keeps)


class SlowSink(Sink):
    """A sink that takes longer to store than the link's watchdog allows for silence."""

    def __init__(self) -> None:
        super().__init__()
        self.storing = asyncio.Event()

    async def submit(self, readings: Sequence[Reading], *, device_keeps: bool = True) -> int:
        self.storing.set()
        await asyncio.sleep(0.8)
        return await super().submit(readings, device_keeps=device_keeps)


async def _paired_cuff_with_three_results(
    radio: SimulatedRadio, state: LocalState
) -> BloodPressureMonitor:
    cuff = await radio.add(BloodPressureMonitor(address=CUFF))
    for minutes in (3, 2, 1):
        cuff.store(120 + minutes, 80, 70, ago=timedelta(minutes=minutes))
    await state.pair(CUFF, catalogue_id="sig-blood-pressure", kind="blood_pressure_monitor",
                     now=datetime.now(UTC))  # fmt: skip
    return cuff


async def test_results_a_cuff_handed_over_survive_a_failure_to_store_one(
    state: LocalState,
) -> None:
    # The cuff forgets each result our stack confirms. When storing the first one fails,
    # it and the two the driver had received behind it are taken again after hanging up.
    sink = FailingOnceSink()
    async with SimulatedRadio() as radio:
        cuff = await _paired_cuff_with_three_results(radio, state)
        async with links_running(state, sink, idle_timeout=0.3):
            await eventually(lambda: len(sink.readings) == 12, "all three results kept")
    assert sink.failures == 1
    assert len(cuff.transferred) == 3 and not cuff.memory
    systolic = sorted(r.value for r in sink.readings if r.metric.value == "systolic")
    assert systolic == [121, 122, 123]
    assert len({r.reading_id for r in sink.readings}) == 12
    # A cuff forgets what it handed over: a full outbox must store these, not refuse them.
    assert sink.device_keeps == {False}


async def test_the_watchdog_times_the_device_not_the_storing(state: LocalState) -> None:
    sink = SlowSink()
    async with SimulatedRadio() as radio:
        await _paired_cuff_with_three_results(radio, state)
        async with links_running(state, sink, idle_timeout=0.3, watchdog=0.5) as links:
            await eventually(lambda: len(sink.readings) == 12, "all three results stored")
            assert links.links[CUFF].last_failure is None
    device = await state.device(CUFF)
    assert device is not None and device.failures == 0


async def test_an_agent_stopping_mid_burst_keeps_what_the_cuff_handed_over(
    state: LocalState,
) -> None:
    sink = SlowSink()
    async with SimulatedRadio() as radio:
        cuff = await _paired_cuff_with_three_results(radio, state)
        async with links_running(state, sink, idle_timeout=5.0):
            await eventually(lambda: len(cuff.transferred) == 3, "the cuff's burst confirmed")
            await sink.storing.wait()
            assert sink.readings == []
        # Stopped while the first result was being stored and two waited in the driver.
    assert len(sink.readings) == 12
    assert sorted(r.value for r in sink.readings if r.metric.value == "systolic") == [
        121, 122, 123
    ]  # fmt: skip


async def test_home_readings_are_the_owners_or_the_chosen_members_and_unpaired_are_ignored(
    state: LocalState,
) -> None:
    sink = Sink()
    async with SimulatedRadio() as radio:
        cuff = await radio.add(BloodPressureMonitor(address=CUFF))
        stranger = await radio.add(BloodPressureMonitor(address="C0:DE:00:00:10:09"))
        stranger.store(150, 95, 80)
        cuff.store(121, 79, 66, ago=timedelta(minutes=1))
        await state.add_member("P-MUM", "妈妈")
        await state.pair(CUFF, catalogue_id="sig-blood-pressure", kind="blood_pressure_monitor",
                         now=datetime.now(UTC))  # fmt: skip
        async with links_running(state, sink, mode="home", idle_timeout=0.3, resync_after=0.1):
            await eventually(lambda: len(sink.readings) == 4, "the owner's cuff reading")
            await state.choose_member("P-MUM", now=datetime.now(UTC), lasts=timedelta(minutes=5))
            cuff.store(133, 85, 72)
            await eventually(lambda: len(sink.readings) == 8, "the member's cuff reading")
    owners = {r.patient_id for r in sink.readings[:4]}
    members = {r.patient_id for r in sink.readings[4:]}
    assert (owners, members) == ({"P-OWNER"}, {"P-MUM"})
    assert {r.device.serial for r in sink.readings} == {"SIMBPM0001"}
    assert all(r.source.value == "home" for r in sink.readings)
    assert stranger.memory, "an unpaired device is never read"


async def test_a_paired_broadcast_scale_is_heard_from_the_first_frame(state: LocalState) -> None:
    sink = Sink()
    async with SimulatedRadio() as radio:
        scale = await radio.add(XiaomiBodyCompositionScale(address=SCALE, frame_seconds=0.03))
        await state.pair(SCALE, catalogue_id="xiaomi-mibcs2", kind="body_composition_scale",
                         now=datetime.now(UTC))  # fmt: skip
        async with links_running(state, sink, mode="home", idle_timeout=0.5) as links:
            await eventually(lambda: links.links.get(SCALE) and links.links[SCALE].connected,
                             "the agent listening for the scale")  # fmt: skip
            await scale.weigh(72.5, 480)
            await eventually(lambda: sink.readings, "the weighing")
            await asyncio.sleep(0.6)  # the listener ends and starts again: nothing twice
    weights = [r for r in sink.readings if r.metric.value == "weight"]
    assert [(r.value, r.patient_id, r.device.serial) for r in weights] == [
        (72.5, "P-OWNER", "addr-c0de00001b01")
    ]
