"""The outbox on a real SQLite file: durable, idempotent, never purged by age."""

import uuid
from datetime import UTC, datetime

from edge_agent.outbox import Outbox
from protocols.messages import Ack, RejectedReading
from simulators.readings import SimulatedCuff

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
