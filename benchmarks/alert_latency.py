"""`python -m benchmarks.alert_latency`: from MQTT publish to an alert visible through the API.

Throwaway broker and database (fsync on), the real cloud (API with one ingest worker, plus
one standalone worker). Simulated edges publish a steady load of 50-reading batches in
which 1 % of readings are critical (glucose 2.5 mmol/L, each for a different patient, so
each opens its own alert). The clock stops when the alert's event arrives on
`GET /api/v1/queue/events`, which is sent only after the alert's transaction committed; a
GET of every alert afterwards checks it is really there. Rule evaluation throughput is
measured separately on the pure rules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from benchmarks.common import (
    REPO,
    ThrowawayServices,
    percentile,
    say,
    update_performance_doc,
    write_results,
)
from benchmarks.ingest import EDGES, PER_BATCH, AckCollector, Batch, start_workers
from cloud.alerts.rules import evaluate
from cloud.auth import Role
from cloud.db import care_store
from cloud.db.migrate import migrate
from devstack.cloud import CloudProcess
from devstack.ports import free_port
from protocols.messages import ReadingsBatch, encode
from protocols.reading import MealContext
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter


def build_load(
    seconds: float, rate: float, abnormal_share: float, seed: int
) -> tuple[list[Batch], dict[str, str]]:
    """Batches for `seconds` at `rate` readings/s, and which batch carries each patient's
    abnormal reading (patient id → batch id). Every measurement is a different patient, as
    in a deployment of a million patients measuring a few times a day; cycling a few
    thousand patients would make concurrent workers queue on the same rollup rows."""
    rng = random.Random(seed)
    total = int(seconds * rate)
    every = round(1 / abnormal_share)
    meter = SimulatedGlucoseMeter("LAT-GLU")
    cuffs = [SimulatedCuff(f"LAT-BP-{i}") for i in range(200)]
    readings = []
    abnormal_patients = []
    now = datetime.now(UTC)
    normal_since = every  # start with an abnormal one
    while len(readings) < total:
        n = len(readings)
        if normal_since >= every - 1:
            patient = f"AB{len(abnormal_patients)}"
            abnormal_patients.append(patient)
            readings += meter.measure(
                2.5,
                patient_id=patient,
                meal=MealContext.FASTING,
                at=now + timedelta(milliseconds=n),
            )
            normal_since = 0
        else:
            normal_since += 4
            cuff = cuffs[n % len(cuffs)]
            readings += cuff.measure(
                rng.randint(110, 139),
                rng.randint(70, 84),
                72,
                patient_id=f"OK{n // 4}",
                at=now + timedelta(milliseconds=n),
            )
    batches: list[Batch] = []
    abnormal_batch: dict[str, str] = {}
    for i in range(0, len(readings), PER_BATCH):
        chunk = readings[i : i + PER_BATCH]
        edge = EDGES[(i // PER_BATCH) % len(EDGES)]
        batch = ReadingsBatch(
            edge_id=edge, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=chunk
        )
        batches.append(
            Batch(edge, str(batch.batch_id), encode(batch), [r.reading_id for r in chunk])
        )
        for r in chunk:
            if r.patient_id and r.patient_id.startswith("AB"):
                abnormal_batch[r.patient_id] = str(batch.batch_id)
    return batches, abnormal_batch


def rule_throughput(count: int = 200_000) -> float:
    cuff = SimulatedCuff("EVAL")
    readings = [
        r
        for i in range(count // 4)
        for r in cuff.measure(120 + i % 70, 80, 70, patient_id=f"E{i % 1000}")
    ]
    started = time.perf_counter()
    for i in range(0, len(readings), 1000):
        evaluate(readings[i : i + 1000])
    return len(readings) / (time.perf_counter() - started)


class EventListener:
    """Reads the API's event stream and notes when each patient's alert arrives."""

    def __init__(self, base_url: str, token: str) -> None:
        self.seen: dict[str, float] = {}
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url, token), daemon=True)
        self._thread.start()

    def _run(self, base_url: str, token: str) -> None:
        url = f"{base_url}/api/v1/queue/events?access_token={token}"
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", url, timeout=httpx.Timeout(10, read=None)) as response,
        ):
            for line in response.iter_lines():
                if line.startswith(":"):
                    self.connected.set()
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["action"] == "opened":
                        self.seen.setdefault(event["patient_id"], time.perf_counter())
                if self._stop.is_set():
                    return


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alert_latency", description=__doc__)
    parser.add_argument("--rate", type=float, default=10_000, help="readings/s offered")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--abnormal", type=float, default=0.01, help="share of readings")
    args = parser.parse_args()

    services = ThrowawayServices("alertbench")
    work, server, broker = services.work, services.server, services.broker
    cloud: CloudProcess | None = None
    workers = []
    collector = None
    try:
        say("measuring rule evaluation on the pure rules")
        rules_rate = rule_throughput()
        say(f"    {rules_rate:,.0f} readings/s")
        say(f"preparing {args.rate * args.seconds:,.0f} readings, {args.abnormal:.0%} critical")
        batches, abnormal_batch = build_load(args.seconds, args.rate, args.abnormal, seed=3)

        say("starting throwaway TimescaleDB (fsync on), Mosquitto and the cloud")
        services.start()
        dsn = server.dsn
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for edge in EDGES:
                conn.execute("INSERT INTO edges (edge_id, mode) VALUES (%s, 'home')", (edge,))
            care_store.create_team(conn, "bench", "Benchmark team")
            with conn.transaction():
                for patient in abnormal_batch:
                    care_store.create_patient(conn, patient, "基准", team_id="bench")
            care_store.create_user(conn, "bench-qc", "QC", Role.QC_SUPERVISOR, "bench-password")
            token = care_store.issue_token(conn, "bench-qc", "bench-password", timedelta(hours=1))
        assert token is not None
        http_port = free_port()
        env = dict(
            os.environ,
            CAREBRIDGE_DATABASE_URL=dsn,
            CAREBRIDGE_MQTT_PORT=str(broker.port),
            CAREBRIDGE_HTTP_PORT=str(http_port),
            CAREBRIDGE_LOG_LEVEL="warning",
            CAREBRIDGE_INGEST_WORKER_ID="bench-api-worker",
        )
        cloud = CloudProcess(env, http_port, work / "cloud.log")
        cloud.start()
        workers = start_workers(dsn, broker.port, 1, work)
        listener = EventListener(cloud.base_url, token)
        if not listener.connected.wait(10):
            raise RuntimeError("the event stream did not connect")
        collector = AckCollector(broker.port)

        say(f"publishing {len(batches):,} batches at {args.rate:,.0f} readings/s")
        interval = PER_BATCH / args.rate
        sent: dict[str, float] = {}
        start = time.perf_counter()
        for n, batch in enumerate(batches):
            due = start + n * interval
            while (now := time.perf_counter()) < due:
                time.sleep(min(due - now, 0.002))
            sent[batch.batch_id] = collector.publish(batch)
        achieved = sum(len(b.reading_ids) for b in batches) / (time.perf_counter() - start)
        collector.wait_for(list(sent), timeout=120)
        deadline = time.monotonic() + 30
        while len(listener.seen) < len(abnormal_batch) and time.monotonic() < deadline:
            time.sleep(0.1)

        timed = sorted(
            (sent[b] - start, (listener.seen[p] - sent[b]) * 1000)
            for p, b in abnormal_batch.items()
            if p in listener.seen
        )
        latencies = [latency for _at, latency in timed]
        # The worst latency in each second of the run: shows whether the tail is a warm-up,
        # a steady backlog or spikes.
        by_second: dict[int, float] = {}
        for at, latency in timed:
            by_second[int(at)] = max(by_second.get(int(at), 0.0), latency)
        with httpx.Client(
            base_url=cloud.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            listed = client.get("/api/v1/queue", params={"limit": 1}).json()["total"]
        results = {
            "offered_readings_per_s": args.rate,
            "achieved_publish_readings_per_s": round(achieved),
            "seconds": args.seconds,
            "abnormal_share": args.abnormal,
            "alerts_expected": len(abnormal_batch),
            "alerts_seen": len(latencies),
            "alerts_listed_by_api": listed,
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1),
            "rule_eval_readings_per_s": round(rules_rate),
            "max_ms_by_second": [round(by_second[k]) for k in sorted(by_second)],
            "ingest_workers": 2,
        }
        say(
            f"    alerts {results['alerts_seen']}/{results['alerts_expected']} seen, "
            f"p50 {results['p50_ms']} ms, p99 {results['p99_ms']} ms, max {results['max_ms']} ms"
        )
        path = write_results("alert_latency", results)
        say(f"results in {path.relative_to(REPO)}")
        update_performance_doc("alert_latency", render(results, path))
        return 0
    finally:
        if collector is not None:
            collector.close()
        for worker in workers:
            worker.terminate()
        if cloud is not None:
            cloud.stop()
        services.close()


def render(results: dict[str, object], path: Path) -> str:
    data = json.loads(path.read_text())
    m = data["machine"]
    return "\n".join(
        [
            "## Alert latency (`python -m benchmarks.alert_latency`)",
            "",
            f"Measured {data['measured_at']} on {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB; broker, database (fsync on), cloud and load generator on "
            "the same machine. Latency: MQTT publish of the batch holding a critical reading → "
            "the alert's event on `GET /api/v1/queue/events` (sent after commit).",
            "",
            "| measure | value | target |",
            "|---|---|---|",
            f"| offered / achieved load | {results['offered_readings_per_s']:,.0f} / "
            f"{results['achieved_publish_readings_per_s']:,} readings/s, "
            f"{results['abnormal_share']:.0%} critical, {results['seconds']:.0f} s | ≥ 10,000 |",
            f"| alerts seen / expected (listed by the API) | {results['alerts_seen']} / "
            f"{results['alerts_expected']} ({results['alerts_listed_by_api']}) | all |",
            f"| publish → alert visible: p50 / p99 / max | {results['p50_ms']} / "
            f"{results['p99_ms']} / {results['max_ms']} ms | p99 ≤ 250 ms |",
            f"| rule evaluation (pure, one core) | {results['rule_eval_readings_per_s']:,} "
            "readings/s | — |",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
