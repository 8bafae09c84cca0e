"""Two things that decide ingest's publish-to-ack latency at low load."""

from __future__ import annotations

import socket
import time

from cloud.ingest.intake import InboundMessage
from cloud.ingest.worker import IngestWorker, _Queued
from cloud.mqtt_client import send_at_once
from cloud.settings import CloudSettings


def test_broker_connections_send_small_packets_at_once() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    try:
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # paho's default
        send_at_once(None, None, client)  # type: ignore[arg-type]
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.close()
        server.close()


def _worker(linger_ms: int) -> IngestWorker:
    settings = CloudSettings(ingest_linger_ms=linger_ms, ingest_worker_id="linger-test")
    return IngestWorker(settings)  # never started: no broker or database is touched


def _queued(worker: IngestWorker, arrived: float, n: int) -> None:
    message = InboundMessage("carebridge/v1/not-a-readings-topic", b"{}", n)
    worker._queue.put(_Queued(message, 0, arrived))


def test_messages_that_waited_through_a_flush_are_flushed_without_lingering_again() -> None:
    worker = _worker(linger_ms=300)
    long_ago = time.monotonic() - 1.0  # queued while the previous flush ran
    for n in range(3):
        _queued(worker, long_ago, n)
    started = time.monotonic()
    batch: list[_Queued] = []
    intake = worker._collect(batch)
    assert time.monotonic() - started < 0.15  # well under the 300 ms linger
    assert [item.message.mid for item in batch] == [0, 1, 2]
    assert len(intake.dead_letters) == 3  # judged as they were collected


def test_a_fresh_message_still_waits_for_company_until_the_linger_ends() -> None:
    worker = _worker(linger_ms=200)
    _queued(worker, time.monotonic(), 0)
    started = time.monotonic()
    batch: list[_Queued] = []
    worker._collect(batch)
    assert time.monotonic() - started >= 0.18
    assert len(batch) == 1
