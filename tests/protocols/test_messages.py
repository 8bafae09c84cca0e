import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from protocols import topics
from protocols.errors import (
    MalformedMessageError,
    OversizedMessageError,
    SchemaViolationError,
    UnsupportedVersionError,
)
from protocols.messages import (
    MAX_EDGE_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    Ack,
    EdgeState,
    EdgeStatus,
    ReadingsBatch,
    decode,
    encode,
    refuse_oversized,
    split_readings_batch,
)
from protocols.metrics import Metric, canonical_unit
from protocols.reading import (
    BodyPosition,
    DeviceKind,
    DeviceRef,
    MealContext,
    MeasurementContext,
    MeasurementSite,
    Reading,
    Source,
    StatusFlag,
)
from protocols.schema_export import MODELS, SCHEMA_DIR, render

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _reading(seq: int) -> Reading:
    device = DeviceRef(kind=DeviceKind.GLUCOSE_METER, model="G", serial="GM1")
    return Reading.create(
        device=device,
        record_key=f"seq:{seq}",
        metric=Metric.GLUCOSE,
        value=5.5,
        unit="mmol/L",
        measured_at=NOW,
        received_at=NOW,
        source=Source.HOME,
        patient_id="P1",
    )


def _batch(n=3) -> ReadingsBatch:
    return ReadingsBatch(
        edge_id="edge-1",
        batch_id=uuid.uuid4(),
        sent_at=NOW,
        readings=[_reading(i) for i in range(n)],
    )


def test_batch_round_trips_through_bytes():
    batch = _batch()
    assert decode(encode(batch), ReadingsBatch) == batch


def test_split_keeps_good_readings_and_names_the_bad_one():
    data = json.loads(encode(_batch(3)))
    data["readings"][1]["unit"] = "mg/dL"
    split = split_readings_batch(json.dumps(data).encode())
    assert split.header.edge_id == "edge-1"
    assert [r.record_key for r in split.readings] == ["seq:0", "seq:2"]
    assert split.positions == [0, 2]
    (bad,) = split.rejected
    assert bad.index == 1
    assert str(bad.reading_id) == data["readings"][1]["reading_id"]
    assert "must be sent in 'mmol/L'" in bad.reason
    assert json.loads(split.item_bytes(1))["unit"] == "mg/dL"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\xff\xfe not json", MalformedMessageError),
        (b"[1, 2]", MalformedMessageError),
        (b'{"version": 99, "type": "readings"}', UnsupportedVersionError),
        (b'{"type": "readings"}', UnsupportedVersionError),
        (b'{"version": 1, "type": "readings", "edge_id": "e"}', SchemaViolationError),
    ],
)
def test_unusable_envelopes_raise_one_typed_error(payload, error):
    with pytest.raises(error):
        split_readings_batch(payload)


def test_empty_batch_is_a_schema_violation():
    data = json.loads(encode(_batch(1)))
    data["readings"] = []
    with pytest.raises(SchemaViolationError, match="non-empty"):
        split_readings_batch(json.dumps(data).encode())


def test_every_message_has_a_version():
    ack = Ack(batch_id=uuid.uuid4(), stored=[], acked_at=NOW)
    will = EdgeStatus(edge_id="e1", state=EdgeState.OFFLINE)
    for message in (ack, will, _batch(1)):
        assert json.loads(encode(message))["version"] == 1


def test_topics_carry_the_edge_and_reject_wildcards():
    assert topics.readings("edge-1") == "carebridge/v1/edges/edge-1/readings"
    assert topics.edge_id_of("carebridge/v1/edges/edge-1/readings") == "edge-1"
    assert topics.edge_id_of("other/v1/edges/edge-1/readings") is None
    assert topics.shared(topics.ALL_READINGS) == "$share/ingest/carebridge/v1/edges/+/readings"
    with pytest.raises(ValueError, match="invalid edge id"):
        topics.readings("a/#")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checked_in_json_schemas_match_the_models(name):
    path = SCHEMA_DIR / f"{name}.schema.json"
    assert path.read_text(encoding="utf-8") == render(name), (
        f"{path} is stale: run `python -m protocols.schema_export`"
    )


def test_a_third_party_gateway_can_validate_against_the_published_schema():
    import jsonschema

    schema = json.loads((SCHEMA_DIR / "readings_batch.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(encode(_batch(2))), schema)
    broken = json.loads(encode(_batch(1)))
    broken["readings"][0]["metric"] = "cholesterol"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _longest(values):
    return max(values, key=lambda v: len(v.value))


def test_the_largest_valid_readings_batch_fits_the_edge_payload_limit():
    # Every field at its longest; texts of four-byte characters, the most bytes a
    # character takes. Raising a field's limit without the payload limit fails here.
    wide = "😀" * 128
    ident = "x" * 64
    far = timezone(timedelta(hours=-9, minutes=-30))
    at = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=far)
    metric = max(Metric, key=lambda m: len(m.value) + len(canonical_unit(m)))
    reading = Reading.create(
        device=DeviceRef(kind=_longest(DeviceKind), model=wide, serial=ident, manufacturer=wide),
        record_key=wide,
        metric=metric,
        value=-1.2345678901234567e-300,
        unit=canonical_unit(metric),
        measured_at=at,
        received_at=at,
        device_time=at,
        source=_longest(Source),
        patient_id=ident,
        staff_id=ident,
        context=MeasurementContext(
            meal=_longest(MealContext),
            body_position=_longest(BodyPosition),
            site=_longest(MeasurementSite),
            device_user_index=255,
        ),
        flags=frozenset(StatusFlag),
    )
    batch = ReadingsBatch(
        edge_id=ident,
        batch_id=uuid.uuid4(),
        sent_at=at,
        readings=[reading] * MAX_READINGS_PER_BATCH,
    )
    payload = encode(batch)
    assert len(payload) > MAX_EDGE_PAYLOAD_BYTES / 2  # the limit is not far above it
    refuse_oversized(payload)  # does not raise


def test_a_payload_over_the_limit_is_refused_with_its_size():
    refuse_oversized(b"x" * MAX_EDGE_PAYLOAD_BYTES)
    with pytest.raises(OversizedMessageError, match=r"payload of 4,194,305 bytes") as caught:
        refuse_oversized(b"x" * (MAX_EDGE_PAYLOAD_BYTES + 1))
    assert caught.value.code == "message_too_large"
