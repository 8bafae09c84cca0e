"""`python -m simulators.ble`: emulated health devices as separate processes, for testers
and the demo.

    python -m simulators.ble run blood_pressure_monitor:hypertensive_crisis \
        glucose_meter:hypoglycaemia
    python -m simulators.ble list

`run` starts bumble virtual controllers (HCI over TCP on loopback), one process per device
on its own controller, and prints one JSON line per device and then the transport a
central attaches to (`simulators.ble.radio.HciCentral`), until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Final

from simulators.ble.radio import PeripheralProcess, VirtualControllers

DEVICES: Final = {
    "glucose_meter": (
        "simulators.ble.devices.glucose_meter:EmulatedGlucoseMeter",
        ("normal", "hypoglycaemia", "clock_never_set", "extremes"),
    ),
    "blood_pressure_monitor": (
        "simulators.ble.devices.blood_pressure_monitor:BloodPressureMonitor",
        ("normal", "hypertensive_crisis", "irregular_pulse", "clock_never_set"),
    ),
    "pulse_oximeter": (
        "simulators.ble.devices.pulse_oximeter:PulseOximeter",
        ("normal", "desaturation", "clock_never_set", "with_storage"),
    ),
    "scale": (
        "simulators.ble.devices.scale:EmulatedScale",
        ("normal", "heart_failure_weight_gain", "clock_never_set"),
    ),
}


def factory_of(spec: str) -> str:
    """'kind:scenario' (scenario defaults to normal) → the `module:Class.scenario` to run."""
    kind, _, scenario = spec.partition(":")
    if kind not in DEVICES:
        raise ValueError(f"unknown device kind {kind!r}; known: {', '.join(DEVICES)}")
    reference, scenarios = DEVICES[kind]
    scenario = scenario or "normal"
    if scenario not in scenarios:
        raise ValueError(f"{kind} has no scenario {scenario!r}; known: {', '.join(scenarios)}")
    return f"{reference}.{scenario}"


async def run(specs: Sequence[str]) -> None:
    factories = [factory_of(spec) for spec in specs]
    async with contextlib.AsyncExitStack() as stack:
        air = await stack.enter_async_context(VirtualControllers(len(factories) + 1))
        for index, (spec, factory) in enumerate(zip(specs, factories, strict=True)):
            device = await stack.enter_async_context(
                PeripheralProcess(factory, air.transport(index))
            )
            print(json.dumps({"device": spec, "address": device.address}), flush=True)
        central = air.transport(len(factories))
        print(json.dumps({"central_transport": central}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.ble",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run emulated devices until Ctrl-C")
    run_cmd.add_argument("devices", nargs="+", metavar="KIND[:SCENARIO]")
    commands.add_parser("list", help="device kinds and their scenarios")
    args = parser.parse_args(argv)
    if args.command == "list":
        for kind, (_, scenarios) in DEVICES.items():
            print(f"{kind}: {', '.join(scenarios)}")
        return 0
    try:
        for spec in args.devices:
            factory_of(spec)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run(args.devices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
