"""`BloodPressureMonitorDriver` against the emulated cuff, end to end: bleak →
BumbleScanner/BumbleClient → bumble host → simulated radio → `BloodPressureMonitor`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice

from device_drivers import uuids
from device_drivers.blood_pressure_monitor import BloodPressureMonitorDriver
from device_drivers.codec.blood_pressure import (
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    PressureUnit,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from device_drivers.codec.wire import Special
from device_drivers.errors import (
    ConnectionFailedError,
    DeviceRejectedError,
    PayloadError,
    ProcedureTimeoutError,
    ProfileMismatchError,
)
from device_drivers.measurement import Measurement
from device_drivers.session import DeviceSession
from protocols.metrics import Metric
from protocols.reading import DeviceKind, StatusFlag
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.blood_pressure_monitor import (
    DEFAULT_FEATURE,
    FEATURE,
    INTERMEDIATE_CUFF_PRESSURE,
    MEASUREMENT,
    BloodPressureMonitor,
)
from simulators.ble.peripheral import DeviceInformation, EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.device_drivers.session_end import indicate_as_the_driver_hangs_up

HOST_NOW = datetime(2026, 3, 14, 9, 30, 0)
COLLECTOR_NOW = datetime(2026, 3, 14, 17, 30, 5)
"""The collector's local wall clock, which the driver writes to the cuff."""
INSUFFICIENT_AUTHENTICATION = 0x05
MANUFACTURER_NAME = 0x2A29
QUIET = 0.15
"""idle_timeout for tests: a burst arrives within milliseconds on the simulated radio."""


def _stray_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    before = _stray_tasks()
    async with SimulatedRadio() as radio:
        yield radio
    await asyncio.sleep(0)  # let cancelled waits of the driver finish unwinding
    leaked = [task for task in _stray_tasks() - before if not task.done()]
    assert not leaked, f"tasks left running after the radio closed: {leaked}"


async def _find() -> BLEDevice:
    """Discovery as the edge does it: by the service the driver declares."""
    device = await BleakScanner.find_device_by_filter(
        lambda _device, adv: BloodPressureMonitorDriver.service_uuid in adv.service_uuids,
        timeout=2.0,
        service_uuids=[BloodPressureMonitorDriver.service_uuid],
        backend=BumbleScanner,
    )
    assert device is not None
    return device


async def _session(io_timeout: float = 2.0) -> DeviceSession:
    return DeviceSession.connect(await _find(), backend=BumbleClient, io_timeout=io_timeout)


async def _all(driver: BloodPressureMonitorDriver, idle: float = QUIET) -> list[Measurement]:
    return [m async for m in driver.measurements(idle_timeout=idle)]


def _value(measurement: Measurement, metric: Metric) -> float:
    (found,) = [o for o in measurement.observations if o.metric is metric]
    return round(found.value, 1)


def _bp(measurement: Measurement) -> tuple[float, float]:
    return _value(measurement, Metric.SYSTOLIC), _value(measurement, Metric.DIASTOLIC)


# -- discovery, device information, clock ----------------------------------------------


async def test_found_by_its_service_then_information_features_and_clock(
    radio: SimulatedRadio,
) -> None:
    await radio.add(EmulatedPeripheral(name="CB-Other", service_uuids=[0x1822]))
    monitor = await radio.add(
        BloodPressureMonitor.normal(
            now=lambda: HOST_NOW,
            clock_offset=timedelta(days=-3),
            device_information=DeviceInformation(
                manufacturer="Omron", model="HEM-7600T", serial="2025 0314/001", firmware="2.1"
            ),
        )
    )

    async with await _session() as session:
        assert session.address == monitor.address
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        reference = session.device_ref(driver.kind)

    assert monitor.device_time() == COLLECTOR_NOW
    assert monitor.last_time_adjust_reason == 0x01  # manual time update
    assert driver.clock_set
    assert driver.feature == DEFAULT_FEATURE
    assert (session.information.manufacturer, session.information.firmware_revision) == (
        "Omron",
        "2.1",
    )
    assert reference.kind is DeviceKind.BLOOD_PRESSURE_MONITOR
    assert (reference.model, reference.serial) == ("HEM-7600T", "2025-0314-001")


async def test_a_live_clock_is_read_as_the_write_goes_out_not_before_the_reads(
    radio: SimulatedRadio,
) -> None:
    """Device Information and the features take round trips before the clock write; a
    moment taken before them would set the cuff behind by their time, and its whole-second
    stamps could then fall before the patient session the reading was taken in."""
    monitor = await radio.add(
        BloodPressureMonitor(now=lambda: HOST_NOW, device_information=DeviceInformation(
            serial="CUFF-7"))
    )  # fmt: skip
    read_before_the_clock: list[tuple[str | None, object]] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)

        def clock() -> datetime:
            read_before_the_clock.append((session.information.serial, driver.feature))
            return COLLECTOR_NOW

        await driver.prepare(clock)

    assert read_before_the_clock == [("CUFF-7", DEFAULT_FEATURE)]
    assert monitor.device_time() == COLLECTOR_NOW
    assert driver.clock_set


