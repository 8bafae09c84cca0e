"""`DeviceLinks`: finds paired devices by their advertisements and runs a session with each.

One scanner hears every advertisement; the device catalogue (data) says which driver
handles it. For each paired, connectable device in range, one task at a time runs a
session: connect, read the device's clock *before* setting it (the offset its stored
records were taken under), `prepare` (Device Information, clock, subscriptions), then
download what the agent has not stored yet — for record-access meters, "records after the
last sequence number I stored" — and hand each record to the agent as soon as it arrives.
A record counts as taken only once it is in the outbox; only then does the device's
stored sequence number move on, so a link that drops mid-download resumes right after.

A failed session is retried after a delay chosen by the kind of failure
(`edge_agent.backoff`); a link that is up but silent for `watchdog` is cut (openScale's
"connected but no data" never lasts). Several devices are served at once, each in its own
task. Readings are timed by `edge_agent.clock` and attributed by `edge_agent.attribution`.

The bleak backends are parameters: None is the platform's own (BlueZ, WinRT, Android);
tests pass `simulators.ble.bleak_bumble.BumbleScanner` / `BumbleClient`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from bleak import BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from device_drivers import uuids
from device_drivers.catalogue import CatalogueEntry, default_catalogue, identify
from device_drivers.codec.current_time import decode_current_time
from device_drivers.errors import DriverError, PayloadError
from device_drivers.measurement import Measurement, to_readings
from device_drivers.scale import to_advertisement
from device_drivers.session import DeviceSession
from edge_agent.attribution import (
    DEFAULT_SESSION_GRACE,
    Attribution,
    Unassigned,
    attribute_centre,
    attribute_home,
)
from edge_agent.backoff import DEVICE_RETRY, FailureKind, RetryPolicy, classify, retry_delay
from edge_agent.clock import DEFAULT_TOLERANCE, clock_offset, device_local, judge_time
from edge_agent.local_state import KnownDevice, LocalState
from protocols.messages import DeviceStatus
from protocols.reading import DeviceKind, DeviceRef, Reading, Source

log = logging.getLogger("carebridge.edge.devices")

_SEEN_WRITE_EVERY_S = 30.0
"""Advertisements come many times a second; the devices table needs one write a while."""
_SUPERVISE_EVERY_S = 0.2
_KINDS = frozenset(kind.value for kind in DeviceKind)
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_HEARD_WITHIN_S = 15.0
"""Connect only to a device heard this recently: one that stopped advertising is away."""


class ReadingSink(Protocol):
    """What the links hand readings to: `EdgeAgent.submit` (durable on return).

    `device_keeps`: the device still holds the record and gives it again (a glucose
    meter's memory), so a full outbox may refuse it; otherwise it must be stored."""

    async def submit(self, readings: Sequence[Reading], *, device_keeps: bool) -> int: ...


@dataclass
class LinkStatus:
    """What one device is doing right now, for `status` and the health endpoint."""

    address: str
    kind: str
    connected: bool = False
    since: datetime | None = None
    records_this_session: int = 0
    sessions_ok: int = 0
    last_failure: str | None = None
    retry_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "connected": self.connected,
            "since": self.since.isoformat() if self.since else None,
            "records_this_session": self.records_this_session,
            "sessions_ok": self.sessions_ok,
            "last_failure": self.last_failure,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
        }


@dataclass(frozen=True)
class _Heard:
    device: BLEDevice
    entry: CatalogueEntry
    name: str | None
    rssi: int | None
    at: float
    """Event-loop time of the advertisement."""


@dataclass
class _SessionClock:
    offset: timedelta | None = None
    set_at: datetime | None = None


@dataclass
class LinkOptions:
    """Timing of device sessions; the defaults suit real devices, tests shrink them."""

    connect_timeout: float = 20.0
    idle_timeout: float = 10.0
    watchdog: float = 120.0
    resync_after: float = 30.0
    max_links: int = 8
    clock_tolerance: timedelta = DEFAULT_TOLERANCE
    session_grace: timedelta = DEFAULT_SESSION_GRACE
    backoff: dict[FailureKind, RetryPolicy] = field(default_factory=lambda: dict(DEVICE_RETRY))


