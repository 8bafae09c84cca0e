"""Scanning through bleak's public API: discovery, filters, advertisement data mapping."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError
from bleak.uuids import normalize_uuid_16, normalize_uuid_32
from bumble import hci
from bumble.device import Advertisement

from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.bleak_bumble._advertising import to_advertisement_data
from simulators.ble.peripheral import EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio
from tests.simulators.ble.demo import THERMOMETER_SERVICE, DemoDriver, DemoSensor


async def test_find_device_by_filter_with_service_uuid(
    sensor: DemoSensor, driver: DemoDriver
) -> None:
    device = await driver.find()

    assert device is not None
    assert device.address == sensor.address
    assert device.name == "CB-Demo"


async def test_advertisement_data_is_mapped_like_bleak_backends(sensor: DemoSensor) -> None:
    heard: asyncio.Queue[AdvertisementData] = asyncio.Queue()

    def on_advertisement(_device: BLEDevice, data: AdvertisementData) -> None:
        heard.put_nowait(data)

    async with BleakScanner(
        on_advertisement, service_uuids=[THERMOMETER_SERVICE], backend=BumbleScanner
    ):
        data = await asyncio.wait_for(heard.get(), 2)

    assert data.local_name == "CB-Demo"
    assert data.service_uuids == ["00001809-0000-1000-8000-00805f9b34fb"]
    assert data.manufacturer_data == {0xFFFF: b"\x01\x02"}
    assert data.service_data == {"00001809-0000-1000-8000-00805f9b34fb": b"\x07"}
    assert data.tx_power == -8
    assert data.rssi == sensor.rssi


async def test_rssi_follows_the_peripheral(radio: SimulatedRadio, sensor: DemoSensor) -> None:
    seen: list[int] = []
    closer = asyncio.Event()

    def on_advertisement(_device: BLEDevice, data: AdvertisementData) -> None:
        seen.append(data.rssi)
        if data.rssi == -35:
            closer.set()

    async with BleakScanner(on_advertisement, backend=BumbleScanner):
        while not seen:
            await asyncio.sleep(0.005)
        sensor.rssi = -35  # the patient brings the cuff next to the gateway
        await asyncio.wait_for(closer.wait(), 2)

    assert seen[0] == -60


async def test_service_filter_hides_other_devices(radio: SimulatedRadio) -> None:
    await radio.add(EmulatedPeripheral(name="Scale", service_uuids=[0x181D]))
    await radio.add(DemoSensor())

    async with BleakScanner(service_uuids=[THERMOMETER_SERVICE], backend=BumbleScanner) as scanner:
        await asyncio.sleep(0.1)  # several 20 ms advertising intervals of both devices
        names = {device.name for device in scanner.discovered_devices}

    assert names == {"CB-Demo"}


async def test_short_uuid_filter_matches_nothing_as_in_bleak(sensor: DemoSensor) -> None:
    # bleak compares filters with the 128-bit form; a driver passing "1809" finds nothing
    # on real backends, and must find nothing here too.
    device = await BleakScanner.find_device_by_filter(
        lambda _d, _a: True, timeout=0.1, service_uuids=["1809"], backend=BumbleScanner
    )

    assert device is None


async def test_two_scanners_share_the_central(sensor: DemoSensor) -> None:
    heard_by_first = asyncio.Event()

    def on_first(_device: BLEDevice, _data: AdvertisementData) -> None:
        heard_by_first.set()

    async with BleakScanner(on_first, backend=BumbleScanner):
        async with BleakScanner(backend=BumbleScanner) as second:
            await asyncio.sleep(0.05)
            assert [d.address for d in second.discovered_devices] == [sensor.address]
        # Stopping one scanner must not stop the scan the other relies on.
        heard_by_first.clear()
        await asyncio.wait_for(heard_by_first.wait(), 1)


async def test_explicit_central_without_default() -> None:
    async with SimulatedRadio(register_default=False) as radio:
        sensor = await radio.add(DemoSensor())
        driver = DemoDriver(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            bumble={"central": radio.central},
        )
        device = await driver.find()
        assert device is not None
        async with driver.client(device) as client:
            assert client.is_connected
        async with BleakScanner(**radio.scanner_kwargs()) as scanner:
            await asyncio.sleep(0.05)
            assert [d.address for d in scanner.discovered_devices] == [sensor.address]


async def test_no_radio_is_reported_as_no_bluetooth() -> None:
    with pytest.raises(BleakBluetoothNotAvailableError):
        await BleakScanner.find_device_by_filter(
            lambda _d, _a: True, timeout=0.1, backend=BumbleScanner
        )


def test_ad_structures_of_every_uuid_size_are_mapped() -> None:
    uuid128 = bytes(reversed(bytes.fromhex("c0de00017c6a4f6e9d3a5c0a6e1b2f01")))
    raw = b"".join(
        bytes([len(body) + 1, ad_type]) + body
        for ad_type, body in [
            (0x08, b"Short"),  # shortened name only
            (0x02, b"\x10\x18\x0f"),  # incomplete 16-bit list with a stray byte
            (0x05, b"\x78\x56\x34\x12"),
            (0x07, uuid128),
            (0x20, b"\x78\x56\x34\x12\xaa"),
            (0x21, uuid128 + b"\xbb"),
            (0x0A, b"\x04"),
        ]
    )
    address = hci.Address("C0:00:00:00:00:09")
    advertisement = Advertisement(address=address, rssi=-70, data_bytes=raw)

    data = to_advertisement_data(advertisement)

    assert data.local_name == "Short"
    assert data.service_uuids == [
        normalize_uuid_16(0x1810),
        normalize_uuid_32(0x12345678),
        "c0de0001-7c6a-4f6e-9d3a-5c0a6e1b2f01",
    ]
    assert data.service_data == {
        normalize_uuid_32(0x12345678): b"\xaa",
        "c0de0001-7c6a-4f6e-9d3a-5c0a6e1b2f01": b"\xbb",
    }
    assert data.tx_power == 4
    assert data.rssi == -70


def test_advertising_payload_must_fit_legacy_advertising() -> None:
    with pytest.raises(ValueError, match="31"):
        EmulatedPeripheral(
            name="A very long blood pressure monitor name",
            service_uuids=[0x1810],
            manufacturer_data={0x0157: bytes(8)},
        )
