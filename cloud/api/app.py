"""The FastAPI application and its life cycle (pool, in-process ingest, sweeps, feeds).

The schema is migrated by whoever runs the app (`python -m cloud serve`, the tests), not here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool

from cloud.alerts.sweep_job import ClinicalSweepJob
from cloud.api import (
    admin_routes,
    assignment_routes,
    care_routes,
    devices_routes,
    edge_config_routes,
    edge_routes,
    programme_routes,
    provisioning_routes,
    qc_routes,
    readings_routes,
    report_routes,
    routes,
    rules_routes,
)
from cloud.api.live import AlertFeed
from cloud.ingest.edge_status import EdgeStatusListener
from cloud.ingest.worker import IngestWorker
from cloud.notify import NotificationPublisher
from cloud.settings import CloudSettings
from cloud.web import pages as web_pages
from protocols.errors import CareBridgeError

log = logging.getLogger("carebridge.api")


def create_app(settings: CloudSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Autocommit: each statement stands alone unless a store opens a transaction, so an
        # audit row is kept even when the request then fails.
        pool = ConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=10,
            open=True,
            kwargs={"autocommit": True},
        )
        worker = IngestWorker(settings) if settings.ingest_in_process else None
        if worker is not None:
            worker.start()
        publisher = NotificationPublisher(settings)
        app.state.publisher = publisher
        sweeps = ClinicalSweepJob(pool, publisher, settings.timezone, settings.sweep_interval_s)
        sweeps.start()
        edge_status = EdgeStatusListener(settings, pool)
        edge_status.start()
        feed = AlertFeed(settings.database_url)
        feed.start()
        app.state.feed = feed
        app.state.settings = settings
        app.state.pool = pool
        app.state.worker = worker
        log.info("cloud started", extra={"http_port": settings.http_port})
        try:
            yield
        finally:
            await feed.stop()
            sweeps.stop()  # before the publisher closes: a sweep may still be sending
            # Each MQTT client may be waiting out a reconnect delay (up to a second) when
            # the broker is away; stopping them side by side waits it out once.
            mqtt_stops = [edge_status.stop, publisher.close]
            if worker is not None:
                mqtt_stops.append(worker.stop)
            await asyncio.gather(*(asyncio.to_thread(stop) for stop in mqtt_stops))
            pool.close()

    app = FastAPI(
        title="carebridge cloud",
        version="0.1.0",
        lifespan=lifespan,
        description="Readings, alerts and work queues for post-discharge case management.",
    )

    @app.exception_handler(CareBridgeError)
    async def _typed_error(_request: Request, exc: CareBridgeError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": exc.code, "reason": exc.reason})

    app.include_router(routes.router)
    app.include_router(readings_routes.router)
    app.include_router(devices_routes.router)
    app.include_router(care_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(report_routes.router)
    app.include_router(rules_routes.router)
    app.include_router(assignment_routes.router)
    app.include_router(provisioning_routes.router)
    app.include_router(programme_routes.router)
    app.include_router(qc_routes.router)
    app.include_router(edge_routes.router)
    app.include_router(edge_config_routes.router)
    web_pages.install(app)
    return app
