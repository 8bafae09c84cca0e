"""Connection lifecycle through bleak's public API: timeouts, drops, pairing, several links."""

from __future__ import annotations

import asyncio
import time

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_16

from simulators.ble.radio import SimulatedRadio
from tests.simulators.ble.demo import INTERMEDIATE, INTERVAL, MEASUREMENT, DemoDriver, DemoSensor

SERIAL = normalize_uuid_16(0x2A25)


async def _found(driver: DemoDriver) -> BLEDevice:
    device = await driver.find()
    assert device is not None
    return device


async def test_peripheral_disconnect_fires_callback_and_later_reads_raise(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    dropped = asyncio.Event()
    seen_by_callback: list[BleakClient] = []

    def on_disconnect(client: BleakClient) -> None:
        seen_by_callback.append(client)
        dropped.set()

    client = driver.client(await _found(driver), on_disconnect)
    async with client:
        await sensor.disconnect()
        await asyncio.wait_for(dropped.wait(), 1)

        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(INTERVAL)
        with pytest.raises(BleakError, match="Not connected"):
            await client.start_notify(INTERMEDIATE, lambda _s, _d: None)

    assert seen_by_callback == [client]


async def test_link_lost_during_a_slow_read_fails_the_read(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    sensor.delay_responses(5.0, INTERVAL)
    async with driver.client(await _found(driver)) as client:
        read = asyncio.create_task(client.read_gatt_char(INTERVAL))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await sensor.disconnect()
        with pytest.raises(BleakError, match="disconnected"):
            await read

    assert time.monotonic() - started < 1


async def test_slow_responses_are_waited_for(sensor: DemoSensor, driver: DemoDriver) -> None:
    sensor.delay_responses(0.15)
    async with driver.client(await _found(driver)) as client:
        started = time.monotonic()
        value = await client.read_gatt_char(SERIAL)
        elapsed = time.monotonic() - started

    assert value == bytearray(b"SIM0000001")
    assert elapsed >= 0.15


async def test_own_disconnect_also_fires_the_callback_like_bluez(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    calls: list[BleakClient] = []
    async with driver.client(await _found(driver), calls.append):
        pass

    assert len(calls) == 1
    assert await driver.find() is not None  # and the device advertises again


async def test_connect_timeout_when_the_device_stops_advertising(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    device = await _found(driver)
    await sensor.stop_advertising()

    with pytest.raises(TimeoutError):
        await driver.client(device, timeout=0.2).connect()

    # The cancelled attempt must not block the next one.
    await sensor.start_advertising()
    async with driver.client(device, timeout=2) as client:
        assert client.is_connected


async def test_unknown_address_is_not_found(radio: SimulatedRadio, driver: DemoDriver) -> None:
    with pytest.raises(BleakDeviceNotFoundError) as error:
        await driver.client("C0:11:22:33:44:55", timeout=0.1).connect()

    assert error.value.identifier == "C0:11:22:33:44:55"


async def test_connect_by_address_string_scans_first(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    async with driver.client(sensor.address, timeout=2) as client:
        assert await client.read_gatt_char(SERIAL) == bytearray(b"SIM0000001")
        assert client.name == "CB-Demo"


async def test_connect_twice_is_refused(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakError, match="already connected"):
            await client.connect()


async def test_two_peripherals_connected_at_once(radio: SimulatedRadio, driver: DemoDriver) -> None:
    first = await radio.add(DemoSensor("CB-One", address="C0:DE:00:00:00:0A"))
    second = await radio.add(DemoSensor("CB-Two", address="C0:DE:00:00:00:0B"))
    first.device_information.serial = "unused"  # the DIS value is fixed at power-on
    received: dict[str, list[bytes]] = {"CB-One": [], "CB-Two": []}

    clients = [driver.client(p.address, timeout=2) for p in (first, second)]
    # Concurrent connects: bumble allows one pending LE connection; the backend queues.
    await asyncio.gather(*(client.connect() for client in clients))
    try:
        for client in clients:
            sink = received[client.name]
            await client.start_notify(INTERMEDIATE, lambda _s, d, sink=sink: sink.append(bytes(d)))
        await first.notify(INTERMEDIATE, b"\x01")
        await second.notify(INTERMEDIATE, b"\x02")
        serials = await asyncio.gather(*(client.read_gatt_char(SERIAL) for client in clients))
        records = await asyncio.gather(*(driver.download(client) for client in clients))
    finally:
        await asyncio.gather(*(client.disconnect() for client in clients))

    assert received == {"CB-One": [b"\x01"], "CB-Two": [b"\x02"]}
    assert serials == [bytearray(b"SIM0000001")] * 2
    assert records[0] == records[1] == [(i, 3650 + i) for i in range(1, 6)]


async def test_pair_and_unpair(
    radio: SimulatedRadio, sensor: DemoSensor, driver: DemoDriver
) -> None:
    client = driver.client(await _found(driver))
    await client.connect()
    await client.pair()
    encrypted = sensor.connections[0].is_encrypted
    bonds = [name for name, _ in await radio.central.keystore.get_all()]

    await client.unpair()

    assert encrypted
    assert [b.split("/")[0] for b in bonds] == [sensor.address]
    assert await radio.central.keystore.get_all() == []
    assert not client.is_connected


async def test_pair_while_connecting(sensor: DemoSensor, driver: DemoDriver) -> None:
    async with driver.client(await _found(driver), pair=True):
        assert sensor.connections[0].is_encrypted


async def test_refused_pairing_raises(sensor: DemoSensor, driver: DemoDriver) -> None:
    sensor.accept_pairing = False
    async with driver.client(await _found(driver)) as client:
        with pytest.raises(BleakError, match="Pairing"):
            await client.pair()


async def test_reconnect_after_the_device_dropped_the_link(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    device = await _found(driver)
    async with driver.client(device) as client:
        await client.start_notify(MEASUREMENT, lambda _s, _d: None)
        await sensor.disconnect()
    async with driver.client(device, timeout=2) as client:
        # A fresh session: the old subscription is gone on both sides.
        assert not sensor.is_subscribed(MEASUREMENT)
        assert await driver.download(client) == [(i, 3650 + i) for i in range(1, 6)]


async def test_removing_a_device_drops_the_link(
    radio: SimulatedRadio, sensor: DemoSensor, driver: DemoDriver
) -> None:
    dropped = asyncio.Event()
    async with driver.client(await _found(driver), lambda _c: dropped.set()):
        await radio.remove(sensor)
        await asyncio.wait_for(dropped.wait(), 1)


async def test_closing_the_radio_under_a_connected_client(driver: DemoDriver) -> None:
    dropped = asyncio.Event()
    async with SimulatedRadio() as radio:
        await radio.add(DemoSensor())
        client = driver.client(await _found(driver), lambda _c: dropped.set())
        await client.connect()
    await asyncio.wait_for(dropped.wait(), 1)
    assert not client.is_connected
    await client.disconnect()  # harmless once the link is gone
