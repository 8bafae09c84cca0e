"""`python -m benchmarks.ingest`: how fast readings go from MQTT into TimescaleDB.

Measured in one run, on throwaway services (fsync on):
(a) the raw ceiling — COPY of prepared rows straight into the readings hypertable;
(b) the end-to-end rate — simulated edges publish 50-reading batches to Mosquitto as fast
    as they can; two ingest worker processes store them; the clock stops at the last ack;
(c) latency at a fixed offered load — publish to ack received (the ack is sent after the
    commit, so this bounds publish-to-commit from above);
(d) with a large table (50 M readings by default), the API's p99 for a 90-day daily chart
    of one patient and for the latest readings of 10,000 patients — once at once after the
    fill, while the kernel is still writing back its gigabytes, and once (the reported
    `chart_p99_ms`, `latest_10k_p99_ms`) after a CHECKPOINT and sync(2), as a server that
    gathered its readings over months serves them.

The readings belong to 20,000 registered patients (a third with diabetes), as in
production: the workers read their profiles, queue them for the trend sweep and open or
join the alerts their abnormal values raise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import psycopg

from benchmarks.common import (
    REPO,
    ThrowawayServices,
    percentile,
    say,
    update_performance_doc,
    write_results,
)
from cloud.auth import Role
from cloud.db import care_store, readings_queries
from cloud.db.ingest_store import copy_rows_into, reading_row
from cloud.db.migrate import migrate
from cloud.mqtt_client import send_at_once
from cloud.settings import CloudSettings
from devstack.cloud import CloudProcess
from devstack.ports import free_port
from protocols import topics
from protocols.messages import ReadingsBatch, encode
from protocols.metrics import Metric
from protocols.reading import MealContext, Reading
from simulators.readings import SimulatedGlucoseMeter

PER_BATCH = 50
EDGES = [f"bench-edge-{i}" for i in range(20)]
PATIENTS = 20_000
"""The readings' patients, registered as in production: the worker reads their profiles
and queues them for the trend sweep, work a reading of an unknown patient skips."""
TIMEZONE = CloudSettings().timezone
"""The hospital calendar of the rollups, read as the API process (given this environment)
reads it for its charts."""


@dataclass
class Batch:
    edge_id: str
    batch_id: str
    payload: bytes
    reading_ids: list[uuid.UUID]


def make_readings(count: int, seed: int) -> list[Reading]:
    rng = random.Random(seed)
    meters = [SimulatedGlucoseMeter(f"BENCH-{seed}-{i}") for i in range(500)]
    start = datetime.now(UTC) - timedelta(days=2)
    readings = []
    for n in range(count):
        meter = meters[n % len(meters)]
        readings += meter.measure(
            round(rng.uniform(4.0, 11.0), 1),
            patient_id=f"PB{n % PATIENTS}",
            meal=MealContext.FASTING,
            at=start + timedelta(seconds=n),
        )
    return readings


def register_edges_and_patients(dsn: str) -> None:
    """The benchmark's edges, and its patients in one care team, a third of them with
    diabetes beside hypertension."""
    with psycopg.connect(dsn) as conn:
        for edge in EDGES:
            conn.execute("INSERT INTO edges (edge_id, mode) VALUES (%s, 'centre')", (edge,))
        care_store.create_team(conn, "bench", "Benchmark team")
        conn.execute(
            """INSERT INTO patients (patient_id, name, team_id, cohorts)
               SELECT 'PB' || i, '基准 ' || i, 'bench',
                      CASE WHEN i %% 3 = 0 THEN '{hypertension,diabetes}'::text[]
                           ELSE '{hypertension}'::text[] END
               FROM generate_series(0, %s - 1) i""",
            (PATIENTS,),
        )


def make_batches(readings: list[Reading]) -> list[Batch]:
    batches = []
    for i in range(0, len(readings), PER_BATCH):
        chunk = readings[i : i + PER_BATCH]
        edge = EDGES[(i // PER_BATCH) % len(EDGES)]
        batch = ReadingsBatch(
            edge_id=edge, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=chunk
        )
        batches.append(
            Batch(edge, str(batch.batch_id), encode(batch), [r.reading_id for r in chunk])
        )
    return batches


def copy_ceiling(dsn: str, readings: list[Reading]) -> float:
    rows = [reading_row("bench-copy", r) for r in readings]
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for i in range(0, len(rows), 50_000):
            with (
                conn.cursor() as cur,
                copy_rows_into(cur, "readings") as copy,
            ):
                for row in rows[i : i + 50_000]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE readings, readings_daily, patient_latest")
        conn.commit()
    return len(rows) / elapsed


@dataclass
class AckCollector:
    port: int
    acked: dict[str, float] = field(default_factory=dict)
    stored: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bench-edges", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_socket_open = send_at_once  # as the edge agent's uplink does
        self.client.connect("127.0.0.1", self.port)
        self.client.subscribe(f"{topics.ROOT}/edges/+/acks", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        ack = json.loads(msg.payload)
        with self._lock:
            self.acked.setdefault(ack["batch_id"], now)
            self.stored += len(ack["stored"])
            self.rejected += len(ack["rejected"])

    def publish(self, batch: Batch) -> float:
        info = self.client.publish(topics.readings(batch.edge_id), batch.payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"paho refused a publish: {info.rc}")
        return time.perf_counter()

    def wait_for(self, batch_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(b in self.acked for b in batch_ids):
                    return
            time.sleep(0.01)
        missing = sum(b not in self.acked for b in batch_ids)
        raise RuntimeError(f"{missing} batches not acknowledged within {timeout}s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_workers(dsn: str, port: int, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    workers: list[subprocess.Popen[bytes]] = []
    for i in range(count):
        env = dict(
            os.environ,
            CAREBRIDGE_DATABASE_URL=dsn,
            CAREBRIDGE_MQTT_PORT=str(port),
            CAREBRIDGE_INGEST_WORKER_ID=f"bench-worker-{i}",
            CAREBRIDGE_LOG_LEVEL="warning",
            CAREBRIDGE_INGEST_HEARTBEAT_S="0.5",
        )
        log = (logs / f"worker-{i}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "cloud", "ingest"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    with psycopg.connect(dsn) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (up,) = conn.execute(
                "SELECT count(*) FROM ingest_workers "
                "WHERE last_seen_at > now() - interval '2 s' AND subscribed"
            ).fetchone()
            if up >= count:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("ingest workers did not come up; see their logs")
    return workers


def end_to_end(collector: AckCollector, batches: list[Batch]) -> float:
    started = collector.publish(batches[0])
    for batch in batches[1:]:
        collector.publish(batch)
    collector.wait_for([b.batch_id for b in batches], timeout=600)
    last = max(collector.acked[b.batch_id] for b in batches)
    return sum(len(b.reading_ids) for b in batches) / (last - started)


def fixed_load(collector: AckCollector, batches: list[Batch], readings_per_s: float) -> list[float]:
    interval = PER_BATCH / readings_per_s
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for n, batch in enumerate(batches):
        due = start + n * interval
        while (now := time.perf_counter()) < due:
            time.sleep(min(due - now, 0.002))
        sent[batch.batch_id] = collector.publish(batch)
    collector.wait_for(list(sent), timeout=120)
    return [(collector.acked[b] - t) * 1000 for b, t in sent.items()]


def count_stored(dsn: str, expected: int) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT reading_id) FROM readings"
        ).fetchone()
    return expected - distinct, total - distinct


LARGE_TABLE_PATIENTS = 20_000
"""The query phase's patients, `LP0`…: the fill spreads its readings over them, and the
charts and panels read them."""


def fill_large_table(dsn: str, rows: int, tz: str) -> int:
    """`rows` readings for `LARGE_TABLE_PATIENTS` patients (systolic and diastolic twice a
    day), generated in the server, with rollups and latest values made the way ingest
    keeps them."""
    patients = LARGE_TABLE_PATIENTS
    times = max(1, rows // (patients * 2))
    step = 500
    with psycopg.connect(dsn, autocommit=True) as conn:
        for first in range(0, patients, step):
            ids = [f"LP{p}" for p in range(first, first + step)]
            conn.execute(
                """INSERT INTO readings (time, reading_id, measurement_id, patient_id, edge_id,
                       device_kind, device_model, device_serial, record_key, metric, value,
                       unit, received_at, source)
                   SELECT t, gen_random_uuid(), gen_random_uuid(), p, 'bench-large',
                          'blood_pressure_monitor', 'SIM', 'S-' || p, 'seq:' || i, m.metric,
                          m.base + floor(random() * 25), 'mm[Hg]', t, 'home'
                   FROM unnest(%s::text[]) AS p,
                        generate_series(1, %s) AS i,
                        (VALUES ('systolic', 115), ('diastolic', 70)) AS m(metric, base),
                        LATERAL (SELECT now() - i * interval '12 hours') AS tt(t)""",
                (ids, times),
            )
            conn.execute(
                """INSERT INTO readings_daily
                   SELECT patient_id, metric, (time AT TIME ZONE %s)::date, count(*),
                          min(value), max(value), sum(value)
                   FROM readings WHERE patient_id = ANY(%s) GROUP BY 1, 2, 3""",
                (tz, ids),
            )
            conn.execute(
                """INSERT INTO patient_latest
                   SELECT DISTINCT ON (patient_id, metric) patient_id, metric, time, value,
                          reading_id, source,
                          patient_latest_item(patient_id, metric, time, value, reading_id,
                                              source)
                   FROM readings WHERE patient_id = ANY(%s)
                   ORDER BY patient_id, metric, time DESC""",
                (ids,),
            )
            if (first // step) % 4 == 3:
                done = (first + step) * times * 2
                say(f"    large table: {done:,} of {patients * times * 2:,} rows")
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("VACUUM ANALYZE readings_daily")
        conn.execute("VACUUM ANALYZE patient_latest")
        (count,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(count)


def _qc_token(dsn: str) -> str:
    """A QC supervisor (who may read every patient) for the query phase."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        care_store.create_user(
            conn, "bench-qc", "Benchmark QC", Role.QC_SUPERVISOR, "benchmark-password"
        )
        token = care_store.issue_token(conn, "bench-qc", "benchmark-password", timedelta(hours=2))
    assert token is not None
    return token


