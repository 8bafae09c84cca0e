"""Prometheus metrics of one ingest worker, in a registry of its own (several workers may
share a process in tests, and each must count only itself)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self, worker_id: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"worker": worker_id}
        self.messages = Counter(
            "carebridge_ingest_messages",
            "MQTT messages taken in",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.readings = Counter(
            "carebridge_ingest_readings",
            "Readings accepted (new or already stored)",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.stored = Counter(
            "carebridge_ingest_readings_new",
            "Readings new to the database",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.dead_letters = Counter(
            "carebridge_ingest_dead_letters",
            "Dead letters written, by reason",
            ["worker", "code"],
            registry=self.registry,
        )
        self.internal_errors = Counter(
            "carebridge_ingest_internal_errors",
            "Failures of the worker's own code (each logged with its traceback)",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.acks = Counter(
            "carebridge_ingest_acks",
            "Acks published to edges after commit",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.batch_readings = Histogram(
            "carebridge_ingest_batch_readings",
            "Readings per database flush",
            ["worker"],
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        ).labels(**labels)
        self.flush_seconds = Histogram(
            "carebridge_ingest_flush_seconds",
            "Time to store one flush, commit included",
            ["worker"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        ).labels(**labels)
        self.lag_seconds = Histogram(
            "carebridge_ingest_lag_seconds",
            "From a message's arrival at the worker to the commit that stored it",
            ["worker"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120),
            registry=self.registry,
        ).labels(**labels)
        self.queue_depth = Gauge(
            "carebridge_ingest_queue_depth",
            "Messages waiting in memory",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.queue_bytes = Gauge(
            "carebridge_ingest_queue_bytes",
            "Payload bytes held in memory, queued or in the flush under way",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.database_up = Gauge(
            "carebridge_ingest_database_up",
            "1 when the last database call worked",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.broker_up = Gauge(
            "carebridge_ingest_broker_connected",
            "1 while connected to the broker",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
        self.subscribed = Gauge(
            "carebridge_ingest_subscribed",
            "1 while the broker grants every subscription of the worker",
            ["worker"],
            registry=self.registry,
        ).labels(**labels)
