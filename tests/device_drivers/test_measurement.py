"""From a decoded device record to `Reading`s: record keys, clocks, units, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from device_drivers.measurement import Measurement, Observation, to_readings
from protocols.metrics import Metric
from protocols.reading import (
    DeviceKind,
    DeviceRef,
    MealContext,
    MeasurementContext,
    Source,
    StatusFlag,
)

CHINA = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
METER = DeviceRef(kind=DeviceKind.GLUCOSE_METER, model="GM-1", serial="SN1")


def _glucose(**kwargs: object) -> Measurement:
    defaults: dict[str, object] = {
        "kind": DeviceKind.GLUCOSE_METER,
        "observations": (Observation.of(Metric.GLUCOSE, 0.0005, "mol/L"),),
        "device_time": datetime(2026, 12, 1, 17, 30),
        "sequence_number": 7,
    }
    defaults.update(kwargs)
    return Measurement(**defaults)  # type: ignore[arg-type]


def test_observation_converts_to_the_canonical_unit_and_keeps_the_original() -> None:
    obs = Observation.of(Metric.SYSTOLIC, 16.0, "kPa")
    assert obs.unit == "mm[Hg]"
    assert obs.value == pytest.approx(120.01, abs=0.01)
    assert (obs.device_value, obs.device_unit) == (16.0, "kPa")


def test_readings_share_a_measurement_id_and_read_device_time_in_its_zone() -> None:
    measurement = Measurement(
        kind=DeviceKind.BLOOD_PRESSURE_MONITOR,
        observations=(
            Observation.of(Metric.SYSTOLIC, 120, "mm[Hg]"),
            Observation.of(Metric.DIASTOLIC, 80, "mm[Hg]"),
        ),
        device_time=datetime(2026, 12, 1, 8, 0),
        flags=frozenset({StatusFlag.IRREGULAR_PULSE}),
        context=MeasurementContext(device_user_index=2),
    )
    cuff = DeviceRef(kind=DeviceKind.BLOOD_PRESSURE_MONITOR, model="BP", serial="C1")
    readings = to_readings(
        measurement,
        device=cuff,
        received_at=RECEIVED,
        source=Source.HOME,
        device_timezone=CHINA,
        patient_id="P1",
    )
    assert [r.metric for r in readings] == [Metric.SYSTOLIC, Metric.DIASTOLIC]
    assert len({r.measurement_id for r in readings}) == 1
    assert readings[0].measured_at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert readings[0].record_key == "t:2026-12-01T08:00:00"
    assert readings[0].flags == {StatusFlag.IRREGULAR_PULSE}
    assert readings[0].context.device_user_index == 2


def test_the_same_record_downloaded_twice_has_the_same_ids() -> None:
    first = to_readings(
        _glucose(), device=METER, received_at=RECEIVED, source=Source.HOME, device_timezone=CHINA
    )
    again = to_readings(
        _glucose(),
        device=METER,
        received_at=RECEIVED + timedelta(days=1),
        source=Source.HOME,
        device_timezone=CHINA,
    )
    assert first[0].reading_id == again[0].reading_id
    assert first[0].record_key == "seq:7@2026-12-01T17:30:00"
    assert first[0].value == pytest.approx(0.5)


def test_a_clock_never_set_falls_back_to_receive_time_and_is_flagged() -> None:
    unset = _glucose(
        device_time=None, clock_set=False, context=MeasurementContext(meal=MealContext.FASTING)
    )
    (reading,) = to_readings(
        unset, device=METER, received_at=RECEIVED, source=Source.HOME, device_timezone=CHINA
    )
    assert reading.measured_at == RECEIVED
    assert StatusFlag.CLOCK_UNSET in reading.flags
    assert reading.record_key == "seq:7"
    assert reading.context.meal is MealContext.FASTING


def test_the_edge_can_pass_a_corrected_time_and_extra_flags() -> None:
    corrected = RECEIVED - timedelta(minutes=5)
    (reading,) = to_readings(
        _glucose(),
        device=METER,
        received_at=RECEIVED,
        source=Source.CENTRE,
        device_timezone=CHINA,
        measured_at=corrected,
        extra_flags=frozenset({StatusFlag.CLOCK_CORRECTED}),
        staff_id="hm01",
    )
    assert reading.measured_at == corrected
    assert reading.device_time == datetime(2026, 12, 1, 17, 30)
    assert StatusFlag.CLOCK_CORRECTED in reading.flags
    assert reading.staff_id == "hm01"


def test_a_record_with_neither_sequence_nor_time_is_keyed_by_receive_time() -> None:
    bare = _glucose(device_time=None, sequence_number=None)
    assert bare.record_key(RECEIVED) == f"rx:{RECEIVED.isoformat()}"


def test_receive_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="time zone"):
        to_readings(
            _glucose(),
            device=METER,
            received_at=datetime(2026, 12, 1),
            source=Source.HOME,
            device_timezone=CHINA,
        )


def test_json_form_for_support_tools() -> None:
    shown = _glucose(flags=frozenset({StatusFlag.VALUE_LO}), details={"hba1c_pct": 7.1}).to_json()
    assert shown["readings"] == [
        {
            "metric": "glucose",
            "value": pytest.approx(0.5),
            "unit": "mmol/L",
            "device_value": 0.0005,
            "device_unit": "mol/L",
        }
    ]
    assert shown["flags"] == ["value_lo"]
    assert shown["sequence_number"] == 7
    assert shown["details"] == {"hba1c_pct": 7.1}
    assert shown["device_time"] == "2026-12-01T17:30:00"