def settle_writes(dsn: str) -> tuple[float, int]:
    """Checkpoint, then wait for the kernel's writeback: (seconds taken, dirty kB before)."""
    dirty_kb = _dirty_kb()
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()
    return time.perf_counter() - started, dirty_kb


def _dirty_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Dirty:"):
            return int(line.split()[1])
    return -1


def api_latencies(
    dsn: str, port: int, logs: Path, token: str, seed: int
) -> tuple[list[float], list[float]]:
    http_port = free_port()
    env = dict(
        os.environ,
        CAREBRIDGE_DATABASE_URL=dsn,
        CAREBRIDGE_MQTT_PORT=str(port),
        CAREBRIDGE_HTTP_PORT=str(http_port),
        CAREBRIDGE_INGEST_IN_PROCESS="false",
        CAREBRIDGE_LOG_LEVEL="warning",
    )
    api = CloudProcess(env, http_port, logs / "api.log")
    api.start(wait_for="/openapi.json")
    rng = random.Random(seed)
    try:
        with httpx.Client(
            base_url=api.base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:

            def chart() -> float:
                patient = f"LP{rng.randrange(LARGE_TABLE_PATIENTS)}"
                t = time.perf_counter()
                r = client.get(
                    f"/api/v1/patients/{patient}/daily", params={"metric": "systolic", "days": 90}
                )
                elapsed = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                assert r.json()["items"], "the chart came back empty"
                return elapsed

            def latest() -> float:
                ids = [f"LP{p}" for p in rng.sample(range(LARGE_TABLE_PATIENTS), 10_000)]
                t = time.perf_counter()
                r = client.post("/api/v1/latest", json={"patient_ids": ids})
                elapsed = (time.perf_counter() - t) * 1000
                r.raise_for_status()
                assert len(r.json()["items"]) == 20_000
                return elapsed

            for _ in range(20):
                chart()
            charts = [chart() for _ in range(300)]
            for _ in range(3):
                latest()
            # 200: a p99 of 40 samples is about their worst one, one hiccup decides it.
            latests = [latest() for _ in range(200)]
            return charts, latests
    finally:
        api.stop()


def database_latencies(dsn: str, token: str, tz: str, seed: int) -> tuple[list[float], list[float]]:
    """What a chart request spends in the database, timed apart in the same phase: the
    chart's query alone (ms), and committing one audit row, as every request of a patient's
    data does before it answers (ms; the commit waits for the WAL to reach the disk)."""
    rng = random.Random(seed)
    today = datetime.now(ZoneInfo(tz)).date()
    first = today - timedelta(days=89)
    queries, commits = [], []
    with psycopg.connect(dsn) as conn:
        user = care_store.user_for_token(conn, token)
        assert user is not None
        conn.commit()
        for _ in range(300):
            patient = f"LP{rng.randrange(LARGE_TABLE_PATIENTS)}"
            t = time.perf_counter()
            assert readings_queries.daily(conn, patient, Metric.SYSTOLIC, first, today)
            queries.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            care_store.audit(conn, user, "benchmark:commit", patient)
            conn.commit()
            commits.append((time.perf_counter() - t) * 1000)
    return queries, commits


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__)
    parser.add_argument(
        "--readings", type=int, default=250_000, help="readings for the end-to-end phase"
    )
    parser.add_argument(
        "--offered", type=float, default=5_000, help="readings/s offered in the latency phase"
    )
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument(
        "--workers", type=int, default=2, help="ingest worker processes sharing the subscription"
    )
    parser.add_argument(
        "--large-rows",
        type=int,
        default=50_000_000,
        help="readings in the table for the query phase (0 skips it)",
    )
    args = parser.parse_args()

    services = ThrowawayServices("bench")
    work, server, broker = services.work, services.server, services.broker
    workers: list[subprocess.Popen[bytes]] = []
    collector = None
    try:
        say("starting throwaway TimescaleDB (fsync on) and Mosquitto")
        services.start()
        dsn = server.dsn
        migrate(dsn)
        register_edges_and_patients(dsn)

        latency_count = int(args.offered * args.latency_seconds)
        say(f"preparing {args.readings + latency_count:,} readings")
        readings = make_readings(args.readings, seed=1)
        latency_readings = make_readings(latency_count, seed=2)
        batches = make_batches(readings)
        latency_batches = make_batches(latency_readings)

        say("(a) raw COPY ceiling into the hypertable")
        ceiling = copy_ceiling(dsn, readings)
        say(f"    {ceiling:,.0f} rows/s")

        workers = start_workers(dsn, broker.port, args.workers, work)
        collector = AckCollector(broker.port)
        say(
            f"(b) end to end: {len(batches):,} messages of {PER_BATCH} readings, "
            f"{args.workers} workers"
        )
        rate = end_to_end(collector, batches)
        say(f"    {rate:,.0f} readings/s ({rate / ceiling:.0%} of COPY)")

        say(f"(c) latency at {args.offered:,.0f} readings/s for {args.latency_seconds:.0f} s")
        latencies = fixed_load(collector, latency_batches, args.offered)
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        say(f"    publish→ack p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f} ms")
        lost, duplicates = count_stored(dsn, len(readings) + len(latency_readings))
        say(f"    lost {lost}, duplicates {duplicates}")
        with psycopg.connect(dsn) as conn:
            (bytes_per_row,) = conn.execute(
                "SELECT hypertable_size('readings')::float / greatest(count(*), 1) FROM readings"
            ).fetchone()

        collector.close()
        collector = None
        for worker in workers:
            worker.terminate()
            worker.wait(15)
        workers = []

        results: dict[str, object] = {
            "copy_ceiling_rows_per_s": round(ceiling),
            "end_to_end_readings_per_s": round(rate),
            "ratio_to_copy": round(rate / ceiling, 3),
            "readings_per_message": PER_BATCH,
            "ingest_workers": args.workers,
            "end_to_end_readings": len(readings),
            "offered_readings_per_s": args.offered,
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(max(latencies), 1),
            "lost": lost,
            "duplicates": duplicates,
            "bytes_per_reading_with_indexes": round(bytes_per_row),
        }
        failed = None
        if args.large_rows:
            try:
                results.update(query_phase(dsn, broker.port, work, args.large_rows))
            except Exception as exc:
                # Half an hour of measurements above must not be lost with this phase.
                failed = f"{type(exc).__name__}: {exc}"
                results["query_phase_error"] = failed[:2000]
                say(f"    the query phase failed: {failed[:500]}")
        path = write_results("ingest", results)
        say(f"results in {path.relative_to(REPO)}")
        update_performance_doc("ingest", render(results, path))
        return 1 if failed else 0
    finally:
        if collector is not None:
            collector.close()
        for worker in workers:
            worker.terminate()
        services.close()


