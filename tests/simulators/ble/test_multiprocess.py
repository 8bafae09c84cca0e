"""The multi-process air: virtual controllers and an emulator in their own processes."""

from __future__ import annotations

from bleak.uuids import normalize_uuid_16

from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.radio import HciCentral, PeripheralProcess, VirtualControllers
from tests.simulators.ble.demo import DemoDriver


async def test_emulator_process_over_hci_tcp() -> None:
    async with (
        VirtualControllers(2) as air,
        PeripheralProcess(
            "tests.simulators.ble.demo:DemoSensor",
            air.transport(0),
            name="CB-Far",
            address="C0:DE:00:00:0F:01",
        ) as emulator,
        HciCentral(air.transport(1)),
    ):
        driver = DemoDriver(scanner_backend=BumbleScanner, client_backend=BumbleClient)
        device = await driver.find(scan_seconds=5)
        assert device is not None
        async with driver.client(device, timeout=5) as client:
            serial = await client.read_gatt_char(normalize_uuid_16(0x2A25))
            records = await driver.download(client)

    assert (device.address, device.name) == (emulator.address, "CB-Far")
    assert serial == bytearray(b"SIM0000001")
    assert records == [(i, 3650 + i) for i in range(1, 6)]
