"""The outbox on a real SQLite file: durable, idempotent, never purged by age."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from edge_agent.outbox import Outbox, OutboxFullError, OutboxLevel, alarm_text, outbox_level
from protocols.messages import Ack, RejectedReading
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


async def test_readings_survive_reopening_and_a_re_read_record_is_not_added_twice(tmp_path):
    cuff = SimulatedCuff("C1")
    readings = cuff.measure(120, 80, 70, patient_id="P1", at=NOW)
    async with Outbox(tmp_path / "o.db") as outbox:
        assert await outbox.add(readings) == 4
        assert await outbox.add(readings) == 0
    async with Outbox(tmp_path / "o.db") as outbox:
        assert (await outbox.stats()).pending == 4


async def test_batches_in_flight_are_not_resent_until_the_ack_is_overdue(tmp_path):
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1"), now=1000)
        batch = await outbox.take_batch(3, resend_after_s=30, now=1001)
        assert batch is not None and len(batch.readings) == 3
        rest = await outbox.take_batch(10, resend_after_s=30, now=1002)
        assert rest is not None and len(rest.readings) == 1
        assert await outbox.take_batch(10, resend_after_s=30, now=1010) is None
        overdue = await outbox.take_batch(10, resend_after_s=30, now=1040)
        assert overdue is not None and len(overdue.readings) == 4


async def test_ack_removes_stored_and_keeps_refused_with_reason(tmp_path):
    readings = SimulatedCuff("C1").measure(900, 80, 70, patient_id="P1")
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(readings)
        batch = await outbox.take_batch(10, resend_after_s=30)
        assert batch is not None
        ack = Ack(
            batch_id=batch.batch_id,
            stored=[r.reading_id for r in readings[1:]],
            rejected=[
                RejectedReading(
                    reading_id=readings[0].reading_id,
                    index=0,
                    code="implausible_value",
                    reason="too high",
                )
            ],
            acked_at=datetime.now(UTC),
        )
        await outbox.apply_ack(ack)
        stats = await outbox.stats()
        assert (stats.pending, stats.rejected) == (0, 1)
        # A refused reading is never sent again.
        assert await outbox.take_batch(10, resend_after_s=0, now=10**10) is None


async def test_nothing_is_purged_by_age(tmp_path):
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1"), now=0)
        stats = await outbox.stats(now=365 * 24 * 3600)
        assert stats.pending == 4
        assert stats.oldest_pending_age_s == 365 * 24 * 3600


async def test_release_in_flight_makes_everything_sendable_again(tmp_path):
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1"))
        assert await outbox.take_batch(10, resend_after_s=30) is not None
        await outbox.release_in_flight()
        again = await outbox.take_batch(10, resend_after_s=30)
        assert again is not None and len(again.readings) == 4
        assert again.batch_id != uuid.UUID(int=0)


def _ack(batch_id, readings):
    return Ack(
        batch_id=batch_id, stored=[r.reading_id for r in readings], acked_at=datetime.now(UTC)
    )


async def test_states_follow_a_reading_through_its_life_and_acked_stays_acked(tmp_path):
    readings = SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1", at=NOW)
    ids = [r.reading_id for r in readings]
    stranger = uuid.uuid4()
    async with Outbox(tmp_path / "o.db") as outbox:
        assert set((await outbox.states(ids)).values()) == {"unknown"}
        await outbox.add(readings)
        assert set((await outbox.states(ids)).values()) == {"pending"}
        batch = await outbox.take_batch(10, resend_after_s=30)
        assert batch is not None
        assert set((await outbox.states(ids)).values()) == {"in_flight"}
        await outbox.apply_ack(_ack(batch.batch_id, readings))
    async with Outbox(tmp_path / "o.db") as outbox:
        states = await outbox.states([*ids, stranger])
        assert [states[str(i)] for i in ids] == ["acked"] * 4
        assert states[str(stranger)] == "unknown"
        # The device record read again after its ack is not queued a second time.
        assert await outbox.add(readings) == 0
        assert (await outbox.stats()).pending == 0


async def test_states_of_a_refused_reading(tmp_path):
    readings = SimulatedCuff("C1").measure(900, 80, 70, patient_id="P1")
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(readings)
        batch = await outbox.take_batch(10, resend_after_s=30)
        assert batch is not None
        bad = RejectedReading(
            reading_id=readings[0].reading_id, index=0, code="implausible_value", reason="high"
        )
        await outbox.apply_ack(
            Ack(batch_id=batch.batch_id, stored=[], rejected=[bad], acked_at=datetime.now(UTC))
        )
        assert (await outbox.states([readings[0].reading_id]))[str(readings[0].reading_id)] == (
            "rejected"
        )


async def test_a_refused_reading_the_cloud_later_stores_leaves_as_stored(tmp_path):
    # What a replay of the cloud's dead letter sends: an ack, under any batch id, that
    # names the refused reading as stored. The outbox goes by reading id.
    readings = SimulatedCuff("C1").measure(120, 80, 70, patient_id="P1")
    refused = readings[0].reading_id
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add(readings)
        batch = await outbox.take_batch(10, resend_after_s=30)
        assert batch is not None
        bug = RejectedReading(reading_id=refused, index=0, code="internal_error", reason="bug")
        await outbox.apply_ack(
            Ack(
                batch_id=batch.batch_id,
                stored=[r.reading_id for r in readings[1:]],
                rejected=[bug],
                acked_at=datetime.now(UTC),
            )
        )
        assert (await outbox.stats()).rejected == 1
        await outbox.apply_ack(_ack(uuid.uuid4(), readings[:1]))
        assert (await outbox.states([refused]))[str(refused)] == "acked"
        stats = await outbox.stats()
        assert (stats.pending, stats.rejected) == (0, 0)


def test_outbox_levels():
    assert outbox_level(0, 100, 0.8, 0.95) is OutboxLevel.OK
    assert outbox_level(79, 100, 0.8, 0.95) is OutboxLevel.OK
    assert outbox_level(80, 100, 0.8, 0.95) is OutboxLevel.WARNING
    assert outbox_level(95, 100, 0.8, 0.95) is OutboxLevel.CRITICAL
    assert outbox_level(100, 100, 0.8, 0.95) is OutboxLevel.FULL
    assert alarm_text(OutboxLevel.OK, 1, 100) is None
    assert alarm_text(OutboxLevel.FULL, 100, 100).startswith("待上传队列已满")


async def test_a_full_outbox_refuses_loudly_and_stores_nothing_of_the_refused(tmp_path, caplog):
    cuff = SimulatedCuff("C1")
    first = cuff.measure(120, 80, 70, patient_id="P1", at=NOW)  # 4 readings
    second = cuff.measure(121, 81, 71, patient_id="P1", at=NOW.replace(hour=9))
    third = cuff.measure(122, 82, 72, patient_id="P1", at=NOW.replace(hour=10))
    async with Outbox(tmp_path / "o.db", max_readings=10, warn_ratio=0.5, critical_ratio=0.8) as ob:
        caplog.set_level("WARNING", logger="carebridge.edge.outbox")
        await ob.add(first)
        assert (await ob.stats()).level is OutboxLevel.OK
        await ob.add(second)  # 8 of 10
        stats = await ob.stats()
        assert stats.level is OutboxLevel.CRITICAL and stats.alarm is not None
        assert any("nearly or completely full" in r.message for r in caplog.records)
        with pytest.raises(OutboxFullError):
            await ob.add(third)
        assert any(r.levelname == "CRITICAL" for r in caplog.records)
        assert (await ob.states([third[0].reading_id]))[str(third[0].reading_id)] == "unknown"
        assert (await ob.stats()).pending == 8
        # Acks make room again.
        batch = await ob.take_batch(10, resend_after_s=30)
        assert batch is not None
        await ob.apply_ack(_ack(batch.batch_id, batch.readings))
        assert await ob.add(third) == 4
        assert (await ob.stats()).level is OutboxLevel.OK


async def test_a_full_outbox_still_stores_what_the_device_no_longer_holds(tmp_path, caplog):
    cuff = SimulatedCuff("C2")
    first = cuff.measure(120, 80, 70, patient_id="P1", at=NOW)
    second = cuff.measure(121, 81, 71, patient_id="P1", at=NOW.replace(hour=9))
    async with Outbox(tmp_path / "o.db", max_readings=6) as ob:
        caplog.set_level("WARNING", logger="carebridge.edge.outbox")
        await ob.add(first)
        with pytest.raises(OutboxFullError):
            await ob.add(second)  # a device that keeps the record gives it again later
        assert await ob.add(second, device_keeps=False) == 4
        stats = await ob.stats()
        assert (stats.pending, stats.level) == (8, OutboxLevel.FULL)
        assert any(
            r.levelname == "CRITICAL" and "past its bound" in r.message for r in caplog.records
        )


async def test_counts_stay_right_while_other_tasks_use_the_same_connection(tmp_path):
    meter = SimulatedGlucoseMeter("G-CONC")
    async with Outbox(tmp_path / "o.db") as outbox:
        await outbox.add([r for _ in range(50) for r in meter.measure(5.5, patient_id="P1")])
        for _ in range(30):
            fresh = [r for _ in range(10) for r in meter.measure(6.0, patient_id="P1")]
            added, _batch, _released = await asyncio.gather(
                outbox.add(fresh),
                outbox.take_batch(20, resend_after_s=0),
                outbox.release_in_flight(),
            )
            assert added == 10
        assert outbox.depth == 50 + 300 == (await outbox.stats()).pending