async def scan_once(
    state: LocalState,
    seconds: float,
    *,
    catalogue: Sequence[CatalogueEntry] | None = None,
    backend: type[BaseBleakScanner] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    **scanner_kwargs: Any,
) -> list[KnownDevice]:
    """Listen for `seconds` and record every device the catalogue knows (the pairing
    flow's first step when the agent is not running); returns what was heard."""
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}

    def hear(device: BLEDevice, data: AdvertisementData) -> None:
        found[device.address.upper()] = (device, data)

    async with BleakScanner(detection_callback=hear, backend=backend, **scanner_kwargs):
        await asyncio.sleep(seconds)
    heard: list[KnownDevice] = []
    for device, data in found.values():
        entry = identify(to_advertisement(data), catalogue)
        if entry is None:
            continue
        await state.device_seen(
            device.address,
            name=data.local_name,
            catalogue_id=entry.id,
            kind=entry.kind.value,
            connectable=entry.connectable,
            rssi=data.rssi,
            now=now(),
        )
        known = await state.device(device.address)
        if known is not None:
            heard.append(known)
    return heard


class DeviceLinks:
    """Runs per-device sessions for every paired device in range (see the module doc).

    Args:
        state: paired devices, sequence numbers, sessions, unassigned readings.
        sink: where readings go (the agent's `submit`).
        mode: "centre" (patient sessions) or "home" (`home_patient_id` and family).
        zone: the time zone device clocks are set to and read in.
        scanner_backend / client_backend: bleak backends (None: the platform's own).
        scanner_kwargs / client_kwargs: passed to BleakScanner / BleakClient.
        now: the agent's clock (aware), injectable so tests control time.
    """

    def __init__(
        self,
        *,
        state: LocalState,
        sink: ReadingSink,
        mode: str,
        zone: tzinfo,
        home_patient_id: str | None = None,
        catalogue: Sequence[CatalogueEntry] | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        scanner_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        options: LinkOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rand: Callable[[], float] = random.random,
    ) -> None:
        if mode not in ("centre", "home"):
            raise ValueError(f"mode is centre or home, not {mode!r}")
        self.state = state
        self.sink = sink
        self.mode = mode
        self.source = Source.CENTRE if mode == "centre" else Source.HOME
        self.zone = zone
        self.home_patient_id = home_patient_id
        self.catalogue = tuple(catalogue if catalogue is not None else default_catalogue())
        self.options = options or LinkOptions()
        self.links: dict[str, LinkStatus] = {}
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._scanner_kwargs = scanner_kwargs or {}
        self._client_kwargs = client_kwargs or {}
        self._now = now
        self._rand = rand
        self._heard: dict[str, _Heard] = {}
        self._seen_written: dict[str, float] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._paired: dict[str, KnownDevice] = {}
        self._wake = asyncio.Event()
        self._skipped: set[str] = set()

    # -- the supervisor ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Scan and serve devices until `stop` is set; sessions in progress are cancelled."""
        scanner = BleakScanner(
            detection_callback=self._on_advertisement,
            backend=self._scanner_backend,
            **self._scanner_kwargs,
        )
        await scanner.start()
        try:
            while not stop.is_set():
                await self._record_heard()
                self._paired = {d.address: d for d in await self.state.devices(paired_only=True)}
                self._start_due_links()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_SUPERVISE_EVERY_S):
                        await self._wake.wait()
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()
            await scanner.stop()

    def _on_advertisement(self, device: BLEDevice, data: AdvertisementData) -> None:
        entry = identify(to_advertisement(data), self.catalogue)
        if entry is None:
            return
        address = device.address.upper()
        loop_now = asyncio.get_running_loop().time()
        self._heard[address] = _Heard(device, entry, data.local_name, data.rssi, loop_now)
        if address in self._paired and address not in self._tasks:
            self._wake.set()

    async def _record_heard(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        for address, heard in list(self._heard.items()):
            if loop_now - self._seen_written.get(address, -_SEEN_WRITE_EVERY_S) < (
                _SEEN_WRITE_EVERY_S
            ):
                continue
            self._seen_written[address] = loop_now
            await self.state.device_seen(
                address,
                name=heard.name,
                catalogue_id=heard.entry.id,
                kind=heard.entry.kind.value,
                connectable=heard.entry.connectable,
                rssi=heard.rssi,
                now=self._now(),
            )

    def _start_due_links(self) -> None:
        now = self._now()
        recent = asyncio.get_running_loop().time() - _HEARD_WITHIN_S
        for address, known in self._paired.items():
            if len(self._tasks) >= self.options.max_links:
                return
            if address in self._tasks:
                continue
            if known.retry_at is not None and known.retry_at > now:
                continue
            entry = self._entry(known)
            if entry is None:
                continue
            heard = self._heard.get(address)
            if entry.connectable and (heard is None or heard.at < recent):
                continue
            task = asyncio.create_task(self._serve(address, entry, known, heard))
            self._tasks[address] = task
            task.add_done_callback(functools.partial(self._link_ended, address))

    def _entry(self, known: KnownDevice) -> CatalogueEntry | None:
        for entry in self.catalogue:
            if entry.id == known.catalogue_id:
                return entry
        if known.address not in self._skipped:
            self._skipped.add(known.address)
            log.error(
                "paired device names no catalogue entry of this agent",
                extra={"address": known.address, "catalogue_id": known.catalogue_id},
            )
        return None

    def _link_ended(self, address: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(address, None)
        self._wake.set()

    # -- one device session ------------------------------------------------------------

    async def _serve(
        self, address: str, entry: CatalogueEntry, known: KnownDevice, heard: _Heard | None
    ) -> None:
        status = self.links.setdefault(address, LinkStatus(address, entry.kind.value))
        try:
            if heard is not None and entry.connectable:
                await self._session(address, heard, known, status)
                resync = self.options.resync_after
            else:
                await self._listen(address, entry, status)
                resync = 0.0  # a broadcast missed while not listening is lost
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a device must never take the agent down
            await self._failed(address, known, status, exc)
        else:
            status.sessions_ok += 1
            status.last_failure = None
            retry_at = self._now() + timedelta(seconds=resync)
            status.retry_at = retry_at
            if known.failures or resync:
                await self.state.update_device(
                    address, failures=0, last_error_code=None, last_error=None, retry_at=retry_at
                )
        finally:
            status.connected = False

    async def _listen(self, address: str, entry: CatalogueEntry, status: LinkStatus) -> None:
        """A device that only broadcasts (Xiaomi scales): its vendor driver listens, from
        when it is paired, until it has been silent for the idle timeout; then again."""
        driver = entry.driver_class()(
            address=address, backend=self._scanner_backend, **self._scanner_kwargs
        )
        status.connected, status.since, status.records_this_session = True, self._now(), 0
        clock = _SessionClock()  # nothing to read: its stamps are judged as they are
        async for found in driver.advertised_measurements(idle_timeout=self.options.idle_timeout):
            # A broadcast missed is gone: nothing to hear again.
            await self._take(address, found.device, found.measurement, clock, device_keeps=False)
            status.records_this_session += 1

    async def _failed(
        self, address: str, known: KnownDevice, status: LinkStatus, exc: Exception
    ) -> None:
        kind = classify(exc)
        failures = known.failures + 1
        delay = retry_delay(kind, failures, rand=self._rand, table=self.options.backoff)
        retry_at = self._now() + timedelta(seconds=delay)
        reason = str(exc) or type(exc).__name__
        if not isinstance(exc, DriverError | TimeoutError):
            log.exception("device session failed unexpectedly", extra={"address": address})
        log.warning(
            "device session failed",
            extra={
                "address": address,
                "failure": kind.value,
                "reason": reason,
                "attempt": failures,
                "retry_in_s": round(delay, 2),
            },
        )
        status.last_failure = f"{kind.value}: {reason}"
        status.retry_at = retry_at
        await self.state.update_device(
            address,
            failures=failures,
            last_error_code=kind.value,
            last_error=reason[:500],
            retry_at=retry_at,
        )

    async def _session(
        self, address: str, heard: _Heard, known: KnownDevice, status: LinkStatus
    ) -> None:
        options = self.options
        session = DeviceSession.connect(
            heard.device,
            backend=self._client_backend,
            timeout=options.connect_timeout,
            pair=known.bond,
            **self._client_kwargs,
        )
        async with session:
            clock = _SessionClock()
            driver: Any = None
            taking: Measurement | None = None
            try:
                # The watchdog is for a device gone silent: it times the link, never our own
                # storing of what arrived, which it must not cut short.
                async with asyncio.timeout(options.watchdog):
                    connected_at = self._now()
                    status.connected, status.since = True, connected_at
                    status.records_this_session = 0
                    clock.offset = await self._read_clock(session, connected_at)
                    driver = heard.entry.driver_class()(session)
                    ref = await self._prepare(
                        address, session, driver, heard, clock, connected_at, known.last_sequence
                    )
                    records = driver.measurements(
                        after_sequence=known.last_sequence, idle_timeout=options.idle_timeout
                    )
                async with contextlib.aclosing(records):
                    while True:
                        async with asyncio.timeout(options.watchdog):
                            taking = await anext(records, None)
                        if taking is None:
                            break
                        await self._take(
                            address, ref, taking, clock, device_keeps=_keeps_records(driver)
                        )
                        taking = None
                        status.records_this_session += 1
            except (Exception, asyncio.CancelledError):
                # Cancelled too: an agent shutting down must not drop a burst mid-way.
                if driver is not None:
                    await self._keep_what_arrived(
                        address, session, heard.entry.kind, driver, taking, clock
                    )
                raise
            last = getattr(driver, "last_sequence", None)
            if isinstance(last, int):
                # Past records that gave no reading (control solution) too: nothing to redo.
                await self.state.store_sequence(address, last)
            log.info(
                "device session ended",
                extra={"address": address, "records": status.records_this_session},
            )

    async def _prepare(
        self,
        address: str,
        session: DeviceSession,
        driver: Any,
        heard: _Heard,
        clock: _SessionClock,
        connected_at: datetime,
        after_sequence: int | None,
    ) -> DeviceRef:
        """Set the driver up (clock, subscriptions) and record what the device told."""
        options = self.options
        # The clock is read when the write goes out, not before the reads prepare() does.
        await driver.prepare(lambda: device_local(self._now(), self.zone))
        if getattr(driver, "clock_was_set", False) or getattr(driver, "clock_set", False):
            clock.set_at = self._now()
        ref = session.device_ref(heard.entry.kind)
        await self.state.update_device(
            address,
            serial=ref.serial,
            model=ref.model,
            manufacturer=ref.manufacturer,
            last_connected_at=connected_at,
            clock_offset_s=None if clock.offset is None else clock.offset.total_seconds(),
            clock_checked_at=connected_at,
            battery_percent=await self._battery(session),
        )
        if clock.offset is not None and abs(clock.offset) > options.clock_tolerance:
            await self.state.update_device(
                address, clock_skew_s=clock.offset.total_seconds(), clock_skew_at=connected_at
            )
            log.warning(
                "device clock is off",
                extra={
                    "address": address,
                    "offset_s": clock.offset.total_seconds(),
                    "clock_set_now": clock.set_at is not None,
                },
            )
        log.info(
            "device session started",
            extra={"address": address, "serial": ref.serial, "after_sequence": after_sequence},
        )
        return ref

    async def _keep_what_arrived(
        self,
        address: str,
        session: DeviceSession,
        kind: DeviceKind,
        driver: Any,
        taking: Measurement | None,
        clock: _SessionClock,
    ) -> None:
        """After a session failed or was cancelled: hang up, then take what the device
        delivered that was not taken yet — the measurement whose taking failed and what the
        driver still holds.

        A cuff, an oximeter's spot-check or a scale forgets a record once our stack has
        confirmed its indication, so these exist nowhere else. Taking one again is harmless:
        its reading ids are the same, and the outbox keeps one row per id."""
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                await session.close()
        except TimeoutError:
            log.warning("hanging up after a failed session timed out", extra={"address": address})
        left_over = getattr(driver, "left_over", None)
        kept = [taking] if taking is not None else []
        kept += left_over() if left_over is not None else []
        if not kept:
            return
        ref = session.device_ref(kind)
        for measurement in kept:
            try:
                await self._take(
                    address, ref, measurement, clock, device_keeps=_keeps_records(driver)
                )
            except Exception:
                # Not silent: the values are in the log for staff to enter by hand.
                log.exception(
                    "a measurement the device handed over could not be kept",
                    extra={"address": address, "measurement": repr(measurement)},
                )
        log.warning(
            "measurements received before a session failed were taken after it",
            extra={"address": address, "count": len(kept)},
        )

    async def _battery(self, session: DeviceSession) -> int | None:
        try:
            return await session.read_battery_level()
        except (DriverError, PayloadError) as exc:
            log.info(
                "battery level unreadable", extra={"address": session.address, "reason": str(exc)}
            )
            return None

    async def _read_clock(self, session: DeviceSession, agent_now: datetime) -> timedelta | None:
        """The device clock's offset from ours, read before anything sets it."""
        if not session.has(uuids.CURRENT_TIME):
            return None
        try:
            current = decode_current_time(await session.read(uuids.CURRENT_TIME, "current time"))
        except (PayloadError, DriverError) as exc:
            log.info(
                "device clock unreadable", extra={"address": session.address, "reason": str(exc)}
            )
            return None
        moment = current.moment
        if moment is not None:
            moment += timedelta(seconds=current.fractions256 / 256)
        return clock_offset(moment, agent_now, self.zone)

    async def _take(
        self,
        address: str,
        ref: DeviceRef,
        measurement: Measurement,
        clock: _SessionClock,
        *,
        device_keeps: bool,
    ) -> None:
        received_at = self._now()
        verdict = judge_time(
            device_time=measurement.device_time,
            clock_set=measurement.clock_set,
            received_at=received_at,
            zone=self.zone,
            offset=clock.offset,
            clock_set_at=clock.set_at,
            tolerance=self.options.clock_tolerance,
        )
        attribution = await self._attribute(
            address, verdict.measured_at, verdict.trusted, received_at
        )
        readings = to_readings(
            measurement,
            device=ref,
            received_at=received_at,
            source=self.source,
            device_timezone=self.zone,
            patient_id=attribution.patient_id,
            staff_id=attribution.staff_id,
            measured_at=verdict.measured_at,
            extra_flags=verdict.flags,
        )
        if not readings:
            return
        if attribution.unassigned is not None:
            # Listed before the outbox has it: a crash in between re-downloads the record
            # (its sequence was not stored) and the same ids land on the same row.
            await self.state.add_unassigned(address, readings, attribution.unassigned.value)
        await self.sink.submit(readings, device_keeps=device_keeps)
        if attribution.session is not None:
            await self.state.touch_session(attribution.session, received_at)
        if measurement.sequence_number is not None:
            await self.state.store_sequence(address, measurement.sequence_number)

    async def _attribute(
        self, address: str, measured_at: datetime, trusted: bool, received_at: datetime
    ) -> Attribution:
        if self.mode == "home":
            if self.home_patient_id is None:
                log.warning("home mode without a patient: the reading stays unassigned")
                return Attribution(None, unassigned=Unassigned.NO_SESSION)
            return attribute_home(
                self.home_patient_id,
                members=await self.state.members(),
                choice=await self.state.member_choice(),
                measured_at=measured_at,
                received_at=received_at,
            )
        sessions = await self.state.sessions(
            device_key=address, since=measured_at - self.options.session_grace
        )
        return attribute_centre(
            sessions,
            device_key=address,
            measured_at=measured_at,
            time_trusted=trusted,
            grace=self.options.session_grace,
        )

    def status(self) -> list[dict[str, Any]]:
        return [link.as_json() for link in self.links.values()]

    async def device_statuses(self) -> list[DeviceStatus]:
        """The paired devices as the retained `EdgeStatus` carries them to the cloud."""
        return device_statuses(await self.state.devices(paired_only=True), self.links)


def device_statuses(
    paired: Sequence[KnownDevice], links: dict[str, LinkStatus]
) -> list[DeviceStatus]:
    """Paired devices (what the local state knows) with their live link, if any."""
    statuses = []
    for device in paired:
        link = links.get(device.address)
        kind = device.kind or (link.kind if link else None)
        if kind not in _KINDS:
            continue  # not catalogued: nothing the cloud could name
        statuses.append(
            DeviceStatus(
                serial=_identifier_or_none(device.serial),
                kind=DeviceKind(kind),
                connected=bool(link and link.connected),
                last_seen_at=device.last_seen_at,
                battery_percent=device.battery_percent,
                address=device.address,
                model=device.model[:64] if device.model else None,
                last_error_kind=device.last_error_code,
            )
        )
    return statuses


def _keeps_records(driver: object) -> bool:
    """Whether the device keeps a record it handed over (a driver's `keeps_records`); a
    driver that does not say is taken to forget, so a full outbox never refuses its records."""
    return bool(getattr(driver, "keeps_records", False))


def _identifier_or_none(serial: str | None) -> str | None:
    # A serial with characters outside the protocol's identifiers is shown by `list`
    # locally but not sent, rather than failing the whole status message.
    if serial and _IDENTIFIER.match(serial) and len(serial) <= 64:
        return serial
    return None
