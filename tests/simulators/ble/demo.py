"""A tiny emulated device and a driver for it, used only by the BLE simulator's own tests.

The driver uses nothing but bleak's public API plus an injectable backend, the shape real
drivers in `device_drivers` are expected to have.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.uuids import normalize_uuid_16
from bumble import gatt

from simulators.ble.peripheral import AttError, EmulatedPeripheral

THERMOMETER_SERVICE = normalize_uuid_16(0x1809)
MEASUREMENT = normalize_uuid_16(0x2A1C)  # indicate-only, like the real profile
INTERMEDIATE = normalize_uuid_16(0x2A1E)  # notify-only
INTERVAL = normalize_uuid_16(0x2A21)  # read/write uint16 seconds, with a user description
CONTROL_POINT = "c0de0001-7c6a-4f6e-9d3a-5c0a6e1b2f01"  # write + indicate, RACP-like
BOTH = "c0de0002-7c6a-4f6e-9d3a-5c0a6e1b2f01"  # read + notify + indicate
BLOB = "c0de0003-7c6a-4f6e-9d3a-5c0a6e1b2f01"  # long values, all write kinds

OP_REPORT = 0x01
DOWNLOAD_TIMEOUT_S = 2.0
RESPONSE_DONE = b"\x06\x01"
USER_DESCRIPTION = b"Interval (s)"


def encode_record(sequence: int, centi_celsius: int) -> bytes:
    return struct.pack("<Hh", sequence, centi_celsius)


def decode_record(payload: bytes) -> tuple[int, int]:
    if len(payload) != 4:
        raise ValueError(f"record must be 4 bytes, got {payload.hex()}")
    sequence, value = struct.unpack("<Hh", payload)
    return sequence, value


class DemoSensor(EmulatedPeripheral):
    """Indicates stored records on request, like a glucose meter's RACP, but smaller."""

    def __init__(self, name: str = "CB-Demo", **kwargs: Any) -> None:
        kwargs.setdefault("service_uuids", [0x1809])
        kwargs.setdefault("manufacturer_data", {0xFFFF: b"\x01\x02"})
        kwargs.setdefault("service_data", {0x1809: b"\x07"})
        kwargs.setdefault("tx_power", -8)
        super().__init__(name=name, **kwargs)
        self.records = [encode_record(i, 3650 + i) for i in range(1, 6)]

    def build_services(self) -> list[gatt.Service]:
        p = gatt.Characteristic.Properties
        description = gatt.Descriptor(
            gatt.GATT_CHARACTERISTIC_USER_DESCRIPTION_DESCRIPTOR,
            gatt.Attribute.READABLE,
            USER_DESCRIPTION,
        )
        return [
            gatt.Service(
                "1809",
                [
                    self.characteristic(MEASUREMENT, p.INDICATE),
                    self.characteristic(INTERMEDIATE, p.NOTIFY),
                    self.characteristic(
                        INTERVAL, p.READ | p.WRITE, value=b"\x3c\x00", descriptors=[description]
                    ),
                    self.characteristic(CONTROL_POINT, p.WRITE | p.INDICATE, on_write=self._cp),
                    self.characteristic(BOTH, p.READ | p.NOTIFY | p.INDICATE, value=b"\x00"),
                    self.characteristic(
                        BLOB, p.READ | p.WRITE | p.WRITE_WITHOUT_RESPONSE, value=bytes(range(200))
                    ),
                ],
            )
        ]

    def _cp(self, value: bytes) -> None:
        if value[:1] != bytes([OP_REPORT]):
            raise AttError(0x80)  # "op code not supported" as an application error
        self.spawn(self._report())

    async def _report(self) -> None:
        for record in self.records:
            if not await self.indicate(MEASUREMENT, record):
                return  # the collector left
        await self.indicate(CONTROL_POINT, RESPONSE_DONE)


class DemoDriver:
    """What a device driver looks like: bleak's public API, backend injected by the caller."""

    def __init__(
        self,
        *,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        **bleak_kwargs: Any,
    ) -> None:
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._bleak_kwargs = bleak_kwargs

    async def find(self, scan_seconds: float = 2.0) -> BLEDevice | None:
        def match(_device: BLEDevice, advertisement: AdvertisementData) -> bool:
            return THERMOMETER_SERVICE in advertisement.service_uuids

        return await BleakScanner.find_device_by_filter(
            match,
            timeout=scan_seconds,
            service_uuids=[THERMOMETER_SERVICE],
            backend=self._scanner_backend,
            **self._bleak_kwargs,
        )

    def client(
        self,
        device: BLEDevice | str,
        disconnected_callback: Callable[[BleakClient], None] | None = None,
        **kwargs: Any,
    ) -> BleakClient:
        return BleakClient(
            device,
            disconnected_callback,
            backend=self._client_backend,
            **self._bleak_kwargs,
            **kwargs,
        )

    async def download(self, client: BleakClient) -> list[tuple[int, int]]:
        """Ask for every stored record; returns them once the device says it is done."""
        records: list[tuple[int, int]] = []
        done = asyncio.get_running_loop().create_future()

        def on_record(_sender: Any, data: bytearray) -> None:
            records.append(decode_record(bytes(data)))

        def on_response(_sender: Any, data: bytearray) -> None:
            if bytes(data) == RESPONSE_DONE and not done.done():
                done.set_result(None)

        await client.start_notify(MEASUREMENT, on_record)
        await client.start_notify(CONTROL_POINT, on_response)
        await client.write_gatt_char(CONTROL_POINT, bytes([OP_REPORT]), response=True)
        async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
            await done
        await client.stop_notify(CONTROL_POINT)
        await client.stop_notify(MEASUREMENT)
        return records