# -- stored results --------------------------------------------------------------------


async def test_stored_burst_arrives_in_order_and_the_session_ends_when_quiet(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        started = time.monotonic()
        results = await _all(driver)
        elapsed = time.monotonic() - started

    assert [_bp(m) for m in results] == [(118.0, 76.0), (122.0, 79.0), (119.0, 77.0)]
    assert [_value(m, Metric.PULSE_RATE) for m in results] == [68.0, 71.0, 66.0]
    assert [_value(m, Metric.MEAN_ARTERIAL_PRESSURE) for m in results] == [90.0, 93.3, 91.0]
    assert [m.device_time for m in results] == [
        HOST_NOW - timedelta(days=2),
        HOST_NOW - timedelta(days=1),
        HOST_NOW - timedelta(hours=2),
    ]
    assert all(m.clock_set and m.kind is DeviceKind.BLOOD_PRESSURE_MONITOR for m in results)
    assert monitor.memory == []
    assert len(monitor.transferred) == 3
    assert QUIET <= elapsed < QUIET + 1.0


async def test_a_monitor_switching_off_after_its_burst_is_a_normal_end(
    radio: SimulatedRadio,
) -> None:
    await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW, disconnect_after_burst=True))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        started = time.monotonic()
        results = await _all(driver, idle=5.0)
        elapsed = time.monotonic() - started
        dropped = session.disconnected.is_set()

    assert [_bp(m)[0] for m in results] == [118.0, 122.0, 119.0]
    assert dropped
    assert elapsed < 2.0  # ended by the disconnect, not by the 5 s idle timeout


async def test_a_burst_cut_short_is_resent_next_time(radio: SimulatedRadio) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))
    monitor.disconnect_after_indications(1)

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        first = await _all(driver, idle=5.0)
    monitor.clear_faults()
    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        second = await _all(driver)

    assert [_bp(m)[0] for m in first] == [118.0]
    assert [_bp(m)[0] for m in second] == [122.0, 119.0]


async def test_hypertensive_crisis_values_come_through_unchanged(radio: SimulatedRadio) -> None:
    await radio.add(BloodPressureMonitor.hypertensive_crisis(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        results = await _all(driver)

    crisis = results[-1]
    assert [_bp(m) for m in results] == [(152.0, 96.0), (185.0, 125.0)]
    assert _value(crisis, Metric.MEAN_ARTERIAL_PRESSURE) == 145.0
    assert _value(crisis, Metric.PULSE_RATE) == 96.0
    assert crisis.device_time == HOST_NOW - timedelta(minutes=10)
    assert crisis.flags == frozenset()


async def test_user_id_and_status_bits(radio: SimulatedRadio) -> None:
    await radio.add(BloodPressureMonitor.irregular_pulse(now=lambda: HOST_NOW, user_id=2))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (result,) = await _all(driver)

    assert result.flags == {StatusFlag.IRREGULAR_PULSE, StatusFlag.PULSE_RATE_OUT_OF_RANGE}
    assert result.context.device_user_index == 2
    assert result.details["measurement_status"] == 0x000C
    assert result.details["pulse_rate_range"] == "exceeds_upper_limit"
    assert _value(result, Metric.PULSE_RATE) == 118.0


async def test_results_stored_before_the_clock_was_set(radio: SimulatedRadio) -> None:
    monitor = await radio.add(BloodPressureMonitor.clock_never_set(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        stored = await _all(driver)
        # The driver hung up once the monitor went quiet: the next result waits in its
        # memory, stamped by the clock that session set, for the next connection.
        await monitor.measure(124, 80, 69)
        await session.open()
        again = BloodPressureMonitorDriver(session)
        await again.prepare(COLLECTOR_NOW)
        (live,) = await _all(again)

    assert [(m.device_time, m.clock_set) for m in stored] == [(None, False), (None, False)]
    assert stored[0].details["time_stamp_raw"]["year"] == 0
    assert (live.device_time, live.clock_set) == (COLLECTOR_NOW, True)


# -- live measurement ------------------------------------------------------------------


async def test_live_measurement_reports_cuff_progress_before_the_result(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW))
    events: list[tuple[str, float]] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(
            session, on_cuff_pressure=lambda mmhg: events.append(("cuff", mmhg))
        )
        await driver.prepare(COLLECTOR_NOW)

        async def consume() -> list[Measurement]:
            results = []
            async for measurement in driver.measurements(idle_timeout=QUIET):
                events.append(("result", _bp(measurement)[0]))
                results.append(measurement)
            return results

        consumer = asyncio.create_task(consume())
        await monitor.measure(128, 82, 70, steps=4)
        (result,) = await consumer

    cuff = [mmhg for kind, mmhg in events if kind == "cuff"]
    peak = cuff.index(max(cuff))
    assert [kind for kind, _ in events] == ["cuff"] * 8 + ["result"]
    assert cuff == monitor.cuff_pressures_sent
    assert cuff[: peak + 1] == sorted(cuff[: peak + 1]) and max(cuff) > 128
    assert cuff[peak:] == sorted(cuff[peak:], reverse=True) and cuff[-1] < 82
    assert _bp(result) == (128.0, 82.0)
    assert _value(result, Metric.PULSE_RATE) == 70.0
    assert result.device_time == COLLECTOR_NOW  # stamped with the clock the driver set
    assert monitor.memory == []


async def test_a_monitor_reporting_in_kpa(radio: SimulatedRadio) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW, unit=PressureUnit.KPA))
    progress: list[float] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_cuff_pressure=progress.append)
        await driver.prepare(COLLECTOR_NOW)
        await monitor.measure(120, 80, 72)
        (result,) = await _all(driver)

    systolic = next(o for o in result.observations if o.metric is Metric.SYSTOLIC)
    assert (systolic.device_value, systolic.device_unit) == (16.0, "kPa")
    assert systolic.unit == "mm[Hg]"
    assert systolic.value == pytest.approx(120.01, abs=0.01)
    assert _value(result, Metric.DIASTOLIC) == pytest.approx(80.3, abs=0.05)
    assert progress == pytest.approx([kpa * 7.50062 for kpa in monitor.cuff_pressures_sent])
    assert max(progress) == pytest.approx(150, abs=0.5)


