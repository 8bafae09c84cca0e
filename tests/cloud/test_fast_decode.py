"""The msgspec fast path accepts only what pydantic accepts, and builds the same readings."""

import json
import re
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from benchmarks.ingest import make_batches, make_readings
from cloud.ingest import fast_decode, intake
from cloud.ingest.fast_decode import decode_readings_batch
from cloud.ingest.intake import InboundMessage, take_in
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import (
    MAX_READINGS_PER_BATCH,
    BatchHeader,
    ReadingsBatch,
    SplitBatch,
    encode,
    split_readings_batch,
)
from protocols.metrics import Metric, canonical_unit
from protocols.reading import (
    READING_NAMESPACE,
    BodyPosition,
    DeviceKind,
    DeviceRef,
    Identifier,
    MealContext,
    MeasurementContext,
    MeasurementSite,
    Reading,
    Source,
    StatusFlag,
    _uuid5_bytes,
)
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
IDENTIFIER_ALPHABET = string.ascii_letters + string.digits + "_.:-"


def pydantic_path(payload: bytes) -> SplitBatch | None:
    try:
        return split_readings_batch(payload)
    except CareBridgeError:
        return None
    except TypeError:
        # `_load_object` tests `version in SUPPORTED_VERSIONS`, which raises for an
        # unhashable version (`[]`); take_in dead-letters it as an internal error.
        return None


def assert_same_datetime(fast: datetime | None, slow: datetime | None) -> None:
    assert fast == slow
    if fast is None or slow is None:
        assert fast is slow
        return
    assert (fast.tzinfo is None) == (slow.tzinfo is None)
    assert fast.utcoffset() == slow.utcoffset()
    assert fast.tzname() == slow.tzname()
    assert fast.isoformat() == slow.isoformat()
    assert str(fast) == str(slow)


def assert_same_batch(fast: SplitBatch, slow: SplitBatch) -> None:
    assert fast.header == slow.header
    assert fast.header.model_fields_set == slow.header.model_fields_set
    assert_same_datetime(fast.header.sent_at, slow.header.sent_at)
    assert fast.readings == slow.readings
    assert fast.positions == slow.positions == list(range(len(slow.readings)))
    assert fast.rejected == slow.rejected == []
    assert fast.payload is slow.payload
    for mine, theirs in zip(fast.readings, slow.readings, strict=True):
        assert type(mine) is Reading
        assert mine.model_fields_set == theirs.model_fields_set
        assert mine.device.model_fields_set == theirs.device.model_fields_set
        assert mine.context.model_fields_set == theirs.context.model_fields_set
        assert type(mine.flags) is frozenset
        for name in ("measured_at", "received_at", "device_time"):
            assert_same_datetime(getattr(mine, name), getattr(theirs, name))
        assert mine.model_dump_json() == theirs.model_dump_json()
        assert mine.model_dump() == theirs.model_dump()
        assert hash(mine.device) == hash(theirs.device)
        assert hash(mine.context) == hash(theirs.context)


def check_equivalence(payload: bytes) -> SplitBatch | None:
    """The contract: fast is None or equal to pydantic's, and None whenever pydantic
    refuses the batch or any of its readings."""
    fast = decode_readings_batch(payload)
    slow = pydantic_path(payload)
    if slow is None or slow.rejected:
        assert fast is None, f"fast path accepted what pydantic refused: {payload[:300]!r}"
    elif fast is not None:
        assert_same_batch(fast, slow)
    return fast


def batch_payload(readings: list[Reading], **header: object) -> bytes:
    fields: dict[str, object] = {"edge_id": "edge-1", "batch_id": uuid.uuid4(), "sent_at": NOW}
    fields.update(header)
    return encode(ReadingsBatch(readings=readings, **fields))


def cuff_readings(count: int = 1, **kw: object) -> list[Reading]:
    cuff = SimulatedCuff("C1")
    readings: list[Reading] = []
    for n in range(count):
        readings += cuff.measure(128, 82, 70 + n, patient_id="P1", at=NOW, **kw)
    return readings


# --- valid batches: the fast path takes them, and gives what pydantic gives ----------


def test_benchmark_batches_take_the_fast_path_and_equal_pydantic():
    batches = make_batches(make_readings(300, seed=11))
    for batch in batches:
        fast = check_equivalence(batch.payload)
        assert fast is not None
        assert [r.reading_id for r in fast.readings] == batch.reading_ids


