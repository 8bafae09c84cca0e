"""An emulated Bluetooth SIG bathroom scale: Weight Scale (0x181D) and Body Composition (0x181B).

It keeps a memory of step-ons no collector has confirmed and indicates them in a burst once
a collector enables indications — neither profile has a Record Access Control Point — then
indicates each new `step_on()` as it happens: a Weight Measurement (0x2A9D) followed by a
Body Composition Measurement (0x2A9C). A full body composition does not fit one indication
at the default ATT MTU of 23, so it goes in two packets (multi-packet, flag bit 12) when the
link's MTU is 23, or always with `always_split=True`. Every payload is built with the
driver's own encoders, so the two sides cannot drift apart.

Scenarios: `normal()`, `heart_failure_weight_gain()` (three mornings, +2.6 kg),
`clock_never_set()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bumble import gatt

from device_drivers.codec.body_composition import (
    ATT_DEFAULT_PAYLOAD,
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    encode_body_composition_feature,
    encode_body_composition_packets,
)
from device_drivers.codec.weight_scale import (
    CLOCK_NOT_SET,
    M_PER_IN,
    UnitSystem,
    WeightMeasurement,
    WeightScaleFeature,
    encode_weight_measurement,
    encode_weight_scale_feature,
    timestamp_field,
)
from device_drivers.codec.wire import DateTimeField
from protocols.units import KG_PER_LB
from simulators.ble.peripheral import DeviceInformation, EmulatedPeripheral

WEIGHT_SCALE_SERVICE: Final = 0x181D
BODY_COMPOSITION_SERVICE: Final = 0x181B
WEIGHT_MEASUREMENT: Final = 0x2A9D
WEIGHT_SCALE_FEATURE: Final = 0x2A9E
BODY_COMPOSITION_MEASUREMENT: Final = 0x2A9C
BODY_COMPOSITION_FEATURE: Final = 0x2A9B
ATT_HEADER: Final = 3

BURST_WAIT_S: Final = 0.2
"""How long the scale waits, after the first measurement subscription, for the collector
to subscribe to the other one before it starts its burst."""


@dataclass(frozen=True, slots=True)
class StepOn:
    """One weighing as the scale remembers it, in SI units whatever it displays."""

    weight_kg: float | None
    """None: the scale could not weigh ("measurement unsuccessful")."""
    body_fat_pct: float | None = None
    """None: body fat unsuccessful (no contact with the electrodes)."""
    taken_at: datetime | None = None
    """On the device clock; None when the clock was not set at the time."""
    muscle_pct: float | None = None
    muscle_mass_kg: float | None = None
    fat_free_mass_kg: float | None = None
    soft_lean_mass_kg: float | None = None
    body_water_kg: float | None = None
    impedance_ohm: float | None = None
    basal_metabolism_kj: float | None = None


def _round_to(value: float, step: str) -> float:
    return float((Decimal(repr(value)) / Decimal(step)).to_integral_value() * Decimal(step))


class EmulatedScale(EmulatedPeripheral):
    """A bathroom scale with WSS, BCS or both.

    Args:
        units: SI or imperial; `step_on()` takes kg and m either way.
        weight_scale / body_composition: which services it has.
        always_split: send every body composition in two packets, whatever the MTU.
        user_id: the user slot stamped on results (None: no User ID field).
        height_m: the user's height, sent with BMI in 0x2A9D and as 0x2A9C's height
            (None: no BMI/height).
        time_stamps: whether results carry a Time Stamp (from the device clock).
        disconnect_after_burst: drop the link once every stored step-on is confirmed.
        stored: step-ons already in memory.
    """

    def __init__(
        self,
        name: str = "CB-Scale",
        *,
        units: UnitSystem = UnitSystem.SI,
        weight_scale: bool = True,
        body_composition: bool = True,
        always_split: bool = False,
        user_id: int | None = 1,
        height_m: float | None = 1.78,
        time_stamps: bool = True,
        disconnect_after_burst: bool = False,
        stored: tuple[StepOn, ...] | list[StepOn] = (),
        **kwargs: Any,
    ) -> None:
        if not (weight_scale or body_composition):
            raise ValueError("a scale needs Weight Scale, Body Composition or both")
        services = [WEIGHT_SCALE_SERVICE] if weight_scale else []
        services += [BODY_COMPOSITION_SERVICE] if body_composition else []
        kwargs.setdefault("service_uuids", services)
        kwargs.setdefault("clock_offset", timedelta(0))
        kwargs.setdefault(
            "device_information",
            DeviceInformation(
                manufacturer="CareBridge Simulated",
                model="SCALE-EMU-1",
                serial="SIMSCALE0001",
                firmware="1.0.0",
            ),
        )
        super().__init__(name=name, **kwargs)
        self.units = units
        self.has_weight_scale = weight_scale
        self.has_body_composition = body_composition
        self.always_split = always_split
        self.user_id = user_id
        self.height_m = height_m
        self.time_stamps = time_stamps
        self.disconnect_after_burst = disconnect_after_burst
        self.memory: list[StepOn] = list(stored)
        """Step-ons no collector has confirmed yet: the next burst sends them."""
        self.transferred: list[StepOn] = []
        self.packets_sent: list[tuple[int, bytes]] = []
        """Every indication confirmed, as (characteristic, payload), in order."""
        self._sending = asyncio.Lock()
        self._burst_pending = False

    # -- scenarios ---------------------------------------------------------------------

    @classmethod
    def normal(cls, **kwargs: Any) -> EmulatedScale:
        """A stable patient: yesterday's and this morning's weighings in memory."""
        scale = cls(**kwargs)
        scale.store(70.6, 25.4, ago=timedelta(days=1), **_composition(70.6))
        scale.store(70.5, 25.3, ago=timedelta(hours=1), **_composition(70.5))
        return scale

    @classmethod
    def heart_failure_weight_gain(cls, **kwargs: Any) -> EmulatedScale:
        """Fluid retention: 78.0, 79.2 and 80.6 kg on three mornings (+2.6 kg in 48 h,
        +1.4 kg overnight), body water rising with it."""
        scale = cls(**kwargs)
        for weight, fat, ago in ((78.0, 27.1, 2), (79.2, 27.0, 1), (80.6, 26.9, 0)):
            scale.store(weight, fat, ago=timedelta(days=ago, hours=1), **_composition(weight))
        return scale

    @classmethod
    def clock_never_set(cls, **kwargs: Any) -> EmulatedScale:
        """Batteries just replaced: stored step-ons carry the all-zero "unknown" time until
        a collector writes Current Time."""
        kwargs["clock_offset"] = None
        scale = cls(**kwargs)
        scale.store(82.0, 28.0, **_composition(82.0))
        return scale

    # -- GATT --------------------------------------------------------------------------

    def weight_scale_feature(self) -> WeightScaleFeature:
        return WeightScaleFeature.build(
            timestamp=self.time_stamps,
            multiple_users=self.user_id is not None,
            bmi=self.height_m is not None,
            weight_resolution=7,
            height_resolution=3,
        )

    def body_composition_feature(self) -> BodyCompositionFeature:
        supported = {
            "basal_metabolism_supported",
            "muscle_percentage_supported",
            "muscle_mass_supported",
            "fat_free_mass_supported",
            "soft_lean_mass_supported",
            "body_water_mass_supported",
            "impedance_supported",
            "weight_supported",
        }
        if self.time_stamps:
            supported.add("timestamp_supported")
        if self.user_id is not None:
            supported.add("multiple_users_supported")
        if self.height_m is not None:
            supported.add("height_supported")
        return BodyCompositionFeature.build(supported, mass_resolution=7, height_resolution=3)

    def build_services(self) -> list[gatt.Service]:
        p = gatt.Characteristic.Properties
        services: list[gatt.Service] = []
        if self.has_weight_scale:
            weight = self.characteristic(WEIGHT_MEASUREMENT, p.INDICATE)
            weight.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_measurement_subscription)
            feature = self.characteristic(
                WEIGHT_SCALE_FEATURE,
                p.READ,
                value=encode_weight_scale_feature(self.weight_scale_feature()),
            )
            services.append(gatt.Service(f"{WEIGHT_SCALE_SERVICE:04X}", [weight, feature]))
        if self.has_body_composition:
            body = self.characteristic(BODY_COMPOSITION_MEASUREMENT, p.INDICATE)
            body.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_measurement_subscription)
            feature = self.characteristic(
                BODY_COMPOSITION_FEATURE,
                p.READ,
                value=encode_body_composition_feature(self.body_composition_feature()),
            )
            services.append(gatt.Service(f"{BODY_COMPOSITION_SERVICE:04X}", [body, feature]))
        return services

    def _measurement_characteristics(self) -> list[int]:
        found = [WEIGHT_MEASUREMENT] if self.has_weight_scale else []
        return found + ([BODY_COMPOSITION_MEASUREMENT] if self.has_body_composition else [])

    def _on_measurement_subscription(self, _bearer: object, _notify: bool, indicate: bool) -> None:
        if indicate and not self._burst_pending:
            self._burst_pending = True
            self.spawn(self._burst())

    async def _burst(self) -> None:
        # A collector subscribes to one measurement characteristic after the other; a
        # burst sent after the first would lose the other's half of every step-on.
        try:
            wanted = self._measurement_characteristics()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BURST_WAIT_S):
                    await asyncio.gather(*(self.wait_for_subscription(u) for u in wanted))
        finally:
            self._burst_pending = False
        await self.send_stored()

    # -- payloads ----------------------------------------------------------------------

    def _stamp(self, step: StepOn) -> DateTimeField | None:
        if not self.time_stamps:
            return None
        if step.taken_at is None:
            return CLOCK_NOT_SET
        return timestamp_field(step.taken_at.replace(microsecond=0))

    def _mass(self, kg: float | None) -> float | None:
        if kg is None:
            return None
        if self.units is UnitSystem.SI:
            return _round_to(kg, "0.005")
        return _round_to(kg / KG_PER_LB, "0.01")

    def _height(self) -> float | None:
        if self.height_m is None:
            return None
        if self.units is UnitSystem.SI:
            return _round_to(self.height_m, "0.001")
        return _round_to(self.height_m / M_PER_IN, "0.1")

    def weight_record(self, step: StepOn) -> WeightMeasurement:
        bmi = None
        if self.height_m is not None and step.weight_kg is not None:
            bmi = _round_to(step.weight_kg / self.height_m**2, "0.1")
        return WeightMeasurement.build(
            self._mass(step.weight_kg),
            units=self.units,
            timestamp=self._stamp(step),
            user_id=self.user_id,
            bmi=bmi,
            height=self._height() if bmi is not None else None,
        )

    def body_composition_record(self, step: StepOn) -> BodyCompositionMeasurement:
        fat = None if step.body_fat_pct is None else _round_to(step.body_fat_pct, "0.1")
        return BodyCompositionMeasurement.build(
            fat,
            units=self.units,
            timestamp=self._stamp(step),
            user_id=self.user_id,
            basal_metabolism=(
                None if step.basal_metabolism_kj is None else float(round(step.basal_metabolism_kj))
            ),
            muscle_percentage=(
                None if step.muscle_pct is None else _round_to(step.muscle_pct, "0.1")
            ),
            muscle_mass=self._mass(step.muscle_mass_kg),
            fat_free_mass=self._mass(step.fat_free_mass_kg),
            soft_lean_mass=self._mass(step.soft_lean_mass_kg),
            body_water_mass=self._mass(step.body_water_kg),
            impedance=None if step.impedance_ohm is None else _round_to(step.impedance_ohm, "0.1"),
            weight=self._mass(step.weight_kg),
            height=self._height(),
        )

    def max_payload(self) -> int:
        """What one indication can carry on the current link(s)."""
        mtus = [int(connection.att_mtu) for connection in self.connections]
        return min(mtus) - ATT_HEADER if mtus else ATT_DEFAULT_PAYLOAD

    def packets(self, step: StepOn) -> list[tuple[int, bytes]]:
        """The indications of one step-on at the current MTU, in the order they go out."""
        out: list[tuple[int, bytes]] = []
        if self.has_weight_scale:
            out.append((WEIGHT_MEASUREMENT, encode_weight_measurement(self.weight_record(step))))
        if self.has_body_composition:
            parts = encode_body_composition_packets(
                self.body_composition_record(step),
                max_payload=self.max_payload(),
                always=self.always_split,
            )
            out += [(BODY_COMPOSITION_MEASUREMENT, part) for part in parts]
        return out

    # -- step-ons ----------------------------------------------------------------------

    def store(
        self,
        weight_kg: float | None,
        body_fat_pct: float | None = None,
        *,
        ago: timedelta = timedelta(0),
        **composition: Any,
    ) -> StepOn:
        """Put a step-on taken `ago` into the memory (other values as `StepOn` fields)."""
        now = self.device_time()
        step = StepOn(weight_kg, body_fat_pct, None if now is None else now - ago, **composition)
        self.memory.append(step)
        return step

    async def step_on(
        self, weight_kg: float | None, body_fat_pct: float | None = None, **composition: Any
    ) -> StepOn:
        """Someone steps on now: indicated at once if a collector listens, else kept."""
        step = self.store(weight_kg, body_fat_pct, **composition)
        await self.send_stored()
        return step

    async def send_stored(self) -> int:
        """Indicate every unconfirmed step-on, oldest first; returns how many went out.

        A step-on stays in memory until the collector confirmed all its indications on the
        characteristics it subscribed to, so a link lost mid-burst resends it next time."""
        confirmed = 0
        async with self._sending:
            while self.memory:
                if not await self._send(self.memory[0]):
                    return confirmed
                self.transferred.append(self.memory.pop(0))
                confirmed += 1
            if self.disconnect_after_burst and confirmed and self.is_connected:
                await self.disconnect()
        return confirmed

    async def _send(self, step: StepOn) -> bool:
        # Decided once per step-on: a link lost half-way must not make the rest look like
        # characteristics nobody wanted.
        listening = {u for u in self._measurement_characteristics() if self.is_subscribed(u)}
        if not listening:
            return False
        for uuid, payload in self.packets(step):
            if uuid not in listening:
                continue
            if not await self.indicate(uuid, payload):
                return False
            self.packets_sent.append((uuid, payload))
        return True


def _composition(weight_kg: float) -> dict[str, Any]:
    """Plausible body composition for an adult of `weight_kg` (for scenarios)."""
    return {
        "muscle_pct": 41.2,
        "muscle_mass_kg": round(weight_kg * 0.4255, 1),
        "fat_free_mass_kg": round(weight_kg * 0.745, 1),
        "soft_lean_mass_kg": round(weight_kg * 0.695, 1),
        "body_water_kg": round(weight_kg * 0.539, 1),
        "impedance_ohm": 485.2,
        "basal_metabolism_kj": 7000.0,
    }
