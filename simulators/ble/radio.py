"""The simulated air: bumble virtual controllers linked in-process or over HCI-over-TCP.

In-process (tests)::

    async with SimulatedRadio() as radio:
        cuff = await radio.add(MyCuff(name="BP-1"))
        device = await BleakScanner.find_device_by_filter(match, backend=BumbleScanner)
        async with BleakClient(device, backend=BumbleClient) as client: ...

Multi-process (demos, app-level testers): a `VirtualControllers` process hosts one
virtual controller per HCI-over-TCP port on a shared link; each emulator runs as its own
process on one port (`PeripheralProcess` or `python -m simulators.ble.peripheral`) and
the app's central attaches to another (`HciCentral`)::

    python -m simulators.ble.radio controllers --port 19001 --port 19002 --port 19003
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from simulators.ble.bleak_bumble import (
    BumbleClient,
    BumbleScanner,
    pop_default_central,
    push_default_central,
)
from simulators.ble.peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

DEFAULT_CENTRAL_ADDRESS: Final = "F0:CA:7E:00:00:01"

_P = TypeVar("_P", bound=EmulatedPeripheral)

# The package root, so that child processes import `simulators` (and test factories) the
# same way this process does, installed or not.
_PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]


class SimulatedController(Controller):
    """bumble's virtual controller with the two behaviours tests rely on fixed.

    * LE Create Connection Cancel: the stock controller acknowledges it but keeps the
      connection pending and never reports its end, so after one connect timeout bumble's
      host waits forever and every later connect is refused as "already pending". Here the
      pending connection is dropped and reported with status Unknown Connection
      Identifier, as the Core spec (Vol 4, Part E, 7.8.13) requires.
    * RSSI: the stock controller reports -50 dBm for everything; `rssi_of` lets the radio
      give each peripheral its own (and change it, for "walking away" scenarios).
    """

    def __init__(
        self,
        name: str,
        *,
        link: LocalLink,
        public_address: str | None = None,
        host_source: Any = None,
        host_sink: Any = None,
        rssi_of: Callable[[hci.Address], int | None] | None = None,
    ) -> None:
        super().__init__(
            name,
            host_source=host_source,
            host_sink=host_sink,
            link=link,
            public_address=public_address,
        )
        self._rssi_of = rssi_of

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failure = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # Scheduled, so that it follows the Command Complete this method's return becomes.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failure)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self._rssi_of is not None:
            if isinstance(packet, hci.HCI_LE_Extended_Advertising_Report_Event):
                packet = hci.HCI_LE_Extended_Advertising_Report_Event(
                    [self._with_rssi(report) for report in packet.reports]
                )
            elif isinstance(packet, hci.HCI_LE_Advertising_Report_Event):
                packet = hci.HCI_LE_Advertising_Report_Event(
                    [self._with_rssi(report) for report in packet.reports]
                )
        super().send_hci_packet(packet)

    def _with_rssi(self, report: Any) -> Any:
        assert self._rssi_of is not None
        rssi = self._rssi_of(report.address)
        return report if rssi is None else dataclasses.replace(report, rssi=rssi)


async def _start_central(host: Host, address: str) -> Device:
    central = Device(name="carebridge-central", address=hci.Address(address), host=host)
    # Bonds live for the radio's lifetime only: tests must not share pairing state.
    central.keystore = MemoryKeyStore()
    await central.power_on()
    return central


async def _stop_central(central: Device) -> None:
    for connection in list(central.connections.values()):
        try:
            await connection.disconnect()
        except hci.HCI_Error as error:
            logger.debug("central link already gone: %s", error)
    if central.is_scanning:
        await central.stop_scanning()
    await central.power_off()


class SimulatedRadio:
    """One in-process link: a central bumble Device plus any number of peripherals.

    While running it is the default central of the bleak backend, so driver code given
    `backend=BumbleScanner` / `backend=BumbleClient` needs nothing else. Pass
    `register_default=False` to keep it out of the default and inject it with
    `scanner_kwargs()` / `client_kwargs()` instead.
    """

    def __init__(
        self,
        *,
        central_address: str = DEFAULT_CENTRAL_ADDRESS,
        register_default: bool = True,
    ) -> None:
        self._central_address = central_address
        self._register_default = register_default
        self._link: LocalLink | None = None
        self._central: Device | None = None
        self._controllers: dict[EmulatedPeripheral, SimulatedController] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._central is not None:
            raise RuntimeError("radio already started")
        self._link = LocalLink()
        controller = SimulatedController(
            "central",
            link=self._link,
            public_address=self._central_address,
            rssi_of=self._rssi_of,
        )
        self._central = await _start_central(
            Host(controller, AsyncPipeSink(controller)), self._central_address
        )
        if self._register_default:
            push_default_central(self._central)

    @property
    def central(self) -> Device:
        if self._central is None:
            raise RuntimeError("radio not started")
        return self._central

    @property
    def peripherals(self) -> list[EmulatedPeripheral]:
        return list(self._controllers)

    def scanner_kwargs(self) -> dict[str, Any]:
        """`BleakScanner(**radio.scanner_kwargs())`: explicit injection, no default needed."""
        return {"backend": BumbleScanner, "bumble": {"central": self.central}}

    def client_kwargs(self) -> dict[str, Any]:
        """`BleakClient(device, **radio.client_kwargs())`."""
        return {"backend": BumbleClient, "bumble": {"central": self.central}}

    async def add(self, peripheral: _P) -> _P:
        """Power `peripheral` up on this link; it advertises at once."""
        if self._link is None:
            raise RuntimeError("radio not started")
        controller = SimulatedController(
            peripheral.name, link=self._link, public_address=peripheral.address
        )
        await peripheral.start(Host(controller, AsyncPipeSink(controller)))
        self._controllers[peripheral] = controller
        return peripheral

    async def remove(self, peripheral: EmulatedPeripheral) -> None:
        """Switch `peripheral` off: its links drop and it leaves the air."""
        controller = self._controllers.pop(peripheral)
        await peripheral.stop()
        if self._link is not None:
            self._link.remove_controller(controller)

    async def close(self) -> None:
        for peripheral in list(self._controllers):
            await self.remove(peripheral)
        central, self._central = self._central, None
        if central is not None:
            pop_default_central(central)
            await _stop_central(central)
        self._link = None

    def _rssi_of(self, address: hci.Address) -> int | None:
        wanted = address.to_string(with_type_qualifier=False)
        for peripheral in self._controllers:
            if peripheral.address == wanted:
                return peripheral.rssi
        return None


class HciCentral:
    """A central on a real HCI transport: a `VirtualControllers` port or hardware.

    `HciCentral("tcp-client:127.0.0.1:19002")` joins virtual controllers;
    `HciCentral("usb:0")` drives a USB dongle. Registers as the bleak backend's default
    central while running, like `SimulatedRadio`.
    """

    def __init__(
        self,
        transport: str,
        *,
        address: str = DEFAULT_CENTRAL_ADDRESS,
        register_default: bool = True,
    ) -> None:
        self.transport_spec = transport
        self._address = address
        self._register_default = register_default
        self._transport: Transport | None = None
        self._central: Device | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def central(self) -> Device:
        if self._central is None:
            raise RuntimeError("central not started")
        return self._central

    async def start(self) -> None:
        self._transport = await open_transport(self.transport_spec)
        try:
            self._central = await _start_central(
                Host(self._transport.source, self._transport.sink), self._address
            )
        except BaseException:
            await self._transport.close()
            self._transport = None
            raise
        if self._register_default:
            push_default_central(self._central)

    async def close(self) -> None:
        central, self._central = self._central, None
        if central is not None:
            pop_default_central(central)
            await _stop_central(central)
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(_PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class _ChildProcess:
    """A `python -m ...` child that announces readiness with one stdout line.

    Its stdin is a pipe it watches: if this process dies without closing it, the child
    sees end-of-file and exits rather than lingering.
    """

    def __init__(self, args: Sequence[str], ready_prefix: str, start_timeout: float) -> None:
        self._args = list(args)
        self._ready_prefix = ready_prefix
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> list[str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=_child_environment(),
        )
        self._process = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(self._start_timeout):
                while True:
                    line = (await process.stdout.readline()).decode().strip()
                    if not line:
                        raise RuntimeError(
                            f"{' '.join(self._args)} exited with {await process.wait()}"
                        )
                    if line.startswith(self._ready_prefix):
                        return line.split()[1:]
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        # Close the pipes explicitly: left to the garbage collector they warn.
        if process.stdin is not None:
            process.stdin.close()
        if process.stdout is not None:
            process.stdout.feed_eof()


class VirtualControllers:
    """A child process hosting `count` virtual controllers on one link, each behind an
    HCI-over-TCP server: the multi-process air.

    bumble's own `python -m bumble.apps.controllers` does the same for exactly two
    transports; this one takes any number, picks free ports itself (no race between
    choosing and binding) and uses `SimulatedController`'s connect-cancel fix.
    """

    def __init__(self, count: int = 2, *, host: str = "127.0.0.1", start_timeout: float = 10.0):
        if count < 1:
            raise ValueError("count must be at least 1")
        self._count = count
        self._host = host
        self._child = _ChildProcess(
            [
                "-m",
                "simulators.ble.radio",
                "controllers",
                "--count",
                str(count),
                "--host",
                host,
                "--exit-on-stdin-eof",
            ],
            ready_prefix="ready",
            start_timeout=start_timeout,
        )
        self.ports: list[int] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self.ports = [int(port) for port in await self._child.start()]

    async def close(self) -> None:
        await self._child.stop()

    def transport(self, index: int) -> str:
        """The bumble transport spec a host uses to attach to controller `index`."""
        return f"tcp-client:{self._host}:{self.ports[index]}"


class PeripheralProcess:
    """An emulator in its own process: `python -m simulators.ble.peripheral FACTORY`.

    `factory` is `module:callable` returning an `EmulatedPeripheral`; `start()` returns
    once it advertises, and `address` is its Bluetooth address.
    """

    def __init__(
        self,
        factory: str,
        transport: str,
        *,
        name: str | None = None,
        address: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        args = ["-m", "simulators.ble.peripheral", factory, "--transport", transport]
        if name:
            args += ["--name", name]
        if address:
            args += ["--address", address]
        self._child = _ChildProcess(args, ready_prefix="advertising", start_timeout=start_timeout)
        self.address: str | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        (self.address,) = await self._child.start()

    async def close(self) -> None:
        await self._child.stop()


async def serve_controllers(
    transports: Sequence[str],
    *,
    announce: Callable[[list[int]], None] | None = None,
    until: asyncio.Future[Any] | None = None,
) -> None:
    """Host one `SimulatedController` per HCI transport on a shared link until `until`."""
    link = LocalLink()
    opened: list[Transport] = []
    try:
        for index, spec in enumerate(transports):
            transport = await open_transport(spec)
            opened.append(transport)
            SimulatedController(
                f"C{index}", link=link, host_source=transport.source, host_sink=transport.sink
            )
        if announce is not None:
            announce([_bound_port(transport) for transport in opened])
        await (until if until is not None else asyncio.get_running_loop().create_future())
    finally:
        for transport in opened:
            await transport.close()


def _bound_port(transport: Transport) -> int:
    server = getattr(transport, "server", None)
    if server is None or not server.sockets:
        return 0
    return int(server.sockets[0].getsockname()[1])


async def _controllers_main(args: argparse.Namespace) -> None:
    ports: list[int] = args.port or [0] * args.count
    specs = [f"tcp-server:{args.host}:{port}" for port in ports]
    loop = asyncio.get_running_loop()
    until: asyncio.Future[Any] = loop.create_future()
    if args.exit_on_stdin_eof:
        # The parent holds our stdin open; end-of-file means it has gone.
        eof = asyncio.ensure_future(asyncio.to_thread(sys.stdin.buffer.read))
        eof.add_done_callback(lambda _: until.done() or until.set_result(None))

    def announce(bound: list[int]) -> None:
        print("ready", *bound, flush=True)

    await serve_controllers(specs, announce=announce, until=until)


def main(argv: Iterable[str] | None = None) -> None:
    """`python -m simulators.ble.radio controllers [--count N | --port P ...]`."""
    parser = argparse.ArgumentParser(prog="python -m simulators.ble.radio")
    commands = parser.add_subparsers(dest="command", required=True)
    controllers = commands.add_parser(
        "controllers", help="virtual controllers on one link, one HCI-over-TCP server each"
    )
    controllers.add_argument("--count", type=int, default=2, help="controllers on free ports")
    controllers.add_argument(
        "--port", type=int, action="append", help="fixed port (repeat; overrides --count)"
    )
    controllers.add_argument("--host", default="127.0.0.1")
    controllers.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    controllers.add_argument("--verbose", action="store_true", help="log bumble at DEBUG")
    args = parser.parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        asyncio.run(_controllers_main(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
