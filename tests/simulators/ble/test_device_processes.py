"""`python -m simulators.ble run`: emulated devices in their own processes, found and read
by a driver attached to the printed central transport."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import datetime

import pytest
from bleak import BleakScanner

from device_drivers import uuids
from device_drivers.blood_pressure_monitor import BloodPressureMonitorDriver
from device_drivers.session import DeviceSession
from protocols.metrics import Metric
from simulators.ble.__main__ import DEVICES, factory_of, main
from simulators.ble.bleak_bumble import BumbleClient, BumbleScanner
from simulators.ble.peripheral import EmulatedPeripheral, _load_factory
from simulators.ble.radio import HciCentral
from tests.device_drivers.vectors import REPO_ROOT


async def test_a_cuff_in_its_own_process_is_read_through_the_central_transport() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.ble",
        "run",
        "blood_pressure_monitor:hypertensive_crisis",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            device_line = json.loads(await process.stdout.readline())
            central_line = json.loads(await process.stdout.readline())
        assert device_line["device"] == "blood_pressure_monitor:hypertensive_crisis"
        async with HciCentral(central_line["central_transport"]):
            found = await BleakScanner.find_device_by_filter(
                lambda _d, adv: uuids.BLOOD_PRESSURE_SERVICE in adv.service_uuids,
                timeout=10,
                backend=BumbleScanner,
            )
            assert found is not None
            assert found.address == device_line["address"]
            async with DeviceSession.connect(found, backend=BumbleClient) as session:
                driver = BloodPressureMonitorDriver(session)
                await driver.prepare(datetime.now())
                results = [m async for m in driver.measurements(idle_timeout=1.0)]
        systolic = [
            obs.value for m in results for obs in m.observations if obs.metric is Metric.SYSTOLIC
        ]
        assert 185.0 in systolic
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


def test_unknown_kinds_and_scenarios_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "toaster"]) == 2
    assert "unknown device kind" in capsys.readouterr().err
    assert main(["run", "scale:melting"]) == 2
    assert "no scenario" in capsys.readouterr().err
    assert factory_of("glucose_meter").endswith("EmulatedGlucoseMeter.normal")
    assert main(["list"]) == 0
    assert "pulse_oximeter: normal, desaturation" in capsys.readouterr().out


def test_every_listed_scenario_builds_its_device() -> None:
    for kind, (_, scenarios) in DEVICES.items():
        for scenario in scenarios:
            device = _load_factory(factory_of(f"{kind}:{scenario}"))()
            assert isinstance(device, EmulatedPeripheral), (kind, scenario)
