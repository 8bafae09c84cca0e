"""What the phone remembers for its History screen: every past measurement.

The outbox is the edge agent's and holds readings only until the cloud has them; the
history the patient scrolls through lives here, one row per measurement with the ids of
its readings, so its upload state can be asked of the outbox at any time. SQLite from
the standard library: a few hundred rows a year, read on the UI thread in microseconds.

The file outlives app updates, so its schema has one ordered path, as the edge's has
(`edge_agent/local_schema.py`): step n takes a file from SQLite's `user_version` n-1 to n
in one transaction, a new step goes at the end of `STEPS` and is never edited once
released, and a file written by a newer app is refused with `LocalStoreError` instead of
being written by code that does not know its tables.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from protocols.errors import CareBridgeError
from protocols.reading import Reading

_BASELINE = """
CREATE TABLE IF NOT EXISTS measurements (
    measurement_id TEXT PRIMARY KEY,
    patient_id     TEXT NOT NULL,
    kind           TEXT NOT NULL,
    measured_at    TEXT NOT NULL,
    values_json    TEXT NOT NULL,
    reading_ids    TEXT NOT NULL,
    tier           TEXT
);
CREATE INDEX IF NOT EXISTS measurements_by_time ON measurements (patient_id, measured_at);
"""

STEPS: tuple[str, ...] = (_BASELINE,)
"""Step n (1-based) takes the file from `user_version` n-1 to n. Files from before the
numbering (`user_version` 0) already have the baseline's tables, which it adopts."""


class LocalStoreError(CareBridgeError):
    """The phone's history file cannot be brought to this app's schema."""

    code = "local_store"


def ensure_schema(db: sqlite3.Connection) -> int:
    """Bring `db` to the last step's version; returns the version it had."""
    latest = len(STEPS)
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > latest:
        raise LocalStoreError(
            f"the history file is at schema version {found}, written by a newer app; this "
            f"app knows versions up to {latest} — update the app"
        )
    for number in range(found + 1, latest + 1):
        try:
            db.executescript(
                f"BEGIN;\n{STEPS[number - 1]}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.rollback()
            raise LocalStoreError(
                f"upgrading the history file to schema version {number} failed: {exc}"
            ) from exc
    return found


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    measurement_id: str
    patient_id: str
    kind: str
    measured_at: datetime
    values: dict[str, float]
    """Metric value → canonical value."""
    reading_ids: list[str]
    tier: str | None


class LocalStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        try:
            ensure_schema(self._db)
        except LocalStoreError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def add_measurement(self, readings: list[Reading], tier: str | None) -> StoredMeasurement:
        first = readings[0]
        stored = StoredMeasurement(
            measurement_id=str(first.measurement_id),
            patient_id=first.patient_id or "",
            kind=first.device.kind.value,
            measured_at=first.measured_at,
            values={r.metric.value: r.value for r in readings},
            reading_ids=[str(r.reading_id) for r in readings],
            tier=tier,
        )
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO measurements (measurement_id, patient_id, kind, "
                "measured_at, values_json, reading_ids, tier) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.measurement_id,
                    stored.patient_id,
                    stored.kind,
                    # UTC, so that text order is time order whatever the phone's zone.
                    stored.measured_at.astimezone(UTC).isoformat(),
                    json.dumps(stored.values),
                    json.dumps(stored.reading_ids),
                    tier,
                ),
            )
        return stored

    def measurements(
        self, patient_id: str, *, since: datetime | None = None, limit: int = 500
    ) -> list[StoredMeasurement]:
        """The patient's measurements, newest first."""
        cutoff = (since or datetime.now(UTC) - timedelta(days=3650)).astimezone(UTC).isoformat()
        rows = self._db.execute(
            "SELECT measurement_id, patient_id, kind, measured_at, values_json, reading_ids, "
            "tier FROM measurements WHERE patient_id = ? AND measured_at >= ? "
            "ORDER BY measured_at DESC LIMIT ?",
            (patient_id, cutoff, limit),
        ).fetchall()
        return [
            StoredMeasurement(
                measurement_id=row[0],
                patient_id=row[1],
                kind=row[2],
                measured_at=datetime.fromisoformat(row[3]),
                values=json.loads(row[4]),
                reading_ids=json.loads(row[5]),
                tier=row[6],
            )
            for row in rows
        ]

    def forget_everything(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM measurements")
