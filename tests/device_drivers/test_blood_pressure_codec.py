"""Blood Pressure Measurement, Intermediate Cuff Pressure and Feature against the shared
vectors; exact-inverse round trips; fuzzing for the one-error-type promise; and the
mapping of cuff records to Measurements."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.codec.blood_pressure import (
    UNKNOWN_TIME,
    UNKNOWN_USER,
    BloodPressureFeature,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    PressureUnit,
    PulseRateRange,
    cuff_pressure,
    decode_blood_pressure_feature,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
    encode_blood_pressure_feature,
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
    sfloat,
    stamp_at,
    to_measurement,
)
from device_drivers.codec.wire import (
    DateTimeField,
    MedFloat,
    Special,
    decode_date_time_bytes,
    decode_sfloat_word,
)
from device_drivers.errors import PayloadError
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MeasurementContext, StatusFlag
from tests.device_drivers.vectors import vector_id, vectors_for

CODECS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    "0x2A35": (decode_blood_pressure_measurement, encode_blood_pressure_measurement),
    "0x2A36": (decode_intermediate_cuff_pressure, encode_intermediate_cuff_pressure),
    "0x2A49": (decode_blood_pressure_feature, encode_blood_pressure_feature),
}
TAKEN_AT = datetime(2026, 3, 14, 8, 15, 0)


# -- vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors_for(*CODECS), ids=vector_id)
def test_vectors_decode_exactly_and_encode_back_to_the_same_bytes(vector: dict[str, Any]) -> None:
    decode, encode = CODECS[vector["characteristic"]]
    payload = bytes.fromhex(vector["hex"])

    record = decode(payload)

    assert record.as_dict() == vector["decoded"]
    assert encode(record) == payload


# -- round trips -----------------------------------------------------------------------

sfloats = st.integers(0, 0xFFFF).map(decode_sfloat_word)
# Whatever 7 bytes a device sends: valid times, "clock not set", impossible dates.
stamps = st.binary(min_size=7, max_size=7).map(decode_date_time_bytes)
optional_tail = {
    "time_stamp": st.none() | stamps,
    "pulse_rate": st.none() | sfloats,
    "user_id": st.none() | st.integers(0, 255),
    "status": st.none() | st.integers(0, 0xFFFF).map(MeasurementStatus),
    "reserved_flags": st.integers(0, 7).map(lambda bits: bits << 5),
}


measurements = st.builds(
    BloodPressureMeasurement,
    unit=st.sampled_from(PressureUnit),
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    **optional_tail,
)
cuff_pressures = st.builds(
    IntermediateCuffPressure,
    unit=st.sampled_from(PressureUnit),
    cuff_pressure=sfloats,
    diastolic_unused=sfloats,
    mean_arterial_pressure_unused=sfloats,
    **optional_tail,
)


@given(measurements)
def test_measurement_records_survive_encoding(record: BloodPressureMeasurement) -> None:
    assert decode_blood_pressure_measurement(encode_blood_pressure_measurement(record)) == record


@given(cuff_pressures)
def test_cuff_pressure_records_survive_encoding(record: IntermediateCuffPressure) -> None:
    assert decode_intermediate_cuff_pressure(encode_intermediate_cuff_pressure(record)) == record


@given(st.integers(0, 0xFFFF))
def test_feature_words_survive_encoding(raw: int) -> None:
    feature = BloodPressureFeature(raw)
    assert decode_blood_pressure_feature(encode_blood_pressure_feature(feature)) == feature


def test_hand_built_records_equal_what_a_device_would_send() -> None:
    record = BloodPressureMeasurement.of(
        128.0,
        82,
        97.3,
        time_stamp=TAKEN_AT,
        pulse_rate=71,
        user_id=3,
        status=MeasurementStatus.of(body_movement=True),
    )
    cuff = IntermediateCuffPressure.of(145, time_stamp=UNKNOWN_TIME, status=0x0001)
    wire_form = decode_sfloat_word(0x0078)  # 120 as mantissa 120, exponent 0

    assert BloodPressureMeasurement.of(wire_form, 80).systolic is wire_form

    assert decode_blood_pressure_measurement(encode_blood_pressure_measurement(record)) == record
    assert decode_intermediate_cuff_pressure(encode_intermediate_cuff_pressure(cuff)) == cuff
    assert record.as_dict()["timestamp"] == "2026-03-14T08:15:00"
    assert cuff.as_dict()["timestamp"] is None
    assert cuff.as_dict()["timestamp_raw"]["year"] == 0


def test_a_number_without_its_wire_form_is_encoded_afresh() -> None:
    # MedFloat.number keeps no mantissa/exponent: the encoder picks a representation.
    record = BloodPressureMeasurement(
        PressureUnit.MMHG, MedFloat.number(120.0), MedFloat.number(80.0), MedFloat.number(93.3)
    )
    decoded = decode_blood_pressure_measurement(encode_blood_pressure_measurement(record))

    assert (decoded.systolic.value, decoded.diastolic.value) == (120.0, 80.0)
    assert decoded.mean_arterial_pressure.value == 93.3
    # A mantissa too wide for 12 bits (as a FLOAT may carry) is re-encoded, not truncated.
    wide = BloodPressureMeasurement(
        PressureUnit.MMHG, MedFloat(120.0, None, 120_000, -3), sfloat(80), sfloat(93)
    )
    assert (
        decode_blood_pressure_measurement(encode_blood_pressure_measurement(wide)).systolic.value
        == 120.0
    )


def test_a_time_stamp_without_raw_bytes_is_encoded_from_its_moment() -> None:
    record = BloodPressureMeasurement.of(120, 80, time_stamp=DateTimeField(TAKEN_AT, b""))
    decoded = decode_blood_pressure_measurement(encode_blood_pressure_measurement(record))
    assert decoded.time_stamp == stamp_at(TAKEN_AT)


@pytest.mark.parametrize(
    "build",
    [
        lambda: BloodPressureMeasurement.of(120, 80, user_id=256),
        lambda: IntermediateCuffPressure.of(120, user_id=-1),
        lambda: BloodPressureMeasurement(
            PressureUnit.MMHG, sfloat(1), sfloat(1), sfloat(1), reserved_flags=0x01
        ),
        lambda: MeasurementStatus(0x10000),
        lambda: MeasurementStatus.of(reserved_bits=0x0001),
        lambda: BloodPressureFeature(-1),
        lambda: encode_blood_pressure_measurement(
            BloodPressureMeasurement(PressureUnit.MMHG, MedFloat(None), sfloat(1), sfloat(1))
        ),
        lambda: sfloat(float("inf")),
    ],
)
def test_impossible_records_are_refused_with_payload_error(build: Callable[[], Any]) -> None:
    with pytest.raises(PayloadError):
        build()


# -- fuzzing ---------------------------------------------------------------------------


@pytest.mark.parametrize("characteristic", list(CODECS))
@given(payload=st.binary(max_size=32))
def test_decoders_raise_only_payload_error_and_what_they_accept_encodes_back(
    characteristic: str, payload: bytes
) -> None:
    decode, encode = CODECS[characteristic]
    try:
        record = decode(payload)
    except PayloadError:
        return
    assert encode(record) == payload
    record.as_dict()


@given(
    flags=st.integers(0, 255),
    tail=st.binary(min_size=6, max_size=20),
)
def test_decoders_walk_any_flag_combination(flags: int, tail: bytes) -> None:
    # Arbitrary bytes rarely hit the exact length a flags byte implies; build those too.
    for characteristic in ("0x2A35", "0x2A36"):
        decode, encode = CODECS[characteristic]
        payload = bytes([flags]) + tail
        try:
            record = decode(payload)
        except PayloadError as exc:
            assert exc.payload == payload
            continue
        assert encode(record) == payload
        assert record.flags.raw == flags


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "flags needs 1 byte"),
        ("0078005000", "mean arterial pressure needs 2 byte"),
        ("0278005000a5f3e907", "time stamp needs 7 byte"),
        ("0478005000a5f3", "pulse rate needs 2 byte"),
        ("0878005000a5f3", "user id needs 1 byte"),
        ("1078005000a5f300", "measurement status needs 2 byte"),
        ("0078005000a5f300", "1 unexpected trailing byte"),
    ],
)
def test_short_and_long_payloads_say_what_is_wrong(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason) as raised:
        decode_blood_pressure_measurement(bytes.fromhex(payload))
    assert raised.value.payload == bytes.fromhex(payload)


def test_feature_must_be_two_bytes() -> None:
    with pytest.raises(PayloadError):
        decode_blood_pressure_feature(b"\x3f")
    with pytest.raises(PayloadError):
        decode_blood_pressure_feature(b"\x3f\x00\x00")


# -- fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x0000, PulseRateRange.WITHIN_RANGE),
        (0x0008, PulseRateRange.EXCEEDS_UPPER_LIMIT),
        (0x0010, PulseRateRange.BELOW_LOWER_LIMIT),
        (0x0018, PulseRateRange.RESERVED),
    ],
)
def test_pulse_rate_range_is_bits_3_and_4(raw: int, expected: PulseRateRange) -> None:
    status = MeasurementStatus(raw)
    assert status.pulse_rate_range is expected
    assert MeasurementStatus.of(pulse_rate_range=expected) == status
    assert not status.improper_position  # bit 5, not bit 4 as one source has it


def test_status_reserved_bits_are_reported_not_dropped() -> None:
    status = MeasurementStatus(0x8025)
    assert status.as_dict() == {
        "raw": 0x8025,
        "body_movement_detected": True,
        "cuff_too_loose": False,
        "irregular_pulse_detected": True,
        "improper_measurement_position": True,
        "pulse_rate_range": "within_range",
        "reserved_bits": 0x8000,
    }


def test_reserved_flag_bits_do_not_shift_fields() -> None:
    record = decode_blood_pressure_measurement(bytes.fromhex("a478005000a5f34800"))
    assert record.reserved_flags == 0xA0
    assert record.pulse_rate is not None
    assert record.pulse_rate.value == 72.0
    assert record.as_dict()["flags"]["reserved_bits"] == 0xA0


def test_unknown_user_and_impossible_time_stamp() -> None:
    # 29 February 2023 does not exist: an untrusted stamp, not a malformed payload.
    payload = bytes.fromhex("0a78005000a5f3e707021d0c0000ff")
    record = decode_blood_pressure_measurement(payload)
    decoded = record.as_dict()

    assert (decoded["user_id"], decoded["user_id_unknown"]) == (255, True)
    assert decoded["timestamp"] is None
    assert decoded["timestamp_raw"] == {
        "year": 2023,
        "month": 2,
        "day": 29,
        "hours": 12,
        "minutes": 0,
        "seconds": 0,
    }
    assert encode_blood_pressure_measurement(record) == payload


def test_kpa_specials_stay_specials_in_the_approximation() -> None:
    record = BloodPressureMeasurement.of(16.0, Special.NAN, Special.NRES, unit=PressureUnit.KPA)
    decoded = record.as_dict()
    assert (decoded["diastolic_kPa"], decoded["diastolic_mmHg_approx"]) == ("NaN", "NaN")
    assert decoded["mean_arterial_pressure_mmHg_approx"] == "NRes"
    assert decoded["systolic_mmHg_approx"] == 120.0


def test_feature_builder_matches_the_bits() -> None:
    feature = BloodPressureFeature.of(
        body_movement=True,
        cuff_fit=True,
        irregular_pulse=True,
        pulse_rate_range=True,
        measurement_position=True,
        multiple_bond=True,
    )
    assert feature == BloodPressureFeature(0x3F)
    assert BloodPressureFeature.of() == BloodPressureFeature(0)


# -- to_measurement --------------------------------------------------------------------


def _values(record: BloodPressureMeasurement) -> dict[Metric, tuple[float, str, float, str]]:
    measurement = to_measurement(record)
    assert measurement is not None
    return {
        o.metric: (round(o.value, 4), o.unit, o.device_value, o.device_unit)
        for o in measurement.observations
    }


def test_mmhg_measurement_becomes_four_observations() -> None:
    record = BloodPressureMeasurement.of(128, 82, 97.3, pulse_rate=71)
    assert _values(record) == {
        Metric.SYSTOLIC: (128.0, "mm[Hg]", 128.0, "mm[Hg]"),
        Metric.DIASTOLIC: (82.0, "mm[Hg]", 82.0, "mm[Hg]"),
        Metric.MEAN_ARTERIAL_PRESSURE: (97.3, "mm[Hg]", 97.3, "mm[Hg]"),
        Metric.PULSE_RATE: (71.0, "/min", 71.0, "/min"),
    }
    measurement = to_measurement(record)
    assert measurement is not None
    assert measurement.kind is DeviceKind.BLOOD_PRESSURE_MONITOR
    assert measurement.flags == frozenset()
    assert measurement.details == {}
    assert (measurement.device_time, measurement.clock_set) == (None, True)


def test_kpa_is_kept_as_sent_and_converted_to_mmhg() -> None:
    record = decode_blood_pressure_measurement(bytes.fromhex("01a0f06bf07cf0"))
    assert _values(record) == {
        Metric.SYSTOLIC: (120.0099, "mm[Hg]", 16.0, "kPa"),
        Metric.DIASTOLIC: (80.2566, "mm[Hg]", 10.7, "kPa"),
        Metric.MEAN_ARTERIAL_PRESSURE: (93.0077, "mm[Hg]", 12.4, "kPa"),
    }


@pytest.mark.parametrize("special", [Special.NAN, Special.NRES])
def test_unavailable_map_and_pulse_give_no_observation(special: Special) -> None:
    record = BloodPressureMeasurement.of(135, 85, special, pulse_rate=special)
    measurement = to_measurement(record)

    assert measurement is not None
    assert [o.metric for o in measurement.observations] == [Metric.SYSTOLIC, Metric.DIASTOLIC]
    assert measurement.details["unavailable"] == {
        "mean_arterial_pressure": special.value,
        "pulse_rate": special.value,
    }


@pytest.mark.parametrize(
    ("systolic", "diastolic"),
    [
        (Special.NAN, 80.0),
        (120.0, Special.NAN),
        (Special.NRES, Special.NRES),
        (Special.POSITIVE_INFINITY, 80.0),
        (120.0, Special.NEGATIVE_INFINITY),
    ],
)
def test_a_failed_cuff_measurement_is_no_reading(
    systolic: float | Special, diastolic: float | Special
) -> None:
    record = BloodPressureMeasurement.of(systolic, diastolic, 93.3, pulse_rate=70)
    assert to_measurement(record) is None


@pytest.mark.parametrize(
    ("status", "flags", "direction"),
    [
        (MeasurementStatus.of(body_movement=True), {StatusFlag.BODY_MOVEMENT}, "within_range"),
        (MeasurementStatus.of(cuff_too_loose=True), {StatusFlag.CUFF_LOOSE}, "within_range"),
        (
            MeasurementStatus.of(irregular_pulse=True),
            {StatusFlag.IRREGULAR_PULSE},
            "within_range",
        ),
        (
            MeasurementStatus.of(pulse_rate_range=PulseRateRange.EXCEEDS_UPPER_LIMIT),
            {StatusFlag.PULSE_RATE_OUT_OF_RANGE},
            "exceeds_upper_limit",
        ),
        (
            MeasurementStatus.of(pulse_rate_range=PulseRateRange.BELOW_LOWER_LIMIT),
            {StatusFlag.PULSE_RATE_OUT_OF_RANGE},
            "below_lower_limit",
        ),
        (MeasurementStatus.of(pulse_rate_range=PulseRateRange.RESERVED), set(), "reserved"),
        (
            MeasurementStatus.of(improper_position=True),
            {StatusFlag.IMPROPER_POSITION},
            "within_range",
        ),
        (
            MeasurementStatus(0x0033),
            {
                StatusFlag.BODY_MOVEMENT,
                StatusFlag.CUFF_LOOSE,
                StatusFlag.PULSE_RATE_OUT_OF_RANGE,
                StatusFlag.IMPROPER_POSITION,
            },
            "below_lower_limit",
        ),
        (MeasurementStatus(0x0000), set(), "within_range"),
    ],
)
def test_status_bits_become_flags_and_details_keep_the_word(
    status: MeasurementStatus, flags: set[StatusFlag], direction: str
) -> None:
    measurement = to_measurement(BloodPressureMeasurement.of(150, 95, 113.3, status=status))
    assert measurement is not None
    assert measurement.flags == flags
    assert measurement.details["measurement_status"] == status.raw
    assert measurement.details["pulse_rate_range"] == direction


@pytest.mark.parametrize(
    ("user_id", "context", "details"),
    [
        (None, MeasurementContext(), {}),
        (0, MeasurementContext(device_user_index=0), {}),
        (2, MeasurementContext(device_user_index=2), {}),
        (UNKNOWN_USER, MeasurementContext(), {"user_id_unknown": True}),
    ],
)
def test_user_id_becomes_the_device_user_index_unless_unknown(
    user_id: int | None, context: MeasurementContext, details: dict[str, Any]
) -> None:
    measurement = to_measurement(BloodPressureMeasurement.of(120, 80, 93.3, user_id=user_id))
    assert measurement is not None
    assert measurement.context == context
    assert measurement.details == details


def test_time_stamp_is_the_device_time_and_an_unset_clock_is_flagged() -> None:
    stamped = to_measurement(BloodPressureMeasurement.of(120, 80, 93.3, time_stamp=TAKEN_AT))
    unset = to_measurement(BloodPressureMeasurement.of(120, 80, 93.3, time_stamp=UNKNOWN_TIME))

    assert stamped is not None
    assert unset is not None
    assert (stamped.device_time, stamped.clock_set) == (TAKEN_AT, True)
    assert (unset.device_time, unset.clock_set) == (None, False)
    assert unset.details["time_stamp_raw"]["year"] == 0


def test_reserved_flags_are_kept_in_details() -> None:
    record = decode_blood_pressure_measurement(bytes.fromhex("e078005000a5f3"))
    measurement = to_measurement(record)
    assert measurement is not None
    assert measurement.details == {"reserved_flags": 0xE0}


# -- cuff pressure ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("009100ff07ff07", 145.0),
        ("01c1f0ff07ff07", 19.3 * 7.50062),
        ("00ff07ff07ff07", None),
        ("000008ff07ff07", None),
    ],
)
def test_cuff_pressure_in_mmhg(payload: str, expected: float | None) -> None:
    record = decode_intermediate_cuff_pressure(bytes.fromhex(payload))
    assert cuff_pressure(record) == (None if expected is None else pytest.approx(expected))
