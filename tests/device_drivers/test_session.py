"""`DeviceSession` against an emulated peripheral with only the shared services (DIS,
Battery, Current Time), through bleak and the bumble backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from bleak import BleakScanner

from device_drivers import uuids
from device_drivers.errors import (
    ConnectionFailedError,
    DeviceNotFoundError,
    DeviceRejectedError,
    ProcedureTimeoutError,
    ProfileMismatchError,
)
from device_drivers.session import DeviceSession, serial_from_address
from protocols.reading import DeviceKind
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.peripheral import DeviceInformation, EmulatedPeripheral
from simulators.ble.radio import SimulatedRadio

ADDRESS = "C0:DE:00:00:10:01"
INSUFFICIENT_AUTHENTICATION = 0x05


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    async with SimulatedRadio() as radio:
        yield radio


async def _open(radio: SimulatedRadio, peripheral: EmulatedPeripheral) -> DeviceSession:
    await radio.add(peripheral)
    found = await BleakScanner.find_device_by_address(
        peripheral.address, timeout=5.0, backend=BumbleScanner
    )
    assert found is not None
    session = DeviceSession.connect(found, backend=BumbleClient, io_timeout=1.0)
    await session.open()
    return session


async def test_reads_device_information_and_battery_and_sets_the_clock(
    radio: SimulatedRadio,
) -> None:
    device = EmulatedPeripheral(
        name="CB-Shared",
        address=ADDRESS,
        device_information=DeviceInformation(
            manufacturer="Yuwell", model="YE-680", serial="SN 42/7", firmware="2.1"
        ),
        battery_level=64,
        clock_offset=timedelta(hours=-2),
    )
    session = await _open(radio, device)
    try:
        info = await session.read_device_information()
        assert (info.manufacturer, info.model, info.firmware_revision) == (
            "Yuwell",
            "YE-680",
            "2.1",
        )
        assert info.hardware_revision is None
        assert await session.read_battery_level() == 64
        assert session.has_service(uuids.DEVICE_INFORMATION_SERVICE)
        assert not session.has_service(uuids.GLUCOSE_SERVICE)
        ref = session.device_ref(DeviceKind.BLOOD_PRESSURE_MONITOR)
        # A serial with characters outside the identifier alphabet is kept, made safe.
        assert ref.serial == "SN-42-7"
        assert ref.manufacturer == "Yuwell"

        now = datetime.now().replace(microsecond=0)
        assert await session.set_clock(now)
        device_time = device.device_time()
        assert device_time is not None
        assert abs(device_time - now) < timedelta(seconds=2)
    finally:
        await session.close()
    assert not session.is_connected


async def test_a_device_without_serial_or_clock(radio: SimulatedRadio) -> None:
    device = EmulatedPeripheral(
        name="CB-Bare",
        address=ADDRESS,
        device_information=DeviceInformation(manufacturer=None, model=None, serial=None),
        battery_level=None,
        current_time=False,
    )
    async with await _open(radio, device) as session:
        await session.read_device_information()
        assert await session.read_battery_level() is None
        assert not await session.set_clock(datetime.now())
        ref = session.device_ref(DeviceKind.WEIGHT_SCALE)
        assert ref.serial == serial_from_address(ADDRESS) == "addr-c0de00001001"
        assert ref.model == "unknown"
        with pytest.raises(ProfileMismatchError, match="glucose measurement"):
            await session.read(uuids.GLUCOSE_MEASUREMENT, "glucose measurement")


async def test_att_errors_and_silence_become_driver_errors(radio: SimulatedRadio) -> None:
    device = EmulatedPeripheral(name="CB-Grumpy", address=ADDRESS)
    async with await _open(radio, device) as session:
        device.fail_reads(uuids.BATTERY_LEVEL, INSUFFICIENT_AUTHENTICATION)
        with pytest.raises(DeviceRejectedError) as rejected:
            await session.read_battery_level()
        assert rejected.value.att_error == INSUFFICIENT_AUTHENTICATION
        assert "0x05" in rejected.value.reason

        # A device that refuses the clock write leaves its readings' times untrusted;
        # that is reported, not a failed session.
        device.fail_writes(uuids.CURRENT_TIME, 0x80)
        assert not await session.set_clock(datetime.now())

        device.clear_faults()
        device.delay_responses(3.0, uuids.MODEL_NUMBER)
        with pytest.raises(ProcedureTimeoutError, match="no answer"):
            await session.read(uuids.MODEL_NUMBER, "model number")


async def test_a_dropped_link_is_seen_and_reported(radio: SimulatedRadio) -> None:
    device = EmulatedPeripheral(name="CB-Flaky", address=ADDRESS, readvertise=False)
    session = await _open(radio, device)
    await device.disconnect()
    await asyncio.wait_for(session.disconnected.wait(), 5.0)
    with pytest.raises(ConnectionFailedError):
        await session.read(uuids.MODEL_NUMBER, "model number")
    await session.close()


async def test_a_device_that_is_not_there(radio: SimulatedRadio) -> None:
    session = DeviceSession.connect(
        "C0:DE:00:00:99:99", backend=BumbleClient, timeout=0.5, bumble={"central": radio.central}
    )
    with pytest.raises((DeviceNotFoundError, ConnectionFailedError)):
        await session.open()