async def test_without_cuff_pressure_or_clock_the_result_still_arrives(
    radio: SimulatedRadio,
) -> None:
    # The barest cuff: no 0x2A36, no 0x2A49, no Current Time, no time stamps.
    monitor = await radio.add(
        BloodPressureMonitor(
            now=lambda: HOST_NOW,
            cuff_pressure=False,
            feature=None,
            current_time=False,
            time_stamps=False,
        )
    )
    progress: list[float] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_cuff_pressure=progress.append)
        await driver.prepare(COLLECTOR_NOW)
        await monitor.measure(131, 85, 77, mean_arterial_pressure=100.0)
        (result,) = await _all(driver)

    assert (driver.clock_set, driver.feature) == (False, None)
    assert progress == []
    assert _bp(result) == (131.0, 85.0)
    assert _value(result, Metric.MEAN_ARTERIAL_PRESSURE) == 100.0
    assert (result.device_time, result.clock_set) == (None, True)


async def test_a_result_taken_while_nobody_listens_waits_in_memory(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        await session.unsubscribe(uuids.BLOOD_PRESSURE_MEASUREMENT, "blood pressure measurement")
        kept = await monitor.measure(126, 81, 73)
        missed = await _all(driver)
    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (later,) = await _all(driver)

    assert missed == []
    assert monitor.transferred == [kept]
    assert _bp(later) == (126.0, 81.0)


async def test_a_link_lost_mid_measurement_fails_after_what_arrived(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW))
    monitor.store(117, 75, 64)
    inflating = asyncio.Event()
    received: list[Measurement] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_cuff_pressure=lambda _p: inflating.set())
        await driver.prepare(COLLECTOR_NOW)

        async def consume() -> None:
            async for measurement in driver.measurements(idle_timeout=5.0):
                received.append(measurement)

        consumer = asyncio.create_task(consume())
        measuring = asyncio.create_task(monitor.measure(140, 90, 80))
        await asyncio.wait_for(inflating.wait(), 1.0)
        await monitor.disconnect()
        with pytest.raises(ConnectionFailedError, match="during a measurement"):
            await consumer
        unsent = await measuring

    assert [_bp(m) for m in received] == [(117.0, 75.0)]
    assert monitor.memory == [unsent]  # kept for the next connection


async def test_a_monitor_going_silent_mid_measurement_ends_the_session(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW, step_interval=0.5))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        measuring = asyncio.create_task(monitor.measure(120, 80, 70, steps=1))
        with caplog.at_level(logging.WARNING):
            results = await _all(driver, idle=0.1)
        measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)

    assert results == []
    assert "went silent during a measurement" in caplog.text


# -- bad data --------------------------------------------------------------------------