def query_phase(dsn: str, port: int, work: Path, large_rows: int) -> dict[str, object]:
    """(d): the API's chart and panel p99s with `large_rows` readings in the table."""
    say(f"(d) filling the table to {large_rows:,} readings (server-side)")
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE readings, readings_daily, patient_latest")
        conn.commit()
    started = time.perf_counter()
    rows = fill_large_table(dsn, large_rows, TIMEZONE)
    say(f"    {rows:,} rows in {time.perf_counter() - started:.0f} s; querying the API")
    token = _qc_token(dsn)
    unsettled_charts, unsettled_latests = api_latencies(dsn, port, work, token, seed=7)
    say(
        f"    right after the fill: chart p99 {percentile(unsettled_charts, 99):.1f} ms, "
        f"latest 10k p99 {percentile(unsettled_latests, 99):.1f} ms"
    )
    settle_s, dirty_kb = settle_writes(dsn)
    say(f"    checkpoint + sync: {settle_s:.1f} s ({dirty_kb / 1024:,.0f} MiB were dirty)")
    charts, latests = api_latencies(dsn, port, work, token, seed=8)
    # Other patients than the API's just read, whose pages that run brought into memory.
    chart_queries, commits = database_latencies(dsn, token, TIMEZONE, seed=9)
    found: dict[str, object] = dict(
        large_table_readings=rows,
        unsettled_chart_p99_ms=round(percentile(unsettled_charts, 99), 1),
        unsettled_latest_10k_p99_ms=round(percentile(unsettled_latests, 99), 1),
        settle_seconds=round(settle_s, 1),
        dirty_mib_before_settle=round(dirty_kb / 1024),
        chart_p50_ms=round(percentile(charts, 50), 1),
        chart_p99_ms=round(percentile(charts, 99), 1),
        latest_10k_p50_ms=round(percentile(latests, 50), 1),
        latest_10k_p99_ms=round(percentile(latests, 99), 1),
        chart_query_p50_ms=round(percentile(chart_queries, 50), 1),
        chart_query_p99_ms=round(percentile(chart_queries, 99), 1),
        audit_commit_p50_ms=round(percentile(commits, 50), 1),
        audit_commit_p99_ms=round(percentile(commits, 99), 1),
    )
    say(f"    chart p99 {found['chart_p99_ms']} ms, latest 10k p99 {found['latest_10k_p99_ms']} ms")
    return found


