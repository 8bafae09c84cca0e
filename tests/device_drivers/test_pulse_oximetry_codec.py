"""PLX Spot-check (0x2A5E), Continuous (0x2A5F) and Features (0x2A60): the shared vectors,
exact-inverse encoders, fuzzing for the one-error-type promise, and the mapping to
`Measurement` (which status means which flag, and which records are held back)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.codec.pulse_oximetry import (
    FEATURE_SPOT_CHECK_STORAGE,
    ContinuousMeasurement,
    DeviceSensorStatus,
    MeasurementStatus,
    PlxFeatures,
    SpO2PR,
    SpotCheckMeasurement,
    decode_continuous,
    decode_features,
    decode_spot_check,
    encode_continuous,
    encode_features,
    encode_spot_check,
    sfloat,
    timestamp,
    to_measurement,
)
from device_drivers.codec.wire import DateTimeField, MedFloat, Special, decode_sfloat_word
from device_drivers.errors import PayloadError
from protocols.metrics import Metric
from protocols.reading import DeviceKind, MeasurementContext, StatusFlag
from tests.device_drivers.vectors import racp_vectors, vector_id, vectors_for

CODECS: dict[str, tuple[Any, Any]] = {
    "0x2A5E": (decode_spot_check, encode_spot_check),
    "0x2A5F": (decode_continuous, encode_continuous),
    "0x2A60": (decode_features, encode_features),
}


@pytest.mark.parametrize("vector", vectors_for(*CODECS), ids=vector_id)
def test_every_plx_vector_decodes_as_published_and_encodes_back(vector: dict[str, Any]) -> None:
    decode, encode = CODECS[vector["characteristic"]]
    payload = bytes.fromhex(vector["hex"])
    record = decode(payload)
    assert record.as_dict() == vector["decoded"]
    assert encode(record) == payload


def _plx_flow() -> list[dict[str, Any]]:
    flows = [f for f in racp_vectors()["flows"] if f["name"].startswith("PLXS")]
    assert flows
    return [s for f in flows for s in f["steps"] if s["characteristic"] == "0x2A5E"]


@pytest.mark.parametrize("step", _plx_flow(), ids=lambda s: s["hex"])
def test_stored_spot_checks_of_the_racp_flow(step: dict[str, Any]) -> None:
    record = decode_spot_check(bytes.fromhex(step["hex"]))
    assert record.as_dict() == step["decoded"]
    assert encode_spot_check(record).hex() == step["hex"]
    measurement = to_measurement(record)
    assert measurement is not None
    assert measurement.details["from_storage"] is True
    assert measurement.device_time == datetime.fromisoformat(step["decoded"]["timestamp"])


def test_unknown_and_pre_gregorian_timestamps_decode_as_untrusted() -> None:
    zero = decode_spot_check(bytes.fromhex("0162004800") + bytes(7))
    assert zero.as_dict()["timestamp"] is None
    assert zero.as_dict()["timestamp_raw"] == {
        "year": 0,
        "month": 0,
        "day": 0,
        "hours": 0,
        "minutes": 0,
        "seconds": 0,
    }
    # Year 1000 is a valid `datetime` but no Date Time; it must still encode back.
    payload = bytes.fromhex("0162004800") + (1000).to_bytes(2, "little") + bytes([1, 1, 0, 0, 0])
    early = decode_spot_check(payload)
    assert early.timestamp is not None and early.timestamp.moment is None
    assert encode_spot_check(early) == payload
    # 31 April: not a calendar day.
    april = decode_spot_check(bytes.fromhex("0162004800ea07041f000000"))
    assert april.as_dict()["timestamp_raw"]["day"] == 31


def test_the_same_value_keeps_its_own_encoding() -> None:
    # 72 is 0x0048 and also 0xF2D0 (720 × 10^-1): a re-encoding gives back what was read.
    payload = bytes.fromhex("006200d0f2")
    record = decode_spot_check(payload)
    assert record.pulse_rate.value == 72.0
    assert encode_spot_check(record) == payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "flags"),
        ("00620048", "pulse rate"),
        ("0162004800ea07", "timestamp"),
        ("0262004800e0", "measurement status"),
        ("04620048000000", "device and sensor status"),
        ("086200480001", "pulse amplitude index"),
        ("006200480000", "trailing"),
    ],
)
def test_spot_check_truncations_and_trailing_bytes_are_payload_errors(
    payload: str, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_spot_check(bytes.fromhex(payload))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("0162004600", "SpO2 fast"),
        ("02620046006100", "pulse rate slow"),
        ("1062004600", "pulse amplitude index"),
        ("0062004600ff", "trailing"),
    ],
)
def test_continuous_truncations_are_payload_errors(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_continuous(bytes.fromhex(payload))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("01", "supported features"),
        ("0100e0", "measurement status support"),
        ("0200ffff", "device and sensor status support"),
        ("000000", "trailing"),
    ],
)
def test_features_truncations_are_payload_errors(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_features(bytes.fromhex(payload))


def test_records_refuse_what_their_flags_could_not_say() -> None:
    with pytest.raises(PayloadError, match="reserved flag bits"):
        SpotCheckMeasurement(sfloat(97), sfloat(70), reserved_flags=0x01)
    with pytest.raises(PayloadError, match="reserved flag bits"):
        ContinuousMeasurement(SpO2PR(sfloat(97), sfloat(70)), reserved_flags=0x10)
    with pytest.raises(PayloadError, match="16 bits"):
        MeasurementStatus(0x10000)
    with pytest.raises(PayloadError, match="24 bits"):
        DeviceSensorStatus(-1)
    with pytest.raises(PayloadError, match="16 bits"):
        PlxFeatures(0x10000)
    with pytest.raises(PayloadError, match="bit 0"):
        PlxFeatures(0x0001)
    with pytest.raises(PayloadError, match="bit 1"):
        PlxFeatures(0x0000, device_sensor_status_support=DeviceSensorStatus(1))


def test_features_of_sets_the_presence_bits_from_the_masks() -> None:
    features = PlxFeatures.of(0x0003 | FEATURE_SPOT_CHECK_STORAGE)
    assert features.supported_features == FEATURE_SPOT_CHECK_STORAGE
    assert features.spot_check_storage
    both = PlxFeatures.of(0, measurement_status_support=0x0200, device_sensor_status_support=0x20)
    assert encode_features(both) == bytes.fromhex("03000002200000")
    assert decode_features(encode_features(both)) == both


def test_hand_built_values_encode_with_the_most_precision() -> None:
    record = SpotCheckMeasurement(
        sfloat(94.5),
        sfloat(Special.NAN),
        timestamp=timestamp(datetime(2026, 1, 2, 3, 4, 5)),
        pulse_amplitude_index=MedFloat.number(0.0),
    )
    assert encode_spot_check(record) == bytes.fromhex("09b1f3ff07ea0701020304050000")
    unset = SpotCheckMeasurement(sfloat(97), sfloat(60), timestamp=timestamp(None))
    assert encode_spot_check(unset).endswith(bytes(7))
    no_bytes = SpotCheckMeasurement(sfloat(97), sfloat(60), timestamp=DateTimeField(None, b""))
    assert encode_spot_check(no_bytes) == encode_spot_check(unset)
    with pytest.raises(PayloadError):
        encode_spot_check(SpotCheckMeasurement(MedFloat(None), sfloat(60)))
    with pytest.raises(PayloadError, match="too large"):
        encode_spot_check(SpotCheckMeasurement(sfloat(1e12), sfloat(60)))


# -- round trips and fuzzing ----------------------------------------------------------

_specials = st.sampled_from(list(Special)).map(MedFloat.of)
_decoded_sfloats = st.integers(0, 0xFFFF).map(decode_sfloat_word)
_built_sfloats = st.decimals(
    min_value=-200, max_value=200, places=1, allow_nan=False, allow_infinity=False
).map(lambda d: sfloat(float(d)))
_sfloats = st.one_of(_specials, _decoded_sfloats, _built_sfloats)
_stamps = st.one_of(
    st.none().map(timestamp),
    st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: timestamp(d.replace(microsecond=0))
    ),
)
_status = st.integers(0, 0xFFFF).map(MeasurementStatus)
_dss = st.integers(0, 0xFFFFFF).map(DeviceSensorStatus)
_reserved = st.sampled_from([0, 0x20, 0x40, 0x80, 0xE0])
_pairs = st.builds(SpO2PR, _sfloats, _sfloats)

spot_checks = st.builds(
    SpotCheckMeasurement,
    spo2=_sfloats,
    pulse_rate=_sfloats,
    timestamp=st.none() | _stamps,
    measurement_status=st.none() | _status,
    device_sensor_status=st.none() | _dss,
    pulse_amplitude_index=st.none() | _sfloats,
    device_clock_not_set=st.booleans(),
    reserved_flags=_reserved,
)
continuous = st.builds(
    ContinuousMeasurement,
    normal=_pairs,
    fast=st.none() | _pairs,
    slow=st.none() | _pairs,
    measurement_status=st.none() | _status,
    device_sensor_status=st.none() | _dss,
    pulse_amplitude_index=st.none() | _sfloats,
    reserved_flags=_reserved,
)
features = st.builds(
    PlxFeatures.of,
    st.integers(0, 0xFFFF),
    measurement_status_support=st.none() | st.integers(0, 0xFFFF),
    device_sensor_status_support=st.none() | st.integers(0, 0xFFFFFF),
)


def _same_values(a: MedFloat, b: MedFloat) -> bool:
    return (a.value, a.special) == (b.value, b.special)


@given(spot_checks)
def test_spot_check_round_trip(record: SpotCheckMeasurement) -> None:
    payload = encode_spot_check(record)
    again = decode_spot_check(payload)
    assert encode_spot_check(again) == payload
    assert again.as_dict() == record.as_dict()
    assert _same_values(again.spo2, record.spo2)


@given(continuous)
def test_continuous_round_trip(record: ContinuousMeasurement) -> None:
    payload = encode_continuous(record)
    again = decode_continuous(payload)
    assert encode_continuous(again) == payload
    assert again.as_dict() == record.as_dict()


@given(features)
def test_features_round_trip(record: PlxFeatures) -> None:
    assert decode_features(encode_features(record)) == record


_valid_payloads = st.one_of(
    spot_checks.map(encode_spot_check),
    continuous.map(encode_continuous),
    features.map(encode_features),
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A valid payload of one characteristic, cut, extended or with its flags changed:
    the inputs that get past the first field and exercise every later one."""
    data = bytearray(draw(_valid_payloads))
    cut = draw(st.integers(0, len(data)))
    data = data[:cut] + draw(st.binary(max_size=4))
    if data and draw(st.booleans()):
        data[0] = draw(st.integers(0, 0xFF))
    return bytes(data)


