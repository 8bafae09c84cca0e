"""IEEE 11073 floats, Date Time, Current Time, Device Information, Battery, CCCD and RACP
against the shared vectors; round trips and fuzzing for the one-error-type promise."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.codec import racp
from device_drivers.codec.current_time import decode_current_time, encode_current_time
from device_drivers.codec.device_info import (
    decode_battery_level,
    decode_client_configuration,
    decode_string,
    encode_battery_level,
    encode_client_configuration,
    encode_string,
)
from device_drivers.codec.wire import (
    FieldReader,
    FieldWriter,
    MedFloat,
    Special,
    decode_date_time,
    decode_date_time_bytes,
    decode_float,
    decode_sfloat,
    encode_date_time,
    encode_float,
    encode_sfloat,
    scaled,
    unscaled,
)
from device_drivers.errors import PayloadError
from tests.device_drivers.vectors import racp_vectors, vector_id, vectors_for


def _float_dict(value: MedFloat) -> dict[str, Any]:
    if value.special is not None:
        return {"value": value.special.value, "special": True}
    return {
        "value": value.value,
        "special": False,
        "mantissa": value.mantissa,
        "exponent": value.exponent,
    }


@pytest.mark.parametrize("vector", vectors_for("SFLOAT"), ids=vector_id)
def test_sfloat_vectors(vector: dict[str, Any]) -> None:
    decoded = decode_sfloat(bytes.fromhex(vector["hex"]))
    assert _float_dict(decoded) == vector["decoded"]


@pytest.mark.parametrize("vector", vectors_for("FLOAT"), ids=vector_id)
def test_float_vectors(vector: dict[str, Any]) -> None:
    decoded = decode_float(bytes.fromhex(vector["hex"]))
    assert _float_dict(decoded) == vector["decoded"]


@pytest.mark.parametrize("special", list(Special))
def test_specials_round_trip_and_are_never_numbers(special: Special) -> None:
    for encode, decode in ((encode_sfloat, decode_sfloat), (encode_float, decode_float)):
        decoded = decode(encode(special))
        assert decoded.special is special
        assert decoded.value is None
        assert not decoded.is_number


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_encodes_every_representable_value(mantissa: int, exponent: int) -> None:
    value = float(f"{mantissa}e{exponent}")
    assert decode_sfloat(encode_sfloat(value)).value == pytest.approx(value, rel=1e-12)


@given(st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-20, 20))
def test_float_encodes_every_representable_value(mantissa: int, exponent: int) -> None:
    value = float(f"{mantissa}e{exponent}")
    assert decode_float(encode_float(value)).value == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 3e12])
def test_unencodable_numbers_are_refused(value: float) -> None:
    with pytest.raises(PayloadError):
        encode_sfloat(value)


@pytest.mark.parametrize("vector", vectors_for("0x2A08"), ids=vector_id)
def test_date_time_vectors(vector: dict[str, Any]) -> None:
    field = decode_date_time_bytes(bytes.fromhex(vector["hex"]))
    assert field.as_dict("date_time") == vector["decoded"]


def test_date_time_round_trip_and_unset_clock() -> None:
    moment = datetime(2026, 12, 1, 8, 30, 15)
    assert decode_date_time(encode_date_time(moment)) == moment
    assert encode_date_time(None) == bytes(7)
    assert decode_date_time(bytes(7)) is None
    with pytest.raises(PayloadError):
        encode_date_time(datetime(1000, 1, 1))


@pytest.mark.parametrize("vector", vectors_for("0x2A2B"), ids=vector_id)
def test_current_time_vectors(vector: dict[str, Any]) -> None:
    assert decode_current_time(bytes.fromhex(vector["hex"])).as_dict() == vector["decoded"]


def test_current_time_encoding_carries_weekday_and_fraction() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 500_000)
    assert encode_current_time(moment).hex() == "ea070102030405058001"
    decoded = decode_current_time(encode_current_time(None, adjust_reason=0))
    assert decoded.moment is None
    assert decoded.as_dict()["date_time_raw"]["year"] == 0
    with pytest.raises(PayloadError):
        encode_current_time(moment, adjust_reason=256)


@pytest.mark.parametrize(
    "vector",
    vectors_for("0x2A29", "0x2A24", "0x2A25", "0x2A26"),
    ids=vector_id,
)
def test_device_information_vectors(vector: dict[str, Any]) -> None:
    decoded = decode_string(bytes.fromhex(vector["hex"]))
    assert decoded.as_dict() == vector["decoded"]
    assert decode_string(encode_string(decoded.text)).text == decoded.text


def test_device_information_refuses_invalid_utf8() -> None:
    with pytest.raises(PayloadError, match="UTF-8"):
        decode_string(b"\xff\xfe")


@pytest.mark.parametrize("vector", vectors_for("0x2A19"), ids=vector_id)
def test_battery_vectors(vector: dict[str, Any]) -> None:
    assert decode_battery_level(bytes.fromhex(vector["hex"])).as_dict() == vector["decoded"]


def test_battery_encoding_bounds() -> None:
    assert decode_battery_level(encode_battery_level(57)).percent == 57
    with pytest.raises(PayloadError):
        encode_battery_level(101)


@pytest.mark.parametrize("vector", vectors_for("0x2902"), ids=vector_id)
def test_cccd_vectors(vector: dict[str, Any]) -> None:
    decoded = decode_client_configuration(bytes.fromhex(vector["hex"]))
    assert decoded.as_dict() == vector["decoded"]


def test_cccd_encoding() -> None:
    assert encode_client_configuration(indicate=True) == b"\x02\x00"
    assert encode_client_configuration(notify=True) == b"\x01\x00"


def _racp_messages(service: str | None = None) -> list[dict[str, Any]]:
    return [m for m in racp_vectors()["messages"] if service is None or m["service"] == service]


@pytest.mark.parametrize(
    "message",
    [m for m in _racp_messages() if m["service"] in ("GLS", "PLXS")],
    ids=lambda m: f"{m['service']}:{m['hex']}",
)
def test_racp_message_vectors(message: dict[str, Any]) -> None:
    payload = bytes.fromhex(message["hex"])
    decoded = racp.decode(payload)
    assert decoded.as_dict() == message["decoded"]
    if isinstance(decoded, racp.RacpRequest):
        assert racp.encode_request(decoded) == payload
    elif isinstance(decoded, racp.NumberOfRecords):
        assert racp.encode_number_of_records(decoded.count, decoded.count_width_bytes) == payload
    else:
        assert racp.encode_general_response(decoded.request_op_code, decoded.response_code) == (
            payload
        )


def test_racp_flow_requests_match_the_collector_procedure() -> None:
    flows = {flow["name"]: flow for flow in racp_vectors()["flows"]}
    newer = flows["GLS records newer than last seen (N = 41)"]["steps"][0]
    assert racp.encode_request(racp.RacpRequest.report_after(41)).hex() == newer["hex"]
    assert racp.encode_request(racp.RacpRequest.report_all()).hex() == "0101"
    assert racp.encode_request(racp.RacpRequest.report_number_all()).hex() == "0401"
    assert racp.encode_request(racp.RacpRequest.abort()).hex() == "0300"
    assert racp.encode_request(racp.RacpRequest.delete_all()).hex() == "0201"


def test_racp_report_after_wraps_to_all_records() -> None:
    assert racp.RacpRequest.report_after(65535) == racp.RacpRequest.report_all()
    assert racp.RacpRequest.report_after(None) == racp.RacpRequest.report_all()
    assert racp.RacpRequest.report_after(9).sequence_range() == (10, None)


def test_racp_sequence_ranges() -> None:
    within = racp.decode_request(bytes.fromhex("0104010a001400"))
    assert within.sequence_range() == (10, 20)
    at_most = racp.decode_request(bytes.fromhex("0102010a00"))
    assert at_most.sequence_range() == (None, 10)
    assert racp.RacpRequest.report_all().sequence_range() == (None, None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "op code needs 1 byte"),
        ("09", "operator needs 1 byte"),
        ("0901", "not defined"),
        ("0501", "response, not a request"),
        ("0109", "operator 0x09"),
        ("0103", "filter type"),
        ("010301", "needs a filter value"),
        ("010101", "takes no operand"),
    ],
)
def test_racp_bad_requests_say_why(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        racp.decode_request(bytes.fromhex(payload))


def test_racp_either_direction_refuses_empty() -> None:
    with pytest.raises(PayloadError, match="empty"):
        racp.decode(b"")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [("0601", "operator Null"), ("0500030000", "1, 2 or 4"), ("0700", "not a response")],
)
def test_racp_bad_responses_say_why(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        racp.decode_response(bytes.fromhex(payload))


def test_racp_counts_of_other_widths_and_reserved_codes() -> None:
    assert racp.decode_response(bytes.fromhex("050007")) == racp.NumberOfRecords(7, 1)
    assert racp.decode_response(bytes.fromhex("050001000100")).count == 65537
    reserved = racp.GeneralResponse(0x0A, 0x42)
    assert "reserved response 0x42" in reserved.describe()
    assert "op code 0x0A" in reserved.describe()
    assert reserved.as_dict()["operand"]["response_code"]["name"] == "reserved"
    assert not reserved.succeeded and not reserved.no_records
    time_filter = racp.decode_request(bytes.fromhex("010302ea070101000000"))
    assert time_filter.as_dict()["operand"]["min"] == "2026-01-01T00:00:00"
    unknown_filter = racp.RacpRequest(
        racp.OpCode.REPORT_STORED_RECORDS, racp.Operator.GREATER_THAN_OR_EQUAL_TO, 9, b"\x01\x00"
    )
    assert unknown_filter.as_dict()["operand"]["filter_type"]["name"] == "reserved"


def test_field_reader_and_writer() -> None:
    data = FieldWriter().u8(1).u16(2).u24(3).u32(4).s16(-5).sfloat(6.5).float32(7.25).bytes()
    reader = FieldReader(data, "test")
    assert reader.u8("a") == 1
    assert reader.u16("b") == 2
    assert reader.u24("c") == 3
    assert reader.u32("d") == 4
    assert reader.s16("e") == -5
    assert reader.sfloat("f").value == 6.5
    assert reader.float32("g").value == 7.25
    reader.finish()
    with pytest.raises(PayloadError, match="needs 2 byte"):
        FieldReader(b"\x01", "short").u16("word")
    with pytest.raises(PayloadError, match="trailing"):
        FieldReader(b"\x01\x02", "long").finish()
    with pytest.raises(PayloadError, match="does not fit"):
        FieldWriter().u8(256)
    with pytest.raises(PayloadError, match="signed"):
        FieldWriter().s16(40000)
    assert scaled(14100, "0.005") == 70.5
    assert unscaled(70.5, "0.005", "weight") == 14100
    with pytest.raises(PayloadError, match="negative"):
        unscaled(-1.0, "0.005", "weight")
    assert str(PayloadError("bad", b"\x01")) == "bad (payload 01)"
    assert str(PayloadError("bad")) == "bad"


_DECODERS = [
    decode_sfloat,
    decode_float,
    decode_date_time,
    decode_current_time,
    decode_string,
    decode_battery_level,
    decode_client_configuration,
    racp.decode,
    racp.decode_request,
    racp.decode_response,
]


@pytest.mark.parametrize("decoder", _DECODERS, ids=lambda d: d.__qualname__)
@given(data=st.binary(max_size=24))
def test_decoders_raise_only_payload_error(decoder: Any, data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decoder(data)
