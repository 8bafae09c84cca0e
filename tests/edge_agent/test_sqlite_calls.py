"""Many tasks on the outbox's one connection: every reading queued, no SQLite misuse.

Before edge_agent.sqlite_calls, cursors freed on the event loop's thread reset statements
that the connection's thread was binding, and about one `add` in 250 failed with
`sqlite3.InterfaceError: bad parameter or other API misuse` (the centre-day test lost a
reading that way). This drives the same interleaving: device sessions queueing readings
while the uplink takes batches and the status page reads counts.
"""

import asyncio

from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox
from edge_agent.sqlite_calls import fetch_all, fetch_one, run, run_many, run_script
from simulators.readings import SimulatedCuff

SESSIONS = 8
MEASUREMENTS_EACH = 150


async def test_concurrent_sessions_on_one_connection_queue_every_reading(tmp_path):
    async with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        state = await LocalState.attach(outbox.db)
        failures: list[BaseException] = []
        queued = 0

        async def device_session(n: int) -> None:
            nonlocal queued
            cuff = SimulatedCuff(f"CUFF-{n}")
            for _ in range(MEASUREMENTS_EACH):
                try:
                    added = await outbox.add(cuff.measure(128, 82, 70, patient_id=f"P{n}"))
                except Exception as exc:  # every failure is the finding
                    failures.append(exc)
                else:
                    queued += added

        async def uplink_and_status() -> None:
            for _ in range(SESSIONS * MEASUREMENTS_EACH // 2):
                await outbox.take_batch(20, resend_after_s=0.0)
                await outbox.stats()
                await state.counts()

        await asyncio.gather(*(device_session(n) for n in range(SESSIONS)), uplink_and_status())

        assert failures == []
        assert queued == SESSIONS * MEASUREMENTS_EACH * 4  # a cuff measurement is 4 readings
        assert (await outbox.stats()).pending == queued


async def test_helpers_report_row_counts_and_rows(tmp_path):
    async with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        db = outbox.db
        await run_script(db, "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);")
        assert await run_many(db, "INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", 2)]) == 2
        assert await run(db, "UPDATE t SET v = v + 10 WHERE v > ?", (1,)) == 1
        assert await run(db, "INSERT OR IGNORE INTO t VALUES ('a', 0)") == 0
        assert [tuple(r) for r in await fetch_all(db, "SELECT k, v FROM t ORDER BY k")] == [
            ("a", 1),
            ("b", 12),
        ]
        assert tuple(await fetch_one(db, "SELECT v FROM t WHERE k = ?", ("b",))) == (12,)
        assert await fetch_one(db, "SELECT v FROM t WHERE k = 'zz'") is None
