"""`python -m benchmarks.ingest_stages`: where an ingest worker's time goes, per reading.

`benchmarks.ingest` says how fast the whole path is; this says why. It runs each step of
one worker's flush on its own, in one process, against a throwaway TimescaleDB (fsync on),
on the same readings, and reports microseconds per reading for each step beside the raw
COPY ceiling measured in the same run:

- decode: `take_in` — JSON parsing, schema and id checks, plausibility (pure Python);
- rows: building COPY rows from readings (pure Python);
- copy to staging: COPY of those rows into the per-connection staging table;
- insert: `INSERT … SELECT … ON CONFLICT DO NOTHING` from staging into the hypertable;
- rollups: the daily rollup and latest-value upserts that ride on that insert;
- profiles: reading the flush's patients' profiles from the database, as a worker does
  for patients its profile cache does not hold (after a start, or a change);
- rules: the alert rules over the new readings (pure Python), with the patient profiles
  from a warm cache, as a running worker judges them;
- alerts: opening or joining the alerts those rules raised (`upsert_alerts`).

The readings' 20,000 patients are registered, as in production, a third of them with
diabetes, so profiles are read and abnormal values raise alerts.

Every step is timed as the best of three runs, so other work on the machine counts less,
with the garbage collector tuned as the ingest worker tunes it.

The sum of the Python steps bounds what two worker processes can reach on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from benchmarks.common import (
    REPO,
    ThrowawayServices,
    say,
    update_performance_doc,
    write_results,
)
from benchmarks.ingest import make_batches, make_readings, register_edges_and_patients
from cloud.alerts.rules import PatientProfile, evaluate
from cloud.db import ingest_store
from cloud.db.migrate import migrate
from cloud.ingest.intake import AcceptedReading, InboundMessage, take_in
from cloud.ingest.profile_cache import ProfileCache
from protocols import topics
from protocols.process import tune_garbage_collector

FLUSH = 5000
"""Readings per flush, the worker's default `CAREBRIDGE_INGEST_BATCH_MAX_READINGS`."""
TZ = "Asia/Shanghai"
T = TypeVar("T")

_INSERT_ONLY = (
    f"INSERT INTO readings ({ingest_store.COPY_COLUMNS}) "
    f"SELECT {ingest_store.COPY_COLUMNS} FROM readings_staging "
    "ON CONFLICT DO NOTHING RETURNING reading_id"
)


def _per_reading_us(seconds: float, count: int) -> float:
    return round(seconds / count * 1e6, 2)