def test_cuff_and_glucose_batches_take_the_fast_path():
    meter = SimulatedGlucoseMeter("G1")
    readings = cuff_readings(3, staff_id="S-1") + meter.measure(
        6.1, patient_id=None, meal=MealContext.AFTER_MEAL, at=NOW
    )
    assert check_equivalence(batch_payload(readings)) is not None


def test_a_batch_with_every_optional_field_left_out_records_what_was_given():
    data = json.loads(batch_payload(cuff_readings()))
    del data["version"], data["type"]
    for item in data["readings"]:
        for name in ("device_time", "context", "flags", "staff_id"):
            del item[name]
        del item["device"]["manufacturer"]
    fast = check_equivalence(json.dumps(data).encode())
    assert fast is not None
    (first, *_) = fast.readings
    assert "context" not in first.model_fields_set
    assert "manufacturer" not in first.device.model_fields_set
    assert first.context == MeasurementContext()


def test_non_utc_offsets_keep_pydantic_s_tzinfo_behaviour():
    east = timezone(timedelta(hours=8))
    readings = [
        Reading.create(
            device=DeviceRef(kind=DeviceKind.WEIGHT_SCALE, model="W", serial="WS1"),
            record_key="2026-11-24T16:00:00",
            metric=Metric.WEIGHT,
            value=71.25,
            unit="kg",
            measured_at=NOW.astimezone(east),
            received_at=NOW.astimezone(timezone(timedelta(hours=-3, minutes=-30))),
            device_time=datetime(2026, 11, 24, 16, 0),
            source=Source.CENTRE,
            patient_id=None,
            flags=frozenset({StatusFlag.CLOCK_CORRECTED, StatusFlag.LOW_BATTERY}),
        ),
    ]
    fast = check_equivalence(batch_payload(readings, sent_at=NOW.astimezone(east)))
    assert fast is not None
    assert fast.readings[0].measured_at.strftime("%Z") == "+08:00"
    assert fast.readings[0].device_time.tzinfo is None


def test_shared_devices_contexts_and_flags_are_one_object_each():
    readings = cuff_readings(3)
    readings = [
        r.model_copy(update={"flags": frozenset({StatusFlag.BODY_MOVEMENT})}) for r in readings
    ]
    fast = decode_readings_batch(batch_payload(readings))
    assert fast is not None
    assert len({id(r.device) for r in fast.readings}) == 1
    assert len({id(r.context) for r in fast.readings}) == 1
    assert len({id(r.flags) for r in fast.readings}) == 1


def test_readings_stay_correct_when_the_caches_are_emptied(monkeypatch):
    monkeypatch.setattr(fast_decode, "_CACHE_LIMIT", 2)
    for batch in make_batches(make_readings(120, seed=5)):
        assert check_equivalence(batch.payload) is not None


def test_a_refused_device_is_not_remembered_as_good():
    # Ids derived from the bad serial, so the serial is the only thing wrong.
    device = DeviceRef.model_construct(
        kind=DeviceKind.BLOOD_PRESSURE_MONITOR, model="BP", serial="C 1", manufacturer=None
    )
    reading = Reading.create(
        device=device,
        record_key="seq:1",
        metric=Metric.SYSTOLIC,
        value=128,
        unit="mmHg",
        measured_at=NOW,
        received_at=NOW,
        source=Source.HOME,
    )
    payload = batch_payload([reading])
    for _ in range(2):  # the second time would find the device cached, had it been kept
        assert check_equivalence(payload) is None


# --- known differences between msgspec and pydantic: always left to pydantic ----------


@pytest.mark.parametrize(
    ("field", "spelling"),
    [
        ("measured_at", "2026-11-24T08:00:00.9999995Z"),  # msgspec rounds, pydantic truncates
        ("received_at", "2026-11-24T08:00:00.1234567+08:00"),
        ("device_time", "2026-11-24T08:00:00.12345678"),
    ],
)
def test_times_finer_than_a_microsecond_go_to_pydantic(field, spelling):
    data = json.loads(batch_payload(cuff_readings()))
    data["readings"][0][field] = spelling
    payload = json.dumps(data).encode()
    assert decode_readings_batch(payload) is None
    assert pydantic_path(payload) is not None


