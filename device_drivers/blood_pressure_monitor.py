"""`BloodPressureMonitorDriver`: Bluetooth SIG Blood Pressure Profile (BLS 1.0) cuffs.

BLS 1.0 has no Record Access Control Point: a monitor indicates its stored results in a
burst as soon as the collector enables indications on Blood Pressure Measurement (0x2A35),
indicates each new result as it is taken, and often switches itself off afterwards. So the
driver subscribes, then yields whatever arrives until the monitor falls silent or leaves.
Intermediate Cuff Pressure (0x2A36) notifications, when the monitor has them, report the
cuff inflating and deflating while a measurement runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import ClassVar, Final

from device_drivers import uuids
from device_drivers.codec.blood_pressure import (
    BloodPressureFeature,
    cuff_pressure,
    decode_blood_pressure_feature,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
    to_measurement,
)
from device_drivers.errors import ConnectionFailedError, PayloadError
from device_drivers.measurement import Measurement
from device_drivers.session import ClockSource, DeviceSession
from protocols.reading import DeviceKind

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S: Final = 10.0
"""Silence after which a session is over. Cuff-pressure notifications count as activity,
so a measurement in progress (30-60 s on a real cuff) is never cut short by it."""

CuffPressureCallback = Callable[[float], None]
BadPayloadCallback = Callable[[PayloadError], None]


class BloodPressureMonitorDriver:
    """One connected blood-pressure monitor.

    Args:
        session: the connected device.
        on_cuff_pressure: called with each live cuff pressure in mmHg, in arrival order,
            before the result it leads to is yielded.
        on_bad_payload: called with every 0x2A35 value that does not decode, so the edge
            can keep it as a dead letter; the session carries on with the next one.
    """

    kind: ClassVar[DeviceKind] = DeviceKind.BLOOD_PRESSURE_MONITOR
    service_uuid: ClassVar[str] = uuids.BLOOD_PRESSURE_SERVICE
    keeps_records: ClassVar[bool] = False
    """A monitor drops a result from memory once its indication is confirmed."""

    def __init__(
        self,
        session: DeviceSession,
        *,
        on_cuff_pressure: CuffPressureCallback | None = None,
        on_bad_payload: BadPayloadCallback | None = None,
    ) -> None:
        self.session = session
        self.feature: BloodPressureFeature | None = None
        """What the monitor can detect (0x2A49); None if it has no Feature characteristic."""
        self.clock_set = False
        """Whether prepare() could write the monitor's clock (Current Time)."""
        self._on_cuff_pressure = on_cuff_pressure
        self._on_bad_payload = on_bad_payload
        self._results: asyncio.Queue[bytes] = asyncio.Queue()
        self._last_activity = 0.0
        self._measuring = False
        self._prepared = False

    async def prepare(self, now: ClockSource) -> None:
        """Read Device Information and the features, set the clock, then subscribe:
        cuff pressure first, so no progress is missed, and 0x2A35 last, because enabling
        its indications is what starts the monitor's burst of stored results."""
        session = self.session
        session.require(uuids.BLOOD_PRESSURE_MEASUREMENT, "blood pressure measurement")
        await session.read_device_information()
        if session.has(uuids.BLOOD_PRESSURE_FEATURE):
            raw = await session.read(uuids.BLOOD_PRESSURE_FEATURE, "blood pressure feature")
            try:
                self.feature = decode_blood_pressure_feature(raw)
            except PayloadError as exc:
                # Features only describe what the status bits may say; readings still count.
                logger.warning("ignoring the features of %s: %s", session.address, exc)
        self.clock_set = await session.set_clock(now)
        if session.has(uuids.INTERMEDIATE_CUFF_PRESSURE):
            await session.subscribe(
                uuids.INTERMEDIATE_CUFF_PRESSURE, "intermediate cuff pressure", self._on_cuff
            )
        self._touch()
        await session.subscribe(
            uuids.BLOOD_PRESSURE_MEASUREMENT, "blood pressure measurement", self._on_result
        )
        self._prepared = True

    async def measurements(
        self,
        *,
        after_sequence: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> AsyncIterator[Measurement]:
        """Yield each 0x2A35 result as a Measurement as soon as it arrives.

        Ends when the monitor disconnects, which is how most end a session, or after
        `idle_timeout` seconds with neither a result nor a cuff pressure: then the driver
        closes the link itself and yields what arrived before it was down. A disconnect while a
        measurement is running (cuff pressures seen, no result yet) raises
        `ConnectionFailedError` once everything received has been yielded.

        BLS records carry no sequence number and the monitor alone decides what it sends
        (usually what it has not sent before), so `after_sequence` is accepted for the
        drivers' common shape and ignored. A failed cuff measurement (systolic or
        diastolic not a number) yields nothing; a malformed value goes to
        `on_bad_payload`.
        """
        del after_sequence
        if not self._prepared:
            raise RuntimeError("call prepare() before measurements()")
        self._touch()
        while (payload := await self._next(idle_timeout)) is not None:
            measurement = self._decode(payload)
            if measurement is not None:
                yield measurement
        if self.session.disconnected.is_set():
            if self._measuring:
                self._measuring = False
                raise ConnectionFailedError(
                    f"{self.session.address} dropped the link during a measurement"
                )
            return
        # Silence ends the session, and we hang up before letting go of the queue: a result
        # indicated from now on is confirmed by our stack and the monitor then drops it from
        # memory, so whatever arrives until the link is down must be handed on.
        self._measuring = False
        await self.session.close()
        while not self._results.empty():
            measurement = self._decode(self._results.get_nowait())
            if measurement is not None:
                yield measurement

    def left_over(self) -> list[Measurement]:
        """Results received but not yet yielded, for a caller that stopped taking them
        (its own failure, a watchdog) and has closed the link: the monitor forgot each once
        our stack confirmed it, so this is the only copy."""
        found = []
        while not self._results.empty():
            measurement = self._decode(self._results.get_nowait())
            if measurement is not None:
                found.append(measurement)
        return found

    # -- internals ---------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    def _on_result(self, data: bytes) -> None:
        self._touch()
        self._measuring = False
        self._results.put_nowait(data)

    def _on_cuff(self, data: bytes) -> None:
        self._touch()
        try:
            record = decode_intermediate_cuff_pressure(data)
        except PayloadError as exc:
            # Progress only: the result that follows is what counts, so no dead letter.
            logger.warning("ignoring a cuff pressure from %s: %s", self.session.address, exc)
            return
        self._measuring = True
        pressure = cuff_pressure(record)
        if pressure is not None and self._on_cuff_pressure is not None:
            self._on_cuff_pressure(pressure)

    async def _next(self, idle_timeout: float) -> bytes | None:
        """The next result, or None once the monitor is silent for `idle_timeout` or gone;
        results that arrived before a disconnect are still returned first."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._results.empty():
                return self._results.get_nowait()
            if self.session.disconnected.is_set():
                return None
            remaining = self._last_activity + idle_timeout - loop.time()
            if remaining <= 0:
                if self._measuring:
                    logger.warning("%s went silent during a measurement", self.session.address)
                return None
            getter = asyncio.ensure_future(self._results.get())
            dropped = asyncio.ensure_future(self.session.disconnected.wait())
            try:
                await asyncio.wait(
                    (getter, dropped), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                getter.cancel()
                dropped.cancel()
            if getter.done() and not getter.cancelled():
                return getter.result()
            # Otherwise: the link dropped, or the deadline passed (a cuff pressure may
            # have moved it); the checks above decide.

    def _decode(self, payload: bytes) -> Measurement | None:
        try:
            record = decode_blood_pressure_measurement(payload)
        except PayloadError as exc:
            if self._on_bad_payload is not None:
                self._on_bad_payload(exc)
            else:
                logger.warning("malformed measurement from %s: %s", self.session.address, exc)
            return None
        measurement = to_measurement(record)
        if measurement is None:
            logger.info(
                "%s reported a failed measurement: %s", self.session.address, record.as_dict()
            )
        return measurement
