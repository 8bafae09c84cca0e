"""One device record downloaded by two edges is stored once, whatever time each gave it.

A record's id is the same at every edge; its time is not when the device clock was wrong
and each edge corrected it by its own estimate of the offset (or could not trust it). Real
TimescaleDB, through the ingest's own `copy_readings`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from cloud.db import ingest_store
from cloud.db.retention import drop_old_readings
from cloud.ingest.intake import AcceptedReading
from protocols.reading import Reading, StatusFlag
from simulators.readings import SimulatedGlucoseMeter

TZ = "Asia/Shanghai"
SKEW = timedelta(hours=3, minutes=7)
"""How far the meter's clock is ahead."""
METER = SimulatedGlucoseMeter("G-TWO-EDGES")  # one meter: every record gets its own id


def record(at: datetime) -> Reading:
    """A glucose record taken at `at`, as the meter stamped it (its clock `SKEW` ahead)
    and as an edge that measured the offset exactly corrects it."""
    (r,) = METER.measure(6.4, patient_id="P-COPY", at=at)
    stamped = (at + SKEW).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=8)
    return r.model_copy(
        update={"device_time": stamped, "flags": frozenset({StatusFlag.CLOCK_CORRECTED})}
    )


def as_estimated(r: Reading, error: timedelta) -> Reading:
    """The same record from an edge whose estimate of the offset was off by `error`."""
    return r.model_copy(update={"measured_at": r.measured_at + error})


def as_trusted(r: Reading) -> Reading:
    """The same record from an edge that took the device's stamp as it is (the clock had
    been set right before the download, so the offset it measured was zero)."""
    at = r.device_time.replace(tzinfo=UTC) - timedelta(hours=8)
    return r.model_copy(update={"measured_at": at, "flags": frozenset()})


def store(conn: psycopg.Connection, *copies: tuple[str, Reading]) -> set:
    with conn.transaction():
        return ingest_store.copy_readings(
            conn, [AcceptedReading(edge, r) for edge, r in copies], TZ
        )


def stored(database_url: str) -> tuple[int, int, int]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM readings), "
            "(SELECT coalesce(sum(n), 0) FROM readings_daily), "
            "(SELECT count(*) FROM retimed_readings)"
        ).fetchone()


def connect(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    ingest_store.prepare_connection(conn)
    return conn


def test_two_edges_estimates_of_one_record_are_stored_once(database_url):
    r = record(datetime.now(UTC) - timedelta(hours=2))
    with connect(database_url) as conn:
        assert store(conn, ("edge-home", r)) == {r.reading_id}
        assert store(conn, ("edge-centre", as_estimated(r, timedelta(seconds=2)))) == set()
        assert store(conn, ("edge-centre", as_estimated(r, -timedelta(days=3)))) == set()
    assert stored(database_url) == (1, 1, 1)


def test_a_trusted_copy_stored_first_is_found_at_the_device_time(database_url):
    r = record(datetime.now(UTC) - timedelta(hours=2))
    with connect(database_url) as conn:
        assert store(conn, ("edge-centre", as_trusted(r))) == {r.reading_id}
        assert store(conn, ("edge-home", r)) == set()
    assert stored(database_url) == (1, 1, 0)


def test_a_trusted_copy_after_an_estimated_one_is_a_resend(database_url):
    r = record(datetime.now(UTC) - timedelta(hours=2))
    with connect(database_url) as conn:
        assert store(conn, ("edge-home", r)) == {r.reading_id}
        assert store(conn, ("edge-centre", as_trusted(r))) == set()
    assert stored(database_url) == (1, 1, 1)


def test_two_copies_in_one_flush_are_stored_once(database_url):
    r = record(datetime.now(UTC) - timedelta(hours=2))
    with connect(database_url) as conn:
        new = store(conn, ("edge-home", r), ("edge-centre", as_trusted(r)))
    assert new == {r.reading_id}
    assert stored(database_url) == (1, 1, 1)


def test_a_copy_stored_by_another_worker_at_the_same_moment_is_stored_once(database_url):
    """The second worker's claim on the id waits for the first one's commit, then gives
    way; checking before inserting could not see a copy not yet committed."""
    r = record(datetime.now(UTC) - timedelta(hours=2))
    with connect(database_url) as first, connect(database_url) as second:
        results: list[set] = []
        with first.transaction():
            new = ingest_store.copy_readings(first, [AcceptedReading("edge-home", r)], TZ)
            assert new == {r.reading_id}
            racer = threading.Thread(
                target=lambda: results.append(
                    store(second, ("edge-centre", as_estimated(r, timedelta(seconds=5))))
                )
            )
            racer.start()
            racer.join(timeout=1.0)
            waited = racer.is_alive()
        racer.join(timeout=30)
    assert waited, "the second copy went in while the first was uncommitted"
    assert results == [set()]
    assert stored(database_url) == (1, 1, 1)


def test_retention_forgets_the_ids_of_dropped_readings_only(database_url):
    old = record(datetime.now(UTC) - timedelta(days=400))
    recent = record(datetime.now(UTC) - timedelta(days=1))
    with connect(database_url) as conn:
        store(conn, ("edge-home", old), ("edge-home", recent))
        assert stored(database_url)[2] == 2
        dropped = drop_old_readings(conn, timedelta(days=365))
        left = conn.execute("SELECT reading_id FROM retimed_readings").fetchall()
    assert len(dropped) == 1
    assert left == [(recent.reading_id,)]
