"""`DeviceSession`: one connected device over bleak's public API, shared by every driver.

It owns what all health profiles have in common — connect, Device Information, Battery,
setting the clock through Current Time — and turns bleak's exceptions into the driver
errors of `device_drivers.errors`, so a driver never sees a backend-specific failure.
The bleak backend is a parameter: None means the platform's own (BlueZ, WinRT, CoreBluetooth,
Android); tests pass the bumble-backed one from `simulators.ble.bleak_bumble`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from device_drivers import uuids
from device_drivers.codec.current_time import encode_current_time
from device_drivers.codec.device_info import decode_battery_level, decode_string
from device_drivers.errors import (
    ConnectionFailedError,
    DeviceNotFoundError,
    DeviceRejectedError,
    DriverError,
    PayloadError,
    ProcedureTimeoutError,
    ProfileMismatchError,
)
from protocols.reading import DeviceKind, DeviceRef

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
ValueCallback = Callable[[bytes], Awaitable[None] | None]
ClockSource = datetime | Callable[[], datetime]
"""What a device's clock is set to: a fixed moment, or a clock read at the moment of the
write. A live collector passes the clock: a moment taken before `prepare()`'s reads would
set the device behind by their round trips, and whole-second stamps on a clock that is
behind can put a reading before the patient session it was taken in."""

DEFAULT_CONNECT_TIMEOUT_S = 20.0
DEFAULT_IO_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    """Device Information service strings; None where the device has no such field."""

    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    hardware_revision: str | None = None
    firmware_revision: str | None = None
    software_revision: str | None = None


_DIS_FIELDS = {
    "manufacturer": uuids.MANUFACTURER_NAME,
    "model": uuids.MODEL_NUMBER,
    "serial": uuids.SERIAL_NUMBER,
    "hardware_revision": uuids.HARDWARE_REVISION,
    "firmware_revision": uuids.FIRMWARE_REVISION,
    "software_revision": uuids.SOFTWARE_REVISION,
}


def serial_from_address(address: str) -> str:
    """A stable serial for devices that report none: their address without separators."""
    return "addr-" + "".join(ch for ch in address.lower() if ch.isalnum())


class DeviceSession:
    """A connected device. Use `async with DeviceSession.connect(...)`, or `open()`/`close()`."""

    def __init__(
        self,
        client: BleakClient,
        *,
        io_timeout: float = DEFAULT_IO_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.io_timeout = io_timeout
        self.disconnected = asyncio.Event()
        self.information = DeviceInformation()

    @classmethod
    def connect(
        cls,
        device: BLEDevice | str,
        *,
        backend: type[BaseBleakClient] | None = None,
        timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        io_timeout: float = DEFAULT_IO_TIMEOUT_S,
        pair: bool = False,
        **client_kwargs: Any,
    ) -> DeviceSession:
        """A session for `device`; the link comes up on `open()` or `async with`."""
        session: DeviceSession

        def on_disconnect(_: BleakClient) -> None:
            session.disconnected.set()

        client = BleakClient(
            device,
            disconnected_callback=on_disconnect,
            timeout=timeout,
            pair=pair,
            backend=backend,
            **client_kwargs,
        )
        session = cls(client, io_timeout=io_timeout)
        return session

    @property
    def address(self) -> str:
        return self.client.address

    @property
    def is_connected(self) -> bool:
        return self.client.is_connected

    async def open(self) -> None:
        """Bring the link up; a session that is already connected is left as it is."""
        if self.client.is_connected:
            return
        try:
            await self.client.connect()
        except BleakDeviceNotFoundError as exc:
            raise DeviceNotFoundError(f"{self.address} is not advertising: {exc}") from exc
        except TimeoutError as exc:
            raise ConnectionFailedError(f"connecting to {self.address} timed out") from exc
        except BleakGATTProtocolError as exc:
            raise self._rejected("connect", exc) from exc
        except BleakError as exc:
            raise ConnectionFailedError(f"connecting to {self.address} failed: {exc}") from exc
        self.disconnected.clear()

    async def close(self) -> None:
        try:
            await self.client.disconnect()
        except BleakError as exc:
            logger.warning("disconnect from %s failed: %s", self.address, exc)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- GATT --------------------------------------------------------------------------

    def _services(self) -> BleakGATTServiceCollection:
        try:
            return self.client.services
        except BleakError as exc:  # bleak forgets the services when the link drops
            raise ConnectionFailedError(f"{self.address} is not connected") from exc

    def characteristic(self, uuid: str) -> BleakGATTCharacteristic | None:
        return self._services().get_characteristic(uuid)

    def has(self, uuid: str) -> bool:
        return self.characteristic(uuid) is not None

    def has_service(self, uuid: str) -> bool:
        return self._services().get_service(uuid) is not None

    def require(self, uuid: str, what: str) -> BleakGATTCharacteristic:
        found = self.characteristic(uuid)
        if found is None:
            raise ProfileMismatchError(f"{self.address} has no {what} characteristic ({uuid})")
        return found

    def _rejected(self, operation: str, exc: BleakGATTProtocolError) -> DeviceRejectedError:
        code = int(exc.args[0])
        return DeviceRejectedError(
            f"{self.address} refused {operation}: ATT error 0x{code:02X} ({exc.args[-1]})",
            att_error=code,
        )

    async def _io(self, operation: Awaitable[_T], what: str) -> _T:
        try:
            async with asyncio.timeout(self.io_timeout):
                return await operation
        except BleakGATTProtocolError as exc:
            raise self._rejected(what, exc) from exc
        except TimeoutError as exc:
            raise ProcedureTimeoutError(f"{what} on {self.address} got no answer") from exc
        except BleakError as exc:
            raise ConnectionFailedError(f"{what} on {self.address} failed: {exc}") from exc

    async def read(self, uuid: str, what: str) -> bytes:
        characteristic = self.require(uuid, what)
        return bytes(await self._io(self.client.read_gatt_char(characteristic), f"read {what}"))

    async def write(self, uuid: str, data: bytes, what: str, *, response: bool = True) -> None:
        characteristic = self.require(uuid, what)
        await self._io(
            self.client.write_gatt_char(characteristic, data, response=response), f"write {what}"
        )

    async def subscribe(self, uuid: str, what: str, callback: ValueCallback) -> None:
        """Notifications or indications, whichever the characteristic offers."""
        characteristic = self.require(uuid, what)

        async def deliver(_: BleakGATTCharacteristic, data: bytearray) -> None:
            result = callback(bytes(data))
            if result is not None:
                await result

        await self._io(self.client.start_notify(characteristic, deliver), f"subscribe to {what}")

    async def unsubscribe(self, uuid: str, what: str) -> None:
        characteristic = self.require(uuid, what)
        await self._io(self.client.stop_notify(characteristic), f"unsubscribe from {what}")

    # -- shared services ---------------------------------------------------------------

    async def read_device_information(self) -> DeviceInformation:
        """Every Device Information string the device has; a malformed one is logged, skipped."""
        found: dict[str, str | None] = {}
        for name, uuid in _DIS_FIELDS.items():
            if not self.has(uuid):
                found[name] = None
                continue
            raw = await self.read(uuid, name.replace("_", " "))
            try:
                found[name] = decode_string(raw).text or None
            except PayloadError as exc:
                logger.warning("ignoring %s of %s: %s", name, self.address, exc)
                found[name] = None
        self.information = DeviceInformation(**found)
        return self.information

    async def read_battery_level(self) -> int | None:
        if not self.has(uuids.BATTERY_LEVEL):
            return None
        level = decode_battery_level(await self.read(uuids.BATTERY_LEVEL, "battery level"))
        return level.percent if level.valid else None

    async def set_clock(self, now: ClockSource) -> bool:
        """Write Current Time when the device lets us; False when it has no writable clock.

        `now` is the wall-clock time the device should show (local, naive or aware —
        the profile carries no time zone), or a clock giving it, read just before the
        write (see `ClockSource`)."""
        characteristic = self.characteristic(uuids.CURRENT_TIME)
        if characteristic is None or "write" not in characteristic.properties:
            return False
        moment = now() if callable(now) else now
        try:
            await self.write(uuids.CURRENT_TIME, encode_current_time(moment), "current time")
        except DeviceRejectedError as exc:
            # A device may refuse a time it considers out of range; the reading times then
            # stay untrusted and the edge's clock rules apply, which is not a failed session.
            logger.warning("%s refused the clock write: %s", self.address, exc)
            return False
        return True

    def device_ref(self, kind: DeviceKind) -> DeviceRef:
        """The device's identity for readings: its serial, or its address if it has none."""
        info = self.information
        return DeviceRef(
            kind=kind,
            model=info.model or "unknown",
            serial=_identifier(info.serial) or serial_from_address(self.address),
            manufacturer=info.manufacturer,
        )


def _identifier(serial: str | None) -> str | None:
    """A serial as an Identifier: characters outside [A-Za-z0-9_.:-] become '-'."""
    if not serial:
        return None
    cleaned = "".join(ch if ch.isalnum() or ch in "_.:-" else "-" for ch in serial.strip())
    return cleaned[:64] or None


__all__ = [
    "ClockSource",
    "DeviceInformation",
    "DeviceSession",
    "DriverError",
    "serial_from_address",
]