@given(st.one_of(st.binary(max_size=24), _mutated()))
def test_decoders_raise_only_payload_errors_and_invert_exactly(data: bytes) -> None:
    for decode, encode in CODECS.values():
        try:
            record = decode(data)
        except PayloadError:
            continue
        assert encode(record) == data
        record.as_dict()
        if decode is not decode_features:
            to_measurement(record)


# -- to_measurement --------------------------------------------------------------------

NAN = Special.NAN


def _spot(
    spo2: float | Special = 97.0,
    pulse: float | Special = 72.0,
    *,
    status: int | None = None,
    dss: int | None = None,
    **fields: Any,
) -> SpotCheckMeasurement:
    return SpotCheckMeasurement(
        sfloat(spo2),
        sfloat(pulse),
        measurement_status=None if status is None else MeasurementStatus(status),
        device_sensor_status=None if dss is None else DeviceSensorStatus(dss),
        **fields,
    )


def _continuous(
    spo2: float | Special = 97.0,
    pulse: float | Special = 72.0,
    *,
    status: int | None = None,
    dss: int | None = None,
    **fields: Any,
) -> ContinuousMeasurement:
    return ContinuousMeasurement(
        SpO2PR(sfloat(spo2), sfloat(pulse)),
        measurement_status=None if status is None else MeasurementStatus(status),
        device_sensor_status=None if dss is None else DeviceSensorStatus(dss),
        **fields,
    )


