"""`PulseOximeterDriver`: the Bluetooth SIG Pulse Oximeter Profile (service 0x1822) over bleak.

A session downloads the spot-checks the oximeter stored while no collector was near (RACP
"report all records", the only filter PLXS defines), then passes on live spot-checks and,
thinned to one per `continuous_every` seconds, the continuous stream, until the device
leaves or falls silent for `idle_timeout` — then the driver hangs up itself, so that a
spot-check indicated at that moment is not confirmed to the device and then dropped.

PLXS records have no sequence numbers, so `after_sequence` does not apply and every
download asks for all records again. A stored spot-check is keyed by its timestamp
(`Measurement.record_key` → "t:<time>"), so a record downloaded twice, or indicated live
and later downloaded from storage, derives the same reading ids and the cloud stores it
once. A spot-check whose clock was never set has no stable key: each download of it is a
new reading, flagged CLOCK_UNSET — which is why `prepare` sets the clock where it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import ClassVar, Final, Literal

from device_drivers import uuids
from device_drivers.codec.pulse_oximetry import (
    PlxFeatures,
    decode_continuous,
    decode_features,
    decode_spot_check,
    to_measurement,
)
from device_drivers.codec.racp import RacpRequest
from device_drivers.errors import DriverError, PayloadError, ProfileMismatchError
from device_drivers.measurement import Measurement
from device_drivers.record_access import DEFAULT_PROCEDURE_TIMEOUT_S, RecordAccess
from device_drivers.session import ClockSource, DeviceInformation, DeviceSession
from protocols.reading import DeviceKind

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S: Final = 30.0
"""A spot-check takes 10-20 s from finger-in; half a minute of silence means done."""
DEFAULT_CONTINUOUS_EVERY_S: Final = 60.0

_Kind = Literal["spot", "continuous"]
_Item = tuple[_Kind, bytes, float]


class _End:
    """Queue marker: the download procedure finished, or the link dropped."""


class PulseOximeterDriver:
    """One connected pulse oximeter.

    Args:
        session: an open `DeviceSession`.
        continuous_every: keep at most one continuous measurement per this many seconds
            (0 keeps them all).
        download_timeout: how long the stored-record download may take.
    """

    kind: ClassVar[DeviceKind] = DeviceKind.PULSE_OXIMETER
    service_uuid: ClassVar[str] = uuids.PULSE_OXIMETER_SERVICE
    keeps_records: ClassVar[bool] = False
    """Storage keeps only the spot-checks no collector confirmed."""

    def __init__(
        self,
        session: DeviceSession,
        *,
        continuous_every: float = DEFAULT_CONTINUOUS_EVERY_S,
        download_timeout: float = DEFAULT_PROCEDURE_TIMEOUT_S,
    ) -> None:
        if continuous_every < 0:
            raise ValueError("continuous_every must not be negative")
        self.session = session
        # A continuous oximeter notifies about once a second. Every kept update becomes an
        # outbox row, an MQTT message and two stored readings; case management needs a
        # trend, not 3600 rows per patient-hour, so the stream is thinned at the source.
        self.continuous_every = continuous_every
        self.download_timeout = download_timeout
        self.information = DeviceInformation()
        self.features: PlxFeatures | None = None
        self.clock_set = False
        """Whether `prepare` set the device clock (False: no writable Current Time)."""
        self.malformed: list[PayloadError] = []
        """Values that did not decode; logged and kept here for the session report."""
        self._inbox: asyncio.Queue[_Item | _End] = asyncio.Queue()
        self._record_access: RecordAccess | None = None
        self._prepared = False
        self._last_continuous: float | None = None

    @property
    def stores_spot_checks(self) -> bool:
        return self._record_access is not None

    async def prepare(self, now: ClockSource) -> None:
        """Read Device Information and PLX Features, set the clock, subscribe."""
        session = self.session
        if not session.has_service(uuids.PULSE_OXIMETER_SERVICE):
            raise ProfileMismatchError(f"{session.address} has no Pulse Oximeter service")
        has_spot = session.has(uuids.PLX_SPOT_CHECK_MEASUREMENT)
        has_continuous = session.has(uuids.PLX_CONTINUOUS_MEASUREMENT)
        if not (has_spot or has_continuous):
            raise ProfileMismatchError(
                f"{session.address} has neither PLX spot-check nor continuous measurement"
            )
        self.information = await session.read_device_information()
        if session.has(uuids.PLX_FEATURES):
            raw = await session.read(uuids.PLX_FEATURES, "PLX features")
            try:
                self.features = decode_features(raw)
            except PayloadError as exc:
                # The characteristics present still say what to subscribe to.
                logger.warning("ignoring PLX features of %s: %s", session.address, exc)
                self.malformed.append(exc)
        self.clock_set = await session.set_clock(now)
        if has_spot:
            await session.subscribe(
                uuids.PLX_SPOT_CHECK_MEASUREMENT, "PLX spot-check", self._receiver("spot")
            )
        if has_continuous:
            await session.subscribe(
                uuids.PLX_CONTINUOUS_MEASUREMENT, "PLX continuous", self._receiver("continuous")
            )
        storage = self.features is None or self.features.spot_check_storage
        if has_spot and storage and session.has(uuids.RECORD_ACCESS_CONTROL_POINT):
            self._record_access = RecordAccess(session)
            await self._record_access.start()
        self._prepared = True

    def _receiver(self, kind: _Kind) -> Callable[[bytes], None]:
        loop = asyncio.get_running_loop()

        def receive(data: bytes) -> None:
            # Only queued here: decoding waits for the consumer, so the confirmation of an
            # indication is never held up by our work.
            self._inbox.put_nowait((kind, data, loop.time()))

        return receive

    async def measurements(
        self,
        *,
        after_sequence: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> AsyncIterator[Measurement]:
        """Stored spot-checks first (where the device keeps them), then live ones and the
        thinned continuous stream, until `idle_timeout` s without data or the link drops.
        After `idle_timeout` the driver closes the link itself and yields what arrived
        before it was down: the session is over once this generator is exhausted.

        `after_sequence` is accepted for the common driver shape and ignored: PLXS records
        carry no sequence number (see the module docstring for de-duplication).
        A link lost during the download raises `ConnectionFailedError` after every record
        that arrived has been yielded.
        """
        del after_sequence
        if not self._prepared:
            raise RuntimeError("call prepare() before measurements()")
        # `aclosing`: a consumer that stops early must run the inner generators' clean-up
        # (abort the download, drop the link watcher) now, not whenever they are collected.
        if self._record_access is not None:
            async with contextlib.aclosing(self._download(self._record_access)) as stored:
                async for measurement in stored:
                    yield measurement
        async with contextlib.aclosing(self._live(idle_timeout)) as live:
            async for measurement in live:
                yield measurement

    async def _next(self, marker: _End) -> _Item | None:
        """The next value received, or None once `marker` comes out of the queue.

        Each wait has its own marker, so one left over from an earlier call (a drop that
        raced an idle timeout) is skipped rather than ending this one."""
        while True:
            item = await self._inbox.get()
            if item is marker:
                return None
            if not isinstance(item, _End):
                return item

    async def _download(self, record_access: RecordAccess) -> AsyncGenerator[Measurement, None]:
        procedure = asyncio.ensure_future(
            record_access.run(RacpRequest.report_all(), timeout=self.download_timeout)
        )
        done = _End()

        def finished(_: object) -> None:
            self._inbox.put_nowait(done)

        # The marker queues behind every record indicated before the RACP answer, so the
        # records are all yielded before the answer (or the failure) is looked at.
        procedure.add_done_callback(finished)
        try:
            while (item := await self._next(done)) is not None:
                measurement = self._accept(item)
                if measurement is not None:
                    yield measurement
            answer = procedure.result()
            logger.info("%s stored records: %s", self.session.address, answer)
        finally:
            if not procedure.done():
                procedure.remove_done_callback(finished)
                procedure.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await procedure
                await self._abort(record_access)

    async def _abort(self, record_access: RecordAccess) -> None:
        """Stop a report the consumer walked away from, or the device would refuse the next
        request with "procedure already in progress" until it finished on its own.
        Best effort: on a dropped link the write fails at once and there is nothing to stop."""
        try:
            await record_access.abort()
        except DriverError as exc:
            logger.warning("%s: aborting the download failed: %s", self.session.address, exc)

    async def _live(self, idle_timeout: float) -> AsyncGenerator[Measurement, None]:
        dropped = asyncio.ensure_future(self.session.disconnected.wait())
        link_down = _End()

        def on_drop(_: object) -> None:
            self._inbox.put_nowait(link_down)

        dropped.add_done_callback(on_drop)
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_timeout):
                        item = await self._next(link_down)
                except TimeoutError:
                    break
                if item is None:
                    # Between procedures a device switching itself off is how it says "done".
                    return
                measurement = self._accept(item)
                if measurement is not None:
                    yield measurement
            # Silence ends the session, and we hang up before letting go of the queue: a
            # spot-check indicated from now on is confirmed by our stack, and the oximeter
            # then forgets it, so whatever arrives until the link is down must be handed on.
            await self.session.close()
            for item in self._received():
                measurement = self._accept(item)
                if measurement is not None:
                    yield measurement
        finally:
            dropped.remove_done_callback(on_drop)
            dropped.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dropped

    def left_over(self) -> list[Measurement]:
        """Spot-checks (and continuous values) received but not yet yielded, for a caller
        that stopped taking them (its own failure, a watchdog) and has closed the link: a
        spot-check our stack confirmed is not kept for the next download."""
        found = []
        for item in self._received():
            measurement = self._accept(item)
            if measurement is not None:
                found.append(measurement)
        return found

    def _received(self) -> list[_Item]:
        """Every value still queued, without waiting; end markers are dropped."""
        items: list[_Item] = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if not isinstance(item, _End):
                items.append(item)
        return items

    def _accept(self, item: _Item) -> Measurement | None:
        kind, data, received = item
        try:
            record = decode_spot_check(data) if kind == "spot" else decode_continuous(data)
        except PayloadError as exc:
            logger.warning("skipping malformed PLX %s from %s: %s", kind, self.session.address, exc)
            self.malformed.append(exc)
            return None
        measurement = to_measurement(record)
        if measurement is None or kind == "spot":
            return measurement
        last = self._last_continuous
        if last is not None and received - last < self.continuous_every:
            return None
        self._last_continuous = received
        return measurement


__all__ = ["DEFAULT_CONTINUOUS_EVERY_S", "DEFAULT_IDLE_TIMEOUT_S", "PulseOximeterDriver"]
