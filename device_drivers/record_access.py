"""`RecordAccess`: run one Record Access Control Point procedure over a `DeviceSession`.

The device answers a RACP write with an indication on the same characteristic; records
it reports arrive meanwhile as notifications of the profile's measurement characteristic,
which the driver collects itself. This class only pairs requests with their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from device_drivers import uuids
from device_drivers.codec.racp import (
    GeneralResponse,
    NumberOfRecords,
    RacpRequest,
    RacpResponse,
    ResponseCode,
    decode_response,
    encode_request,
)
from device_drivers.errors import (
    ConnectionFailedError,
    PayloadError,
    ProcedureTimeoutError,
    RecordAccessError,
)
from device_drivers.session import DeviceSession

logger = logging.getLogger(__name__)

DEFAULT_PROCEDURE_TIMEOUT_S = 60.0
"""A meter with 500 records at ~20 records/s needs ~25 s; the spec asks for a long timeout."""


class RecordAccess:
    def __init__(self, session: DeviceSession) -> None:
        self._session = session
        self._answers: asyncio.Queue[RacpResponse | PayloadError] = asyncio.Queue()
        self._started = False

    @property
    def available(self) -> bool:
        return self._session.has(uuids.RECORD_ACCESS_CONTROL_POINT)

    async def start(self) -> None:
        """Subscribe to RACP indications; required before any write (else ATT 0x81)."""
        if self._started:
            return
        await self._session.subscribe(
            uuids.RECORD_ACCESS_CONTROL_POINT, "record access control point", self._on_answer
        )
        self._started = True

    def _on_answer(self, data: bytes) -> None:
        try:
            self._answers.put_nowait(decode_response(data))
        except PayloadError as exc:
            self._answers.put_nowait(exc)

    # The deadline is a parameter rather than left to asyncio.timeout because the wait also
    # races the link dropping, and a caller should learn which of the two ended it.
    async def run(
        self,
        request: RacpRequest,
        timeout: float = DEFAULT_PROCEDURE_TIMEOUT_S,  # noqa: ASYNC109
    ) -> RacpResponse:
        """Write `request` and wait for its answer.

        Returns the record count for a number-of-records request and the general
        response otherwise ("no records found" included); raises `RecordAccessError` for
        any other failure code, `ConnectionFailedError` if the link drops first and
        `ProcedureTimeoutError` if the device never answers.
        """
        await self.start()
        while not self._answers.empty():  # a late answer to an earlier, abandoned request
            logger.info("discarding stale RACP answer %r", self._answers.get_nowait())
        await self._session.write(
            uuids.RECORD_ACCESS_CONTROL_POINT,
            encode_request(request),
            "record access control point",
            response=True,
        )
        answer = await self._wait(timeout, request)
        if isinstance(answer, PayloadError):
            raise RecordAccessError(f"unreadable RACP answer: {answer}", response_code=0)
        if isinstance(answer, NumberOfRecords):
            return answer
        if answer.succeeded or answer.no_records:
            return answer
        raise RecordAccessError(
            f"{self._session.address} refused {answer.describe()}",
            response_code=answer.response_code,
        )

    async def _wait(
        self,
        timeout: float,  # noqa: ASYNC109
        request: RacpRequest,
    ) -> RacpResponse | PayloadError:
        """The answer to `request`. A response code naming another op code is the late answer
        to a request abandoned earlier (a report cut short, then aborted): skipped, not taken
        for this one's."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            answer = await self._next_answer(deadline - loop.time(), request)
            if answer is None:
                raise ProcedureTimeoutError(
                    f"{self._session.address} did not finish {request.op_code.name.lower()} "
                    f"within {timeout:.0f} s"
                )
            if isinstance(answer, GeneralResponse) and answer.request_op_code != request.op_code:
                logger.info("skipping RACP answer %s to an earlier request", answer.describe())
                continue
            return answer

    async def _next_answer(
        self,
        timeout: float,  # noqa: ASYNC109
        request: RacpRequest,
    ) -> RacpResponse | PayloadError | None:
        """The next answer, or None when `timeout` passes first."""
        answer_task = asyncio.ensure_future(self._answers.get())
        drop_task = asyncio.ensure_future(self._session.disconnected.wait())
        try:
            done, _ = await asyncio.wait(
                {answer_task, drop_task},
                timeout=max(timeout, 0.0),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (answer_task, drop_task):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if answer_task in done:
            return answer_task.result()
        if drop_task in done:
            raise ConnectionFailedError(
                f"{self._session.address} disconnected during {request.op_code.name.lower()}"
            )
        return None

    async def count(self, request: RacpRequest | None = None) -> int:
        """Number of stored records matching `request` (all by default)."""
        answer = await self.run(request or RacpRequest.report_number_all())
        if isinstance(answer, GeneralResponse):
            raise RecordAccessError(
                f"expected a record count, got {answer.describe()}",
                response_code=answer.response_code,
            )
        return answer.count

    async def abort(self) -> bool:
        answer = await self.run(RacpRequest.abort(), timeout=5.0)
        return isinstance(answer, GeneralResponse) and answer.succeeded


UNSUPPORTED_FILTER_CODES = frozenset(
    {ResponseCode.OPERATOR_NOT_SUPPORTED, ResponseCode.OPERAND_NOT_SUPPORTED}
)
"""Codes after which a collector falls back to "all records" and filters itself."""

__all__ = ["DEFAULT_PROCEDURE_TIMEOUT_S", "UNSUPPORTED_FILTER_CODES", "RecordAccess"]
