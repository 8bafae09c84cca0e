"""Which bumble `Device` plays the central, and the state shared by everything using it."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason
from bumble import hci
from bumble.device import Device

# A stack rather than a single slot so that nested radios (a test inside a fixture's radio)
# restore the outer one on exit.
_defaults: list[Device] = []


def push_default_central(device: Device) -> None:
    """Make `device` the central used by backends that were not given one explicitly."""
    _defaults.append(device)


def pop_default_central(device: Device) -> None:
    """Undo `push_default_central(device)`; tolerates out-of-order closes."""
    for index in range(len(_defaults) - 1, -1, -1):
        if _defaults[index] is device:
            del _defaults[index]
            return


@contextmanager
def default_central(device: Device) -> Iterator[Device]:
    """`with default_central(device):` – the push/pop pair as a context manager."""
    push_default_central(device)
    try:
        yield device
    finally:
        pop_default_central(device)


def current_default_central() -> Device | None:
    return _defaults[-1] if _defaults else None


def resolve_central(args: Mapping[str, Any] | None) -> Device:
    """The explicit `bumble={"central": device}` argument, else the innermost default."""
    explicit = (args or {}).get("central")
    if explicit is not None:
        if not isinstance(explicit, Device):
            raise TypeError(f"bumble['central'] must be a bumble Device, not {type(explicit)!r}")
        return explicit
    device = current_default_central()
    if device is None:
        # The same error a real backend gives on a machine without an adapter, so driver
        # code handles "no radio" in one place.
        raise BleakBluetoothNotAvailableError(
            "no bumble central: start a SimulatedRadio/HciCentral or pass bumble={'central': ...}",
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
        )
    return device


@dataclass
class CentralState:
    """Per-central bookkeeping that bumble leaves to its caller."""

    # bumble's Device allows one pending LE connection at a time; bleak users may connect
    # to several devices concurrently, so connections queue here.
    connect_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # One HCI scan serves every BleakScanner started on this central.
    active_scanners: int = 0
    scan_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_states: weakref.WeakKeyDictionary[Device, CentralState] = weakref.WeakKeyDictionary()


def state_of(device: Device) -> CentralState:
    state = _states.get(device)
    if state is None:
        state = _states[device] = CentralState()
    return state


@dataclass(frozen=True)
class BumbleDeviceDetails:
    """`BLEDevice.details` for devices found by `BumbleScanner`: enough to connect."""

    central: Device
    address: hci.Address
