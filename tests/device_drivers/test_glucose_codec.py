"""Glucose Measurement (0x2A18), Context (0x2A34) and Feature (0x2A51): the shared vectors,
exact-inverse encoders, fuzzing for the one-error-type promise, and the mapping to
`Measurement` (HI/LO at the display limits, control solution and no-value records held
back, untrusted clocks, meal and site context, status flags)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.codec.glucose import (
    GLUCOSE_HI_MMOL_L,
    GLUCOSE_LO_MMOL_L,
    Carbohydrate,
    Exercise,
    GlucoseContext,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseUnit,
    Medication,
    MedicationUnit,
    SensorStatus,
    decode_glucose_context,
    decode_glucose_feature,
    decode_glucose_measurement,
    encode_glucose_context,
    encode_glucose_feature,
    encode_glucose_measurement,
    to_measurement,
)
from device_drivers.codec.wire import MedFloat, Special, decode_date_time_bytes, decode_sfloat_word
from device_drivers.errors import PayloadError
from device_drivers.measurement import to_readings
from protocols.metrics import Metric
from protocols.reading import (
    DeviceKind,
    DeviceRef,
    MealContext,
    MeasurementSite,
    Source,
    StatusFlag,
)
from tests.device_drivers.vectors import racp_vectors, vector_id, vectors_for

CODECS: dict[str, tuple[Any, Any]] = {
    "0x2A18": (decode_glucose_measurement, encode_glucose_measurement),
    "0x2A34": (decode_glucose_context, encode_glucose_context),
    "0x2A51": (decode_glucose_feature, encode_glucose_feature),
}
FLOW_STEPS = [
    step
    for flow in racp_vectors()["flows"]
    for step in flow["steps"]
    if step["characteristic"] in CODECS
]
VECTORS = vectors_for(*CODECS) + FLOW_STEPS
T0 = datetime(2026, 1, 2, 8, 0)


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_vectors_decode_to_their_decoded_objects(vector: dict[str, Any]) -> None:
    decode, _ = CODECS[vector["characteristic"]]
    assert decode(bytes.fromhex(vector["hex"])).as_dict() == vector["decoded"]


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_encoders_give_the_vector_bytes_back(vector: dict[str, Any]) -> None:
    decode, encode = CODECS[vector["characteristic"]]
    assert encode(decode(bytes.fromhex(vector["hex"]))).hex() == vector["hex"]


def test_every_kind_of_vector_is_covered() -> None:
    kinds = {vector["characteristic"] for vector in VECTORS}
    assert kinds == set(CODECS)
    assert len(FLOW_STEPS) >= 5


# -- hypothesis strategies for valid records ----------------------------------------------

sfloats = st.integers(0, 0xFFFF).map(decode_sfloat_word)
nibbles = st.integers(0, 15)
whole_seconds = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)
unknown_stamps = st.binary(min_size=7, max_size=7).filter(
    lambda raw: decode_date_time_bytes(raw).moment is None
)


@st.composite
def measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    known = draw(st.booleans())
    with_concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        base_time=draw(whole_seconds) if known else None,
        base_time_raw=None if known else draw(unknown_stamps),
        time_offset_minutes=draw(st.none() | st.integers(-32768, 32767)),
        concentration=draw(sfloats) if with_concentration else None,
        unit=draw(st.sampled_from(GlucoseUnit)),
        sample_type=draw(nibbles) if with_concentration else None,
        sample_location=draw(nibbles) if with_concentration else None,
        sensor_status=draw(st.none() | st.integers(0, 0xFFFF).map(SensorStatus.from_raw)),
        context_follows=draw(st.booleans()),
        reserved_flags=draw(st.integers(0, 7)) << 5,
    )


@st.composite
def contexts(draw: st.DrawFn) -> GlucoseContext:
    with_tester_health = draw(st.booleans())
    return GlucoseContext(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        extended_flags=draw(st.none() | st.integers(0, 255)),
        carbohydrate=draw(st.none() | st.builds(Carbohydrate, st.integers(0, 255), sfloats)),
        meal=draw(st.none() | st.integers(0, 255)),
        tester=draw(nibbles) if with_tester_health else None,
        health=draw(nibbles) if with_tester_health else None,
        exercise=draw(
            st.none() | st.builds(Exercise, st.integers(0, 0xFFFF), st.integers(0, 255))
        ),
        medication=draw(st.none() | st.builds(Medication, st.integers(0, 255), sfloats)),
        medication_unit=draw(st.sampled_from(MedicationUnit)),
        hba1c_pct=draw(st.none() | sfloats),
    )


@given(measurements())
def test_measurement_round_trip(record: GlucoseMeasurement) -> None:
    assert decode_glucose_measurement(encode_glucose_measurement(record)) == record


@given(contexts())
def test_context_round_trip(record: GlucoseContext) -> None:
    assert decode_glucose_context(encode_glucose_context(record)) == record


@given(st.integers(0, 0xFFFF))
def test_feature_round_trip(raw: int) -> None:
    feature = GlucoseFeature.from_raw(raw)
    assert feature.raw == raw
    assert decode_glucose_feature(encode_glucose_feature(feature)) == feature


@pytest.mark.parametrize("characteristic", sorted(CODECS))
@given(data=st.binary(max_size=24))
def test_decoders_raise_only_payload_error_and_invert_exactly(
    characteristic: str, data: bytes
) -> None:
    decode, encode = CODECS[characteristic]
    try:
        record = decode(data)
    except PayloadError:
        return
    assert encode(record) == data
    record.as_dict()  # and it can always be shown


@given(measurements())
def test_every_valid_measurement_maps_or_is_held_back(record: GlucoseMeasurement) -> None:
    measurement = to_measurement(record)
    if measurement is not None:
        assert len(measurement.observations) == 1
        assert measurement.observations[0].unit == "mmol/L"
        assert measurement.sequence_number == record.sequence_number


# -- as_dict for what the vectors do not show ---------------------------------------------


def test_mol_per_litre_concentration_and_unknown_base_time() -> None:
    record = GlucoseMeasurement(
        sequence_number=3,
        base_time=None,
        time_offset_minutes=15,
        concentration=decode_sfloat_word(0xC041),  # 6.5 mmol/L as ble_profiles.md §1 writes it
        unit=GlucoseUnit.MOL_PER_L,
        sample_type=2,
        sample_location=2,
    )
    payload = encode_glucose_measurement(record)
    assert payload.hex() == "070300" + "00" * 7 + "0f00" + "41c0" + "22"
    shown = decode_glucose_measurement(payload).as_dict()
    assert shown["glucose_mol_per_L"] == 0.0065
    assert shown["glucose_mmol_per_L"] == 6.5
    assert shown["glucose_mg_per_dL_approx"] == 117.1
    assert shown["base_time"] is None
    assert shown["base_time_raw"] == {
        "year": 0,
        "month": 0,
        "day": 0,
        "hours": 0,
        "minutes": 0,
        "seconds": 0,
    }
    assert shown["user_facing_time"] is None
    assert shown["sample_type"] == {"code": 2, "name": "capillary_plasma"}
    assert shown["sample_location"] == {"code": 2, "name": "alternate_site_test"}


def test_specials_reserved_codes_and_overrun_are_shown_as_such() -> None:
    record = GlucoseMeasurement(
        1,
        T0,
        concentration=MedFloat.of(Special.NEGATIVE_INFINITY),
        unit=GlucoseUnit.MOL_PER_L,
        sample_type=12,
        sample_location=9,
    )
    shown = record.as_dict()
    assert shown["glucose_mmol_per_L"] == "-INF"
    assert shown["glucose_mg_per_dL_approx"] == "-INF"
    assert shown["sample_type"]["name"] == "reserved"
    assert shown["sample_location"]["name"] == "reserved"
    context = GlucoseContext(
        1,
        carbohydrate=Carbohydrate(9, MedFloat.of(Special.NAN)),
        meal=9,
        tester=7,
        health=7,
        exercise=Exercise(0xFFFF, 80),
        medication=Medication(2, MedFloat.number(0.004)),
        hba1c_pct=MedFloat.of(Special.NRES),
    )
    shown = decode_glucose_context(encode_glucose_context(context)).as_dict()
    assert shown["carbohydrate"] == {"code": 9, "name": "reserved", "kg": "NaN", "g": "NaN"}
    assert shown["meal"] == {"code": 9, "name": "reserved"}
    assert shown["tester"]["name"] == shown["health"]["name"] == "reserved"
    assert shown["exercise_duration_overrun"] is True
    assert shown["medication"] == {
        "code": 2,
        "name": "short_acting_insulin",
        "unit": "kg",
        "value_kg": 0.004,
        "value_mg": 4000.0,
    }
    assert shown["hba1c_pct"] == "NRes"


def test_a_user_facing_time_beyond_the_calendar_is_unknown() -> None:
    record = replace(reading(), base_time=datetime(9999, 12, 31, 23, 50), time_offset_minutes=30)
    assert record.user_facing_time is None
    measurement = to_measurement(record)
    assert measurement is not None
    assert measurement.device_time is None
    assert not measurement.clock_set


def test_built_floats_encode_to_their_value() -> None:
    record = GlucoseMeasurement(
        1,
        T0,
        concentration=MedFloat.number(0.0012),
        sample_type=1,
        sample_location=1,
    )
    decoded = decode_glucose_measurement(encode_glucose_measurement(record))
    assert decoded.concentration is not None
    assert decoded.concentration.value == 0.0012
    assert decoded.as_dict()["glucose_mg_per_dL"] == 120.0


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (GlucoseMeasurement(1, T0, reserved_flags=0x01), "reserved flags"),
        (GlucoseMeasurement(1, None, base_time_raw=b"\x00"), "7 bytes"),
        (GlucoseMeasurement(1, T0, concentration=MedFloat.number(0.005)), "sample type"),
        (GlucoseMeasurement(1, T0, sample_type=1, sample_location=1), "only with"),
        (
            GlucoseMeasurement(
                1, T0, concentration=MedFloat.number(0.005), sample_type=16, sample_location=1
            ),
            "nibble",
        ),
        (
            GlucoseMeasurement(
                1, T0, concentration=MedFloat(None), sample_type=1, sample_location=1
            ),
            "neither|without value",
        ),
        (GlucoseMeasurement(70000, T0), "sequence number"),
        (GlucoseMeasurement(1, datetime(1500, 1, 1)), "outside the Date Time range"),
        (GlucoseMeasurement(1, T0, time_offset_minutes=40000), "time offset"),
    ],
)
def test_measurement_encoder_refuses_what_no_payload_can_say(
    record: GlucoseMeasurement, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        encode_glucose_measurement(record)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (GlucoseContext(1, tester=1), "give both"),
        (GlucoseContext(1, tester=1, health=16), "nibble"),
        (GlucoseContext(1, exercise=Exercise(1, 256)), "intensity"),
        (GlucoseContext(1, meal=300), "meal"),
    ],
)
def test_context_encoder_refuses_what_no_payload_can_say(
    record: GlucoseContext, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        encode_glucose_context(record)


def test_feature_encoder_refuses_defined_bits_as_reserved() -> None:
    with pytest.raises(PayloadError, match="reserved"):
        encode_glucose_feature(GlucoseFeature(reserved_bits=0x0001))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "flags"),
        (bytes.fromhex("000100ea0701"), "base time"),
        (bytes.fromhex("020100ea07010203040578b0"), "type-sample location"),
        (bytes.fromhex("000100ea07010203040500"), "trailing"),
    ],
)
def test_malformed_measurements_say_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason) as caught:
        decode_glucose_measurement(data)
    assert caught.value.payload == data


# -- to_measurement ------------------------------------------------------------------------


def reading(
    value: float | Special | None = 0.0058,
    *,
    unit: GlucoseUnit = GlucoseUnit.MOL_PER_L,
    status: SensorStatus | None = None,
    sample_type: int = 1,
    sample_location: int = 1,
    base_time: datetime | None = T0,
    offset: int | None = None,
    sequence: int = 7,
) -> GlucoseMeasurement:
    concentration = None
    if value is not None:
        concentration = MedFloat.of(value) if isinstance(value, Special) else MedFloat.number(value)
    return GlucoseMeasurement(
        sequence_number=sequence,
        base_time=base_time,
        time_offset_minutes=offset,
        concentration=concentration,
        unit=unit,
        sample_type=sample_type if value is not None else None,
        sample_location=sample_location if value is not None else None,
        sensor_status=status,
    )


def only_value(record: GlucoseMeasurement, context: GlucoseContext | None = None) -> float:
    measurement = to_measurement(record, context)
    assert measurement is not None
    (observation,) = measurement.observations
    assert observation.metric is Metric.GLUCOSE
    assert observation.unit == "mmol/L"
    return observation.value


def test_both_units_give_millimoles_per_litre() -> None:
    assert only_value(reading(0.0058)) == pytest.approx(5.8)
    # 105 mg/dL at the canonical 18.016 mg/dL per mmol/L.
    assert only_value(reading(0.00105, unit=GlucoseUnit.KG_PER_L)) == pytest.approx(105 / 18.016)
    measurement = to_measurement(reading(0.00105, unit=GlucoseUnit.KG_PER_L))
    assert measurement is not None
    assert measurement.kind is DeviceKind.GLUCOSE_METER
    assert measurement.observations[0].device_value == 0.00105
    assert measurement.observations[0].device_unit == "kg/L"


HI = StatusFlag.VALUE_HI
LO = StatusFlag.VALUE_LO


@pytest.mark.parametrize(
    ("value", "status", "expected", "flag"),
    [
        (Special.POSITIVE_INFINITY, None, GLUCOSE_HI_MMOL_L, HI),
        (Special.NEGATIVE_INFINITY, None, GLUCOSE_LO_MMOL_L, LO),
        (Special.NAN, SensorStatus(result_higher_than_device_can_process=True), 33.3, HI),
        (Special.NAN, SensorStatus(result_lower_than_device_can_process=True), 1.1, LO),
        # The meter's number inside its range contradicts "HI": the display limit wins.
        (0.0058, SensorStatus(result_higher_than_device_can_process=True), 33.3, HI),
        # A number beyond the limit is the more extreme value, and the meter's own.
        (0.0400, SensorStatus(result_higher_than_device_can_process=True), 40.0, HI),
        (0.0008, SensorStatus(result_lower_than_device_can_process=True), 0.8, LO),
        (Special.POSITIVE_INFINITY, SensorStatus(device_battery_low=True), 33.3, HI),
    ],
)
def test_hi_and_lo_reach_the_cloud_at_the_display_limit(
    value: float | Special, status: SensorStatus | None, expected: float, flag: StatusFlag
) -> None:
    measurement = to_measurement(reading(value, status=status))
    assert measurement is not None
    assert measurement.observations[0].value == pytest.approx(expected)
    assert flag in measurement.flags
    assert ({HI, LO} - {flag}).isdisjoint(measurement.flags)
    assert measurement.details["display_limit"] == ("HI" if flag is HI else "LO")


def test_display_limits_are_the_usual_meter_range() -> None:
    assert abs(GLUCOSE_LO_MMOL_L - 20 / 18.016) < 0.05
    assert abs(GLUCOSE_HI_MMOL_L - 600 / 18.016) < 0.05


def test_hi_becomes_a_flagged_reading() -> None:
    measurement = to_measurement(reading(Special.POSITIVE_INFINITY, unit=GlucoseUnit.KG_PER_L))
    assert measurement is not None
    (reading_,) = to_readings(
        measurement,
        device=DeviceRef(kind=DeviceKind.GLUCOSE_METER, model="m", serial="s1"),
        received_at=datetime(2026, 1, 2, 9, 0, tzinfo=UTC),
        source=Source.HOME,
        device_timezone=UTC,
    )
    assert reading_.value == GLUCOSE_HI_MMOL_L
    assert StatusFlag.VALUE_HI in reading_.flags
    assert measurement.details["device_concentration"] == "+INF"


@pytest.mark.parametrize(
    "record",
    [
        reading(Special.NAN),
        reading(Special.NRES),
        reading(Special.RESERVED),
        reading(None),
        # "Above" and "below" the range at once: nothing to believe.
        reading(
            Special.POSITIVE_INFINITY,
            status=SensorStatus(result_lower_than_device_can_process=True),
        ),
        # Control solution checks the meter, not the patient (type 10 or location 4).
        reading(0.0058, sample_type=10),
        reading(0.0058, sample_location=4),
        reading(Special.POSITIVE_INFINITY, sample_type=10, sample_location=4),
    ],
    ids=["nan", "nres", "reserved", "absent", "hi-and-lo", "ctl-type", "ctl-location", "ctl-hi"],
)
def test_records_without_a_patient_value_give_nothing(record: GlucoseMeasurement) -> None:
    assert to_measurement(record) is None


def test_device_time_is_the_user_facing_time() -> None:
    measurement = to_measurement(reading(offset=-30))
    assert measurement is not None
    assert measurement.device_time == T0 - timedelta(minutes=30)
    assert measurement.clock_set
    assert measurement.sequence_number == 7


def test_an_unset_clock_is_untrusted() -> None:
    measurement = to_measurement(reading(base_time=None))
    assert measurement is not None
    assert measurement.device_time is None
    assert not measurement.clock_set
    received = datetime(2026, 1, 3, 9, 0, tzinfo=UTC)
    (reading_,) = to_readings(
        measurement,
        device=DeviceRef(kind=DeviceKind.GLUCOSE_METER, model="m", serial="s1"),
        received_at=received,
        source=Source.HOME,
        device_timezone=UTC,
    )
    assert StatusFlag.CLOCK_UNSET in reading_.flags
    assert reading_.measured_at == received


def test_a_time_fault_makes_the_clock_untrusted_but_keeps_the_time_for_audit() -> None:
    measurement = to_measurement(reading(status=SensorStatus(time_fault=True)))
    assert measurement is not None
    assert measurement.device_time == T0
    assert not measurement.clock_set
    assert measurement.details["time_fault"] is True
    assert measurement.flags == frozenset()


@pytest.mark.parametrize(
    ("bit", "flag"),
    [
        ("device_battery_low", StatusFlag.LOW_BATTERY),
        ("sensor_malfunction", StatusFlag.SENSOR_FAULT),
        ("sample_size_insufficient", StatusFlag.SAMPLE_INSUFFICIENT),
        ("strip_insertion_error", StatusFlag.STRIP_ERROR),
        ("strip_type_incorrect", StatusFlag.STRIP_ERROR),
        ("sensor_temperature_too_high", StatusFlag.TEMPERATURE_OUT_OF_RANGE),
        ("sensor_temperature_too_low", StatusFlag.TEMPERATURE_OUT_OF_RANGE),
        ("read_interrupted_strip_pulled_too_soon", StatusFlag.STRIP_ERROR),
        ("general_device_fault", StatusFlag.DEVICE_ERROR),
    ],
)
def test_sensor_status_bits_become_flags(bit: str, flag: StatusFlag) -> None:
    status = SensorStatus(**{bit: True})
    measurement = to_measurement(reading(status=status))
    assert measurement is not None
    assert measurement.flags == {flag}
    assert measurement.details["sensor_status"] == status.raw


@pytest.mark.parametrize(
    ("meal", "expected"),
    [
        (1, MealContext.BEFORE_MEAL),
        (2, MealContext.AFTER_MEAL),
        (3, MealContext.FASTING),
        (4, MealContext.RANDOM),
        (5, MealContext.BEDTIME),
        (0, None),
        (6, None),
    ],
)
def test_meal_context(meal: int, expected: MealContext | None) -> None:
    measurement = to_measurement(reading(), GlucoseContext(7, meal=meal))
    assert measurement is not None
    assert measurement.context.meal == expected
    if expected is None:
        assert measurement.details["meal_code"] == meal


@pytest.mark.parametrize(
    ("sample_type", "location", "site"),
    [
        (1, 1, MeasurementSite.FINGER),
        (2, 3, MeasurementSite.EARLOBE),
        (1, 2, MeasurementSite.CAPILLARY_WHOLE_BLOOD),
        (3, 15, MeasurementSite.VENOUS_WHOLE_BLOOD),
        (4, 15, None),
    ],
)
def test_sample_location_then_type_give_the_site(
    sample_type: int, location: int, site: MeasurementSite | None
) -> None:
    measurement = to_measurement(reading(sample_type=sample_type, sample_location=location))
    assert measurement is not None
    assert measurement.context.site == site
    assert measurement.context.meal is None


def test_the_rest_of_the_context_goes_in_details() -> None:
    context = decode_glucose_context(bytes.fromhex("ff0c0000034bd001235802280501c048f0"))
    measurement = to_measurement(reading(sequence=12), context)
    assert measurement is not None
    assert measurement.context.meal is MealContext.BEFORE_MEAL
    details = measurement.details
    assert details["carbohydrate"] == {"code": 3, "name": "dinner", "grams": 75.0}
    assert details["tester"] == "lab_test"
    assert details["health"] == "major_health_issues"
    assert details["exercise"] == {
        "duration_s": 600,
        "duration_overrun": False,
        "intensity_pct": 40,
    }
    assert details["medication"]["name"] == "pre_mixed_insulin"
    assert details["medication"]["value_mL"] == 0.1
    assert details["hba1c_pct"] == 7.2
    overrun = to_measurement(reading(), GlucoseContext(7, exercise=Exercise(0xFFFF, 50)))
    assert overrun is not None
    assert overrun.details["exercise"]["duration_s"] is None


def test_a_context_of_another_record_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="does not belong"):
        to_measurement(reading(sequence=7), GlucoseContext(8, meal=1))
