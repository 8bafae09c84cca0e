"""Simulated devices for the desktop app (testers, the demo) and the app's tests.

The emulated cuff and glucose meter of `simulators.ble` run on an in-process simulated
radio on the app's own event loop; the app reaches them through bleak with the bumble
backend, so the drivers are exactly those used with real devices. The cuff "presses its
own start button" shortly after the app subscribes, as the patient would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from mobile_app.measuring import Backends
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.devices.blood_pressure_monitor import BloodPressureMonitor
from simulators.ble.devices.glucose_meter import MEAL_FASTING, EmulatedGlucoseMeter
from simulators.ble.radio import SimulatedRadio

SIMULATED_BACKENDS = Backends(scanner=BumbleScanner, client=BumbleClient)


class SelfStartingCuff(BloodPressureMonitor):
    """A cuff whose patient presses start `start_after` seconds after the app listens.

    `results` are taken in turn, one per session (the last one repeats)."""

    def __init__(
        self,
        results: Iterable[tuple[float, float, float]] = ((128, 82, 70),),
        *,
        start_after: float = 1.0,
        steps: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results = list(results)
        self.start_after = start_after
        self.steps = steps

    def _on_measurement_subscription(self, bearer: object, notify: bool, indicate: bool) -> None:
        super()._on_measurement_subscription(bearer, notify, indicate)
        if indicate:
            self.spawn(self._patient_presses_start())

    async def _patient_presses_start(self) -> None:
        await asyncio.sleep(self.start_after)
        systolic, diastolic, pulse = self.results[0] if self.results else (128, 82, 70)
        if len(self.results) > 1:
            self.results.pop(0)
        await self.measure(systolic, diastolic, pulse, steps=self.steps)


def recent_meter(
    values: Iterable[tuple[float, int | None]] = ((5.6, MEAL_FASTING), (6.4, None)),
) -> EmulatedGlucoseMeter:
    """A meter holding this morning's readings, the last with no meal context (so the
    app asks). `values` are (mmol/L, BLE meal code or None), an hour apart, oldest first."""
    meter = EmulatedGlucoseMeter()
    chosen = list(values)
    now = datetime.now()
    for index, (value, meal) in enumerate(chosen):
        meter.add_reading(value, at=now - timedelta(hours=len(chosen) - index), meal=meal)
    return meter


class SimulatedHome:
    """A patient's home: one cuff and one glucose meter on a simulated radio."""

    def __init__(
        self,
        cuff: SelfStartingCuff | None = None,
        meter: EmulatedGlucoseMeter | None = None,
    ) -> None:
        self.radio = SimulatedRadio()
        self.cuff = cuff or SelfStartingCuff(step_interval=0.25, start_after=1.5)
        self.meter = meter if meter is not None else recent_meter()
        self.backends = SIMULATED_BACKENDS

    async def __aenter__(self) -> Self:
        await self.radio.start()
        await self.radio.add(self.cuff)
        await self.radio.add(self.meter)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.radio.close()
