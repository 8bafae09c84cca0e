"""An emulated Xiaomi Mi Body Composition Scale 2 (MIBCS): readings only in its advertisements.

The scale puts a 13-byte frame of its own layout in service data under the SIG Body
Composition UUID 0x181B (`device_drivers.vendors.xiaomi_scale`). `weigh()` plays one
weighing as the real scale broadcasts it: settling weights (not stabilized), the stable
weight — first without impedance if `impedance_delay_frames` asks for it, then with the
impedance — and finally the same values with "load removed". Each frame stays on the air
for `frame_seconds` (many advertising events, like the real scale's repeats).

Like the real scale it sleeps — does not advertise — until someone steps on, and goes back
to sleep after the last frame of a weighing (`sleep_after=False` keeps it on the air).

`EmulatedPeripheral` builds its advertising data from `service_data` when advertising
starts and has no call to change it while advertising; `broadcast()` updates the dict and
restarts advertising, which bumble's `start_advertising` allows (it stops the old set).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bumble.core import UUID
from bumble.host import Host

from device_drivers.codec.weight_scale import CLOCK_NOT_SET, timestamp_field
from device_drivers.codec.wire import DateTimeField
from device_drivers.vendors.xiaomi_scale import (
    MiBodyCompositionAdvertisement,
    ScaleUnit,
    encode_mibcs,
)
from protocols.units import KG_PER_JIN, KG_PER_LB
from simulators.ble.peripheral import EmulatedPeripheral

SERVICE_DATA_UUID: Final = UUID.from_16_bits(0x181B)
FRAME_SECONDS: Final = 0.06
"""Three 20 ms advertising events per frame: every scan sees each frame."""
SETTLING: Final = (0.55, 0.9, 0.985)
"""Fractions of the final weight the display passes through while the user steps on."""


def _in_unit(kg: float, unit: ScaleUnit) -> float:
    if unit is ScaleUnit.KG:
        return float((Decimal(repr(kg)) / Decimal("0.005")).to_integral_value() * Decimal("0.005"))
    per = KG_PER_LB if unit is ScaleUnit.LB else KG_PER_JIN
    return round(kg / per, 2)


class XiaomiBodyCompositionScale(EmulatedPeripheral):
    """A MIBCS on the air.

    Args:
        unit: what it displays and broadcasts; `weigh()` takes kg.
        frame_seconds: how long each frame is advertised.
    """

    def __init__(
        self,
        name: str = "MIBFS",
        *,
        unit: ScaleUnit = ScaleUnit.KG,
        frame_seconds: float = FRAME_SECONDS,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("clock_offset", timedelta(0))
        kwargs.setdefault("battery_level", None)
        super().__init__(name=name, **kwargs)
        self.unit = unit
        self.frame_seconds = frame_seconds
        self.frames_sent: list[bytes] = []
        self.asleep = False
        # What it shows between weighings: nothing on the plate, "load removed".
        idle = MiBodyCompositionAdvertisement.build(
            0.0, unit=unit, stabilized=False, load_removed=True, timestamp=self._stamp(None)
        )
        self.service_data[SERVICE_DATA_UUID] = encode_mibcs(idle)

    async def start(self, host: Host) -> None:
        await super().start(host)
        await self.sleep()

    async def sleep(self) -> None:
        """Stop advertising until the next `broadcast()`."""
        if self.is_advertising:
            await self.stop_advertising()
        self.asleep = True

    def _stamp(self, at: datetime | None) -> DateTimeField:
        moment = at if at is not None else self.device_time()
        if moment is None:
            return CLOCK_NOT_SET
        stamp = timestamp_field(moment.replace(microsecond=0))
        assert stamp is not None
        return stamp

    def frames(
        self,
        weight_kg: float,
        impedance_ohm: int | None = None,
        *,
        at: datetime | None = None,
        impedance_delay_frames: int = 0,
        stable_frames: int = 3,
        removed_frames: int = 2,
    ) -> list[MiBodyCompositionAdvertisement]:
        """The frames of one weighing, in broadcast order (see the module docstring)."""
        stamp = self._stamp(at)
        weight = _in_unit(weight_kg, self.unit)

        def frame(value: float, **flags: Any) -> MiBodyCompositionAdvertisement:
            return MiBodyCompositionAdvertisement.build(
                value, unit=self.unit, timestamp=stamp, **flags
            )

        out = [frame(_in_unit(weight_kg * f, self.unit), stabilized=False) for f in SETTLING]
        if impedance_ohm is not None:
            out += [frame(weight) for _ in range(impedance_delay_frames)]
        out += [frame(weight, impedance=impedance_ohm) for _ in range(stable_frames)]
        out += [
            frame(weight, impedance=impedance_ohm, load_removed=True)
            for _ in range(removed_frames)
        ]
        return out

    async def weigh(
        self,
        weight_kg: float,
        impedance_ohm: int | None = None,
        *,
        sleep_after: bool = True,
        **options: Any,
    ) -> list[MiBodyCompositionAdvertisement]:
        """Broadcast one weighing, frame by frame (options as for `frames()`)."""
        frames = self.frames(weight_kg, impedance_ohm, **options)
        for frame in frames:
            await self.broadcast(encode_mibcs(frame))
            await asyncio.sleep(self.frame_seconds)
        if sleep_after:
            await self.sleep()
        return frames

    async def broadcast(self, payload: bytes) -> None:
        """Advertise `payload` as the 0x181B service data from now on (any bytes: tests
        send malformed frames this way)."""
        self.service_data[SERVICE_DATA_UUID] = bytes(payload)
        self.frames_sent.append(bytes(payload))
        if self.is_advertising or self.asleep:
            self.asleep = False
            await self.start_advertising()