def test_long_float_values_do_not_look_like_times():
    readings = cuff_readings()
    data = json.loads(batch_payload(readings))
    data["readings"][0]["value"] = 12.123456789
    assert re.search(rb":\d\d\.\d{7}", json.dumps(data, separators=(",", ":")).encode())
    readings[0] = readings[0].model_copy(update={"value": 12.123456789})
    assert check_equivalence(batch_payload(readings)) is not None


def test_escaped_strings_go_to_pydantic():
    data = json.loads(batch_payload(cuff_readings()))
    data["readings"][0]["measured_at"] = "2026-11-24T08:00:00.1234567Z"
    payload = json.dumps(data).encode().replace(b"00.1234567Z", b"00\\u002e1234567Z")
    assert decode_readings_batch(payload) is None
    assert pydantic_path(payload) is not None
    plain = json.dumps(json.loads(batch_payload(cuff_readings())), ensure_ascii=True)
    assert decode_readings_batch(plain.replace('"P1"', '"\\u00501"').encode()) is None


def test_a_newline_in_an_identifier_never_reaches_msgspec():
    # pydantic's `$` is the end of the text; Python's would allow a final newline. In JSON
    # a newline is always escaped, and escapes go to pydantic.
    data = json.loads(batch_payload(cuff_readings()))
    data["readings"][0]["patient_id"] = "P1\n"
    payload = json.dumps(data, ensure_ascii=False).encode()
    assert b"\\n" in payload
    assert decode_readings_batch(payload) is None
    assert pydantic_path(payload).rejected


def re_derive_ids(data: dict) -> None:
    """Give each reading the ids its (possibly mutated) device, record key and metric
    derive, so that a mutation breaks only the rule it is aimed at."""
    readings = data.get("readings")
    if not isinstance(readings, list):  # a mutation replaced the list itself
        return
    for item in readings:
        try:
            device = item["device"]
            name = f"{device['kind']}|{device['serial']}|{item['record_key']}"
            measurement = _uuid5_bytes(READING_NAMESPACE.bytes, name)
            item["measurement_id"] = str(uuid.UUID(bytes=measurement))
            item["reading_id"] = str(uuid.UUID(bytes=_uuid5_bytes(measurement, item["metric"])))
        except (KeyError, TypeError, AttributeError):
            pass


def set_at(data: dict, path: tuple, value: object) -> None:
    target = data
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


