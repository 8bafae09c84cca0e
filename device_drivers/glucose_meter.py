"""`GlucoseMeterDriver`: downloads a Bluetooth SIG glucose meter's stored records (GLS 0x1808).

The collector procedure of `ble_profiles.md` §2: subscribe to Glucose Measurement (and
Context), then to the Record Access Control Point, ask for all records or those after the
last one the edge stored, and read the notifications until the RACP answer ends the report.
Each measurement is joined to its context by sequence number and handed on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from enum import Enum
from typing import ClassVar, Final

from device_drivers import uuids
from device_drivers.codec.glucose import (
    GlucoseContext,
    GlucoseFeature,
    GlucoseMeasurement,
    decode_glucose_context,
    decode_glucose_feature,
    decode_glucose_measurement,
    to_measurement,
)
from device_drivers.codec.racp import RacpRequest, RacpResponse
from device_drivers.errors import (
    DeviceRejectedError,
    PayloadError,
    ProcedureTimeoutError,
    RecordAccessError,
)
from device_drivers.measurement import Measurement
from device_drivers.record_access import (
    DEFAULT_PROCEDURE_TIMEOUT_S,
    UNSUPPORTED_FILTER_CODES,
    RecordAccess,
)
from device_drivers.session import ClockSource, DeviceInformation, DeviceSession
from protocols.reading import DeviceKind

logger = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S: Final = 10.0
"""Longest silence inside a report (between records, or before the RACP answer)."""
DEFAULT_CONTEXT_WAIT_S: Final = 0.5
"""How long a measurement flagged "context follows" waits for its 0x2A34."""

ATT_PROCEDURE_IN_PROGRESS: Final = 0x80
ATT_CCCD_IMPROPERLY_CONFIGURED: Final = 0x81


class _Signal(Enum):
    """What `_next` returns when no record part came."""

    DONE = "the RACP answer came and every record queued before it was taken"
    TIMEOUT = "nothing arrived in time"


_Event = GlucoseMeasurement | GlucoseContext


class GlucoseMeterDriver:
    """One connected glucose meter. Call `prepare()` once, then `measurements()`."""

    kind: ClassVar[DeviceKind] = DeviceKind.GLUCOSE_METER
    service_uuid: ClassVar[str] = uuids.GLUCOSE_SERVICE
    keeps_records: ClassVar[bool] = True
    """A meter keeps its records after reporting them: one not taken now comes again."""

    def __init__(
        self,
        session: DeviceSession,
        *,
        context_wait: float = DEFAULT_CONTEXT_WAIT_S,
        procedure_timeout: float = DEFAULT_PROCEDURE_TIMEOUT_S,
    ) -> None:
        self.session = session
        self.record_access = RecordAccess(session)
        self.context_wait = context_wait
        self.procedure_timeout = procedure_timeout
        self.information: DeviceInformation | None = None
        self.feature: GlucoseFeature | None = None
        self.clock_was_set = False
        self.last_sequence: int | None = None
        """Highest sequence number seen, including records that gave no Measurement
        (control solution, no value), so a caller can resume past them."""
        self.rejected: list[PayloadError] = []
        """Notifications that did not decode, kept for support rather than dropped."""
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._has_context = False

    async def prepare(self, now: ClockSource) -> None:
        """Read Device Information and the feature, set the clock, subscribe (0x2A18,
        0x2A34 if present, then RACP indications: the meter refuses RACP before that)."""
        session = self.session
        session.require(uuids.GLUCOSE_MEASUREMENT, "glucose measurement")
        session.require(uuids.RECORD_ACCESS_CONTROL_POINT, "record access control point")
        self.information = await session.read_device_information()
        self.clock_was_set = await session.set_clock(now)
        if session.has(uuids.GLUCOSE_FEATURE):
            raw = await session.read(uuids.GLUCOSE_FEATURE, "glucose feature")
            try:
                self.feature = decode_glucose_feature(raw)
            except PayloadError as exc:
                # What the meter can detect is informative only; its records still decode.
                logger.warning("ignoring glucose feature of %s: %s", session.address, exc)
                self.rejected.append(exc)
        await session.subscribe(
            uuids.GLUCOSE_MEASUREMENT, "glucose measurement", self._on_measurement
        )
        self._has_context = session.has(uuids.GLUCOSE_MEASUREMENT_CONTEXT)
        if self._has_context:
            await session.subscribe(
                uuids.GLUCOSE_MEASUREMENT_CONTEXT, "glucose measurement context", self._on_context
            )
        await self.record_access.start()

    def _on_measurement(self, data: bytes) -> None:
        try:
            self._events.put_nowait(decode_glucose_measurement(data))
        except PayloadError as exc:
            self._reject(exc)

    def _on_context(self, data: bytes) -> None:
        try:
            self._events.put_nowait(decode_glucose_context(data))
        except PayloadError as exc:
            self._reject(exc)

    def _reject(self, exc: PayloadError) -> None:
        logger.warning("malformed glucose notification from %s: %s", self.session.address, exc)
        self.rejected.append(exc)

    async def record_count(self) -> int:
        """How many records the meter holds (RACP "report number of stored records")."""
        return await self.record_access.count()

    async def measurements(
        self,
        *,
        after_sequence: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> AsyncIterator[Measurement]:
        """Every stored record, or those after `after_sequence`, as each arrives.

        Ends on the meter's RACP answer ("no records found" yields nothing). A link that
        drops mid-report raises ConnectionFailedError after what arrived was yielded.
        After a sequence wrap (N = 65535) all records come back; the edge's record keys
        (sequence number and time) de-duplicate them.
        """
        request = RacpRequest.report_after(after_sequence)
        try:
            async for measurement in self._report(request, idle_timeout, skip_through=None):
                yield measurement
        except RecordAccessError as exc:
            if request.filter_type is None or exc.response_code not in UNSUPPORTED_FILTER_CODES:
                raise
            # Many meters implement only "all records": ask for all, skip the old ones here.
            logger.info("%s: %s; downloading all records", self.session.address, exc)
            async for measurement in self._report(
                RacpRequest.report_all(), idle_timeout, skip_through=after_sequence
            ):
                yield measurement

    def left_over(self) -> list[Measurement]:
        """Nothing: a meter keeps its records after reporting them, and the edge stores
        the last sequence only for records it took, so the next download brings back any
        record a caller stopped taking (`left_over` of the other drivers)."""
        return []

    async def _report(
        self,
        request: RacpRequest,
        idle_timeout: float,
        skip_through: int | None,
    ) -> AsyncIterator[Measurement]:
        run = asyncio.create_task(self._run(request))
        pending: GlucoseMeasurement | None = None
        try:
            while True:
                waiting_for_context = pending is not None
                timeout = self.context_wait if waiting_for_context else idle_timeout
                event = await self._next(run, timeout)
                if isinstance(event, GlucoseContext):
                    if pending is not None and pending.sequence_number == event.sequence_number:
                        found = self._convert(pending, event, skip_through)
                        pending = None
                        if found is not None:
                            yield found
                    else:
                        logger.info(
                            "%s: context #%d matches no measurement; ignored",
                            self.session.address,
                            event.sequence_number,
                        )
                    continue
                # Anything else ends the wait for the pending measurement's context.
                if pending is not None:
                    found = self._convert(pending, None, skip_through)
                    pending = None
                    if found is not None:
                        yield found
                if isinstance(event, GlucoseMeasurement):
                    if event.context_follows and self._has_context:
                        pending = event
                        continue
                    found = self._convert(event, None, skip_through)
                    if found is not None:
                        yield found
                elif event is _Signal.DONE:
                    run.result()  # the link dropped, or the meter refused: raise it now
                    return
                elif not waiting_for_context:
                    raise ProcedureTimeoutError(
                        f"{self.session.address} sent nothing for {idle_timeout:.0f} s "
                        "in the middle of a record report"
                    )
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run

    async def _run(self, request: RacpRequest) -> RacpResponse:
        try:
            return await self.record_access.run(request, timeout=self.procedure_timeout)
        except DeviceRejectedError as exc:
            if exc.att_error == ATT_CCCD_IMPROPERLY_CONFIGURED:
                raise DeviceRejectedError(
                    f"{self.session.address} refused the record request: it wants glucose "
                    "measurement notifications and RACP indications enabled first "
                    "(ATT 0x81, CCCD improperly configured); call prepare() before "
                    "measurements()",
                    att_error=exc.att_error,
                ) from exc
            if exc.att_error == ATT_PROCEDURE_IN_PROGRESS:
                raise DeviceRejectedError(
                    f"{self.session.address} is still busy with another record access "
                    "procedure (ATT 0x80); retry when it ends",
                    att_error=exc.att_error,
                ) from exc
            raise

    async def _next(
        self,
        run: asyncio.Task[RacpResponse],
        timeout: float,  # noqa: ASYNC109
    ) -> _Event | _Signal:
        """The next record part, or why there is none."""
        if not self._events.empty():
            return self._events.get_nowait()
        if run.done():
            # Notification callbacks run as tasks; let any already scheduled ones deliver.
            await asyncio.sleep(0)
            return self._events.get_nowait() if not self._events.empty() else _Signal.DONE
        getter = asyncio.ensure_future(self._events.get())
        try:
            await asyncio.wait({getter, run}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A cancelled Queue.get leaves its item in the queue, so no need to wait for it.
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        if run.done():
            return await self._next(run, timeout)
        return _Signal.TIMEOUT

    def _convert(
        self,
        record: GlucoseMeasurement,
        context: GlucoseContext | None,
        skip_through: int | None,
    ) -> Measurement | None:
        sequence = record.sequence_number
        if self.last_sequence is None or sequence > self.last_sequence:
            self.last_sequence = sequence
        if skip_through is not None and sequence <= skip_through:
            return None
        measurement = to_measurement(record, context)
        if measurement is None:
            logger.info(
                "%s: record #%d carries no patient glucose value (control solution or no "
                "result); not forwarded",
                self.session.address,
                sequence,
            )
        return measurement


__all__ = [
    "DEFAULT_CONTEXT_WAIT_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "GlucoseMeterDriver",
]
