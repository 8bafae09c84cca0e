"""GATT through bleak's public API: discovery, reads, writes, notify/indicate, MTU, errors."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak.uuids import normalize_uuid_16

from simulators.ble.radio import SimulatedRadio
from tests.simulators.ble.demo import (
    BLOB,
    BOTH,
    CONTROL_POINT,
    INTERMEDIATE,
    INTERVAL,
    MEASUREMENT,
    USER_DESCRIPTION,
    DemoDriver,
    DemoSensor,
)

CCCD = normalize_uuid_16(0x2902)
MANUFACTURER = normalize_uuid_16(0x2A29)


async def _found(driver: DemoDriver) -> BLEDevice:
    device = await driver.find()
    assert device is not None
    return device


async def test_service_discovery(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        uuids = {service.uuid for service in client.services}
        thermometer = client.services.get_service("1809")
        assert thermometer is not None
        interval = thermometer.get_characteristic(INTERVAL)

    assert {normalize_uuid_16(u) for u in (0x1809, 0x180A, 0x180F, 0x1805)} <= uuids
    assert interval is not None
    assert interval.properties == ["read", "write"]
    assert [d.uuid for d in interval.descriptors] == [normalize_uuid_16(0x2901)]
    assert client.name == "CB-Demo"


async def test_service_filter_limits_discovery(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver), services=["180a"]) as client:
        uuids = [service.uuid for service in client.services]

    assert uuids == [normalize_uuid_16(0x180A)]


async def test_read_and_write_with_response(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        manufacturer = await client.read_gatt_char(MANUFACTURER)
        await client.write_gatt_char(INTERVAL, b"\x1e\x00", response=True)
        interval = await client.read_gatt_char(INTERVAL)

    assert manufacturer == bytearray(b"CareBridge Simulated")
    assert interval == bytearray(b"\x1e\x00")
    assert sensor.value(INTERVAL) == b"\x1e\x00"


async def test_write_without_response_reaches_the_device(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(await _found(driver)) as client:
        await client.write_gatt_char(BLOB, b"\xaa\xbb", response=False)
        # A command has no reply; a following request is answered after it is handled.
        await client.read_gatt_char(INTERVAL)

    assert sensor.value(BLOB) == b"\xaa\xbb"


async def test_descriptor_read(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        interval = client.services.get_characteristic(INTERVAL)
        assert interval is not None
        description = await client.read_gatt_descriptor(interval.descriptors[0].handle)

    assert description == bytearray(USER_DESCRIPTION)


async def test_notify_and_indicate_are_both_delivered(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    def on_value(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        assert isinstance(data, bytearray)
        received.put_nowait((sender.uuid, bytes(data)))

    async with driver.client(await _found(driver)) as client:
        await client.start_notify(INTERMEDIATE, on_value)
        await client.start_notify(MEASUREMENT, on_value)

        notified = await sensor.notify(INTERMEDIATE, b"\x01\x02")
        confirmed = await sensor.indicate(MEASUREMENT, b"\x03\x04")

        first = await asyncio.wait_for(received.get(), 1)
        second = await asyncio.wait_for(received.get(), 1)

    assert (notified, confirmed) == (1, 1)
    assert [first, second] == [(INTERMEDIATE, b"\x01\x02"), (MEASUREMENT, b"\x03\x04")]


async def test_async_callbacks_are_supported(sensor: DemoSensor, driver: DemoDriver) -> None:
    received = asyncio.get_running_loop().create_future()

    async def on_value(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
        received.set_result(bytes(data))

    async with driver.client(await _found(driver)) as client:
        await client.start_notify(INTERMEDIATE, on_value)
        await sensor.notify(INTERMEDIATE, b"\x09")
        assert await asyncio.wait_for(received, 1) == b"\x09"


async def test_notify_is_preferred_when_both_are_offered(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(await _found(driver)) as client:
        both = client.services.get_characteristic(BOTH)
        assert both is not None
        cccd = both.get_descriptor(CCCD)
        assert cccd is not None

        await client.start_notify(both, lambda _s, _d: None)
        preferred = await client.read_gatt_descriptor(cccd.handle)
        await client.stop_notify(both)
        stopped = await client.read_gatt_descriptor(cccd.handle)
        await client.start_notify(both, lambda _s, _d: None, force_indicate=True)
        forced = await client.read_gatt_descriptor(cccd.handle)

    assert preferred == bytearray(b"\x01\x00")
    assert stopped == bytearray(b"\x00\x00")
    assert forced == bytearray(b"\x02\x00")


async def test_stop_notify_ends_delivery(sensor: DemoSensor, driver: DemoDriver) -> None:
    received: list[bytes] = []
    async with driver.client(await _found(driver)) as client:
        await client.start_notify(INTERMEDIATE, lambda _s, d: received.append(bytes(d)))
        await client.stop_notify(INTERMEDIATE)

        assert await sensor.notify(INTERMEDIATE, b"\x01") == 0
        assert not sensor.is_subscribed(INTERMEDIATE)
    assert received == []


async def test_restarting_notify_replaces_the_callback(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    first: list[bytes] = []
    second: list[bytes] = []
    async with driver.client(await _found(driver)) as client:
        await client.start_notify(INTERMEDIATE, lambda _s, d: first.append(bytes(d)))
        await client.start_notify(INTERMEDIATE, lambda _s, d: second.append(bytes(d)))
        await sensor.notify(INTERMEDIATE, b"\x05")
        await client.read_gatt_char(INTERVAL)  # lets the notification arrive

    assert (first, second) == ([], [b"\x05"])


async def test_start_notify_on_plain_characteristic_raises(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakError, match="neither notify nor indicate"):
            await client.start_notify(INTERVAL, lambda _s, _d: None)


async def test_request_response_flow_with_indications(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(await _found(driver)) as client:
        records = await driver.download(client)

    assert records == [(i, 3650 + i) for i in range(1, 6)]


async def test_mtu_exchange(sensor: DemoSensor, driver: DemoDriver) -> None:
    device = await _found(driver)
    async with driver.client(device) as client:
        default_mtu = client.mtu_size
    async with driver.client(device, bumble={"mtu": 185}) as client:
        requested = client.mtu_size
        peripheral_side = sensor.connections[0].att_mtu
        blob = client.services.get_characteristic(BLOB)
        assert blob is not None
        room = blob.max_write_without_response_size
        with pytest.raises(BleakError, match="write without response"):
            await client.write_gatt_char(blob, bytes(room + 1), response=False)
    async with driver.client(device, bumble={"mtu": 23}) as client:
        minimum = client.mtu_size

    assert default_mtu == 517
    assert (requested, peripheral_side, room) == (185, 185, 182)
    assert minimum == 23


async def test_long_values_at_the_minimum_mtu(sensor: DemoSensor, driver: DemoDriver) -> None:
    # 200 bytes at MTU 23 take Read Blob and Prepare/Execute Write procedures.
    async with driver.client(await _found(driver), bumble={"mtu": 23}) as client:
        long_read = await client.read_gatt_char(BLOB)
        await client.write_gatt_char(BLOB, bytes(range(100, 200)), response=True)

    assert long_read == bytearray(range(200))
    assert sensor.value(BLOB) == bytes(range(100, 200))


async def test_read_uses_cache_only_when_asked(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        await client.read_gatt_char(INTERVAL)
        sensor.set_value(INTERVAL, b"\x78\x00")
        cached = await client.read_gatt_char(INTERVAL, use_cached=True)
        fresh = await client.read_gatt_char(INTERVAL)

    assert (cached, fresh) == (bytearray(b"\x3c\x00"), bytearray(b"\x78\x00"))


async def test_att_errors_surface_with_their_code(sensor: DemoSensor, driver: DemoDriver) -> None:
    sensor.fail_reads(INTERVAL, 0x80)
    sensor.fail_writes(CONTROL_POINT, BleakGATTProtocolErrorCode.CCCD_IMPROPERLY_CONFIGURED)
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakGATTProtocolError) as read_error:
            await client.read_gatt_char(INTERVAL)
        with pytest.raises(BleakGATTProtocolError) as write_error:
            await client.write_gatt_char(CONTROL_POINT, b"\x01", response=True)
        with pytest.raises(BleakGATTProtocolError) as read_only:
            await client.write_gatt_char(MANUFACTURER, b"x", response=True)
        sensor.clear_faults()
        # The link survives an error response.
        assert await client.read_gatt_char(INTERVAL) == bytearray(b"\x3c\x00")

    assert read_error.value.code == 0x80
    assert write_error.value.code == BleakGATTProtocolErrorCode.CCCD_IMPROPERLY_CONFIGURED
    assert read_only.value.code == BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED


async def test_errors_raised_by_device_logic(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakGATTProtocolError) as error:
            await client.write_gatt_char(CONTROL_POINT, b"\x7f", response=True)

    assert error.value.code == 0x80


async def test_missing_characteristic_is_bleaks_own_error(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakError, match="not found"):
            await client.read_gatt_char(normalize_uuid_16(0x2A35))


async def test_explicit_client_kwargs(radio: SimulatedRadio, sensor: DemoSensor) -> None:
    async with BleakClient(sensor.address, **radio.client_kwargs(), timeout=2) as client:
        assert await client.read_gatt_char(normalize_uuid_16(0x2A25)) == bytearray(b"SIM0000001")
