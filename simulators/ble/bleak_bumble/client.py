"""`BumbleClient`: bleak's client ABC over a bumble central's LE connection and GATT client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, TypeVar

from bleak import BleakScanner
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, gatt, hci
from bumble.device import Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy

from ._central import BumbleDeviceDetails, resolve_central, state_of
from ._uuids import to_bleak_uuid, to_bumble_uuid
from .scanner import BumbleScanner

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# What a client asks for in the ATT MTU exchange unless told otherwise: BlueZ, Android and
# iOS all offer the 517-byte maximum, so peripherals see the same request as in the field.
DEFAULT_REQUESTED_MTU = 517

# After bumble's own connect timeout it cancels the pending connection and waits for the
# controller to confirm. A controller that never confirms must not hang the caller.
_CANCEL_GRACE_S = 1.0

# bumble's disconnect waits for the controller's Disconnection Complete without a limit; a
# link torn down mid-setup on a loaded machine may never get one, and the caller (a device
# link abandoning a timed-out connect) then hung for good. BlueZ gives up on an unanswered
# disconnect too, and the link supervision timeout ends the link on the air.
_DISCONNECT_GRACE_S = 2.0

_NOTIFY_OR_INDICATE = (
    gatt.Characteristic.Properties.NOTIFY | gatt.Characteristic.Properties.INDICATE
)


class BumbleClientArgs(TypedDict, total=False):
    """The `bumble={...}` keyword accepted by `BleakClient(..., backend=BumbleClient)`."""

    central: Device
    """The bumble Device that connects; defaults to the device's scanner or the radio's."""
    mtu: int
    """ATT MTU to request after connecting (default 517); 23 skips the exchange."""


def _property_names(properties: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


class BumbleClient(BaseBleakClient):
    """A GATT client on a bumble central, shaped like bleak's platform backends.

    Behaviour follows bleak's BlueZ backend where the ABC leaves room: the disconnected
    callback also fires after `disconnect()`, `unpair()` disconnects, and an operation on a
    lost connection raises `BleakError`. ATT error responses raise `BleakGATTProtocolError`
    carrying the ATT error code.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        services: set[str] | None = None,
        bumble: BumbleClientArgs | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=disconnected_callback,
            timeout=timeout,
            **kwargs,
        )
        self._args: BumbleClientArgs = bumble or {}
        self._details: BumbleDeviceDetails | None = None
        self._device_name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._device_name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, BumbleDeviceDetails):
                self._details = address_or_ble_device.details
        self._service_filter = [to_bumble_uuid(u) for u in services] if services else []
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._connect_complete = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- state -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._device_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            return att.ATT_DEFAULT_MTU
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    # -- connection --------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            raise BleakError("Client is already connected")
        timeout = float(kwargs.get("timeout", self._timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        details = self._details
        if details is None:
            central = resolve_central(self._args)
            # Like the platform backends: an address alone must first be seen advertising.
            found = await BleakScanner.find_device_by_address(
                self.address, timeout=timeout, backend=BumbleScanner, bumble={"central": central}
            )
            if found is None:
                raise BleakDeviceNotFoundError(
                    self.address, f"Device with address {self.address} was not found."
                )
            details = found.details
            self._device_name = self._device_name or found.name
            assert isinstance(details, BumbleDeviceDetails)
        self._details = details

        connection = await self._open_connection(details, deadline)
        self._connect_complete = False
        self._connection = connection
        self._peer = Peer(connection)
        connection.on(Connection.EVENT_DISCONNECTION, self._make_disconnection_handler(connection))
        try:
            async with asyncio.timeout_at(deadline):
                if pair:
                    await self._pair(connection)
                await self._exchange_mtu()
                self.services = await self._discover()
        except BaseException:
            await self._abandon(connection)
            raise
        self._connect_complete = True

    async def _open_connection(self, details: BumbleDeviceDetails, deadline: float) -> Connection:
        central = details.central
        loop = asyncio.get_running_loop()
        async with state_of(central).connect_lock:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"Timed out connecting to {self.address}")
            try:
                async with asyncio.timeout_at(deadline + _CANCEL_GRACE_S):
                    connection: Connection = await central.connect(
                        details.address, timeout=remaining
                    )
                    return connection
            except core.TimeoutError as error:
                raise TimeoutError(f"Timed out connecting to {self.address}") from error
            except core.BaseBumbleError as error:
                raise BleakError(f"Failed to connect to {self.address}: {error}") from error

    async def _abandon(self, connection: Connection) -> None:
        """Tear down a connection whose setup failed, without reporting a disconnect."""
        self._connect_complete = False
        if self._connection is connection:
            await self._drop_link(connection)
        self._forget(connection)

    async def _drop_link(self, connection: Connection) -> None:
        try:
            async with asyncio.timeout(_DISCONNECT_GRACE_S):
                await connection.disconnect()
        except (hci.HCI_Error, core.BaseBumbleError) as error:
            # The link is already gone (the peer left first): nothing left to release.
            logger.debug("disconnect of %s: %s", self.address, error)
        except TimeoutError:
            logger.warning(
                "disconnect of %s unconfirmed after %.1f s; forgetting the link",
                self.address,
                _DISCONNECT_GRACE_S,
            )

    def _make_disconnection_handler(self, connection: Connection) -> Callable[[int], None]:
        def on_disconnection(reason: int) -> None:
            if self._connection is not connection:
                return
            logger.debug("%s disconnected, reason 0x%02X", self.address, reason)
            report = self._connect_complete
            self._forget(connection)
            if report and self._disconnected_callback is not None:
                try:
                    self._disconnected_callback()
                except Exception:
                    logger.exception("disconnected_callback for %s raised", self.address)

        return on_disconnection

    def _forget(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._peer = None
            self._connect_complete = False
            self._subscribers.clear()
            self.services = None

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        await self._drop_link(connection)
        # The disconnection event normally did this already; a link that vanished without
        # one (a closed radio) is forgotten here.
        self._forget(connection)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        peer = self._require_peer()
        await self._pair(peer.connection)

    async def _pair(self, connection: Connection) -> None:
        if connection.is_encrypted:
            return
        try:
            await self._gatt(connection.pair(), "pair")
        except BleakGATTProtocolError:
            raise
        except BleakError as error:
            raise BleakError(f"Pairing with {self.address} failed: {error}") from error

    async def unpair(self) -> None:
        central = self._details.central if self._details else resolve_central(self._args)
        # BlueZ's RemoveDevice drops the link along with the bond.
        await self.disconnect()
        keystore = central.keystore
        if keystore is None:
            return
        wanted = self.address.upper()
        for name, _keys in await keystore.get_all():
            if name.split("/")[0].upper() == wanted:
                await keystore.delete(name)

    # -- discovery ---------------------------------------------------------------------

    async def _exchange_mtu(self) -> None:
        requested = int(self._args.get("mtu", DEFAULT_REQUESTED_MTU))
        if requested > att.ATT_DEFAULT_MTU:
            await self._gatt(self._require_peer().request_mtu(requested), "MTU exchange")

    async def _discover(self) -> BleakGATTServiceCollection:
        peer = self._require_peer()
        collection = BleakGATTServiceCollection()
        services: list[ServiceProxy] = await self._gatt(
            peer.discover_services(self._service_filter), "service discovery"
        )
        for service in services:
            bleak_service = BleakGATTService(service, service.handle, to_bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            characteristics: list[CharacteristicProxy[bytes]] = await self._gatt(
                service.discover_characteristics(), "characteristic discovery"
            )
            for characteristic in characteristics:
                await self._add_characteristic(collection, bleak_service, characteristic)
        return collection

    async def _add_characteristic(
        self,
        collection: BleakGATTServiceCollection,
        service: BleakGATTService,
        characteristic: CharacteristicProxy[bytes],
    ) -> None:
        bleak_char = BleakGATTCharacteristic(
            characteristic,
            characteristic.handle,
            to_bleak_uuid(characteristic.uuid),
            _property_names(int(characteristic.properties)),
            lambda: self.mtu_size - 3,
            service,
        )
        collection.add_characteristic(bleak_char)
        descriptors: list[DescriptorProxy] = await self._gatt(
            characteristic.discover_descriptors(), "descriptor discovery"
        )
        for descriptor in descriptors:
            collection.add_descriptor(
                BleakGATTDescriptor(
                    descriptor, descriptor.handle, to_bleak_uuid(descriptor.type), bleak_char
                )
            )

    # -- I/O ---------------------------------------------------------------------------

    async def _gatt(self, operation: Awaitable[_T], what: str) -> _T:
        """Await a bumble operation, translating its failures into bleak's exceptions."""
        task = asyncio.current_task()
        try:
            return await operation
        except asyncio.CancelledError:
            # bumble cancels a pending ATT request when the link drops; that is a failed
            # operation for our caller, unless the caller itself is being cancelled.
            if task is not None and task.cancelling() == 0 and self._connection is None:
                raise BleakError(f"{what} failed: {self.address} disconnected") from None
            raise
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except core.TimeoutError as error:
            raise TimeoutError(f"{what}: no response from {self.address}") from error
        except core.BaseBumbleError as error:
            raise BleakError(f"{what} failed: {error}") from error

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and (cached := peer.gatt_client.cached_values.get(characteristic.handle)):
            return bytearray(cached[1])
        value: bytes = await self._gatt(
            peer.gatt_client.read_value(characteristic.handle),
            f"read of characteristic {characteristic.uuid}",
        )
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        peer = self._require_peer()
        if use_cached and (cached := peer.gatt_client.cached_values.get(descriptor.handle)):
            return bytearray(cached[1])
        value: bytes = await self._gatt(
            peer.gatt_client.read_value(descriptor.handle),
            f"read of descriptor {descriptor.uuid}",
        )
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        payload = bytes(data)
        if not response and len(payload) > characteristic.max_write_without_response_size:
            raise BleakError(
                f"{len(payload)} bytes exceed the {characteristic.max_write_without_response_size}"
                " bytes a write without response can carry at this MTU"
            )
        await self._gatt(
            peer.gatt_client.write_value(characteristic.handle, payload, with_response=response),
            f"write of characteristic {characteristic.uuid}",
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        await self._gatt(
            peer.gatt_client.write_value(descriptor.handle, bytes(data), with_response=True),
            f"write of descriptor {descriptor.uuid}",
        )

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Subscribe; notifications are preferred when both are offered, as in bleak.

        `force_indicate=True` (the WinRT backend's keyword) asks for indications instead.
        """
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        if not proxy.properties & _NOTIFY_OR_INDICATE:
            raise BleakError(
                f"Characteristic {characteristic.uuid} supports neither notify nor indicate"
            )
        if proxy.get_descriptor(gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR) is None:
            raise BleakError(f"Characteristic {characteristic.uuid} has no CCCD (0x2902)")

        loop = asyncio.get_running_loop()

        def deliver(value: bytes) -> None:
            # bumble calls this from inside its PDU handling: an exception escaping here
            # would break the link's processing, so it goes where asyncio reports
            # callback errors instead.
            try:
                callback(bytearray(value))
            except Exception as error:
                loop.call_exception_handler(
                    {"message": "notification callback raised", "exception": error}
                )

        previous = self._subscribers.pop(characteristic.handle, None)
        if previous is not None:
            client = peer.gatt_client
            for registry in (client.notification_subscribers, client.indication_subscribers):
                registry.get(characteristic.handle, set()).discard(previous)
        self._subscribers[characteristic.handle] = deliver
        try:
            await self._gatt(
                peer.subscribe(
                    proxy, deliver, prefer_notify=not kwargs.get("force_indicate", False)
                ),
                f"subscription to {characteristic.uuid}",
            )
        except BaseException:
            self._subscribers.pop(characteristic.handle, None)
            raise

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        self._subscribers.pop(characteristic.handle, None)
        await self._gatt(
            peer.unsubscribe(characteristic.obj),
            f"unsubscription from {characteristic.uuid}",
        )
