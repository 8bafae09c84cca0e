import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from protocols.metrics import Metric
from protocols.reading import DeviceKind, DeviceRef, Reading, Source, StatusFlag

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
CUFF = DeviceRef(kind=DeviceKind.BLOOD_PRESSURE_MONITOR, model="BP-1", serial="SN001")


def make(record_key="seq:7", metric=Metric.SYSTOLIC, value=128.0, **kw):
    defaults = dict(
        device=CUFF,
        record_key=record_key,
        metric=metric,
        value=value,
        unit="mmHg",
        measured_at=NOW,
        received_at=NOW + timedelta(minutes=1),
        source=Source.HOME,
    )
    defaults.update(kw)
    return Reading.create(**defaults)


def test_same_device_record_read_twice_gets_the_same_ids():
    first = make(received_at=NOW + timedelta(minutes=1))
    again = make(received_at=NOW + timedelta(hours=5), patient_id="P1")
    assert first.reading_id == again.reading_id
    assert first.measurement_id == again.measurement_id


def test_metrics_of_one_record_share_a_measurement_but_not_a_reading_id():
    sys_ = make(metric=Metric.SYSTOLIC)
    dia = make(metric=Metric.DIASTOLIC, value=80)
    assert sys_.measurement_id == dia.measurement_id
    assert sys_.reading_id != dia.reading_id


def test_other_record_or_other_device_gets_other_ids():
    other_serial = DeviceRef(kind=DeviceKind.BLOOD_PRESSURE_MONITOR, model="BP-1", serial="SN002")
    ids = {
        make().reading_id,
        make(record_key="seq:8").reading_id,
        make(device=other_serial).reading_id,
    }
    assert len(ids) == 3


def test_value_is_stored_in_the_canonical_unit():
    reading = make(value=16.0, unit="kPa")
    assert reading.unit == "mm[Hg]"
    assert reading.value == pytest.approx(120.0, abs=0.01)


def test_json_round_trip_is_lossless_and_flags_are_ordered():
    reading = make(flags=frozenset({StatusFlag.IRREGULAR_PULSE, StatusFlag.BODY_MOVEMENT}))
    data = reading.model_dump(mode="json")
    assert data["flags"] == ["body_movement", "irregular_pulse"]
    assert Reading.model_validate_json(reading.model_dump_json()) == reading


def test_forged_reading_id_is_refused():
    data = make().model_dump(mode="json")
    data["reading_id"] = str(uuid.uuid4())
    with pytest.raises(ValidationError, match="reading_id does not derive"):
        Reading.model_validate(data)


def test_non_canonical_unit_on_the_wire_is_refused():
    data = make().model_dump(mode="json")
    data["unit"] = "kPa"
    with pytest.raises(ValidationError, match="must be sent in 'mm\\[Hg\\]'"):
        Reading.model_validate(data)


def test_naive_timestamps_are_refused():
    data = make().model_dump(mode="json")
    data["measured_at"] = "2026-11-24T08:00:00"
    with pytest.raises(ValidationError, match="timezone"):
        Reading.model_validate(data)


def test_nan_is_never_a_value():
    data = make().model_dump(mode="json")
    data["value"] = float("nan")
    with pytest.raises(ValidationError, match="finite"):
        Reading.model_validate(data)


def test_ids_are_standard_version_5_uuids():
    from protocols.reading import READING_NAMESPACE, derive_measurement_id, derive_reading_id

    measurement = derive_measurement_id(CUFF, "seq:7")
    assert measurement == uuid.uuid5(READING_NAMESPACE, "blood_pressure_monitor|SN001|seq:7")
    assert derive_reading_id(measurement, Metric.SYSTOLIC) == uuid.uuid5(measurement, "systolic")
    assert measurement.version == 5
