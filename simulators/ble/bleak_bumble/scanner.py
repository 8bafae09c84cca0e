"""`BumbleScanner`: bleak's scanner ABC over a bumble central's LE scan."""

from __future__ import annotations

import logging
from typing import Any, Literal, TypedDict

from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bumble.device import Advertisement, Device

from ._advertising import to_advertisement_data
from ._central import BumbleDeviceDetails, resolve_central, state_of

logger = logging.getLogger(__name__)


class BumbleScannerArgs(TypedDict, total=False):
    """The `bumble={...}` keyword accepted by `BleakScanner(..., backend=BumbleScanner)`."""

    central: Device
    """The bumble Device that scans; defaults to the innermost running radio's central."""


class BumbleScanner(BaseBleakScanner):
    """Scans with a bumble `Device` and reports what it hears the way bleak backends do.

    Args:
        detection_callback: as for `BleakScanner`.
        service_uuids: as for `BleakScanner`; like bleak, compared against the advertised
            UUIDs in their 128-bit lowercase form.
        scanning_mode: "active" merges scan responses; "passive" reports each PDU.
        bumble: optional `BumbleScannerArgs`.
        **kwargs: other backends' arguments (`bluez=`, `cb=`), accepted and ignored so
            that driver code stays backend-neutral.
    """

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        bumble: BumbleScannerArgs | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._args: BumbleScannerArgs = bumble or {}
        self._active = scanning_mode == "active"
        self._central: Device | None = None

    async def start(self) -> None:
        if self._central is not None:
            return
        central = resolve_central(self._args)
        self.seen_devices = {}
        state = state_of(central)
        central.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        self._central = central
        async with state.scan_lock:
            state.active_scanners += 1
            if state.active_scanners == 1:
                try:
                    await central.start_scanning(active=self._active, filter_duplicates=False)
                except BaseException:
                    state.active_scanners -= 1
                    central.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
                    self._central = None
                    raise

    async def stop(self) -> None:
        central, self._central = self._central, None
        if central is None:
            return
        central.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        state = state_of(central)
        async with state.scan_lock:
            state.active_scanners -= 1
            # A radio closed under a running scanner has already powered the host off.
            if state.active_scanners == 0 and central.is_scanning and central.powered_on:
                await central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = to_advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        assert self._central is not None
        address = advertisement.address.to_string(with_type_qualifier=False)
        device = self.create_or_update_device(
            key=address,
            address=address,
            name=data.local_name,
            details=BumbleDeviceDetails(central=self._central, address=advertisement.address),
            adv=data,
        )
        self.call_detection_callbacks(device, data)
