"""Record Access Control Point (0x2A52): requests a collector writes, responses a device indicates.

Shared by Glucose, Pulse Oximeter and CGM services. Layout: op code u8, operator u8,
operand (filter type u8 + value(s), a count, or a request op code + response code).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from device_drivers.codec.wire import FieldReader, FieldWriter
from device_drivers.errors import PayloadError


class OpCode(IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class Operator(IntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_INCLUSIVE = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class FilterType(IntEnum):
    SEQUENCE_NUMBER = 0x01
    """GLS; in CGMS the same code means a time offset in minutes."""
    USER_FACING_TIME = 0x02


class ResponseCode(IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_REQUEST_OPS = {
    OpCode.REPORT_STORED_RECORDS,
    OpCode.DELETE_STORED_RECORDS,
    OpCode.ABORT_OPERATION,
    OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
}
_FILTERED = {
    Operator.LESS_THAN_OR_EQUAL_TO,
    Operator.GREATER_THAN_OR_EQUAL_TO,
    Operator.WITHIN_RANGE_INCLUSIVE,
}
SEQUENCE_MODULO = 1 << 16


def _name(member: IntEnum) -> dict[str, Any]:
    return {"code": int(member), "name": member.name.lower()}


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A request; `operand` is the filter value(s) as bytes after the filter type."""

    op_code: OpCode
    operator: Operator
    filter_type: int | None = None
    operand: bytes = b""

    @classmethod
    def report_all(cls) -> RacpRequest:
        return cls(OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def report_from(cls, sequence: int) -> RacpRequest:
        """Records with sequence number ≥ `sequence` (there is no strict "greater than")."""
        return cls(
            OpCode.REPORT_STORED_RECORDS,
            Operator.GREATER_THAN_OR_EQUAL_TO,
            FilterType.SEQUENCE_NUMBER,
            FieldWriter().u16(sequence, "sequence number").bytes(),
        )

    @classmethod
    def report_after(cls, last_sequence: int | None) -> RacpRequest:
        """Records newer than the last one stored; all records when N+1 wraps to 0, since
        "≥ 0" after a wrap would also be all records but some devices refuse it."""
        if last_sequence is None or (last_sequence + 1) % SEQUENCE_MODULO == 0:
            return cls.report_all()
        return cls.report_from(last_sequence + 1)

    @classmethod
    def report_number_all(cls) -> RacpRequest:
        return cls(OpCode.REPORT_NUMBER_OF_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def delete_all(cls) -> RacpRequest:
        return cls(OpCode.DELETE_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> RacpRequest:
        return cls(OpCode.ABORT_OPERATION, Operator.NULL)

    def sequence_range(self) -> tuple[int | None, int | None]:
        """(min, max) sequence numbers of a sequence-number filter; None where open."""
        if self.filter_type != FilterType.SEQUENCE_NUMBER:
            return None, None
        reader = FieldReader(self.operand, "RACP sequence filter")
        if self.operator == Operator.WITHIN_RANGE_INCLUSIVE:
            low, high = reader.u16("min"), reader.u16("max")
            reader.finish()
            return low, high
        value = reader.u16("value")
        reader.finish()
        if self.operator == Operator.GREATER_THAN_OR_EQUAL_TO:
            return value, None
        return None, value

    def as_dict(self) -> dict[str, Any]:
        operand: dict[str, Any] | None = None
        if self.filter_type is not None:
            operand = {"filter_type": _coded(FilterType, self.filter_type)}
            reader = FieldReader(self.operand, "RACP operand")
            width = 7 if self.filter_type == FilterType.USER_FACING_TIME else 2
            keys = {
                Operator.LESS_THAN_OR_EQUAL_TO: ("max",),
                Operator.GREATER_THAN_OR_EQUAL_TO: ("min",),
                Operator.WITHIN_RANGE_INCLUSIVE: ("min", "max"),
            }[self.operator]
            for key in keys:
                if width == 2:
                    operand[key] = reader.u16(key)
                else:
                    moment = reader.date_time(key).moment
                    operand[key] = moment.isoformat() if moment else None
        return {"opcode": _name(self.op_code), "operator": _name(self.operator), "operand": operand}


def _coded(kind: type[IntEnum], code: int) -> dict[str, Any]:
    """`{code, name}` of a defined code, or `name: reserved` for one the spec leaves open."""
    try:
        return _name(kind(code))
    except ValueError:
        return {"code": code, "name": "reserved"}


def encode_request(request: RacpRequest) -> bytes:
    writer = FieldWriter().u8(request.op_code).u8(request.operator)
    if request.filter_type is not None:
        writer.u8(request.filter_type, "filter type").raw(request.operand)
    return writer.bytes()


def decode_request(data: bytes) -> RacpRequest:
    """What a device does first with a RACP write; raises PayloadError with the reason a
    device answers as a response code (see `PayloadError.payload`)."""
    reader = FieldReader(data, "RACP request")
    op_raw = reader.u8("op code")
    operator_raw = reader.u8("operator")
    try:
        op_code = OpCode(op_raw)
    except ValueError:
        raise reader.error(f"op code 0x{op_raw:02X} is not defined") from None
    if op_code not in _REQUEST_OPS:
        raise reader.error(f"op code {op_code.name} is a response, not a request")
    try:
        operator = Operator(operator_raw)
    except ValueError:
        raise reader.error(f"operator 0x{operator_raw:02X} is not defined") from None
    if operator in _FILTERED:
        filter_type = reader.u8("filter type")
        operand = reader.rest()
        if not operand:
            raise reader.error(f"operator {operator.name} needs a filter value")
        return RacpRequest(op_code, operator, filter_type, operand)
    if reader.remaining:
        raise reader.error(f"operator {operator.name} takes no operand")
    return RacpRequest(op_code, operator)


@dataclass(frozen=True, slots=True)
class NumberOfRecords:
    count: int
    count_width_bytes: int = 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "opcode": _name(OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE),
            "operator": _name(Operator.NULL),
            "operand": {
                "number_of_records": self.count,
                "count_width_bytes": self.count_width_bytes,
            },
        }


@dataclass(frozen=True, slots=True)
class GeneralResponse:
    request_op_code: int
    response_code: int

    @property
    def succeeded(self) -> bool:
        return self.response_code == ResponseCode.SUCCESS

    @property
    def no_records(self) -> bool:
        return self.response_code == ResponseCode.NO_RECORDS_FOUND

    def describe(self) -> str:
        try:
            code = ResponseCode(self.response_code).name.lower().replace("_", " ")
        except ValueError:
            code = f"reserved response 0x{self.response_code:02X}"
        try:
            op = OpCode(self.request_op_code).name.lower().replace("_", " ")
        except ValueError:
            op = f"op code 0x{self.request_op_code:02X}"
        return f"{op}: {code}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "opcode": _name(OpCode.RESPONSE_CODE),
            "operator": _name(Operator.NULL),
            "operand": {
                "request_opcode": _coded(OpCode, self.request_op_code),
                "response_code": _coded(ResponseCode, self.response_code),
            },
        }


RacpResponse = NumberOfRecords | GeneralResponse


def decode_response(data: bytes) -> RacpResponse:
    reader = FieldReader(data, "RACP response")
    op_raw = reader.u8("op code")
    operator = reader.u8("operator")
    if operator != Operator.NULL:
        raise reader.error(f"a response has operator Null, got 0x{operator:02X}")
    if op_raw == OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        width = reader.remaining
        # The count is uint16 by the spec; some meters send 1 or 4 bytes (Nordic accepts those).
        if width not in (1, 2, 4):
            raise reader.error(f"a record count is 1, 2 or 4 bytes, got {width}")
        return NumberOfRecords(reader.uint(width, "count"), width)
    if op_raw == OpCode.RESPONSE_CODE:
        request = reader.u8("request op code")
        code = reader.u8("response code")
        reader.finish()
        return GeneralResponse(request, code)
    raise reader.error(f"op code 0x{op_raw:02X} is not a response")


def encode_number_of_records(count: int, width: int = 2) -> bytes:
    return (
        FieldWriter()
        .u8(OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE)
        .u8(Operator.NULL)
        .uint(count, width, "count")
        .bytes()
    )


def encode_general_response(request_op_code: int, response_code: int) -> bytes:
    return (
        FieldWriter()
        .u8(OpCode.RESPONSE_CODE)
        .u8(Operator.NULL)
        .u8(request_op_code, "request op code")
        .u8(response_code, "response code")
        .bytes()
    )


def decode(data: bytes) -> RacpRequest | RacpResponse:
    """Either direction, for support tools that see raw traffic."""
    if data[:1] in (b"\x05", b"\x06"):
        return decode_response(data)
    if not data:
        raise PayloadError("RACP: empty payload")
    return decode_request(data)
