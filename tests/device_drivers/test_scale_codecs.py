"""Weight Scale (0x2A9D/0x2A9E) and Body Composition (0x2A9C/0x2A9B) codecs against the shared
vectors; exact-inverse encoders, multi-packet split and merge, fuzzing for the one error
type, and the mapping of one step-on to a Measurement."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.codec.body_composition import (
    BodyCompositionAssembler,
    BodyCompositionFeature,
    BodyCompositionMeasurement,
    decode_body_composition,
    decode_body_composition_feature,
    encode_body_composition,
    encode_body_composition_feature,
    encode_body_composition_packets,
    has_trusted_time,
    merge_parts,
    same_step_on,
    split_body_composition,
    to_measurement,
)
from device_drivers.codec.weight_scale import (
    CLOCK_NOT_SET,
    UnitSystem,
    WeightMeasurement,
    WeightScaleFeature,
    decode_weight_measurement,
    decode_weight_scale_feature,
    encode_weight_measurement,
    encode_weight_scale_feature,
)
from device_drivers.codec.wire import DateTimeField, encode_date_time
from device_drivers.errors import PayloadError
from protocols.metrics import Metric
from protocols.reading import DeviceKind
from tests.device_drivers.vectors import vector_id, vectors_for

FULL_SI = "fe0ffd00ea07010203040501581b9c01701704294826b01df4121437f406"
PART_1 = "7e10fd00ea07010203040501581b9c0170170429"
PART_2 = "801ffd004826b01df4121437f406"
MOMENT = datetime(2026, 1, 2, 3, 4, 5)

Codec = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]
CODECS: dict[str, Codec] = {
    "0x2A9D": (decode_weight_measurement, encode_weight_measurement),
    "0x2A9E": (decode_weight_scale_feature, encode_weight_scale_feature),
    "0x2A9C": (decode_body_composition, encode_body_composition),
    "0x2A9B": (decode_body_composition_feature, encode_body_composition_feature),
}


@pytest.mark.parametrize(
    "vector", vectors_for("0x2A9D", "0x2A9E", "0x2A9C", "0x2A9B"), ids=vector_id
)
def test_vectors_decode_exactly_and_encode_back(vector: dict[str, Any]) -> None:
    decode, encode = CODECS[vector["characteristic"]]
    payload = bytes.fromhex(vector["hex"])

    record = decode(payload)

    assert record.as_dict() == vector["decoded"]
    assert encode(record) == payload


def test_the_two_vector_parts_merge_into_the_full_vector() -> None:
    assembler = BodyCompositionAssembler()

    assert assembler.push(decode_body_composition(bytes.fromhex(PART_1))) == []
    assert assembler.pending is not None
    (merged,) = assembler.push(decode_body_composition(bytes.fromhex(PART_2)))

    assert merged == decode_body_composition(bytes.fromhex(FULL_SI))
    assert not merged.multiple_packet
    assert assembler.pending is None


def test_the_full_vector_splits_into_the_vector_parts_at_mtu_23() -> None:
    full = decode_body_composition(bytes.fromhex(FULL_SI))

    assert encode_body_composition_packets(full) == [bytes.fromhex(PART_1), bytes.fromhex(PART_2)]
    # A larger MTU carries it whole.
    assert encode_body_composition_packets(full, max_payload=244) == [bytes.fromhex(FULL_SI)]


def test_wire_unit_ignores_the_advertised_resolution() -> None:
    feature = WeightScaleFeature.build(weight_resolution=3)  # 0.1 kg steps
    record = decode_weight_measurement(bytes.fromhex("02b03600000000000000"))

    assert feature.weight_resolution == 3
    assert record.weight == 70.0  # 14000 x 0.005, not 14000 x 0.1
    assert not record.clock_set


# -- generated payloads: exact inverse and fuzzing --------------------------------------

_valid_moments = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31))
date_times = st.one_of(
    _valid_moments.map(lambda moment: encode_date_time(moment.replace(microsecond=0))),
    # Year 0 with anything after it: "clock not set", raw bytes kept.
    st.binary(min_size=5, max_size=5).map(lambda rest: bytes(2) + rest),
)
u16 = st.integers(0, 0xFFFF).map(lambda v: v.to_bytes(2, "little"))


@st.composite
def weight_payloads(draw: st.DrawFn) -> bytes:
    flags = draw(st.integers(0, 0xFF))
    out = bytes([flags]) + draw(u16)
    if flags & 0x02:
        out += draw(date_times)
    if flags & 0x04:
        out += bytes([draw(st.integers(0, 0xFF))])
    if flags & 0x08:
        out += draw(u16) + draw(u16)
    return out


@st.composite
def body_composition_payloads(draw: st.DrawFn, flags: st.SearchStrategy[int]) -> bytes:
    value = draw(flags)
    out = value.to_bytes(2, "little") + draw(u16)
    if value & 0x02:
        out += draw(date_times)
    if value & 0x04:
        out += bytes([draw(st.integers(0, 0xFF))])
    out += b"".join(draw(u16) for bit in range(3, 12) if value & (1 << bit))
    return out


any_bc_flags = st.integers(0, 0xFFFF)
single_packet_flags = st.integers(0, 0xFFFF).map(lambda v: v & ~0x1000)


@given(weight_payloads())
def test_weight_measurement_round_trips(payload: bytes) -> None:
    record = decode_weight_measurement(payload)
    assert encode_weight_measurement(record) == payload
    assert decode_weight_measurement(encode_weight_measurement(record)) == record


@given(body_composition_payloads(any_bc_flags))
def test_body_composition_round_trips(payload: bytes) -> None:
    record = decode_body_composition(payload)
    assert encode_body_composition(record) == payload
    assert decode_body_composition(encode_body_composition(record)) == record


@given(st.integers(0, 0xFFFFFFFF))
def test_features_round_trip(raw: int) -> None:
    payload = raw.to_bytes(4, "little")
    assert encode_weight_scale_feature(decode_weight_scale_feature(payload)) == payload
    assert encode_body_composition_feature(decode_body_composition_feature(payload)) == payload


@given(body_composition_payloads(single_packet_flags), st.booleans())
def test_split_then_merge_gives_the_record_back(payload: bytes, always: bool) -> None:
    record = decode_body_composition(payload)

    packets = encode_body_composition_packets(record, always=always)

    assert all(len(packet) <= 20 for packet in packets)
    assembler = BodyCompositionAssembler()
    out = [done for packet in packets for done in assembler.push(decode_body_composition(packet))]
    assert out == [record]
    if len(packets) == 2:
        parts = [decode_body_composition(packet) for packet in packets]
        assert all(part.multiple_packet for part in parts)
        assert parts[0].body_fat == parts[1].body_fat == record.body_fat


@given(st.binary(max_size=40))
def test_decoders_raise_only_payload_error(data: bytes) -> None:
    for decode in (
        decode_weight_measurement,
        decode_weight_scale_feature,
        decode_body_composition,
        decode_body_composition_feature,
    ):
        with contextlib.suppress(PayloadError):
            decode(data)


@pytest.mark.parametrize(
    ("decode", "payload", "reason"),
    [
        (decode_weight_measurement, "00", "weight needs 2"),
        (decode_weight_measurement, "021437ea07", "time stamp"),
        (decode_weight_measurement, "00143700", "trailing"),
        (decode_body_composition, "0000", "body fat"),
        (decode_body_composition, "0002fd00", "impedance"),
        (decode_weight_scale_feature, "000000", "features"),
        (decode_body_composition_feature, "0000000000", "trailing"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(
    decode: Callable[[bytes], Any], payload: str, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode(bytes.fromhex(payload))


def test_an_impossible_time_stamp_is_an_unset_clock_kept_as_sent() -> None:
    payload = bytes.fromhex("021437ea070d02030405")  # month 13
    record = decode_weight_measurement(payload)
    assert record.timestamp is not None
    assert record.timestamp.moment is None
    assert record.as_dict()["timestamp_raw"]["month"] == 13
    assert encode_weight_measurement(record) == payload


# -- encoders refuse what the wire cannot carry ---------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        WeightMeasurement(0x02, 70.0),  # time stamp flag, no time stamp
        WeightMeasurement(0x00, 70.0, user_id=1),  # user id without its flag
        WeightMeasurement(0x04, 70.0, user_id=256),
        WeightMeasurement(0x100, 70.0),
        WeightMeasurement(0x00, 327.675),  # raw 0xFFFF would read "unsuccessful"
        WeightMeasurement(0x00, 400.0),
        WeightMeasurement(0x02, 70.0, timestamp=DateTimeField(None, b"\x00")),
    ],
)
def test_weight_encoder_refuses_inconsistent_records(record: WeightMeasurement) -> None:
    with pytest.raises(PayloadError):
        encode_weight_measurement(record)


@pytest.mark.parametrize(
    "record",
    [
        BodyCompositionMeasurement(0x0200, 25.0),  # impedance flag, no impedance
        BodyCompositionMeasurement(0x0000, 25.0, weight=70.0),
        BodyCompositionMeasurement(0x0000, 6553.5),
        BodyCompositionMeasurement(0x0004, 25.0, user_id=-1),
    ],
)
def test_body_composition_encoder_refuses_inconsistent_records(
    record: BodyCompositionMeasurement,
) -> None:
    with pytest.raises(PayloadError):
        encode_body_composition(record)


def test_builders_set_the_flags_from_the_fields() -> None:
    weight = WeightMeasurement.build(
        155.43, units=UnitSystem.IMPERIAL, bmi=22.3, height=70.1, user_id=3, timestamp=MOMENT
    )
    body = BodyCompositionMeasurement.build(
        None, units=UnitSystem.IMPERIAL, impedance=500.0, reserved_flags=0x8000
    )

    assert weight.flags == 0x0F
    assert weight.as_dict()["user_id"] == 3
    assert weight.as_dict()["user_id_unknown"] is False
    assert decode_weight_measurement(encode_weight_measurement(weight)) == weight
    assert body.flags == 0x8201
    assert body.as_dict()["body_fat_measurement_unsuccessful"] is True
    assert body.reserved_bits == 0x8000
    assert not body.successful
    with pytest.raises(PayloadError, match="together"):
        WeightMeasurement.build(70.0, bmi=22.0)


def test_feature_builders_match_the_vectors() -> None:
    assert WeightScaleFeature.build(
        timestamp=True, multiple_users=True, bmi=True, weight_resolution=7, height_resolution=3
    ) == decode_weight_scale_feature(bytes.fromhex("bf010000"))
    feature = BodyCompositionFeature.build(
        {"timestamp_supported", "weight_supported", "height_supported"},
        mass_resolution=7,
        height_resolution=3,
    )
    assert feature == decode_body_composition_feature(bytes.fromhex("01be0100"))
    assert feature.supports("weight_supported")
    assert not feature.supports("impedance_supported")
    with pytest.raises(PayloadError, match="unknown"):
        BodyCompositionFeature.build({"toast_supported"})
    with pytest.raises(PayloadError, match="resolution"):
        BodyCompositionFeature.build(mass_resolution=16)
    with pytest.raises(PayloadError, match="resolution"):
        WeightScaleFeature.build(height_resolution=8)


def test_reserved_height_resolution_is_named() -> None:
    feature = WeightScaleFeature.build(height_resolution=5)
    assert feature.as_dict()["height_resolution"] == {"code": 5, "name": "reserved"}


# -- multi-packet edge cases ------------------------------------------------------------


def _part(hex_payload: str) -> BodyCompositionMeasurement:
    return decode_body_composition(bytes.fromhex(hex_payload))


def test_a_lone_first_part_is_returned_when_an_unrelated_packet_follows() -> None:
    assembler = BodyCompositionAssembler()
    first = _part(PART_1)
    single = _part("0000fd00")

    assert assembler.push(first) == []
    assert assembler.push(single) == [first, single]
    assert assembler.pending is None
    # It stays recognisable as incomplete.
    assert first.multiple_packet


def test_a_part_of_another_measurement_replaces_the_waiting_one() -> None:
    assembler = BodyCompositionAssembler()
    first = _part(PART_1)
    other = _part("0010dd00")  # bit 12, body fat 22.1: not the same measurement

    assembler.push(first)
    assert assembler.push(other) == [first]
    assert assembler.pending == other
    assert assembler.flush() == [other]
    assert assembler.flush() == []


def test_single_packets_pass_straight_through() -> None:
    assembler = BodyCompositionAssembler()
    record = _part("0000fd00")
    assert assembler.push(record) == [record]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (PART_1, "0000fd00"),  # second without bit 12
        (PART_1, "0110fd00"),  # imperial second part
        ("0210fd00ea070102030405", "0210fd00ea070102030406"),  # conflicting time stamps
    ],
)
def test_parts_that_do_not_belong_together_are_not_merged(first: str, second: str) -> None:
    assert merge_parts(_part(first), _part(second)) is None


def test_a_field_sent_in_both_parts_with_the_same_value_merges() -> None:
    first = _part("0610fd00ea07010203040501")
    second = _part("0612fd00ea070102030405011813")
    merged = merge_parts(first, second)
    assert merged is not None
    assert merged.impedance == 488.8
    assert merged.user_id == 1


def test_split_refusals() -> None:
    full = _part(FULL_SI)
    with pytest.raises(PayloadError, match="already"):
        split_body_composition(_part(PART_1))
    with pytest.raises(PayloadError, match="two packets"):
        split_body_composition(full, max_payload=14)
    with pytest.raises(PayloadError, match="two packets"):
        split_body_composition(full, max_payload=6)


def test_forced_split_of_a_minimal_record_repeats_the_body_fat() -> None:
    parts = split_body_composition(_part("0000fd00"), always=True)
    assert [part.flags for part in parts] == [0x1000, 0x1000]
    assert [part.body_fat for part in parts] == [25.3, 25.3]


# -- one step-on → Measurement ----------------------------------------------------------


def _values(measurement: Any) -> dict[Metric, float]:
    return {obs.metric: obs.value for obs in measurement.observations}


def test_weight_and_full_body_composition_make_one_measurement() -> None:
    weight = WeightMeasurement.build(70.5, timestamp=MOMENT, user_id=1, bmi=22.3, height=1.78)
    body = _part(FULL_SI)

    measurement = to_measurement(weight, body)

    assert measurement is not None
    assert measurement.kind is DeviceKind.BODY_COMPOSITION_SCALE
    assert measurement.device_time == MOMENT
    assert measurement.clock_set
    assert measurement.context.device_user_index == 1
    values = _values(measurement)
    assert values[Metric.WEIGHT] == 70.5
    assert values[Metric.BMI] == 22.3
    assert values[Metric.HEIGHT] == 1.78
    assert values[Metric.BODY_FAT] == 25.3
    assert values[Metric.MUSCLE_MASS] == 30.0
    assert values[Metric.BODY_WATER] == 38.0
    assert values[Metric.BASAL_METABOLISM] == pytest.approx(7000 / 4.184)
    assert values[Metric.IMPEDANCE] == 485.2
    units = {obs.metric: obs.unit for obs in measurement.observations}
    assert units[Metric.BASAL_METABOLISM] == "kcal/d"
    assert units[Metric.IMPEDANCE] == "Ohm"
    assert measurement.details["muscle_pct"] == 41.2
    assert measurement.details["fat_free_mass_kg"] == 52.5
    assert measurement.details["soft_lean_mass_kg"] == 49.0


@pytest.mark.parametrize(
    ("weight", "body", "expected", "kind"),
    [
        # SI weight alone.
        ("001437", None, {Metric.WEIGHT: 70.5}, DeviceKind.WEIGHT_SCALE),
        # Imperial weight, BMI and height: converted to kg and m.
        (
            "09b73cdf00bd02",
            None,
            {Metric.WEIGHT: 70.5018, Metric.BMI: 22.3, Metric.HEIGHT: 1.78054},
            DeviceKind.WEIGHT_SCALE,
        ),
        # Weight unsuccessful, body composition still counts.
        (
            "00ffff",
            "0406dd00ff0014483f",
            {Metric.BODY_FAT: 22.1, Metric.IMPEDANCE: 512.0, Metric.WEIGHT: 81.0},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
        # Basal metabolism alone: kJ to kcal/d.
        (
            None,
            "08002c016419",
            {Metric.BODY_FAT: 30.0, Metric.BASAL_METABOLISM: 1553.537},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
        # Imperial body composition: lb masses and inches become kg and m.
        (
            None,
            "2109ffffb80bb80bc602",
            {Metric.MUSCLE_MASS: 13.6078, Metric.BODY_WATER: 13.6078, Metric.HEIGHT: 1.8034},
            DeviceKind.BODY_COMPOSITION_SCALE,
        ),
    ],
)
def test_to_measurement_table(
    weight: str | None, body: str | None, expected: dict[Metric, float], kind: DeviceKind
) -> None:
    measurement = to_measurement(
        decode_weight_measurement(bytes.fromhex(weight)) if weight else None,
        decode_body_composition(bytes.fromhex(body)) if body else None,
    )

    assert measurement is not None
    assert measurement.kind is kind
    assert _values(measurement) == pytest.approx(expected, rel=1e-5)


def test_unsuccessful_everything_is_no_measurement() -> None:
    weight = decode_weight_measurement(bytes.fromhex("00ffff"))
    body = decode_body_composition(bytes.fromhex("0000ffff"))

    assert to_measurement(weight) is None
    assert to_measurement(weight, body) is None
    assert to_measurement() is None


def test_unsuccessful_parts_are_noted_and_unknown_users_have_no_slot() -> None:
    weight = decode_weight_measurement(bytes.fromhex("00ffff"))
    body = decode_body_composition(bytes.fromhex("0406ffffff0014483f"))

    measurement = to_measurement(weight, body)

    assert measurement is not None
    assert Metric.BODY_FAT not in _values(measurement)
    assert measurement.details["weight_measurement_unsuccessful"] is True
    assert measurement.details["body_fat_measurement_unsuccessful"] is True
    assert measurement.context.device_user_index is None


def test_clock_never_set_gives_no_device_time() -> None:
    measurement = to_measurement(decode_weight_measurement(bytes.fromhex("02b03600000000000000")))

    assert measurement is not None
    assert measurement.device_time is None
    assert not measurement.clock_set


def test_an_incomplete_multi_packet_measurement_is_marked() -> None:
    measurement = to_measurement(body_composition=_part(PART_1))

    assert measurement is not None
    assert measurement.details["multi_packet_incomplete"] is True
    assert measurement.device_time == MOMENT


def test_same_step_on_compares_trusted_times_and_users() -> None:
    weight = WeightMeasurement.build(70.5, timestamp=MOMENT, user_id=1)
    later = BodyCompositionMeasurement.build(25.0, timestamp=datetime(2026, 1, 2, 3, 5))
    same = BodyCompositionMeasurement.build(25.0, timestamp=MOMENT, user_id=1)
    other_user = BodyCompositionMeasurement.build(25.0, user_id=2)
    untimed = BodyCompositionMeasurement.build(25.0, timestamp=CLOCK_NOT_SET)

    assert same_step_on(weight, same)
    assert not same_step_on(weight, later)
    assert not same_step_on(weight, other_user)
    assert same_step_on(weight, untimed)
    assert has_trusted_time(weight)
    assert not has_trusted_time(untimed)
