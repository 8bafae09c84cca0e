"""`ScaleDriver` against the emulated SIG scale, end to end: bleak → BumbleScanner/BumbleClient
→ bumble host → simulated radio → `EmulatedScale`; and `StepOnMerger`, the pure pairing of
weights with body compositions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice

from device_drivers import uuids
from device_drivers.codec.body_composition import BodyCompositionMeasurement
from device_drivers.codec.weight_scale import CLOCK_NOT_SET, UnitSystem, WeightMeasurement
from device_drivers.errors import ConnectionFailedError, PayloadError, ProfileMismatchError
from device_drivers.measurement import Measurement
from device_drivers.scale import ScaleDriver, StepOnMerger
from device_drivers.session import DeviceSession
from protocols.metrics import Metric
from protocols.reading import DeviceKind
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.scale import (
    BODY_COMPOSITION_MEASUREMENT,
    WEIGHT_MEASUREMENT,
    WEIGHT_SCALE_FEATURE,
    EmulatedScale,
)
from simulators.ble.peripheral import EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.device_drivers.session_end import indicate_as_the_driver_hangs_up

HOST_NOW = datetime(2026, 3, 14, 7, 30, 0)
COLLECTOR_NOW = datetime(2026, 3, 14, 7, 45, 10)
QUIET = 0.15
"""idle_timeout for tests: a burst arrives within milliseconds on the simulated radio."""
COMPOSITION: dict[str, Any] = {
    "muscle_pct": 41.2,
    "muscle_mass_kg": 30.0,
    "fat_free_mass_kg": 52.5,
    "soft_lean_mass_kg": 49.0,
    "body_water_kg": 38.0,
    "impedance_ohm": 485.2,
    "basal_metabolism_kj": 7000,
}
ALL_METRICS = {
    Metric.WEIGHT,
    Metric.BMI,
    Metric.HEIGHT,
    Metric.BODY_FAT,
    Metric.MUSCLE_MASS,
    Metric.BODY_WATER,
    Metric.BASAL_METABOLISM,
    Metric.IMPEDANCE,
}


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


async def _find(service: str = ScaleDriver.service_uuid) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _device, adv: service in adv.service_uuids,
        timeout=2.0,
        service_uuids=[service],
        backend=BumbleScanner,
    )
    assert device is not None
    return device


async def _session(service: str = ScaleDriver.service_uuid, **kwargs: Any) -> DeviceSession:
    return DeviceSession.connect(
        await _find(service), backend=BumbleClient, io_timeout=2.0, **kwargs
    )


async def _all(driver: ScaleDriver, idle: float = QUIET) -> list[Measurement]:
    return [m async for m in driver.measurements(idle_timeout=idle)]


def _values(measurement: Measurement) -> dict[Metric, float]:
    return {obs.metric: obs.value for obs in measurement.observations}


def _scale(**kwargs: Any) -> EmulatedScale:
    kwargs.setdefault("now", lambda: HOST_NOW)
    return EmulatedScale(**kwargs)


async def _step_on_while_collecting(
    driver: ScaleDriver, scale: EmulatedScale, *args: Any, **kwargs: Any
) -> list[Measurement]:
    collecting = asyncio.create_task(_all(driver))
    await scale.step_on(*args, **kwargs)
    return await collecting


# -- discovery, device information, clock, stored burst --------------------------------


async def test_found_by_service_then_information_features_clock_and_burst(
    radio: SimulatedRadio,
) -> None:
    await radio.add(EmulatedPeripheral(name="CB-Other", service_uuids=[0x1810]))
    scale = await radio.add(
        EmulatedScale.normal(now=lambda: HOST_NOW, clock_offset=timedelta(days=-3))
    )

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        measurements = await _all(driver)

    assert session.information.manufacturer == "CareBridge Simulated"
    assert session.information.model == "SCALE-EMU-1"
    assert driver.clock_set
    assert scale.device_time() == COLLECTOR_NOW
    assert driver.weight_feature == scale.weight_scale_feature()
    assert driver.body_composition_feature == scale.body_composition_feature()
    assert driver.device_kind is DeviceKind.BODY_COMPOSITION_SCALE
    # The two stored step-ons, each one measurement, oldest first, stamped on the old clock.
    assert [_values(m)[Metric.WEIGHT] for m in measurements] == [70.6, 70.5]
    assert [m.device_time for m in measurements] == [
        HOST_NOW - timedelta(days=4),
        HOST_NOW - timedelta(days=3, hours=1),
    ]
    assert all(set(_values(m)) == ALL_METRICS for m in measurements)
    assert scale.memory == []


async def test_step_ons_confirmed_but_not_taken_are_left_over_after_hanging_up(
    radio: SimulatedRadio,
) -> None:
    # A caller that stops taking measurements (its own failure) still gets the burst the
    # scale sent and then forgot.
    scale = await radio.add(EmulatedScale.normal(now=lambda: HOST_NOW))
    async with await _session() as session:
        driver = ScaleDriver(session)
        assert driver.left_over() == []  # before prepare: nothing received
        await driver.prepare(COLLECTOR_NOW)
        async with asyncio.timeout(5):
            while scale.memory:
                await asyncio.sleep(0.01)
        await session.close()
        left = driver.left_over()
    assert [_values(m)[Metric.WEIGHT] for m in left] == [70.6, 70.5]
    assert all(set(_values(m)) == ALL_METRICS for m in left)
    assert driver.left_over() == []


async def test_step_on_at_mtu_23_is_split_and_merged_into_one_measurement(
    radio: SimulatedRadio,
) -> None:
    scale = await radio.add(_scale())

    async with await _session(bumble={"mtu": 23}) as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 70.5, 25.3, **COMPOSITION)

    body_packets = [p for u, p in scale.packets_sent if u == BODY_COMPOSITION_MEASUREMENT]
    assert len(body_packets) == 2
    assert all(len(packet) <= 20 and packet[1] & 0x10 for packet in body_packets)
    assert measurement.kind is DeviceKind.BODY_COMPOSITION_SCALE
    assert measurement.device_time == COLLECTOR_NOW
    assert measurement.context.device_user_index == 1
    assert "multi_packet_incomplete" not in measurement.details
    assert _values(measurement) == pytest.approx(
        {
            Metric.WEIGHT: 70.5,
            Metric.BMI: 22.3,
            Metric.HEIGHT: 1.78,
            Metric.BODY_FAT: 25.3,
            Metric.MUSCLE_MASS: 30.0,
            Metric.BODY_WATER: 38.0,
            Metric.BASAL_METABOLISM: 7000 / 4.184,
            Metric.IMPEDANCE: 485.2,
        }
    )
    assert measurement.details["fat_free_mass_kg"] == 52.5


@pytest.mark.parametrize(("always_split", "expected_packets"), [(False, 1), (True, 2)])
async def test_a_large_mtu_carries_the_body_composition_whole_unless_always_split(
    radio: SimulatedRadio, always_split: bool, expected_packets: int
) -> None:
    scale = await radio.add(_scale(always_split=always_split))

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 70.5, 25.3, **COMPOSITION)

    body_packets = [p for u, p in scale.packets_sent if u == BODY_COMPOSITION_MEASUREMENT]
    assert len(body_packets) == expected_packets
    assert set(_values(measurement)) == ALL_METRICS


async def test_an_imperial_scale_still_gives_kilograms_and_metres(radio: SimulatedRadio) -> None:
    scale = await radio.add(_scale(units=UnitSystem.IMPERIAL))

    async with await _session(bumble={"mtu": 23}) as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 80.0, 28.0, **COMPOSITION)

    weight_packet = next(p for u, p in scale.packets_sent if u == WEIGHT_MEASUREMENT)
    assert weight_packet[0] & 0x01  # the scale really spoke pounds
    units = {obs.metric: obs.device_unit for obs in measurement.observations}
    assert units[Metric.WEIGHT] == "[lb_av]"
    assert units[Metric.HEIGHT] == "[in_i]"
    values = _values(measurement)
    assert values[Metric.WEIGHT] == pytest.approx(80.0, abs=0.005)
    assert values[Metric.HEIGHT] == pytest.approx(1.78, abs=0.003)
    assert values[Metric.MUSCLE_MASS] == pytest.approx(30.0, abs=0.005)
    assert values[Metric.BODY_WATER] == pytest.approx(38.0, abs=0.005)
    assert measurement.details["weight_unit_system"] == "imperial"


async def test_heart_failure_weight_gain_scenario(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedScale.heart_failure_weight_gain(now=lambda: HOST_NOW))

    async with await _session(bumble={"mtu": 23}) as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        await asyncio.sleep(0.1)  # the burst is in before anyone asks: nothing is lost
        measurements = await _all(driver)

    weights = [_values(m)[Metric.WEIGHT] for m in measurements]
    times = [m.device_time for m in measurements]
    assert weights == [78.0, 79.2, 80.6]
    assert weights[-1] - weights[0] > 2.0
    assert times[0] is not None and times[-1] is not None
    assert times[-1] - times[0] <= timedelta(days=3)
    assert [_values(m)[Metric.BODY_WATER] for m in measurements] == [42.0, 42.7, 43.4]
    assert all(set(_values(m)) == ALL_METRICS for m in measurements)


async def test_clock_never_set_then_set_by_the_collector(radio: SimulatedRadio) -> None:
    scale = await radio.add(EmulatedScale.clock_never_set(now=lambda: HOST_NOW))

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        stored_and_new = asyncio.create_task(_all(driver))
        await asyncio.sleep(0.05)
        await scale.step_on(82.2, 28.1)
        stored, new = await stored_and_new

    assert stored.device_time is None
    assert not stored.clock_set
    assert _values(stored)[Metric.WEIGHT] == 82.0
    assert new.device_time == COLLECTOR_NOW
    assert new.clock_set


async def test_a_weight_only_scale(radio: SimulatedRadio) -> None:
    scale = await radio.add(_scale(body_composition=False, user_id=None, height_m=None))

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 64.25)

    assert driver.device_kind is DeviceKind.WEIGHT_SCALE
    assert driver.body_composition_feature is None
    assert measurement.kind is DeviceKind.WEIGHT_SCALE
    assert _values(measurement) == {Metric.WEIGHT: 64.25}
    assert measurement.context.device_user_index is None


async def test_a_body_composition_only_scale_is_found_by_its_service(
    radio: SimulatedRadio,
) -> None:
    scale = await radio.add(_scale(weight_scale=False))

    async with await _session(uuids.BODY_COMPOSITION_SERVICE) as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 70.5, 25.3, **COMPOSITION)

    assert driver.weight_feature is None
    # Weight and height come from the body composition's own fields; no BMI without 0x2A9D.
    assert set(_values(measurement)) == ALL_METRICS - {Metric.BMI}
    assert _values(measurement)[Metric.WEIGHT] == 70.5


async def test_a_scale_that_switches_off_after_its_burst_ends_the_session(
    radio: SimulatedRadio,
) -> None:
    await radio.add(EmulatedScale.normal(now=lambda: HOST_NOW, disconnect_after_burst=True))
    loop = asyncio.get_running_loop()

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        started = loop.time()
        measurements = await _all(driver, idle=5.0)
        elapsed = loop.time() - started

    assert len(measurements) == 2
    assert elapsed < 1.0


async def test_a_link_lost_between_the_two_parts_raises_after_yielding_the_first(
    radio: SimulatedRadio,
) -> None:
    scale = _scale()
    scale.store(70.5, 25.3, **COMPOSITION)
    await radio.add(scale)
    scale.disconnect_after_indications(2)  # the weight and the first part
    received: list[Measurement] = []

    async with await _session(bumble={"mtu": 23}) as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        with pytest.raises(ConnectionFailedError, match="multi-packet"):
            async for measurement in driver.measurements(idle_timeout=5.0):
                received.append(measurement)

    (partial,) = received
    assert partial.details["multi_packet_incomplete"] is True
    values = _values(partial)
    assert values[Metric.WEIGHT] == 70.5
    assert Metric.IMPEDANCE not in values  # it was in the part that never came
    assert len(scale.memory) == 1  # not confirmed: the scale sends it again next time


async def test_a_malformed_weight_is_reported_and_the_body_composition_still_counts(
    radio: SimulatedRadio,
) -> None:
    scale = await radio.add(_scale())
    scale.malform_next(WEIGHT_MEASUREMENT, b"\x00")
    scale.set_value(WEIGHT_SCALE_FEATURE, b"\x01")  # a garbled feature is only ignored
    bad: list[PayloadError] = []

    async with await _session() as session:
        driver = ScaleDriver(session, merge_window=0.05, on_bad_payload=bad.append)
        await driver.prepare(COLLECTOR_NOW)
        (measurement,) = await _step_on_while_collecting(driver, scale, 70.5, 25.3)

    assert driver.weight_feature is None
    (error,) = bad
    assert error.payload == b"\x00"
    assert _values(measurement)[Metric.BODY_FAT] == 25.3
    assert _values(measurement)[Metric.WEIGHT] == 70.5  # from 0x2A9C's weight field


async def test_malformed_packets_are_logged_without_a_callback(
    radio: SimulatedRadio, caplog: pytest.LogCaptureFixture
) -> None:
    scale = await radio.add(_scale(body_composition=False))
    scale.malform_next(WEIGHT_MEASUREMENT, b"\x00")

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        assert await _step_on_while_collecting(driver, scale, 70.5) == []

    assert "malformed measurement" in caplog.text


async def test_an_unsuccessful_step_on_yields_nothing(radio: SimulatedRadio) -> None:
    scale = await radio.add(_scale(height_m=None))

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        assert await _step_on_while_collecting(driver, scale, None, None) == []


async def test_a_device_without_scale_characteristics_is_refused(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedPeripheral(name="CB-Fake", service_uuids=[0x181D]))

    async with await _session() as session:
        driver = ScaleDriver(session)
        with pytest.raises(ProfileMismatchError, match="neither"):
            await driver.prepare(COLLECTOR_NOW)
        with pytest.raises(RuntimeError, match="prepare"):
            await anext(driver.measurements())


# -- StepOnMerger: pairing rules without a radio ---------------------------------------

STAMP = datetime(2026, 3, 14, 7, 0, 0)


def _weight(kg: float = 70.0, **kwargs: Any) -> WeightMeasurement:
    return WeightMeasurement.build(kg, **kwargs)


def _body(fat: float = 25.0, **kwargs: Any) -> BodyCompositionMeasurement:
    return BodyCompositionMeasurement.build(fat, **kwargs)


def _merger(**kwargs: Any) -> StepOnMerger:
    kwargs.setdefault("expect_weight", True)
    kwargs.setdefault("expect_body_composition", True)
    return StepOnMerger(window=1.0, **kwargs)


def test_merger_pairs_untimed_records_that_arrive_together() -> None:
    merger = _merger()
    weight, body = _weight(), _body()

    assert merger.add_weight(weight, 0.0) == []
    assert merger.waiting
    assert merger.deadline() == 1.0
    assert merger.add_body_composition_packet(body, 0.2) == [(weight, body)]
    assert not merger.waiting
    assert merger.deadline() is None


def test_merger_pairs_a_body_composition_that_comes_first() -> None:
    merger = _merger()
    weight, body = _weight(), _body()

    assert merger.add_body_composition_packet(body, 0.0) == []
    assert merger.add_weight(weight, 0.1) == [(weight, body)]


def test_merger_lets_a_lonely_record_go_after_the_window() -> None:
    merger = _merger()
    weight, body = _weight(), _body()

    merger.add_weight(weight, 0.0)
    assert merger.due(0.5) == []
    assert merger.due(1.0) == [(weight, None)]
    merger.add_body_composition_packet(body, 2.0)
    assert merger.due(3.0) == [(None, body)]


def test_merger_keeps_apart_records_arriving_far_apart_or_with_other_times() -> None:
    merger = _merger()
    first, second = _weight(timestamp=STAMP), _body(timestamp=STAMP + timedelta(minutes=1))
    untimed_weight, untimed_body = _weight(timestamp=CLOCK_NOT_SET), _body()

    merger.add_weight(first, 0.0)
    assert merger.add_body_composition_packet(second, 0.1) == [(first, None)]
    assert merger.add_weight(untimed_weight, 2.0) == [(None, second)]
    assert merger.add_body_composition_packet(untimed_body, 5.0) == [(untimed_weight, None)]
    assert merger.flush() == [(None, untimed_body)]


def test_merger_pairs_equal_trusted_times_and_a_second_weight_ends_the_first() -> None:
    merger = _merger()
    early, weight, body = _weight(69.0), _weight(timestamp=STAMP), _body(timestamp=STAMP)

    merger.add_weight(early, 0.0)
    assert merger.add_weight(weight, 0.1) == [(early, None)]
    assert merger.add_body_composition_packet(body, 0.2) == [(weight, body)]


def test_merger_flush_lets_everything_waiting_go() -> None:
    merger = _merger()
    weight = _weight()
    merger.add_weight(weight, 0.0)
    assert merger.flush() == [(weight, None)]
    assert merger.flush() == []


def test_merger_a_second_body_composition_ends_the_first() -> None:
    merger = _merger()
    first, second = _body(20.0), _body(21.0)

    merger.add_body_composition_packet(first, 0.0)
    assert merger.add_body_composition_packet(second, 0.1) == [(None, first)]
    assert merger.flush() == [(None, second)]


def test_merger_joins_multi_packet_parts_before_pairing() -> None:
    merger = _merger()
    weight = _weight()
    full = _body(impedance=500.0, weight=70.0, timestamp=STAMP, user_id=1)
    first = BodyCompositionMeasurement(0x1006, 25.0, full.timestamp, 1)
    second = BodyCompositionMeasurement(0x1600, 25.0, impedance=500.0, weight=70.0)

    merger.add_weight(weight, 0.0)
    assert merger.add_body_composition_packet(first, 0.1) == []
    assert merger.deadline() == 1.0
    assert merger.add_body_composition_packet(second, 0.2) == [(weight, full)]


def test_merger_lets_a_lone_part_go_after_the_window() -> None:
    merger = _merger()
    weight = _weight()
    part = BodyCompositionMeasurement(0x1000, 25.0)

    merger.add_weight(weight, 0.0)
    merger.add_body_composition_packet(part, 0.5)
    assert merger.due(1.2) == [(weight, None)]
    assert merger.due(1.5) == [(None, part)]


def test_merger_a_lone_part_keeps_its_own_arrival_time() -> None:
    merger = _merger(expect_weight=False)
    part = BodyCompositionMeasurement(0x1000, 25.0)
    single = _body(30.0)

    merger.add_body_composition_packet(part, 0.0)
    assert merger.add_body_composition_packet(single, 0.3) == [(None, part), (None, single)]
    merger.add_body_composition_packet(part, 0.4)
    assert merger.flush() == [(None, part)]


def test_merger_without_the_other_characteristic_yields_at_once() -> None:
    weight_only = _merger(expect_body_composition=False)
    body_only = _merger(expect_weight=False)

    assert weight_only.add_weight(_weight(), 0.0) == [(_weight(), None)]
    assert body_only.add_body_composition_packet(_body(), 0.0) == [(None, _body())]


# -- the end of a session ----------------------------------------------------------------


async def test_a_step_on_indicated_while_the_driver_hangs_up_is_still_yielded(
    radio: SimulatedRadio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scale forgets a step-on once our stack confirms it; one arriving after the idle
    # timeout, before the link is down, was lost until the driver hung up itself.
    scale = await radio.add(_scale())

    async with await _session() as session:
        driver = ScaleDriver(session)
        await driver.prepare(COLLECTOR_NOW)
        indicate_as_the_driver_hangs_up(monkeypatch, session, lambda: scale.step_on(71.5))
        measurements = await _all(driver)

    assert scale.memory == []
    assert [_values(m)[Metric.WEIGHT] for m in measurements] == [71.5]
