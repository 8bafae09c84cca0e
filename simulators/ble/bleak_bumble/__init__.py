"""A bleak backend over Google's bumble Bluetooth stack.

Driver code keeps to bleak's public API and takes the backend as an argument::

    device = await BleakScanner.find_device_by_filter(match, backend=BumbleScanner)
    async with BleakClient(device, backend=BumbleClient) as client:
        ...

The central bumble `Device` comes from, in order: an explicit
`bumble={"central": device}` keyword, the `BLEDevice` a `BumbleScanner` returned, or the
innermost running `SimulatedRadio`/`HciCentral` (see `simulators.ble.radio`), which
registers itself with `push_default_central`. Drivers therefore need no test-only
arguments beyond the backend classes.
"""

from ._central import (
    BumbleDeviceDetails,
    current_default_central,
    default_central,
    pop_default_central,
    push_default_central,
)
from ._uuids import normalize as normalize_uuid
from .client import DEFAULT_REQUESTED_MTU, BumbleClient, BumbleClientArgs
from .scanner import BumbleScanner, BumbleScannerArgs

__all__ = [
    "DEFAULT_REQUESTED_MTU",
    "BumbleClient",
    "BumbleClientArgs",
    "BumbleDeviceDetails",
    "BumbleScanner",
    "BumbleScannerArgs",
    "current_default_central",
    "default_central",
    "normalize_uuid",
    "pop_default_central",
    "push_default_central",
]