def _values(record: SpotCheckMeasurement | ContinuousMeasurement) -> dict[Metric, float] | None:
    measurement = to_measurement(record)
    if measurement is None:
        return None
    assert measurement.kind is DeviceKind.PULSE_OXIMETER
    assert all(o.value == o.device_value for o in measurement.observations)
    return {o.metric: o.value for o in measurement.observations}


@pytest.mark.parametrize(
    ("record", "values"),
    [
        (_spot(86.0, 108.0), {Metric.SPO2: 86.0, Metric.PULSE_RATE: 108.0}),
        (_spot(NAN, 72.0), {Metric.PULSE_RATE: 72.0}),
        (_spot(94.5, Special.NRES), {Metric.SPO2: 94.5}),
        (_spot(NAN, NAN), None),
        (_spot(Special.NRES, Special.POSITIVE_INFINITY), None),
        (_continuous(93.0, 101.0), {Metric.SPO2: 93.0, Metric.PULSE_RATE: 101.0}),
        (_continuous(NAN, 60.0), {Metric.PULSE_RATE: 60.0}),
        (_continuous(NAN, Special.NRES), None),
    ],
    ids=[
        "desaturation",
        "spo2-nan",
        "pulse-nres",
        "all-nan",
        "nres-and-inf",
        "continuous",
        "continuous-spo2-nan",
        "continuous-none",
    ],
)
def test_specials_give_no_observation(
    record: SpotCheckMeasurement | ContinuousMeasurement, values: dict[Metric, float] | None
) -> None:
    assert _values(record) == values