DELETE = object()
FIRST = ("readings", 0)
OTHER_ID = "6f1c2a9e-3b7d-5e40-9a51-2c8d7e4b1f03"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("edge_id",), "edge 1"),
        (("edge_id",), "e" * 65),
        (("edge_id",), ""),
        ((*FIRST, "patient_id"), "P 1"),
        ((*FIRST, "patient_id"), "P1é"),
        ((*FIRST, "patient_id"), "P" * 65),
        ((*FIRST, "patient_id"), DELETE),
        ((*FIRST, "staff_id"), "S!"),
        ((*FIRST, "device", "serial"), "C 1"),
        ((*FIRST, "device", "serial"), "C" * 65),
        ((*FIRST, "device", "model"), "m" * 129),
        ((*FIRST, "device", "manufacturer"), "m" * 129),
        ((*FIRST, "device", "kind"), "cuff"),
        ((*FIRST, "record_key"), "k" * 129),
        ((*FIRST, "record_key"), ""),
        ((*FIRST, "metric"), "Systolic"),
        ((*FIRST, "unit"), "mmHg"),
        ((*FIRST, "source"), "clinic"),
        ((*FIRST, "source"), DELETE),
        ((*FIRST, "flags"), ["nonsense"]),
        ((*FIRST, "flags"), "body_movement"),
        ((*FIRST, "context", "meal"), "brunch"),
        ((*FIRST, "context", "device_user_index"), 256),
        ((*FIRST, "context", "device_user_index"), -1),
        ((*FIRST, "measured_at"), "2026-11-24T08:00:00"),
        ((*FIRST, "received_at"), "2026-11-24T08:00:00"),
        ((*FIRST, "device_time"), "yesterday"),
        (("sent_at",), "2026-11-24T08:00:00"),
        (("batch_id",), "not-a-uuid"),
        (("version",), 2),
        (("type",), "ack"),
        (("readings",), []),
        ((*FIRST, "extra"), 1),
        ((*FIRST, "device", "extra"), 1),
        ((*FIRST, "context", "extra"), 1),
    ],
)
def test_every_rule_of_the_schema_is_kept(path, value):
    data = json.loads(batch_payload(cuff_readings(2, staff_id="S1")))
    set_at(data, path, value)
    re_derive_ids(data)
    payload = json.dumps(data, ensure_ascii=False).encode()
    slow = pydantic_path(payload)
    assert slow is None or slow.rejected  # the mutation is one pydantic refuses
    assert decode_readings_batch(payload) is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((*FIRST, "value"), "128"),
        ((*FIRST, "value"), True),
        ((*FIRST, "context", "device_user_index"), 3.0),
        (("version",), 1.0),
        (("sent_at",), 1764576000),
        ((*FIRST, "measured_at"), "2026-11-24T08:00Z"),
        ((*FIRST, "measured_at"), "2026-11-24T08:00:00,5Z"),
        (("batch_id",), "urn:uuid:" + OTHER_ID),
        # `ReadingsBatch` forbids it, but the reading-by-reading split's `BatchHeader` not.
        (("extra",), 1),
    ],
)
def test_what_only_pydantic_s_lax_json_mode_accepts_goes_to_pydantic(path, value):
    data = json.loads(batch_payload(cuff_readings()))
    set_at(data, path, value)
    payload = json.dumps(data).encode()
    assert pydantic_path(payload).rejected == []
    assert decode_readings_batch(payload) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda item, _: item.update(measurement_id=OTHER_ID),
        lambda item, _: item.update(reading_id=OTHER_ID),
        lambda item, other: item.update(reading_id=other["reading_id"]),
        lambda item, other: item.update(measurement_id=other["measurement_id"]),
        lambda item, other: item.update(metric="diastolic", reading_id=other["reading_id"]),
        lambda item, _: item["device"].update(serial="C2"),
        lambda item, _: item["device"].update(kind="weight_scale"),
        lambda item, _: item.update(record_key="seq:99"),
    ],
)
def test_ids_must_derive_from_device_record_and_metric(change):
    data = json.loads(batch_payload(cuff_readings(2)))
    first, *_, last = data["readings"]
    change(first, last)
    payload = json.dumps(data).encode()
    assert [r.index for r in pydantic_path(payload).rejected] == [0]
    assert decode_readings_batch(payload) is None


def test_at_most_a_thousand_readings():
    data = json.loads(batch_payload(cuff_readings()))
    data["readings"] = data["readings"][:1] * MAX_READINGS_PER_BATCH
    assert check_equivalence(json.dumps(data).encode()) is not None
    data["readings"].append(data["readings"][0])
    payload = json.dumps(data).encode()
    assert pydantic_path(payload) is None
    assert decode_readings_batch(payload) is None


def test_the_wire_structs_mirror_the_pydantic_models():
    pairs = [
        (fast_decode._WireBatch, ReadingsBatch),
        (fast_decode._WireReading, Reading),
        (fast_decode._WireDevice, DeviceRef),
        (fast_decode._WireContext, MeasurementContext),
    ]
    for struct, model in pairs:
        mirrored = {field.name: field.required for field in msgspec.structs.fields(struct)}
        assert mirrored == {name: info.is_required() for name, info in model.model_fields.items()}
    # `Identifier`'s rules, restated as msgspec lengths and one `fullmatch` per batch.
    schema = TypeAdapter(Identifier).json_schema()
    assert schema == {
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": "^" + fast_decode._IDENTIFIER_CHARS.pattern.removesuffix("*") + "+$",
    }
    assert BatchHeader.model_fields.keys() <= ReadingsBatch.model_fields.keys()


# --- take_in: the same intake either way -----------------------------------------------


def take_in_both_ways(payload: bytes, monkeypatch) -> tuple[intake.Intake, intake.Intake]:
    message = InboundMessage(topics.readings("edge-1"), payload)
    fast = take_in(message, lambda edge: edge == "edge-1")
    with monkeypatch.context() as patch:
        patch.setattr(intake, "decode_readings_batch", lambda _payload: None)
        slow = take_in(message, lambda edge: edge == "edge-1")
    return fast, slow


