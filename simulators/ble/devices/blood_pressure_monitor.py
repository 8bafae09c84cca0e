"""An emulated Bluetooth SIG blood-pressure monitor (Blood Pressure Service 0x1810, BLS 1.0).

It keeps a memory of results no collector has confirmed yet and indicates them in a burst
as soon as a collector enables indications on Blood Pressure Measurement (0x2A35) — BLS
1.0 has no Record Access Control Point. `measure()` takes a reading as a cuff does: it
notifies Intermediate Cuff Pressure (0x2A36) while inflating and deflating, then
indicates the result. Like many monitors it can switch itself off after a burst. Every
payload is built with the driver's own encoders (`device_drivers.codec.blood_pressure`),
so the two sides cannot drift apart.

Scenarios: `normal()`, `hypertensive_crisis()` (185/125), `irregular_pulse()`,
`clock_never_set()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bumble import gatt

from device_drivers.codec.blood_pressure import (
    UNKNOWN_TIME,
    BloodPressureFeature,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
    encode_blood_pressure_feature,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
    stamp_at,
)
from protocols.units import MMHG_PER_KPA
from simulators.ble.peripheral import DeviceInformation, EmulatedPeripheral

BLOOD_PRESSURE_SERVICE: Final = 0x1810
MEASUREMENT: Final = 0x2A35
INTERMEDIATE_CUFF_PRESSURE: Final = 0x2A36
FEATURE: Final = 0x2A49

DEFAULT_FEATURE: Final = BloodPressureFeature.of(
    body_movement=True,
    cuff_fit=True,
    irregular_pulse=True,
    pulse_rate_range=True,
    measurement_position=True,
)
INFLATE_ABOVE_SYSTOLIC_MMHG: Final = 30.0
"""How far past systolic a cuff inflates before it lets the pressure down."""

_SAME_USER: Final = object()


def map_of(systolic: float, diastolic: float) -> float:
    """The mean arterial pressure a monitor reports: diastolic + a third of the pulse
    pressure, to one decimal (120/80 → 93.3, as in the vectors)."""
    return round(diastolic + (systolic - diastolic) / 3, 1)


def in_unit(mmhg: float, unit: PressureUnit) -> float:
    """A pressure in mmHg as the monitor would show it in `unit` (kPa to one decimal)."""
    if unit is PressureUnit.MMHG:
        return mmhg
    return float(round(Decimal(repr(mmhg)) / Decimal(repr(MMHG_PER_KPA)), 1))


class BloodPressureMonitor(EmulatedPeripheral):
    """An upper-arm cuff.

    Args:
        unit: what it reports in; values given to `store()` / `measure()` are mmHg.
        user_id: the user slot it stamps on results (None: no User ID field; 0xFF unknown).
        time_stamps: whether results carry a Time Stamp (from the device clock).
        feature: the Blood Pressure Feature it reports (`set_value(FEATURE, ...)` changes
            the bytes, e.g. to garble them); None leaves the characteristic out, as some
            cheap cuffs do although BLS makes it mandatory.
        cuff_pressure: whether it has Intermediate Cuff Pressure (0x2A36).
        disconnect_after_burst: drop the link once every stored result is confirmed.
        step_interval: seconds between cuff-pressure notifications in `measure()`.
        stored: results already in the memory.
    """

    def __init__(
        self,
        name: str = "CB-BPM",
        *,
        unit: PressureUnit = PressureUnit.MMHG,
        user_id: int | None = None,
        time_stamps: bool = True,
        feature: BloodPressureFeature | None = DEFAULT_FEATURE,
        cuff_pressure: bool = True,
        disconnect_after_burst: bool = False,
        step_interval: float = 0.002,
        stored: Sequence[BloodPressureMeasurement] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("service_uuids", [BLOOD_PRESSURE_SERVICE])
        kwargs.setdefault("clock_offset", timedelta(0))
        kwargs.setdefault(
            "device_information",
            DeviceInformation(
                manufacturer="CareBridge Simulated",
                model="BPM-EMU-1",
                serial="SIMBPM0001",
                firmware="1.0.0",
            ),
        )
        super().__init__(name=name, **kwargs)
        self.unit = unit
        self.user_id = user_id
        self.time_stamps = time_stamps
        self.feature = feature
        self.has_cuff_pressure = cuff_pressure
        self.disconnect_after_burst = disconnect_after_burst
        self.step_interval = step_interval
        self.memory: list[BloodPressureMeasurement] = list(stored)
        """Results no collector has confirmed yet: the next burst sends them."""
        self.transferred: list[BloodPressureMeasurement] = []
        """Results a collector confirmed, in the order it did."""
        self.cuff_pressures_sent: list[float] = []
        """Every cuff pressure `measure()` reported, in the monitor's unit."""
        self._sending = asyncio.Lock()

    # -- scenarios ---------------------------------------------------------------------

    @classmethod
    def normal(cls, **kwargs: Any) -> BloodPressureMonitor:
        """A controlled hypertensive patient: three results of the past days in memory."""
        monitor = cls(**kwargs)
        monitor.store(118, 76, 68, ago=timedelta(days=2))
        monitor.store(122, 79, 71, ago=timedelta(days=1))
        monitor.store(119, 77, 66, ago=timedelta(hours=2))
        return monitor

    @classmethod
    def hypertensive_crisis(cls, **kwargs: Any) -> BloodPressureMonitor:
        """Yesterday's raised reading, then 185/125 ten minutes ago: a crisis."""
        monitor = cls(**kwargs)
        monitor.store(152, 96, 84, ago=timedelta(days=1))
        monitor.store(185, 125, 96, ago=timedelta(minutes=10))
        return monitor

    @classmethod
    def irregular_pulse(cls, **kwargs: Any) -> BloodPressureMonitor:
        """Atrial fibrillation: an irregular pulse above the monitor's upper limit."""
        monitor = cls(**kwargs)
        monitor.store(
            138,
            88,
            118,
            ago=timedelta(minutes=30),
            status=MeasurementStatus.of(
                irregular_pulse=True, pulse_rate_range=PulseRateRange.EXCEEDS_UPPER_LIMIT
            ),
        )
        return monitor

    @classmethod
    def clock_never_set(cls, **kwargs: Any) -> BloodPressureMonitor:
        """Batteries just replaced: results in memory carry the all-zero "unknown" time
        until a collector writes Current Time."""
        kwargs["clock_offset"] = None
        monitor = cls(**kwargs)
        monitor.store(131, 84, 74)
        monitor.store(127, 83, 70)
        return monitor

    # -- GATT --------------------------------------------------------------------------

    def build_services(self) -> list[gatt.Service]:
        p = gatt.Characteristic.Properties
        measurement = self.characteristic(MEASUREMENT, p.INDICATE)
        measurement.on(gatt.Characteristic.EVENT_SUBSCRIPTION, self._on_measurement_subscription)
        characteristics = [measurement]
        if self.has_cuff_pressure:
            characteristics.append(self.characteristic(INTERMEDIATE_CUFF_PRESSURE, p.NOTIFY))
        if self.feature is not None:
            feature = encode_blood_pressure_feature(self.feature)
            characteristics.append(self.characteristic(FEATURE, p.READ, value=feature))
        return [gatt.Service(f"{BLOOD_PRESSURE_SERVICE:04X}", characteristics)]

    def _on_measurement_subscription(self, _bearer: object, _notify: bool, indicate: bool) -> None:
        if indicate:
            # After the CCCD write has been answered, as a real monitor does.
            self.spawn(self.send_stored())

    # -- results -----------------------------------------------------------------------

    def result(
        self,
        systolic: float,
        diastolic: float,
        pulse: float | None = None,
        *,
        mean_arterial_pressure: float | None = None,
        taken_at: datetime | None = None,
        user_id: Any = _SAME_USER,
        status: MeasurementStatus | int | None = None,
        unit: PressureUnit | None = None,
    ) -> BloodPressureMeasurement:
        """A result as this monitor would record it; pressures in mmHg, `taken_at` on the
        device clock (default: now; an unset clock gives the "unknown" time)."""
        unit = unit or self.unit
        stamp = None
        if self.time_stamps:
            moment = taken_at if taken_at is not None else self.device_time()
            stamp = UNKNOWN_TIME if moment is None else stamp_at(moment)
        mean = mean_arterial_pressure
        if mean is None:
            mean = map_of(systolic, diastolic)
        return BloodPressureMeasurement.of(
            in_unit(systolic, unit),
            in_unit(diastolic, unit),
            in_unit(mean, unit),
            unit=unit,
            time_stamp=stamp,
            pulse_rate=pulse,
            user_id=self.user_id if user_id is _SAME_USER else user_id,
            status=status,
        )

    def store(
        self,
        systolic: float,
        diastolic: float,
        pulse: float | None = None,
        *,
        ago: timedelta = timedelta(0),
        **options: Any,
    ) -> BloodPressureMeasurement:
        """Put a result taken `ago` into the memory (see `result()` for the options)."""
        now = self.device_time()
        taken_at = None if now is None else now - ago
        record = self.result(systolic, diastolic, pulse, taken_at=taken_at, **options)
        self.memory.append(record)
        return record

    async def send_stored(self) -> int:
        """Indicate every unconfirmed result, oldest first; returns how many were confirmed.

        A result stays in memory until a collector confirms it, so a link lost mid-burst
        resends the rest next time."""
        confirmed = 0
        async with self._sending:
            while self.memory:
                record = self.memory[0]
                if not await self.indicate(MEASUREMENT, encode_blood_pressure_measurement(record)):
                    return confirmed
                self.transferred.append(self.memory.pop(0))
                confirmed += 1
            if self.disconnect_after_burst and self.is_connected:
                await self.disconnect()
        return confirmed

    async def measure(
        self,
        systolic: float,
        diastolic: float,
        pulse: float | None = None,
        *,
        steps: int = 3,
        **options: Any,
    ) -> BloodPressureMeasurement:
        """Take a reading now: `steps` cuff pressures rising past systolic, `steps` falling
        towards diastolic, then the result, indicated if a collector listens (else kept in
        memory for the next burst). Options as in `result()`."""
        unit = options.get("unit") or self.unit
        peak = systolic + INFLATE_ABOVE_SYSTOLIC_MMHG
        floor = max(diastolic - 10.0, 0.0)
        rising = [peak * i / steps for i in range(1, steps + 1)]
        falling = [peak - (peak - floor) * i / steps for i in range(1, steps + 1)]
        for mmhg in rising + falling:
            value = in_unit(round(mmhg), unit)
            if self.has_cuff_pressure:
                cuff = IntermediateCuffPressure.of(value, unit=unit)
                await self.notify(
                    INTERMEDIATE_CUFF_PRESSURE, encode_intermediate_cuff_pressure(cuff)
                )
            self.cuff_pressures_sent.append(value)
            await asyncio.sleep(self.step_interval)
        record = self.result(systolic, diastolic, pulse, **options)
        self.memory.append(record)
        await self.send_stored()
        return record