def test_a_special_is_kept_in_details() -> None:
    measurement = to_measurement(_spot(NAN, 72.0))
    assert measurement is not None
    assert measurement.details["unavailable"] == {"spo2": "NaN"}


BIT = {
    name: 1 << bit
    for bit, name in enumerate(
        [
            "extended_display_update_ongoing",
            "equipment_malfunction_detected",
            "signal_processing_irregularity_detected",
            "inadequate_signal_detected",
            "poor_signal_detected",
            "low_perfusion_detected",
            "erratic_signal_detected",
            "nonpulsatile_signal_detected",
            "questionable_pulse_detected",
            "signal_analysis_ongoing",
            "sensor_interference_detected",
            "sensor_unconnected_to_user",
            "unknown_sensor_connected",
            "sensor_displaced",
            "sensor_malfunctioning",
            "sensor_disconnected",
        ]
    )
}


@pytest.mark.parametrize(
    ("dss", "flags"),
    [
        ("low_perfusion_detected", {StatusFlag.LOW_PERFUSION}),
        ("equipment_malfunction_detected", {StatusFlag.DEVICE_ERROR}),
        ("signal_processing_irregularity_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("inadequate_signal_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("poor_signal_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("erratic_signal_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("nonpulsatile_signal_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("questionable_pulse_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("sensor_interference_detected", {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("sensor_unconnected_to_user", {StatusFlag.SENSOR_FAULT}),
        ("unknown_sensor_connected", {StatusFlag.SENSOR_FAULT}),
        ("sensor_displaced", {StatusFlag.SENSOR_FAULT}),
        ("sensor_malfunctioning", {StatusFlag.SENSOR_FAULT}),
        ("sensor_disconnected", {StatusFlag.SENSOR_FAULT}),
        ("extended_display_update_ongoing", set()),
        ("signal_analysis_ongoing", set()),
    ],
)
def test_device_and_sensor_status_flags(dss: str, flags: set[StatusFlag]) -> None:
    for record in (_spot(dss=BIT[dss]), _continuous(dss=BIT[dss] | 1 << 16)):
        measurement = to_measurement(record)
        assert measurement is not None
        assert measurement.flags == flags
        assert measurement.details["device_sensor_status"] == [dss]


MS = {
    "ongoing": 1 << 5,
    "early": 1 << 6,
    "validated": 1 << 7,
    "qualified": 1 << 8,
    "storage": 1 << 9,
    "demo": 1 << 10,
    "testing": 1 << 11,
    "calibration": 1 << 12,
    "unavailable": 1 << 13,
    "questionable": 1 << 14,
    "invalid": 1 << 15,
}


@pytest.mark.parametrize("bit", ["demo", "testing", "unavailable"])
def test_demo_test_and_unavailable_values_never_become_readings(bit: str) -> None:
    assert to_measurement(_spot(status=MS[bit])) is None
    assert to_measurement(_continuous(status=MS[bit] | MS["validated"])) is None


@pytest.mark.parametrize(
    ("bit", "spot_flags", "continuous_flags"),
    [
        ("early", {StatusFlag.SIGNAL_QUESTIONABLE}, {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("calibration", {StatusFlag.SIGNAL_QUESTIONABLE}, {StatusFlag.SIGNAL_QUESTIONABLE}),
        # A continuous stream is "ongoing" by nature; a spot-check still ongoing is not final.
        ("ongoing", {StatusFlag.SIGNAL_QUESTIONABLE}, set()),
        ("questionable", {StatusFlag.SIGNAL_QUESTIONABLE}, {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("invalid", {StatusFlag.SIGNAL_QUESTIONABLE}, {StatusFlag.SIGNAL_QUESTIONABLE}),
        ("validated", set(), set()),
        ("qualified", set(), set()),
        ("storage", set(), set()),
    ],
)
def test_measurement_status_flags(
    bit: str, spot_flags: set[StatusFlag], continuous_flags: set[StatusFlag]
) -> None:
    spot = to_measurement(_spot(status=MS[bit]))
    cont = to_measurement(_continuous(status=MS[bit]))
    assert spot is not None and cont is not None
    assert (spot.flags, cont.flags) == (spot_flags, continuous_flags)
    assert spot.details.get("provisional", False) == (bit in {"early", "calibration", "ongoing"})
    assert spot.details.get("from_storage", False) == (bit == "storage")


def test_clock_not_set_and_unknown_timestamps_are_untrusted() -> None:
    stamp = timestamp(datetime(2000, 1, 1))
    flagged = to_measurement(_spot(timestamp=stamp, device_clock_not_set=True))
    assert flagged is not None
    assert (flagged.device_time, flagged.clock_set) == (datetime(2000, 1, 1), False)
    zeros = to_measurement(_spot(timestamp=timestamp(None)))
    assert zeros is not None
    assert (zeros.device_time, zeros.clock_set) == (None, False)
    no_field = to_measurement(_spot(device_clock_not_set=True))
    assert no_field is not None and not no_field.clock_set
    trusted = to_measurement(_spot(timestamp=timestamp(datetime(2026, 3, 4, 5, 6, 7))))
    assert trusted is not None
    assert (trusted.device_time, trusted.clock_set) == (datetime(2026, 3, 4, 5, 6, 7), True)
    assert trusted.record_key(datetime(2026, 3, 4)) == "t:2026-03-04T05:06:07"


def test_continuous_keeps_the_normal_pair_and_puts_the_rest_in_details() -> None:
    record = ContinuousMeasurement(
        SpO2PR(sfloat(95), sfloat(80)),
        fast=SpO2PR(sfloat(94), sfloat(NAN)),
        slow=SpO2PR(sfloat(NAN), sfloat(78)),
        pulse_amplitude_index=sfloat(2.5),
    )
    measurement = to_measurement(record)
    assert measurement is not None
    assert {o.metric: o.value for o in measurement.observations} == {
        Metric.SPO2: 95.0,
        Metric.PULSE_RATE: 80.0,
    }
    assert measurement.details == {
        "characteristic": "continuous",
        "spo2_fast_pct": 94.0,
        "pulse_rate_slow_bpm": 78.0,
        "pulse_amplitude_index_pct": 2.5,
    }
    assert measurement.device_time is None and measurement.clock_set


def test_the_measurement_site_is_not_assumed() -> None:
    measurement = to_measurement(_spot())
    assert measurement is not None
    assert measurement.context == MeasurementContext()
    assert to_measurement(_spot(pulse_amplitude_index=sfloat(NAN))) is not None