def test_take_in_gives_the_same_intake_on_the_fast_path(monkeypatch):
    # 900 mmHg is refused by plausibility and 250 flagged, after decoding, on both paths.
    readings = cuff_readings(2) + SimulatedCuff("C2").measure(900, 85, 70, patient_id="P2", at=NOW)
    readings += SimulatedCuff("C3").measure(250, 120, 70, patient_id="P3", at=NOW)
    payload = batch_payload(readings)
    assert decode_readings_batch(payload) is not None
    fast, slow = take_in_both_ways(payload, monkeypatch)
    assert fast == slow
    assert fast.dead_letters and fast.accepted
    assert any(StatusFlag.UNUSUAL_VALUE in a.reading.flags for a in fast.accepted)


def test_take_in_dead_letters_a_bad_reading_exactly_as_before(monkeypatch):
    data = json.loads(batch_payload(cuff_readings(2)))
    data["readings"][1]["unit"] = "kPa"
    payload = json.dumps(data).encode()
    assert decode_readings_batch(payload) is None
    fast, slow = take_in_both_ways(payload, monkeypatch)
    assert fast == slow
    (letter,) = fast.dead_letters
    assert letter.item_index == 1
    assert len(fast.accepted) == 7


# --- property: any mutation of a valid batch --------------------------------------------

identifiers = st.text(IDENTIFIER_ALPHABET, min_size=1, max_size=12)
free_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["BP-1", "Omron HEM-7156", "鱼跃 YE660", "x" * 128])
aware_times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
    ),
)
device_times = (
    st.none()
    | aware_times
    | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
)
devices = st.builds(
    DeviceRef,
    kind=st.sampled_from(DeviceKind),
    model=free_text,
    serial=identifiers,
    manufacturer=st.none() | free_text,
)
contexts = st.builds(
    MeasurementContext,
    meal=st.none() | st.sampled_from(MealContext),
    body_position=st.none() | st.sampled_from(BodyPosition),
    site=st.none() | st.sampled_from(MeasurementSite),
    device_user_index=st.none() | st.integers(0, 255),
)
finite_values = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-500, 500).map(float)


@st.composite
def records(draw: st.DrawFn) -> list[Reading]:
    """One device record: one to four readings sharing a measurement."""
    device = draw(devices)
    record_key = draw(st.text(IDENTIFIER_ALPHABET + " |/", min_size=1, max_size=20))
    shared = dict(
        device=device,
        record_key=record_key,
        measured_at=draw(aware_times),
        received_at=draw(aware_times),
        device_time=draw(device_times),
        source=draw(st.sampled_from(Source)),
        patient_id=draw(st.none() | identifiers),
        staff_id=draw(st.none() | identifiers),
        context=draw(contexts),
        flags=draw(st.frozensets(st.sampled_from(StatusFlag), max_size=3)),
    )
    metrics = draw(st.lists(st.sampled_from(Metric), min_size=1, max_size=4, unique=True))
    return [
        Reading.create(metric=m, value=draw(finite_values), unit=canonical_unit(m), **shared)
        for m in metrics
    ]


@st.composite
def valid_batches(draw: st.DrawFn) -> dict:
    readings = [r for record in draw(st.lists(records(), min_size=1, max_size=3)) for r in record]
    batch = ReadingsBatch(
        edge_id=draw(identifiers),
        batch_id=draw(st.uuids()),
        sent_at=draw(aware_times),
        readings=readings,
    )
    return json.loads(encode(batch))


WRONG_TYPES = [None, 0, 1, -1, 256, 1.5, 3.0, True, "", "x", "5.5", [], {}, ["home"]]
ODD_STRINGS = [
    "",
    " ",
    "a b",
    "P1\n",
    "\nP1",
    "é",
    "x" * 64,
    "x" * 65,
    "x" * 128,
    "x" * 129,
    "glucose",
    "GLUCOSE",
    "home ",
    "unusual_value",
]


def time_spellings(text: str) -> list[str]:
    """Other ways to write (or nearly write) a time, some accepted only by pydantic."""
    base, _, _ = text.partition(".")
    base = base.removesuffix("Z")[:19]
    return [
        text.lower(),
        text.replace("T", " "),
        text.replace("T", "_"),
        base,
        base + "Z",
        base + "+00:00",
        base + "-00:00",
        base + "+0800",
        base + "+08",
        base + "+24:00",
        base[:16] + "Z",
        base + ".1Z",
        base + ".123456Z",
        base + ".1234564Z",
        base + ".9999995Z",
        base + ",5Z",
        base + ".Z",
        base[:10],
        "1700000000",
        base.replace("-", "/") + "Z",
    ]