def _best_of(step: Callable[[], T], runs: int = 3) -> tuple[float, T]:
    """The fastest of `runs` runs of a step."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def _flushes(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + FLUSH] for i in range(0, len(items), FLUSH)]


def _staged(
    conn: psycopg.Connection, flush: list[AcceptedReading], after: Callable[[], None]
) -> tuple[float, float]:
    """COPY one flush into staging, then run `after` in the same transaction; return the
    seconds of each part."""
    with conn.transaction():
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            ingest_store.copy_rows_into(cur, "readings_staging") as copy,
        ):
            for item in flush:
                copy.write_row(ingest_store.reading_row(item.edge_id, item.reading))
        copied = time.perf_counter()
        after()
        return copied - started, time.perf_counter() - copied


def measure(dsn: str, count: int) -> dict[str, float]:
    readings = make_readings(count, seed=3)
    messages = [
        InboundMessage(topics.readings(b.edge_id), b.payload, n)
        for n, b in enumerate(make_batches(readings))
    ]
    decode, intakes = _best_of(lambda: [take_in(m, lambda _edge: True) for m in messages])
    accepted = [a for intake in intakes for a in intake.accepted]
    if len(accepted) != count:
        raise RuntimeError(f"{count - len(accepted)} benchmark readings were refused")

    build, rows = _best_of(
        lambda: [ingest_store.reading_row(a.edge_id, a.reading) for a in accepted]
    )

    results: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        ingest_store.prepare_connection(conn)

        def copy_straight_in() -> int:
            conn.execute("TRUNCATE readings, readings_daily, patient_latest")
            for chunk in _flushes(rows):
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    ingest_store.copy_rows_into(cur, "readings") as copy,
                ):
                    for row in chunk:
                        copy.write_row(row)
            return len(rows)

        ceiling, _ = _best_of(copy_straight_in)

        def insert_only() -> None:
            conn.execute(_INSERT_ONLY).fetchall()

        def insert_with_rollups() -> None:
            conn.execute(ingest_store._INSERT_NEW, {"tz": TZ}).fetchall()

        timings = {"staging": float("inf"), "insert": float("inf"), "full": float("inf")}
        for _run in range(3):
            for label, step in (("insert", insert_only), ("full", insert_with_rollups)):
                conn.execute("TRUNCATE readings, readings_daily, patient_latest")
                staging = spent = 0.0
                for flush in _flushes(accepted):
                    copy_s, step_s = _staged(conn, flush, step)
                    staging += copy_s
                    spent += step_s
                timings["staging"] = min(timings["staging"], staging)
                timings[label] = min(timings[label], spent)

        def read_profiles() -> int:
            read = 0
            for flush in _flushes(accepted):
                patients = sorted({a.reading.patient_id for a in flush if a.reading.patient_id})
                read += len(ingest_store.patient_profiles(conn, patients))
            return read

        profiles, _ = _best_of(read_profiles)

        cache = ProfileCache(max_patients=100_000, max_age_s=3600)

        def load(patient_ids: list[str]) -> dict[str, PatientProfile]:
            return ingest_store.patient_profiles(conn, patient_ids)

        def judge_all() -> int:
            candidates = 0
            for flush in _flushes(accepted):
                fresh = [a.reading for a in flush]
                patients = sorted({r.patient_id for r in fresh if r.patient_id})
                held = cache.profiles(patients, load)
                candidates += len(evaluate(fresh, history=[], profiles=held))
            return candidates

        rules, _ = _best_of(judge_all)  # the first run fills the cache

        judged = []
        for flush in _flushes(accepted):
            fresh = [a.reading for a in flush]
            patients = sorted({r.patient_id for r in fresh if r.patient_id})
            judged.append(
                evaluate(fresh, history=[], profiles=ingest_store.patient_profiles(conn, patients))
            )

        def raise_alerts() -> int:
            # From an empty queue each run: the first flush opens, the later ones join.
            conn.execute("TRUNCATE alerts CASCADE")
            now = datetime.now(UTC)
            touched = 0
            for candidates in judged:
                with conn.transaction():
                    touched += len(ingest_store.upsert_alerts(conn, candidates, now, TZ))
            return touched

        alerts, touched = _best_of(raise_alerts)

    results = {
        "copy_ceiling_us": _per_reading_us(ceiling, count),
        "decode_us": _per_reading_us(decode, count),
        "rows_us": _per_reading_us(build, count),
        "copy_to_staging_us": _per_reading_us(timings["staging"], count),
        "insert_from_staging_us": _per_reading_us(timings["insert"], count),
        "rollups_us": _per_reading_us(timings["full"] - timings["insert"], count),
        "profiles_us": _per_reading_us(profiles, count),
        "rules_us": _per_reading_us(rules, count),
        "alerts_us": _per_reading_us(alerts, count),
        "alert_candidates": touched,
    }
    python = results["decode_us"] + results["rows_us"] + results["rules_us"]
    database = (
        results["copy_to_staging_us"]
        + results["insert_from_staging_us"]
        + results["rollups_us"]
        + results["alerts_us"]
        - results["rows_us"]  # COPY to staging timed the row building again
    )
    results["python_us"] = round(python, 2)
    results["database_us"] = round(database, 2)
    # Two cores shared by two workers and the database, if everything overlapped perfectly.
    results["two_core_bound_readings_per_s"] = round(2e6 / (python + database))
    results["bound_ratio_to_copy"] = round(
        results["two_core_bound_readings_per_s"] / (1e6 / results["copy_ceiling_us"]), 3
    )
    return results


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    r = data
    return "\n".join(
        [
            "## Ingest, step by step (`python -m benchmarks.ingest_stages`)",
            "",
            f"Measured {r['measured_at']} on {m['cpu']}, {m['cores']} cores, {r['readings']:,} "
            f"readings in flushes of {FLUSH:,}; µs per reading, one process, same run. Raw "
            "numbers: `benchmarks/results/ingest_stages.json`.",
            "",
            "| step | µs / reading |",
            "|---|---|",
            f"| raw COPY into the hypertable (the ceiling) | {r['copy_ceiling_us']} |",
            f"| decode and validate a batch (`take_in`) | {r['decode_us']} |",
            f"| build COPY rows | {r['rows_us']} |",
            f"| COPY into staging (rows included) | {r['copy_to_staging_us']} |",
            f"| INSERT … ON CONFLICT from staging | {r['insert_from_staging_us']} |",
            f"| daily rollup + latest value upserts | {r['rollups_us']} |",
            f"| patient profiles read (a worker's cache misses; not in the sums) "
            f"| {r['profiles_us']} |",
            f"| alert rules, profiles from a warm cache | {r['rules_us']} |",
            f"| alerts opened or joined ({r['alert_candidates']:,} candidates) "
            f"| {r['alerts_us']} |",
            f"| **Python in the worker / database** | {r['python_us']} / {r['database_us']} |",
            "",
            f"Bound on two cores with perfect overlap: {r['two_core_bound_readings_per_s']:,} "
            f"readings/s, {r['bound_ratio_to_copy']:.0%} of the COPY ceiling.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_stages", description=__doc__)
    parser.add_argument("--readings", type=int, default=50_000)
    args = parser.parse_args()
    services = ThrowawayServices("stages")
    try:
        say("starting throwaway TimescaleDB (fsync on)")
        services.server.start()
        migrate(services.server.dsn)
        register_edges_and_patients(services.server.dsn)
        say(f"timing each step over {args.readings:,} readings")
        tune_garbage_collector()  # as `python -m cloud ingest` does
        results = measure(services.server.dsn, args.readings)
        for key, value in results.items():
            say(f"    {key}: {value}")
        path = write_results("ingest_stages", {"readings": args.readings, **results})
        say(f"results in {path.relative_to(REPO)}")
        update_performance_doc("ingest_stages", render(json.loads(path.read_text())))
        return 0
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
