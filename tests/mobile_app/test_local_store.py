"""The phone's history file across app updates: numbered steps, nothing lost, newer refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from mobile_app import local_store
from mobile_app.local_store import LocalStore, LocalStoreError
from simulators.readings import SimulatedCuff

# The schema as the first app builds wrote it, before the file was numbered.
UNNUMBERED = """
CREATE TABLE measurements (
    measurement_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, kind TEXT NOT NULL,
    measured_at TEXT NOT NULL, values_json TEXT NOT NULL, reading_ids TEXT NOT NULL,
    tier TEXT
);
INSERT INTO measurements VALUES ('m-1', 'P1', 'blood_pressure_monitor',
    '2026-11-30T01:00:00+00:00', '{"systolic": 131.0}', '["r-1"]', 'yellow');
"""


def version(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_new_file_is_numbered_at_the_latest_step(tmp_path):
    path = tmp_path / "app.sqlite3"
    store = LocalStore(path)
    store.close()
    assert version(path) == len(local_store.STEPS)


def test_a_file_from_before_the_numbering_keeps_its_history(tmp_path):
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(UNNUMBERED)
    store = LocalStore(path)
    try:
        (kept,) = store.measurements("P1", since=datetime(2026, 1, 1, tzinfo=UTC))
        assert (kept.measurement_id, kept.values, kept.tier) == (
            "m-1",
            {"systolic": 131.0},
            "yellow",
        )
        store.add_measurement(SimulatedCuff("C1").measure(118, 76, 70, patient_id="P1"), None)
        assert len(store.measurements("P1", since=datetime(2026, 1, 1, tzinfo=UTC))) == 2
    finally:
        store.close()
    assert version(path) == 1


def test_a_file_from_a_newer_app_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(UNNUMBERED + f"PRAGMA user_version = {len(local_store.STEPS) + 1};")
    with pytest.raises(LocalStoreError, match="newer app"):
        LocalStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM measurements").fetchone() == (1,)
    assert version(path) == len(local_store.STEPS) + 1


def test_a_step_that_fails_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "app.sqlite3"
    LocalStore(path).close()
    broken = "ALTER TABLE measurements ADD COLUMN note TEXT;\nALTER TABLE no_such ADD x TEXT;"
    monkeypatch.setattr(local_store, "STEPS", (*local_store.STEPS, broken))
    with pytest.raises(LocalStoreError, match="schema version 2 failed"):
        LocalStore(path)
    assert version(path) == 1
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(measurements)")]
    assert "note" not in columns
