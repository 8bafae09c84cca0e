"""`PulseOximeterDriver` end to end: bleak → BumbleScanner/BumbleClient → bumble host →
SimulatedRadio → the emulated oximeter of `simulators.ble.devices.pulse_oximeter`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta, timezone

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from device_drivers import uuids
from device_drivers.codec import pulse_oximetry
from device_drivers.codec.racp import GeneralResponse, RacpRequest, ResponseCode
from device_drivers.codec.wire import Special
from device_drivers.errors import (
    ConnectionFailedError,
    DeviceRejectedError,
    ProfileMismatchError,
    RecordAccessError,
)
from device_drivers.measurement import Measurement, to_readings
from device_drivers.pulse_oximeter import PulseOximeterDriver
from device_drivers.record_access import RecordAccess
from device_drivers.session import DeviceSession
from protocols.metrics import Metric
from protocols.reading import DeviceKind, Source, StatusFlag
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices import pulse_oximeter as emulated
from simulators.ble.devices.pulse_oximeter import (
    ATT_CCCD_IMPROPERLY_CONFIGURED,
    ATT_PROCEDURE_ALREADY_IN_PROGRESS,
    CONTINUOUS,
    RACP,
    SPOT_CHECK,
    PulseOximeter,
    stored_spot_check,
)
from simulators.ble.peripheral import DeviceInformation, EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.device_drivers.session_end import indicate_as_the_driver_hangs_up

INSUFFICIENT_AUTHENTICATION = 0x05
NOW = datetime(2026, 5, 6, 7, 8, 9)
IDLE = 0.15


def _other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    before = _other_tasks()
    async with SimulatedRadio() as radio:
        yield radio
    # The driver's own tasks (download, link watcher) must end with the session.
    leaked = [task for task in _other_tasks() - before if not task.done()]
    assert not leaked, f"tasks left running: {leaked}"


@contextlib.asynccontextmanager
async def connected(
    radio: SimulatedRadio, device: EmulatedPeripheral, *, add: bool = True
) -> AsyncIterator[DeviceSession]:
    if add:
        await radio.add(device)

    def is_this_oximeter(found: BLEDevice, advertisement: AdvertisementData) -> bool:
        # Discovery is by service, as the edge does; the address only tells apart the
        # devices of one test.
        return (
            PulseOximeterDriver.service_uuid in advertisement.service_uuids
            and found.address == device.address
        )

    found = await BleakScanner.find_device_by_filter(
        is_this_oximeter, timeout=5.0, backend=BumbleScanner
    )
    assert found is not None
    session = DeviceSession.connect(found, backend=BumbleClient, io_timeout=1.0)
    async with session:
        yield session


async def _prepared(session: DeviceSession, **options: float) -> PulseOximeterDriver:
    driver = PulseOximeterDriver(session, **options)
    await driver.prepare(NOW)
    return driver


async def _collect(
    driver: PulseOximeterDriver, *, idle_timeout: float = IDLE, **options: int
) -> list[Measurement]:
    return [m async for m in driver.measurements(idle_timeout=idle_timeout, **options)]


async def _while_collecting(
    driver: PulseOximeterDriver, work: Awaitable[object], *, idle_timeout: float = IDLE
) -> list[Measurement]:
    """Run the device-side `work` while the driver listens, as a patient would use it."""
    collecting = asyncio.create_task(_collect(driver, idle_timeout=idle_timeout))
    await asyncio.sleep(0)
    await work
    return await collecting


def _values(measurement: Measurement) -> dict[Metric, float]:
    return {o.metric: o.value for o in measurement.observations}


async def test_discovers_by_service_reads_information_and_features_and_sets_the_clock(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.normal(
        device_information=DeviceInformation(manufacturer="Yuwell", model="YX306", serial="PX9")
    )
    async with connected(radio, device) as session:
        driver = await _prepared(session)

        assert PulseOximeterDriver.kind is DeviceKind.PULSE_OXIMETER
        assert (driver.information.manufacturer, driver.information.model) == ("Yuwell", "YX306")
        assert driver.features == device.features
        assert not driver.stores_spot_checks
        assert driver.clock_set
        device_time = device.device_time()
        assert device_time is not None and abs(device_time - NOW) < timedelta(seconds=2)
        assert device.is_subscribed(SPOT_CHECK) and device.is_subscribed(CONTINUOUS)
        assert session.device_ref(driver.kind).serial == "PX9"


async def test_downloads_stored_spot_checks_through_racp_report_all(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        assert driver.stores_spot_checks
        # PLXS records have no sequence numbers: a cursor changes nothing, all are asked for.
        got = await _collect(driver, after_sequence=41)

    assert device.racp_requests == [bytes.fromhex("0101")]
    assert [(_values(m), m.device_time) for m in got] == [
        ({Metric.SPO2: 97.0, Metric.PULSE_RATE: 66.0}, datetime(2026, 1, 2, 3, 4, 5)),
        ({Metric.SPO2: 95.0, Metric.PULSE_RATE: 71.0}, datetime(2026, 1, 2, 9, 0, 0)),
        ({Metric.SPO2: 93.5, Metric.PULSE_RATE: 80.0}, datetime(2026, 1, 2, 21, 30, 0)),
    ]
    assert all(m.details["from_storage"] and m.clock_set for m in got)
    assert len(device.stored) == 3  # reporting does not delete


async def test_a_second_download_gives_the_same_reading_ids(radio: SimulatedRadio) -> None:
    device = PulseOximeter.with_storage()
    received = datetime(2026, 5, 6, tzinfo=UTC)
    ids: list[set[object]] = []
    async with connected(radio, device) as session:
        for _ in range(2):
            await session.open()  # a session that went quiet was ended by the driver
            driver = await _prepared(session)
            readings = [
                r
                for m in await _collect(driver)
                for r in to_readings(
                    m,
                    device=session.device_ref(driver.kind),
                    received_at=received,
                    source=Source.HOME,
                    device_timezone=timezone(timedelta(hours=8)),
                )
            ]
            ids.append({r.reading_id for r in readings})
            received += timedelta(hours=1)
    assert len(ids[0]) == 6 and ids[0] == ids[1]


async def test_empty_storage_is_not_an_error_and_live_readings_follow(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage(records=[])
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        got = await _while_collecting(driver, device.measure_spot(98.0, 64.0))
    assert [_values(m) for m in got] == [{Metric.SPO2: 98.0, Metric.PULSE_RATE: 64.0}]
    assert device.stored == []  # delivered live, so not kept


async def test_a_confirmed_spot_check_not_taken_is_left_over_after_hanging_up(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage(records=[])
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        assert await device.measure_spot(93.0, 81.0)  # confirmed: the oximeter forgets it
        await session.close()
        left = driver.left_over()
    assert device.stored == []
    assert [_values(m) for m in left] == [{Metric.SPO2: 93.0, Metric.PULSE_RATE: 81.0}]
    assert driver.left_over() == []


async def test_a_spot_check_taken_with_no_collector_is_stored_for_later(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage(records=[])
    await radio.add(device)
    assert not await device.measure_spot(91.0, 77.0)
    await radio.remove(device)
    async with connected(radio, device) as session:
        got = await _collect(await _prepared(session))
    assert [_values(m) for m in got] == [{Metric.SPO2: 91.0, Metric.PULSE_RATE: 77.0}]
    assert got[0].details["from_storage"]


async def test_live_spot_check_carries_the_device_clock(radio: SimulatedRadio) -> None:
    device = PulseOximeter.normal()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        got = await _while_collecting(
            driver, device.measure_spot(device_sensor_status=1 << 5, pulse_amplitude_index=0.8)
        )
    (measurement,) = got
    assert _values(measurement) == {Metric.SPO2: 97.0, Metric.PULSE_RATE: 72.0}
    assert measurement.clock_set
    assert measurement.device_time is not None
    assert abs(measurement.device_time - NOW) < timedelta(seconds=2)
    assert measurement.flags == {StatusFlag.LOW_PERFUSION}
    assert measurement.details["pulse_amplitude_index_pct"] == 0.8
    assert measurement.context.site is None


async def test_desaturation_reaches_the_reading_unchanged(radio: SimulatedRadio) -> None:
    device = PulseOximeter.desaturation()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        (measurement,) = await _while_collecting(driver, device.measure_spot())
        readings = to_readings(
            measurement,
            device=session.device_ref(driver.kind),
            received_at=datetime.now(UTC),
            source=Source.HOME,
            device_timezone=UTC,
        )
    assert {r.metric: (r.value, r.unit) for r in readings} == {
        Metric.SPO2: (86.0, "%"),
        Metric.PULSE_RATE: (108.0, "/min"),
    }


async def test_clock_never_set_is_flagged_on_every_reading(radio: SimulatedRadio) -> None:
    device = PulseOximeter.clock_never_set()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        assert not driver.clock_set  # no Current Time service to write
        (measurement,) = await _while_collecting(driver, device.measure_spot())
        received = datetime(2026, 5, 6, 7, 8, 30, tzinfo=UTC)
        readings = to_readings(
            measurement,
            device=session.device_ref(driver.kind),
            received_at=received,
            source=Source.HOME,
            device_timezone=UTC,
        )
    assert not measurement.clock_set
    assert measurement.device_time is not None and measurement.device_time.year == 2000
    assert all(StatusFlag.CLOCK_UNSET in r.flags for r in readings)
    assert all(r.measured_at == received for r in readings)


async def test_continuous_stream_is_thinned_to_one_per_interval(radio: SimulatedRadio) -> None:
    device = PulseOximeter.normal()
    values = [(96.0 + i % 2, 70.0 + i) for i in range(20)]
    async with connected(radio, device) as session:
        thinned = await _prepared(session, continuous_every=60.0)
        kept = await _while_collecting(thinned, device.stream_continuous(values, interval=0.005))
        assert not session.is_connected  # the driver hung up once the stream went quiet
        await session.open()
        everything = PulseOximeterDriver(session, continuous_every=0)
        await everything.prepare(NOW)
        all_of_them = await _while_collecting(
            everything, device.stream_continuous(values, interval=0.005)
        )
    assert [_values(m) for m in kept] == [{Metric.SPO2: 96.0, Metric.PULSE_RATE: 70.0}]
    assert kept[0].details["characteristic"] == "continuous"
    assert [_values(m)[Metric.PULSE_RATE] for m in all_of_them] == [v[1] for v in values]


async def test_continuous_keeps_one_measurement_each_interval(radio: SimulatedRadio) -> None:
    device = PulseOximeter.normal()
    async with connected(radio, device) as session:
        driver = await _prepared(session, continuous_every=0.1)
        values = [(95.0, 60.0 + i) for i in range(6)]
        got = await _while_collecting(driver, device.stream_continuous(values, interval=0.06))
    # Sent at about 0, 60, 120, ... 300 ms: 0 and ~120 and ~240 ms are each ≥ 100 ms on.
    assert 2 <= len(got) <= 4
    assert got[0].observations[1].value == 60.0


async def test_att_error_on_features_is_a_device_rejection(radio: SimulatedRadio) -> None:
    device = PulseOximeter.normal()
    await radio.add(device)
    device.fail_reads(0x2A60, INSUFFICIENT_AUTHENTICATION)
    async with connected(radio, device, add=False) as session:
        with pytest.raises(DeviceRejectedError) as caught:
            await _prepared(session)
    assert caught.value.att_error == INSUFFICIENT_AUTHENTICATION


async def test_att_error_on_the_racp_write_is_a_device_rejection(radio: SimulatedRadio) -> None:
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        device.fail_writes(RACP, ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        with pytest.raises(DeviceRejectedError) as caught:
            await _collect(driver)
    assert caught.value.att_error == ATT_PROCEDURE_ALREADY_IN_PROGRESS


async def test_disconnect_mid_download_raises_after_the_records_received(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage()
    got: list[Measurement] = []
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        device.disconnect_after_indications(2)
        with pytest.raises(ConnectionFailedError):
            async for measurement in driver.measurements(idle_timeout=IDLE):
                got.append(measurement)
    assert [m.device_time for m in got] == [
        datetime(2026, 1, 2, 3, 4, 5),
        datetime(2026, 1, 2, 9, 0, 0),
    ]


async def test_a_failure_response_to_the_download_is_a_record_access_error(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        device.malform_next(RACP, bytes.fromhex("06000108"))
        with pytest.raises(RecordAccessError) as caught:
            await _collect(driver)
    assert caught.value.response_code == ResponseCode.PROCEDURE_NOT_COMPLETED


async def test_a_device_leaving_after_its_burst_ends_the_session_quietly(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.normal()
    async with connected(radio, device) as session:
        driver = await _prepared(session)

        async def measure_then_switch_off() -> None:
            await device.measure_spot(99.0, 58.0)
            await device.disconnect()

        got = await _while_collecting(driver, measure_then_switch_off(), idle_timeout=5.0)
    assert [_values(m) for m in got] == [{Metric.SPO2: 99.0, Metric.PULSE_RATE: 58.0}]


async def test_malformed_and_empty_values_are_skipped(radio: SimulatedRadio) -> None:
    device = PulseOximeter.normal()
    async with connected(radio, device) as session:
        driver = await _prepared(session)

        async def garbled_then_good() -> None:
            device.malform_next(SPOT_CHECK, bytes.fromhex("0162"))
            await device.measure_spot()
            await device.measure_spot(Special.NAN, Special.NAN)  # nothing to report
            await device.measure_spot(96.0, 70.0)

        got = await _while_collecting(driver, garbled_then_good())
    assert [_values(m) for m in got] == [{Metric.SPO2: 96.0, Metric.PULSE_RATE: 70.0}]
    assert len(driver.malformed) == 1


async def test_garbled_features_leave_the_characteristics_to_decide(
    radio: SimulatedRadio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulated, "encode_features", lambda _features: b"\x01")
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        got = await _collect(driver)
    assert driver.features is None and len(driver.malformed) == 1
    assert driver.stores_spot_checks and len(got) == 3


async def test_a_device_without_the_service_or_its_measurements_is_refused(
    radio: SimulatedRadio,
) -> None:
    bare = EmulatedPeripheral(name="CB-Other", service_uuids=[0x1822])
    async with connected(radio, bare) as session:
        with pytest.raises(ProfileMismatchError, match="no Pulse Oximeter service"):
            await _prepared(session)
    empty = PulseOximeter(spot_check=False, continuous=False, name="CB-Empty")
    async with connected(radio, empty) as session:
        with pytest.raises(ProfileMismatchError, match="neither"):
            await _prepared(session)


async def test_driver_usage_errors() -> None:
    with pytest.raises(ValueError, match="continuous_every"):
        PulseOximeterDriver(
            DeviceSession.connect("00:00:00:00:00:00", backend=BumbleClient), continuous_every=-1
        )
    driver = PulseOximeterDriver(DeviceSession.connect("00:00:00:00:00:00", backend=BumbleClient))
    with pytest.raises(RuntimeError, match="prepare"):
        await anext(driver.measurements())


async def test_leaving_a_download_early_aborts_it(radio: SimulatedRadio) -> None:
    device = PulseOximeter.with_storage()
    device.report_interval = 0.05
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        async with aclosing(driver.measurements(idle_timeout=IDLE)) as stream:
            first = await anext(stream)
        assert first.device_time == datetime(2026, 1, 2, 3, 4, 5)
        assert device.racp_requests == [bytes.fromhex("0101"), bytes.fromhex("0300")]
        # The device is free again: the next download runs to its end.
        again = await _collect(driver)
    assert [m.device_time for m in again][-3:] == [
        datetime(2026, 1, 2, 3, 4, 5),
        datetime(2026, 1, 2, 9, 0, 0),
        datetime(2026, 1, 2, 21, 30, 0),
    ]


# -- the emulator's Record Access Control Point, as any collector sees it ---------------


class RawRacp:
    """Writes raw RACP requests and collects the indications, without `RecordAccess`."""

    def __init__(self, session: DeviceSession) -> None:
        self.session = session
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    async def start(self) -> None:
        await self.session.subscribe(uuids.PLX_SPOT_CHECK_MEASUREMENT, "spot", lambda _: None)
        await self.session.subscribe(uuids.RECORD_ACCESS_CONTROL_POINT, "RACP", self.answers.put)

    async def ask(self, request: str) -> str:
        await self.session.write(uuids.RECORD_ACCESS_CONTROL_POINT, bytes.fromhex(request), "RACP")
        async with asyncio.timeout(1.0):
            return (await self.answers.get()).hex()


RACP_EXCHANGES = [
    ("0401", "05000300"),  # number of stored records: 3
    ("0106", "06000104"),  # "last record": valid RACP, not PLXS → operator not supported
    ("0103012a00", "06000104"),
    ("0100", "06000103"),  # Null operator
    ("0109", "06000103"),  # undefined operator
    ("01", "06000103"),  # no operator at all
    ("010101", "06000105"),  # "all" takes no operand
    ("0701", "06000702"),  # undefined op code
    ("0500", "06000502"),  # a response op code written as a request
    ("0301", "06000303"),  # abort needs the Null operator
    ("0300", "06000301"),  # abort with nothing running
]


async def test_emulated_racp_answers_as_plxs_defines(radio: SimulatedRadio) -> None:
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        racp = RawRacp(session)
        await racp.start()
        answers = [(request, await racp.ask(request)) for request, _ in RACP_EXCHANGES]
    assert answers == RACP_EXCHANGES


async def test_emulated_racp_delete_and_count(radio: SimulatedRadio) -> None:
    device = PulseOximeter.with_storage()
    async with connected(radio, device) as session:
        access = RecordAccess(session)
        assert await access.count() == 3
        answer = await access.run(RacpRequest.delete_all())
        assert answer == GeneralResponse(0x02, ResponseCode.SUCCESS)
        assert await access.count() == 0
        nothing = await access.run(RacpRequest.report_all())
        assert isinstance(nothing, GeneralResponse) and nothing.no_records


async def test_emulated_racp_refuses_writes_before_indications_and_while_busy(
    radio: SimulatedRadio,
) -> None:
    records = [stored_spot_check(95.0, 70.0, datetime(2026, 1, 1, 0, i)) for i in range(5)]
    device = PulseOximeter.with_storage(records)
    device.report_interval = 0.05
    async with connected(radio, device) as session:
        with pytest.raises(DeviceRejectedError) as early:
            await session.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"\x01\x01", "RACP")
        assert early.value.att_error == ATT_CCCD_IMPROPERLY_CONFIGURED
        racp = RawRacp(session)
        await racp.start()
        with pytest.raises(DeviceRejectedError) as empty:
            await session.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"", "RACP")
        assert empty.value.att_error == 0x0D
        await session.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"\x01\x01", "RACP")
        with pytest.raises(DeviceRejectedError) as busy:
            await session.write(uuids.RECORD_ACCESS_CONTROL_POINT, b"\x04\x01", "RACP")
        assert busy.value.att_error == ATT_PROCEDURE_ALREADY_IN_PROGRESS
        # Abort is the one request allowed while a report runs; the report then never ends.
        assert await racp.ask("0300") == "06000301"
        await asyncio.sleep(0.05)
        late = [racp.answers.get_nowait() for _ in range(racp.answers.qsize())]
        assert bytes.fromhex("06000101") not in late
    assert len(device.stored) == 5


def test_emulated_features_follow_the_options() -> None:
    plain = PulseOximeter.normal().features
    stored = PulseOximeter.with_storage().features
    assert not plain.spot_check_storage and stored.spot_check_storage
    assert plain.supports(pulse_oximetry.FEATURE_SPOT_CHECK_TIMESTAMP)
    no_stamp = PulseOximeter(features=pulse_oximetry.PlxFeatures.of(0))
    assert no_stamp.spot_check_record().timestamp is None


async def test_a_refused_abort_is_logged_and_the_stream_still_closes(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    device = PulseOximeter.with_storage()
    device.report_interval = 0.05
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        async with aclosing(driver.measurements(idle_timeout=IDLE)) as stream:
            await anext(stream)
            device.fail_writes(RACP, ATT_PROCEDURE_ALREADY_IN_PROGRESS)
    assert "aborting the download failed" in caplog.text


# -- the end of a session ----------------------------------------------------------------


async def test_a_spot_check_indicated_while_the_driver_hangs_up_is_still_yielded(
    radio: SimulatedRadio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The oximeter forgets a spot-check once our stack confirms it; one that arrives after
    # the idle timeout, before the link is down, was lost until the driver hung up itself
    # and handed on what came in meanwhile.
    device = PulseOximeter.with_storage(records=[])
    async with connected(radio, device) as session:
        driver = await _prepared(session)
        confirmed: list[bool] = []

        async def spot_check() -> None:
            confirmed.append(await device.measure_spot(93.0, 81.0))

        indicate_as_the_driver_hangs_up(monkeypatch, session, spot_check)
        got = await _collect(driver)
    assert confirmed == [True] and device.stored == []
    assert [_values(m) for m in got] == [{Metric.SPO2: 93.0, Metric.PULSE_RATE: 81.0}]


async def test_a_spot_check_after_the_session_went_quiet_waits_on_the_device(
    radio: SimulatedRadio,
) -> None:
    device = PulseOximeter.with_storage(records=[])
    async with connected(radio, device) as session:
        assert await _collect(await _prepared(session)) == []
        assert not session.is_connected
        assert not await device.measure_spot(94.0, 72.0)
        await session.open()
        got = await _collect(await _prepared(session))
    assert [_values(m) for m in got] == [{Metric.SPO2: 94.0, Metric.PULSE_RATE: 72.0}]
    assert got[0].details["from_storage"]