def uuid_spellings(text: str) -> list[str]:
    return [
        text.upper(),
        text.replace("-", ""),
        "{" + text + "}",
        "urn:uuid:" + text,
        text[:-1],
        text + "0",
        text[:-1] + "g",
        str(uuid.uuid4()),
        str(uuid.UUID(int=uuid.UUID(text).int ^ 1)),
    ]


def paths_in(value: object, path: tuple = ()) -> list[tuple[tuple, object]]:
    found: list[tuple[tuple, object]] = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_in(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_in(item, (*path, index))
    return found


def container_of(data: dict, path: tuple) -> object:
    for step in path[:-1]:
        data = data[step]
    return data


def mutate_once(draw: st.DrawFn, data: dict) -> None:
    everything = paths_in(data)
    kind = draw(
        st.sampled_from(
            ["drop", "wrong_type", "odd_string", "spelling", "number", "extra", "id", "structure"]
        )
    )
    if kind == "extra":
        path, target = draw(st.sampled_from([(p, v) for p, v in everything if isinstance(v, dict)]))
        target[draw(st.sampled_from(["extra", "Version", "reading_id ", "notes"]))] = 1
        return
    if kind == "id":
        readings = data.get("readings")
        if isinstance(readings, list) and readings and isinstance(readings[0], dict):
            item = readings[draw(st.integers(0, len(readings) - 1))]
            other = readings[draw(st.integers(0, len(readings) - 1))]
            field = draw(st.sampled_from(["reading_id", "measurement_id"]))
            item[field] = draw(
                st.sampled_from([OTHER_ID, str(uuid.uuid4()), other.get(field), other.get("x")])
            )
        return
    if kind == "structure":
        readings = data.get("readings")
        if isinstance(readings, list):
            change = draw(st.sampled_from(["empty", "too_many", "duplicate", "not_a_list"]))
            if change == "empty":
                data["readings"] = []
            elif change == "too_many":
                data["readings"] = readings[:1] * (MAX_READINGS_PER_BATCH + 1)
            elif change == "not_a_list":
                data["readings"] = readings[0] if readings else {}
            elif readings:
                readings.append(readings[0])
        return
    leaves = [(p, v) for p, v in everything[1:] if not isinstance(v, dict | list) or not v]
    path, current = draw(st.sampled_from(leaves or everything[1:]))
    parent = container_of(data, path)
    key = path[-1]
    if kind == "drop":
        if isinstance(parent, dict):
            del parent[key]
    elif kind == "wrong_type":
        parent[key] = draw(st.sampled_from(WRONG_TYPES))
    elif kind == "odd_string":
        parent[key] = draw(st.sampled_from(ODD_STRINGS))
    elif kind == "number":
        parent[key] = draw(st.sampled_from([0, -0.0, 1e308, 2**64, 10**400, 255, 256, -1, 1.0]))
    elif kind == "spelling" and isinstance(current, str):
        options = [current + "x", current.upper(), current[:-1], current + " "]
        if re.fullmatch(r"\d{4}-\d\d-\d\d.*", current):
            options += time_spellings(current)
        if re.fullmatch(r"[0-9a-f-]{36}", current):
            options += uuid_spellings(current)
        parent[key] = draw(st.sampled_from(options))


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    data = draw(valid_batches())
    for _ in range(draw(st.integers(1, 3))):
        mutate_once(draw, data)
        if draw(st.booleans()):
            re_derive_ids(data)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    raw = draw(st.sampled_from(["none", "none", "none", "float", "duplicate_key", "text"]))
    if raw == "float":
        payload = re.sub(rb'"value":[^,}]+', b'"value":1e999', payload, count=1)
    elif raw == "duplicate_key":
        payload = payload.replace(b'"source":', b'"source":"elsewhere","source":', 1)
    elif raw == "text":
        payload = draw(
            st.sampled_from(
                [payload + b"x", b"\xef\xbb\xbf" + payload, payload[:-1], b"[" + payload + b"]"]
            )
        )
    return payload


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_batches())
def test_any_valid_batch_decodes_equal_to_pydantic(data):
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    fast = check_equivalence(payload)
    if b"\\" not in payload:
        assert fast is not None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_payloads())
def test_a_mutated_batch_is_refused_or_decoded_equal_to_pydantic(payload):
    check_equivalence(payload)
