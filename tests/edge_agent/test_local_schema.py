"""The edge's SQLite file across agent versions: created whole, adopted from before the
schema was numbered, upgraded step by step, refused when a newer agent wrote it."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from edge_agent import __main__ as cli
from edge_agent import local_schema
from edge_agent.local_schema import LATEST, LocalSchemaError, ensure_schema, schema_version
from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox
from simulators.readings import SimulatedGlucoseMeter

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }


def _aiosqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def test_a_new_file_gets_every_table_and_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite3"
    async with aiosqlite.connect(path) as db:
        assert await ensure_schema(db) == 0
        assert await ensure_schema(db) == LATEST  # a second call changes nothing
        assert await schema_version(db) == LATEST
    assert {"outbox", "acked", "devices", "sessions", "unassigned", "edge_config",
            "notifications", "questionnaire_answers"} <= _tables(path)  # fmt: skip


# The devices table as development builds before `bond` and the clock-skew columns made it.
_EARLIER_BUILD = """
CREATE TABLE devices (
    address TEXT PRIMARY KEY, name TEXT, catalogue_id TEXT, kind TEXT,
    connectable INTEGER NOT NULL DEFAULT 1, rssi INTEGER, first_seen_at REAL NOT NULL,
    last_seen_at REAL NOT NULL, paired_at REAL, serial TEXT, model TEXT, manufacturer TEXT,
    last_connected_at REAL, last_sequence INTEGER, clock_offset_s REAL, clock_checked_at REAL,
    battery_percent INTEGER, failures INTEGER NOT NULL DEFAULT 0, last_error_code TEXT,
    last_error TEXT, retry_at REAL
);
INSERT INTO devices (address, catalogue_id, kind, first_seen_at, last_seen_at, paired_at,
                     last_sequence)
VALUES ('C0:DE:00:00:18:01', 'sig-glucose', 'glucose_meter', 1.0, 2.0, 1.5, 41);
CREATE TABLE outbox (
    reading_id TEXT PRIMARY KEY, body TEXT NOT NULL, enqueued_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', batch_id TEXT, sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, reject_code TEXT, reject_reason TEXT
);
CREATE INDEX outbox_sendable ON outbox (state, enqueued_at);
"""


async def test_a_file_from_before_numbering_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "edge" / "outbox.sqlite3"
    path.parent.mkdir()
    (reading,) = SimulatedGlucoseMeter("GLU-OLD").measure(5.6, patient_id="P-1", at=NOW)
    with sqlite3.connect(path) as old:
        old.executescript(_EARLIER_BUILD)
        old.execute(
            "INSERT INTO outbox (reading_id, body, enqueued_at) VALUES (?, ?, 3.0)",
            (str(reading.reading_id), reading.model_dump_json()),
        )

    async with Outbox(path) as outbox:
        # The reading the old agent had not sent yet is still there to send.
        batch = await outbox.take_batch(10, resend_after_s=30.0)
        assert batch is not None and [r.reading_id for r in batch.readings] == [reading.reading_id]
        state = await LocalState.attach(outbox.db)
        (device,) = await state.devices(paired_only=True)
        assert (device.address, device.last_sequence, device.bond) == (
            "C0:DE:00:00:18:01", 41, False
        )  # fmt: skip
        await state.update_device(device.address, clock_skew_s=12.5, clock_skew_at=NOW)
        updated = await state.device(device.address)
        assert updated is not None and updated.clock_skew_s == 12.5
    assert _version(path) == LATEST
    with sqlite3.connect(path) as db:
        indexes = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "outbox_queue" in indexes and "outbox_sendable" not in indexes


async def test_a_file_from_a_newer_agent_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite3"
    with sqlite3.connect(path) as newer:
        newer.execute("CREATE TABLE from_the_future (x)")
        newer.execute(f"PRAGMA user_version = {LATEST + 1}")
    async with aiosqlite.connect(path) as db:
        with pytest.raises(LocalSchemaError, match="newer agent"):
            await ensure_schema(db)
    assert _tables(path) == {"from_the_future"}
    assert _version(path) == LATEST + 1


async def test_a_failing_step_leaves_the_file_at_the_version_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "edge.sqlite3"
    async with aiosqlite.connect(path) as db:
        await ensure_schema(db)
    broken = "CREATE TABLE half_done (x);\nINSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(local_schema, "STEPS", (*local_schema.STEPS, broken))
    monkeypatch.setattr(local_schema, "LATEST", LATEST + 1)
    async with aiosqlite.connect(path) as db:
        with pytest.raises(LocalSchemaError, match=f"version {LATEST + 1} failed"):
            await ensure_schema(db)
        assert await schema_version(db) == LATEST
    assert "half_done" not in _tables(path)


async def test_a_missing_column_that_rows_could_not_have_is_a_clear_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE outbox (reading_id TEXT PRIMARY KEY, enqueued_at REAL)")
    async with aiosqlite.connect(path) as db:
        with pytest.raises(LocalSchemaError, match="outbox has no column body"):
            await ensure_schema(db)
    assert _version(path) == 0


@pytest.mark.parametrize("argv", [["status"], ["list"], ["export-outbox", "out.jsonl"]])
def test_the_cli_says_why_it_will_not_open_a_newer_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as newer:
        newer.execute(f"PRAGMA user_version = {LATEST + 1}")
    monkeypatch.setenv("CAREBRIDGE_EDGE_OUTBOX_PATH", str(path))
    monkeypatch.setenv("CAREBRIDGE_EDGE_CREDENTIALS_PATH", str(tmp_path / "none.json"))
    monkeypatch.chdir(tmp_path)
    connections = _aiosqlite_threads()
    assert cli.main(argv) == 2
    # The refused file's connection is closed, not left to keep the process alive:
    # its worker thread ends (a moment after close() returns, hence the join).
    for thread in _aiosqlite_threads() - connections:
        thread.join(timeout=5.0)
    assert _aiosqlite_threads() <= connections
    error = capsys.readouterr().err
    assert error.startswith("local_schema: ") and "newer agent" in error and str(path) in error
    assert _version(path) == LATEST + 1
