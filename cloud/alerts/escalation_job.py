"""Runs the SLA escalation sweep periodically in the cloud process.

Several cloud processes may run it at once: the sweep locks the rows it escalates with
`FOR UPDATE SKIP LOCKED`, so each overdue alert climbs one rung per deadline, once.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from cloud.db.care_store import run_escalations

log = logging.getLogger("carebridge.escalation")


class EscalationJob:
    def __init__(self, pool: ConnectionPool, interval_s: float) -> None:
        self._pool = pool
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="escalations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def sweep(self) -> int:
        with self._pool.connection() as conn:
            done = run_escalations(conn, datetime.now(UTC))
        for item in done:
            log.warning("alert escalated", extra={k: str(v) for k, v in item.items()})
        return len(done)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sweep()
            except psycopg.Error:
                log.exception("escalation sweep failed; trying again next interval")