def render(results: dict[str, object], path: Path) -> str:
    data = json.loads(path.read_text())
    m = data["machine"]
    lines = [
        "## Ingest (`python -m benchmarks.ingest`)",
        "",
        f"Measured {data['measured_at']} on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB; PostgreSQL 15 + TimescaleDB 2.19.3 (fsync on), Mosquitto "
        "2.0.11, all on the same machine. Raw numbers: `benchmarks/results/ingest.json`.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| raw COPY into the hypertable | {results['copy_ceiling_rows_per_s']:,} rows/s | — |",
        f"| end to end, {PER_BATCH}-reading messages, {results['ingest_workers']} workers, "
        "until acked | "
        f"{results['end_to_end_readings_per_s']:,} readings/s | ≥ 20,000 |",
        f"| ratio to COPY (same run) | {results['ratio_to_copy']:.1%} | ≥ 50 % |",
        f"| publish → ack at {results['offered_readings_per_s']:,.0f} readings/s: p50 / p99 / "
        f"max | {results['p50_ms']} / {results['p99_ms']} / {results['max_ms']} ms | "
        "p99 ≤ 100 ms |",
        f"| lost / duplicated readings | {results['lost']} / {results['duplicates']} | 0 / 0 |",
        f"| table + index bytes per reading | {results['bytes_per_reading_with_indexes']} | — |",
    ]
    if "chart_p99_ms" in results:
        lines += [
            f"| 90-day daily chart via the API, {results['large_table_readings']:,} readings "
            f"in the table: p50 / p99 | {results['chart_p50_ms']} / {results['chart_p99_ms']}"
            " ms | p99 ≤ 25 ms |",
            f"| latest per metric for 10,000 patients via the API: p50 / p99 | "
            f"{results['latest_10k_p50_ms']} / {results['latest_10k_p99_ms']} ms | "
            "p99 ≤ 100 ms |",
            f"| a chart request's database parts timed apart, p50 / p99: its query; committing "
            f"its audit row | {results['chart_query_p50_ms']} / {results['chart_query_p99_ms']}"
            f" ms; {results['audit_commit_p50_ms']} / {results['audit_commit_p99_ms']} ms | — |",
            f"| the chart's and the panel's p99 right after the fill, before the checkpoint "
            "and sync "
            f"({results['dirty_mib_before_settle']:,} MiB dirty, {results['settle_seconds']} s "
            f"to settle) | {results['unsettled_chart_p99_ms']} / "
            f"{results['unsettled_latest_10k_p99_ms']} ms | — |",
        ]
    if "query_phase_error" in results:
        error = str(results["query_phase_error"])[:300]
        lines += ["", f"The query phase failed in this run: `{error}`."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
