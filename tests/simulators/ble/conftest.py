"""A fresh simulated radio per test, and proof that nothing of it outlives the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.radio import SimulatedRadio
from tests.simulators.ble.demo import DemoDriver, DemoSensor


def _stray_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]


@pytest.fixture
async def radio() -> AsyncIterator[SimulatedRadio]:
    before = set(_stray_tasks())
    async with SimulatedRadio() as radio:
        yield radio
    leaked = [task for task in _stray_tasks() if task not in before and not task.done()]
    assert not leaked, f"tasks left running after the radio closed: {leaked}"


@pytest.fixture
async def sensor(radio: SimulatedRadio) -> DemoSensor:
    return await radio.add(DemoSensor(address="C0:DE:00:00:00:01"))


@pytest.fixture
def driver() -> DemoDriver:
    return DemoDriver(scanner_backend=BumbleScanner, client_backend=BumbleClient)
