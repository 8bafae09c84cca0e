"""`RecordAccess` pairing requests with the device's indicated answers.

A unit test over a scripted stand-in for `DeviceSession`: the orderings that matter here (an
answer to an abandoned request arriving late) cannot be produced on demand by the emulators,
whose own RACP behaviour the driver tests cover end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from device_drivers.codec.racp import (
    OpCode,
    RacpRequest,
    ResponseCode,
    encode_general_response,
    encode_number_of_records,
)
from device_drivers.errors import ConnectionFailedError, ProcedureTimeoutError, RecordAccessError
from device_drivers.record_access import RecordAccess
from device_drivers.session import DeviceSession


class ScriptedSession:
    """Answers each RACP write with the indications scripted for its op code."""

    address = "C0:DE:00:00:00:AA"

    def __init__(self, answers: dict[int, list[bytes]]) -> None:
        self.answers = answers
        self.disconnected = asyncio.Event()
        self.written: list[bytes] = []
        self._indicate: Callable[[bytes], Any] | None = None

    def has(self, uuid: str) -> bool:
        return True

    async def subscribe(self, uuid: str, what: str, callback: Callable[[bytes], Any]) -> None:
        self._indicate = callback

    async def write(self, uuid: str, data: bytes, what: str, *, response: bool = True) -> None:
        self.written.append(data)
        assert self._indicate is not None, "RACP written before subscribing"
        for answer in self.answers.get(data[0], []):
            asyncio.get_running_loop().call_soon(self._indicate, answer)


def _access(answers: dict[int, list[bytes]]) -> tuple[RecordAccess, ScriptedSession]:
    session = ScriptedSession(answers)
    return RecordAccess(cast(DeviceSession, session)), session


async def test_a_late_answer_to_an_abandoned_report_is_not_taken_for_the_abort_s() -> None:
    late_report_answer = encode_general_response(OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
    abort_answer = encode_general_response(OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)
    access, session = _access({OpCode.ABORT_OPERATION: [late_report_answer, abort_answer]})

    assert await access.abort()
    assert session.written == [b"\x03\x00"]


async def test_counts_failures_and_no_records() -> None:
    access, _ = _access(
        {
            OpCode.REPORT_NUMBER_OF_STORED_RECORDS: [encode_number_of_records(3)],
            OpCode.REPORT_STORED_RECORDS: [
                encode_general_response(OpCode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND)
            ],
            OpCode.DELETE_STORED_RECORDS: [
                encode_general_response(
                    OpCode.DELETE_STORED_RECORDS, ResponseCode.OP_CODE_NOT_SUPPORTED
                )
            ],
        }
    )
    assert await access.count() == 3
    answer = await access.run(RacpRequest.report_all())
    assert not isinstance(answer, int)
    with pytest.raises(RecordAccessError) as refused:
        await access.run(RacpRequest.delete_all())
    assert refused.value.response_code == ResponseCode.OP_CODE_NOT_SUPPORTED


async def test_silence_and_a_dropped_link_are_told_apart() -> None:
    access, session = _access({})
    with pytest.raises(ProcedureTimeoutError, match="within 0 s"):
        await access.run(RacpRequest.report_all(), timeout=0.05)
    session.disconnected.set()
    with pytest.raises(ConnectionFailedError, match="disconnected"):
        await access.run(RacpRequest.report_all(), timeout=5)


async def test_an_unreadable_answer_is_a_record_access_error() -> None:
    access, _ = _access({OpCode.REPORT_STORED_RECORDS: [b"\x06"]})
    with pytest.raises(RecordAccessError, match="unreadable"):
        await access.run(RacpRequest.report_all())
