"""The emulated peripheral's standard services and fault hooks, seen through bleak."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16

from device_drivers.codec.current_time import encode_current_time
from simulators.ble.bleak_bumble import normalize_uuid
from simulators.ble.peripheral import (
    DeviceInformation,
    EmulatedPeripheral,
    decode_current_time_write,
)
from simulators.ble.radio import SimulatedRadio
from tests.simulators.ble.demo import (
    CONTROL_POINT,
    MEASUREMENT,
    OP_REPORT,
    DemoDriver,
    DemoSensor,
    decode_record,
)

CURRENT_TIME = normalize_uuid_16(0x2A2B)
BATTERY_LEVEL = normalize_uuid_16(0x2A19)
HOST_NOW = datetime(2025, 3, 14, 9, 30, 0)


async def _found(driver: DemoDriver) -> BLEDevice:
    device = await driver.find()
    assert device is not None
    return device


async def test_current_time_write_sets_the_device_clock(
    radio: SimulatedRadio, driver: DemoDriver
) -> None:
    sensor = await radio.add(DemoSensor(now=lambda: HOST_NOW))
    collector_time = datetime(2025, 3, 14, 17, 30, 5, 500000)  # the collector's local time

    async with driver.client(await _found(driver)) as client:
        before = await client.read_gatt_char(CURRENT_TIME)
        await client.write_gatt_char(
            CURRENT_TIME, encode_current_time(collector_time, adjust_reason=0x01), response=True
        )
        after = await client.read_gatt_char(CURRENT_TIME)

    assert before == bytearray(10)  # never set: year, month and day 0 mean "unknown"
    assert sensor.clock_offset == timedelta(hours=8, seconds=5, microseconds=500000)
    assert sensor.device_time() == collector_time
    assert sensor.last_time_adjust_reason == 0x01
    assert decode_current_time_write(bytes(after)) == (collector_time, 0x01)


async def test_a_wrong_clock_is_reported_as_it_is(
    radio: SimulatedRadio, driver: DemoDriver
) -> None:
    await radio.add(DemoSensor(now=lambda: HOST_NOW, clock_offset=timedelta(days=-400)))

    async with driver.client(await _found(driver)) as client:
        value = await client.read_gatt_char(CURRENT_TIME)

    assert decode_current_time_write(bytes(value))[0] == HOST_NOW - timedelta(days=400)


async def test_invalid_current_time_writes_are_refused(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    bad_month = bytes.fromhex("e9070d0e0a000000" + "0000")
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakGATTProtocolError) as out_of_range:
            await client.write_gatt_char(CURRENT_TIME, bad_month, response=True)
        with pytest.raises(BleakGATTProtocolError) as short:
            await client.write_gatt_char(CURRENT_TIME, b"\xe9\x07", response=True)

    assert out_of_range.value.code == 0xFF
    assert short.value.code == 0x0D
    assert sensor.device_time() is None


async def test_device_information_and_battery(radio: SimulatedRadio, driver: DemoDriver) -> None:
    sensor = await radio.add(
        DemoSensor(
            device_information=DeviceInformation(
                manufacturer="Omron", model="HEM-7600T", serial="20250314001", firmware="2.1"
            ),
            battery_level=80,
        )
    )
    levels: asyncio.Queue[int] = asyncio.Queue()

    async with driver.client(await _found(driver)) as client:
        strings = [
            await client.read_gatt_char(normalize_uuid_16(u))
            for u in (0x2A29, 0x2A24, 0x2A25, 0x2A26)
        ]
        level = await client.read_gatt_char(BATTERY_LEVEL)
        await client.start_notify(BATTERY_LEVEL, lambda _s, d: levels.put_nowait(d[0]))
        await sensor.set_battery_level(15)
        low = await asyncio.wait_for(levels.get(), 1)

    assert [bytes(s).decode() for s in strings] == ["Omron", "HEM-7600T", "20250314001", "2.1"]
    assert (level, low) == (bytearray([80]), 15)


async def test_optional_services_can_be_left_out(radio: SimulatedRadio) -> None:
    bare = await radio.add(EmulatedPeripheral(name="Bare", battery_level=None, current_time=False))
    uuids = {normalize_uuid(service.uuid) for service in bare.device.gatt_server.services}

    assert normalize_uuid_16(0x180A) in uuids
    assert not {normalize_uuid_16(0x180F), normalize_uuid_16(0x1805)} & uuids
    with pytest.raises(KeyError):
        bare.value(CURRENT_TIME)
    with pytest.raises(RuntimeError):
        await bare.set_battery_level(50)


async def test_disconnect_after_n_indications(sensor: DemoSensor, driver: DemoDriver) -> None:
    received: list[tuple[int, int]] = []
    dropped = asyncio.Event()
    sensor.disconnect_after_indications(2)

    async with driver.client(await _found(driver), lambda _c: dropped.set()) as client:
        await client.start_notify(MEASUREMENT, lambda _s, d: received.append(decode_record(d)))
        await client.start_notify(CONTROL_POINT, lambda _s, _d: None)
        await client.write_gatt_char(CONTROL_POINT, bytes([OP_REPORT]), response=True)
        await asyncio.wait_for(dropped.wait(), 1)

    assert received == [(1, 3651), (2, 3652)]
    assert sensor.background_errors == []


async def test_malformed_payload_then_normal_ones(sensor: DemoSensor, driver: DemoDriver) -> None:
    payloads: list[bytes] = []
    sensor.malform_next(MEASUREMENT, b"\xff")
    sensor.malform_next(MEASUREMENT, lambda good: good[:3])  # a truncated record next

    async with driver.client(await _found(driver)) as client:
        await client.start_notify(MEASUREMENT, lambda _s, d: payloads.append(bytes(d)))
        for sequence in (1, 2, 3):
            await sensor.indicate(MEASUREMENT, sensor.records[sequence - 1])

    assert payloads == [b"\xff", sensor.records[1][:3], sensor.records[2]]
    with pytest.raises(ValueError):
        decode_record(payloads[0])


async def test_indicate_without_subscribers_sends_nothing(sensor: DemoSensor) -> None:
    assert await sensor.indicate(MEASUREMENT, b"\x00\x00\x00\x00") == 0
    assert await sensor.notify(normalize_uuid_16(0x2A1E), b"\x00") == 0


async def test_indication_to_a_collector_that_leaves(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async def leave(_sender: BleakGATTCharacteristic, _data: bytearray) -> None:
        await client.disconnect()

    client = driver.client(await _found(driver))
    await client.connect()
    await client.start_notify(MEASUREMENT, leave)

    first = await sensor.indicate(MEASUREMENT, sensor.records[0])
    await asyncio.wait_for(_until_disconnected(sensor), 1)
    second = await sensor.indicate(MEASUREMENT, sensor.records[1])

    assert (first, second) == (1, 0)


async def test_an_indication_whose_subscription_went_before_the_send_is_not_confirmed(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    received: list[bytes] = []
    async with driver.client(await _found(driver)) as client:
        await client.start_notify(MEASUREMENT, lambda _s, d: received.append(bytes(d)))
        sending = asyncio.create_task(sensor.indicate(MEASUREMENT, sensor.records[0]))
        await asyncio.sleep(0)  # the central is chosen; the send is still to come
        # As processing a disconnection does, bumble forgets the central's subscriptions.
        sensor.device.gatt_server.subscribers.clear()
        assert await sending == 0
        assert await sensor.indicate(MEASUREMENT, sensor.records[1]) == 0
    assert received == []


async def _until_disconnected(peripheral: EmulatedPeripheral) -> None:
    while peripheral.is_connected:
        await asyncio.sleep(0.005)


async def test_background_failures_are_kept(sensor: DemoSensor) -> None:
    async def broken() -> None:
        raise RuntimeError("encoder bug")

    await asyncio.gather(sensor.spawn(broken()), return_exceptions=True)

    assert [str(e) for e in sensor.background_errors] == ["encoder bug"]


def test_random_addresses_are_static_random() -> None:
    address = EmulatedPeripheral(name="X").address
    assert int(address[:2], 16) >> 6 == 0b11
    assert len(address.split(":")) == 6
