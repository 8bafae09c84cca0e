"""The agent's local state (real SQLite files), the station commands that write it, the
assignment sync's rules and the health endpoint."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent import __main__ as cli
from edge_agent.assignment_sync import AssignmentSync
from edge_agent.health import HealthServer
from edge_agent.local_state import LocalState, sequence_is_newer
from edge_agent.outbox import Outbox
from protocols import topics
from protocols.messages import AssignmentResult, AssignmentStatus, MeasurementAssignment, decode
from protocols.reading import Source
from simulators.readings import SimulatedCuff

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CUFF = "C0:DE:00:00:10:01"


@pytest.fixture
async def state(tmp_path: Path):
    async with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        yield await LocalState.attach(outbox.db)


def test_sequence_numbers_wrap_at_65535() -> None:
    assert sequence_is_newer(6, None)
    assert sequence_is_newer(6, 5)
    assert not sequence_is_newer(5, 5)
    assert not sequence_is_newer(4, 5)
    assert sequence_is_newer(2, 65534)  # wrapped
    assert not sequence_is_newer(65534, 2)


async def test_the_stored_sequence_only_moves_forwards(state: LocalState) -> None:
    await state.pair(CUFF, catalogue_id="sig-glucose", kind="glucose_meter", now=T0)
    for sequence in (5, 3, 9, 7):
        await state.store_sequence(CUFF, sequence)
    device = await state.device(CUFF.lower())
    assert device is not None and device.last_sequence == 9 and device.paired
    assert await state.unpair(CUFF)
    assert not await state.unpair(CUFF)
    again = await state.device(CUFF)
    assert again is not None and not again.paired and again.last_sequence == 9


async def test_a_new_session_on_a_device_ends_the_open_one(state: LocalState) -> None:
    lasts = timedelta(minutes=10)
    first = await state.open_session(CUFF, "P1", staff_id="hm", now=T0, lasts=lasts)
    await state.open_session("OTHER", "P9", staff_id=None, now=T0, lasts=lasts)
    await state.open_session(CUFF, "P2", staff_id="hm", now=T0 + timedelta(minutes=3), lasts=lasts)
    sessions = await state.sessions(device_key=CUFF)
    assert [(s.patient_id, s.closed_at) for s in sessions] == [
        ("P1", T0 + timedelta(minutes=3)),
        ("P2", None),
    ]
    await state.touch_session(sessions[1], T0 + timedelta(minutes=8))
    (touched,) = [s for s in await state.sessions(device_key=CUFF) if s.patient_id == "P2"]
    assert touched.ends_at == T0 + timedelta(minutes=18)
    assert await state.close_session(now=T0 + timedelta(minutes=9), device_key=CUFF) == 1
    later = await state.sessions(since=T0 + timedelta(minutes=10))
    assert [s.patient_id for s in later] == ["P9"]
    assert first.session_id != touched.session_id


async def test_an_assignment_is_sent_once_acknowledged_and_settled_by_the_answer(
    state: LocalState,
) -> None:
    readings = SimulatedCuff("CUFF-1", source=Source.CENTRE).measure(
        150, 90, 70, patient_id=None, at=T0
    )
    assert await state.add_unassigned(CUFF, readings, "no_session") == 1
    assert await state.add_unassigned(CUFF, readings, "no_session") == 0
    measurement = readings[0].measurement_id
    with pytest.raises(KeyError):
        await state.request_assignment(uuid.uuid4(), "P1", staff_id=None, note=None, now=T0)
    assignment = await state.request_assignment(
        measurement, "P1", staff_id="hm", note="补录", now=T0
    )
    assert await state.request_assignment(
        measurement, "P1", staff_id="hm", note=None, now=T0
    ) == assignment  # fmt: skip
    with pytest.raises(ValueError, match="already given"):
        await state.request_assignment(measurement, "P2", staff_id="hm", note=None, now=T0)

    where: dict[str, str] = {}
    published: list[tuple[str, bytes]] = []

    async def reading_states(ids):
        return {rid: where.get(rid, "pending") for rid in ids}

    def publish(topic: str, payload: bytes) -> bool:
        published.append((topic, payload))
        return True

    sync = AssignmentSync(
        edge_id="edge-1", state=state, reading_states=reading_states, publish=publish,
        now=lambda: T0,
    )  # fmt: skip
    assert await sync.step() == 0, "not before the readings are in the cloud"
    where.update(dict.fromkeys((str(r.reading_id) for r in readings), "acked"))
    assert await sync.step() == 1
    assert await sync.step() == 0, "not again before the resend delay"
    ((topic, payload),) = published
    assert topic == topics.assignments("edge-1")
    sent = decode(payload, MeasurementAssignment)
    assert (sent.measurement_id, sent.patient_id, sent.staff_id) == (measurement, "P1", "hm")

    result = AssignmentResult(
        assignment_id=sent.assignment_id,
        measurement_id=measurement,
        status=AssignmentStatus.ASSIGNED,
        patient_id="P1",
    )
    sync.on_result_payload(result.model_dump_json().encode())
    sync.on_result_payload(b"garbage")  # logged, ignored
    await sync.step()
    (item,) = await state.unassigned()
    assert (item.state, item.patient_id) == ("assigned", "P1")
    assert await state.counts() == {"assigned": 1}


async def test_the_health_endpoint_answers_200_or_503_with_the_report() -> None:
    report = {"status": "ok", "edge_id": "e"}

    async def current():
        return report

    server = HealthServer(current, port=0)
    await server.start()
    try:

        async def get(path: str) -> tuple[str, dict]:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            raw = await reader.read()
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            return head.split(b"\r\n")[0].decode(), json.loads(body)

        assert await get("/health") == ("HTTP/1.1 200 OK", report)
        report["status"] = "degraded"
        status, body = await get("/health?x=1")
        assert status == "HTTP/1.1 503 Service Unavailable" and body["status"] == "degraded"
        assert (await get("/nope"))[0] == "HTTP/1.1 404 Not Found"
    finally:
        await server.stop()


def test_the_station_commands_pair_open_sessions_and_assign(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAREBRIDGE_EDGE_OUTBOX_PATH", str(tmp_path / "outbox.sqlite3"))
    monkeypatch.setenv("CAREBRIDGE_EDGE_CREDENTIALS_PATH", str(tmp_path / "none.json"))
    monkeypatch.setenv("CAREBRIDGE_EDGE_HEALTH_PORT", "0")

    def run(*argv: str) -> tuple[int, object]:
        code = cli.main(list(argv))
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip().startswith(("{", "[")) else out

    code, refused = run("pair", CUFF)
    assert code == 1 and "not heard" in refused["error"]
    code, paired = run("pair", CUFF, "--catalogue-id", "sig-blood-pressure")
    assert code == 0 and paired["paired"] and paired["kind"] == "blood_pressure_monitor"
    assert [d["address"] for d in run("list")[1]] == [CUFF]
    code, opened = run("session", "open", "--device", CUFF, "--patient", "P-7", "--staff", "hm")
    assert code == 0 and opened["patient_id"] == "P-7"
    assert [s["patient_id"] for s in run("session", "list")[1]] == ["P-7"]
    code, status = run("status")
    assert code == 0 and status["open_sessions"][0]["patient_id"] == "P-7"
    assert status["agent"] == "not running" and status["devices"][0]["address"] == CUFF
    assert run("session", "close", "--device", CUFF)[1] == {"closed": 1}
    assert run("assign", str(uuid.uuid4()), "--patient", "P-7")[0] == 1
    assert run("unpair", CUFF)[0] == 0
    assert run("list")[1] == []
    assert run("member", "add", "P-MUM", "妈妈")[1]["members"] == {"P-MUM": "妈妈"}
    assert run("member", "choose", "P-MUM")[0] == 0
    assert run("member", "choose", "P-NOBODY")[0] == 1
