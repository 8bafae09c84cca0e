"""The cloud's periodic clinical work, in every cloud process: SLA escalations, the
no-repeat check, trend rules for patients with new readings, pathway tasks, the edges'
configurations that changed, and (hourly) adherence to measurement plans. Each sweep locks
what it handles with `FOR UPDATE SKIP LOCKED` (or is idempotent), so several processes may
run it side by side."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from cloud.db import edge_config_store, pathway_tasks, sweeps
from cloud.db.care_store import run_escalations
from cloud.notify import NotificationError, NotificationPublisher, send_template

log = logging.getLogger("carebridge.sweeps")

ADHERENCE_EVERY_S = 3600.0


class ClinicalSweepJob:
    def __init__(
        self,
        pool: ConnectionPool,
        publisher: NotificationPublisher,
        timezone: str,
        interval_s: float,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._timezone = timezone
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clinical-sweeps", daemon=True)
        self._last_adherence = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        now = now or datetime.now(UTC)
        done: dict[str, int] = {}
        with self._pool.connection() as conn:
            done["escalated"] = len(run_escalations(conn, now))
            done["no_repeat"] = sweeps.run_repeat_check(conn, now)
            done["trends"] = sweeps.run_trend_sweep(conn, now, self._timezone)
            pathway = pathway_tasks.run_pathway_sweep(
                conn, now, self._timezone, pathway_tasks.template_sender(conn, self._publisher)
            )
            done["pathway_tasks"] = pathway["activated"] + pathway["no_shows"]
            # After the pathway sweep: the plans it just started are in this round's configs.
            done["edge_configs"] = edge_config_store.run_config_sweep(
                conn, self._publisher.publish_config, now, self._timezone
            )
            if time.monotonic() - self._last_adherence >= ADHERENCE_EVERY_S:
                done["adherence"] = sweeps.run_adherence_sweep(
                    conn, now, self._timezone, remind=self._reminder(conn)
                )
                self._last_adherence = time.monotonic()
        if any(done.values()):
            log.info("clinical sweep", extra=done)
        return done

    def _reminder(self, conn: psycopg.Connection) -> Callable[[str], None]:
        def remind(patient_id: str) -> None:
            try:
                send_template(
                    conn,
                    self._publisher,
                    patient_id=patient_id,
                    template_id="measure_reminder",
                    sender_id="system",
                )
            except NotificationError as exc:
                # No app to reach (a centre-only patient): the follow-up task still stands.
                log.info(
                    "reminder not sent", extra={"patient_id": patient_id, "reason": exc.reason}
                )

        return remind

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sweep()
            except psycopg.Error:
                log.exception("clinical sweep failed; trying again next interval")
