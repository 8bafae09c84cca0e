"""An ingest worker is ready when the broker has granted its subscriptions, not merely when
it is connected, and /health counts a worker whose subscriptions were refused as down.
Real Mosquitto, real TimescaleDB, `python -m cloud serve`."""

from __future__ import annotations

import httpx
import psycopg

from cloud.db import ingest_store
from tests.conftest import wait_for
from tests.integration.edge_support import start_ingest


def _worker_row(database_url: str, worker_id: str):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT subscribed, broker_problem FROM ingest_workers WHERE worker_id = %s",
            (worker_id,),
        ).fetchone()


def test_a_worker_is_ready_once_granted_and_its_heartbeat_says_so(database_url, broker):
    worker = start_ingest(database_url, broker.port, "w-granted")  # returns once subscribed
    try:
        subscribed = worker.metrics.registry.get_sample_value(
            "carebridge_ingest_subscribed", {"worker": "w-granted"}
        )
        row = wait_for(
            lambda: (r := _worker_row(database_url, "w-granted")) and r[0] and r,
            timeout=5,
            message="a heartbeat saying subscribed",
        )
    finally:
        worker.stop()
    assert subscribed == 1.0
    assert worker.subscription_problem is None
    assert row == (True, None)


def test_health_counts_a_worker_whose_subscriptions_were_refused_as_down(cloud):
    problem = "the broker refused $share/ingest/carebridge/v1/edges/+/readings (Not authorized)"
    with psycopg.connect(cloud.env["CAREBRIDGE_DATABASE_URL"]) as conn:
        # What a standalone worker on a broker that refuses its account writes.
        ingest_store.record_heartbeat(
            conn,
            "w-deaf",
            "2026-12-07T08:00:00Z",
            {"messages": 0, "readings": 0, "dead_letters": 0},
            subscribed=False,
            broker_problem=problem,
        )
    body = httpx.get(f"{cloud.base_url}/health", timeout=5).json()
    workers = {w["worker_id"]: w for w in body["ingest"]["workers"]}
    deaf = workers.pop("w-deaf")
    assert deaf["up"] is False and deaf["subscribed"] is False
    assert deaf["broker_problem"] == problem
    (served,) = workers.values()  # the cloud's own worker, granted: the cloud is still up
    assert served["up"] is True and served["subscribed"] is True
    assert served["broker_problem"] is None
    assert body["ingest"]["up"] is True and body["status"] == "up"
