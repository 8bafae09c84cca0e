"""The edge's SQLite file: its schema, and the one ordered path that brings an older file
up to it.

The outbox, the device and session state, the downlink's kept configuration and
notifications and the questionnaire answers share one file. An agent upgraded in the field
opens the file its previous version wrote, outbox full of readings not yet sent:
`ensure_schema` applies every step the file has not had, in order, each in one transaction
with the step's number recorded in SQLite's `user_version`, so a step that fails leaves
the file as it was. A file written by a newer agent is refused with `LocalSchemaError`
rather than written by code that does not know its tables.

A new step goes at the end of `STEPS` and is never edited once released. Files from
before the schema was numbered (`user_version` 0) are adopted by step 1: tables missing
are created, and a column an earlier build did not yet have is added to its table with
its type and default, so the rows kept there survive.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from dataclasses import dataclass

import aiosqlite

from edge_agent.sqlite_calls import fetch_all, fetch_one, run_script
from protocols.errors import CareBridgeError

_BASELINE = """
CREATE TABLE IF NOT EXISTS outbox (
    reading_id    TEXT PRIMARY KEY,
    body          TEXT NOT NULL,
    enqueued_at   REAL NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'rejected')),
    batch_id      TEXT,
    sent_at       REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    reject_code   TEXT,
    reject_reason TEXT
);
DROP INDEX IF EXISTS outbox_sendable;
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (state, enqueued_at, reading_id);
CREATE TABLE IF NOT EXISTS acked (
    reading_id TEXT PRIMARY KEY,
    acked_at   REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS devices (
    address         TEXT PRIMARY KEY,
    name            TEXT,
    catalogue_id    TEXT,
    kind            TEXT,
    connectable     INTEGER NOT NULL DEFAULT 1,
    rssi            INTEGER,
    first_seen_at   REAL NOT NULL,
    last_seen_at    REAL NOT NULL,
    paired_at       REAL,
    serial          TEXT,
    model           TEXT,
    manufacturer    TEXT,
    last_connected_at REAL,
    last_sequence   INTEGER,
    clock_offset_s  REAL,
    clock_checked_at REAL,
    battery_percent INTEGER,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error      TEXT,
    retry_at        REAL,
    bond            INTEGER NOT NULL DEFAULT 0,
    clock_skew_s    REAL,
    clock_skew_at   REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id      TEXT PRIMARY KEY,
    device_key      TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    staff_id        TEXT,
    opened_at       REAL NOT NULL,
    last_activity_at REAL NOT NULL,
    timeout_s       REAL NOT NULL,
    closed_at       REAL
);
CREATE INDEX IF NOT EXISTS sessions_device ON sessions (device_key, opened_at);
CREATE TABLE IF NOT EXISTS members (
    patient_id      TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS member_choice (
    one             INTEGER PRIMARY KEY CHECK (one = 1),
    patient_id      TEXT NOT NULL,
    chosen_at       REAL NOT NULL,
    expires_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS unassigned (
    measurement_id  TEXT PRIMARY KEY,
    device_key      TEXT NOT NULL,
    device          TEXT NOT NULL,
    measured_at     REAL NOT NULL,
    received_at     REAL NOT NULL,
    reason          TEXT NOT NULL,
    reading_ids     TEXT NOT NULL,
    summary         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'unassigned' CHECK (state IN
                        ('unassigned', 'requested', 'sent', 'assigned', 'conflict', 'not_found')),
    assignment_id   TEXT,
    patient_id      TEXT,
    staff_id        TEXT,
    note            TEXT,
    requested_at    REAL,
    sent_at         REAL,
    result_reason   TEXT
);
CREATE INDEX IF NOT EXISTS unassigned_state ON unassigned (state, received_at);

CREATE TABLE IF NOT EXISTS edge_config (
    slot        INTEGER PRIMARY KEY CHECK (slot = 1),
    issued_at   TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    patient_id      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    body            TEXT NOT NULL,
    received_at     REAL NOT NULL,
    read_at         REAL
);
CREATE INDEX IF NOT EXISTS notifications_patient ON notifications (patient_id, created_at);

CREATE TABLE IF NOT EXISTS questionnaire_answers (
    answer_id        TEXT PRIMARY KEY,
    patient_id       TEXT NOT NULL,
    questionnaire_id TEXT NOT NULL,
    version          INTEGER NOT NULL,
    answers          TEXT NOT NULL,
    answered_at      TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'stored', 'rejected')),
    score            REAL,
    risk_level       TEXT,
    code             TEXT,
    reason           TEXT,
    sent_at          TEXT,
    answered_back_at TEXT
);
CREATE INDEX IF NOT EXISTS questionnaire_answers_state ON questionnaire_answers (state);
"""

STEPS: tuple[str, ...] = (_BASELINE,)
"""Step n (1-based) takes a file from `user_version` n-1 to n."""

LATEST = len(STEPS)


class LocalSchemaError(CareBridgeError):
    """The edge's SQLite file cannot be brought to this agent's schema."""

    code = "local_schema"


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    not_null: bool
    default: str | None

    def definition(self) -> str:
        parts = [f'"{self.name}"', self.type]
        if self.not_null:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(parts)


async def schema_version(db: aiosqlite.Connection) -> int:
    row = await fetch_one(db, "PRAGMA user_version")
    return int(row[0]) if row is not None else 0


async def ensure_schema(db: aiosqlite.Connection) -> int:
    """Bring the file of `db` to the last step's version; returns the version it had.

    Called where the file is opened (`Outbox.open`; `AnswerSync`, which may be given any
    connection); the modules that attach to the outbox's connection rely on it."""
    latest = len(STEPS)
    found = await schema_version(db)
    if found > latest:
        raise LocalSchemaError(
            f"the local database is at schema version {found}, written by a newer agent; "
            f"this agent knows versions up to {latest} — upgrade the agent, or move the "
            "file aside to start with an empty one"
        )
    for number in range(found + 1, latest + 1):
        script = STEPS[number - 1]
        if number == 1:
            script += "".join(f"\n{alter};" for alter in await _adoption(db))
        try:
            await run_script(db, f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error as exc:
            if db.in_transaction:
                await db.rollback()
            raise LocalSchemaError(
                f"upgrading the local database to schema version {number} failed: {exc}"
            ) from exc
    return found


async def _adoption(db: aiosqlite.Connection) -> list[str]:
    """ALTER TABLE statements adding the baseline's columns that an unnumbered file's
    tables lack (tables it lacks altogether are created by the baseline itself)."""
    alters: list[str] = []
    for table, columns in (await asyncio.to_thread(_baseline_columns)).items():
        rows = await fetch_all(db, f'PRAGMA table_info("{table}")')
        present = {row[1] for row in rows}
        if not present:
            continue
        for column in columns:
            if column.name in present:
                continue
            if column.not_null and column.default is None:
                raise LocalSchemaError(
                    f"the local database's table {table} has no column {column.name}, which "
                    "cannot be added to rows already there (NOT NULL without a default)"
                )
            alters.append(f'ALTER TABLE "{table}" ADD COLUMN {column.definition()}')
    return alters


@functools.cache
def _baseline_columns() -> dict[str, list[_Column]]:
    """Each baseline table's columns, read back from a scratch in-memory database."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.executescript(_BASELINE)
        tables = [
            name
            for (name,) in scratch.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            table: [
                _Column(name, type_, bool(not_null), default)
                for _cid, name, type_, not_null, default, _pk in scratch.execute(
                    f'PRAGMA table_info("{table}")'
                )
            ]
            for table in tables
        }
    finally:
        scratch.close()


__all__ = ["LATEST", "STEPS", "LocalSchemaError", "ensure_schema", "schema_version"]