async def test_a_malformed_result_is_reported_and_the_next_still_arrives(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))
    monitor.malform_next(MEASUREMENT, lambda good: good[:5])
    bad: list[PayloadError] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_bad_payload=bad.append)
        await driver.prepare(COLLECTOR_NOW)
        results = await _all(driver)

    assert [_bp(m)[0] for m in results] == [122.0, 119.0]
    assert len(bad) == 1
    assert bad[0].payload == encode_blood_pressure_measurement(monitor.transferred[0])[:5]
    assert "blood pressure measurement" in str(bad[0])


async def test_a_malformed_result_without_a_callback_is_logged(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = await radio.add(BloodPressureMonitor.hypertensive_crisis(now=lambda: HOST_NOW))
    monitor.malform_next(MEASUREMENT, b"\x04")

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        with caplog.at_level(logging.WARNING):
            results = await _all(driver)

    assert [_bp(m) for m in results] == [(185.0, 125.0)]
    assert "malformed measurement" in caplog.text


async def test_a_failed_cuff_measurement_yields_nothing_and_is_no_dead_letter(
    radio: SimulatedRadio,
) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))
    failed = BloodPressureMeasurement.of(Special.NAN, Special.NAN, Special.NAN, pulse_rate=70)
    monitor.malform_next(MEASUREMENT, encode_blood_pressure_measurement(failed))
    bad: list[PayloadError] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_bad_payload=bad.append)
        await driver.prepare(COLLECTOR_NOW)
        results = await _all(driver)

    assert [_bp(m)[0] for m in results] == [122.0, 119.0]
    assert bad == []


async def test_garbled_features_and_cuff_pressures_do_not_stop_the_reading(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW))
    monitor.set_value(FEATURE, b"\x3f")
    not_a_number = IntermediateCuffPressure.of(Special.NAN)
    monitor.malform_next(INTERMEDIATE_CUFF_PRESSURE, b"\x00\x91")
    monitor.malform_next(
        INTERMEDIATE_CUFF_PRESSURE, encode_intermediate_cuff_pressure(not_a_number)
    )
    progress: list[float] = []

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session, on_cuff_pressure=progress.append)
        with caplog.at_level(logging.WARNING):
            await driver.prepare(COLLECTOR_NOW)
            await monitor.measure(120, 80, 70)
            (result,) = await _all(driver)

    assert driver.feature is None
    assert progress == pytest.approx(monitor.cuff_pressures_sent[2:])
    assert _bp(result) == (120.0, 80.0)
    assert "ignoring the features" in caplog.text
    assert "ignoring a cuff pressure" in caplog.text


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("characteristic", [MANUFACTURER_NAME, FEATURE])
async def test_an_att_error_becomes_device_rejected(
    radio: SimulatedRadio, characteristic: int
) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))
    monitor.fail_reads(characteristic, INSUFFICIENT_AUTHENTICATION)

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        with pytest.raises(DeviceRejectedError) as rejected:
            await driver.prepare(COLLECTOR_NOW)

    assert rejected.value.att_error == INSUFFICIENT_AUTHENTICATION
    assert len(monitor.memory) == 3  # nothing was subscribed, nothing sent


async def test_slow_responses_beyond_the_io_timeout(radio: SimulatedRadio) -> None:
    monitor = await radio.add(BloodPressureMonitor.normal(now=lambda: HOST_NOW))
    monitor.delay_responses(0.5)

    async with await _session(io_timeout=0.1) as session:
        driver = BloodPressureMonitorDriver(session)
        started = time.monotonic()
        with pytest.raises(ProcedureTimeoutError):
            await driver.prepare(COLLECTOR_NOW)
        elapsed = time.monotonic() - started

    assert elapsed < 0.4


async def test_a_device_without_blood_pressure_measurement_is_refused(
    radio: SimulatedRadio,
) -> None:
    await radio.add(EmulatedPeripheral(name="CB-Fake", service_uuids=[0x1810]))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        with pytest.raises(ProfileMismatchError, match="blood pressure measurement"):
            await driver.prepare(COLLECTOR_NOW)
        with pytest.raises(RuntimeError, match="prepare"):
            await _all(driver)


# -- the end of a session ----------------------------------------------------------------


async def test_a_result_indicated_while_the_driver_hangs_up_is_still_yielded(
    radio: SimulatedRadio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The monitor drops a result from memory once our stack confirms it; one arriving after
    # the idle timeout, before the link is down, was lost until the driver hung up itself.
    monitor = await radio.add(BloodPressureMonitor(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = BloodPressureMonitorDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        monitor.store(131, 84, 77)  # in memory; sent only as the driver hangs up
        indicate_as_the_driver_hangs_up(monkeypatch, session, monitor.send_stored)
        results = await _all(driver)

    assert monitor.memory == []
    assert [_bp(m) for m in results] == [(131.0, 84.0)]
