"""Shared fixtures: real TimescaleDB and Mosquitto on free loopback ports in temp folders.

If a service cannot start, the fixture raises and every test that needs it fails loudly:
nothing is ever skipped for want of infrastructure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cloud.db.migrate import migrate
from devstack.cloud import CloudProcess
from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port
from devstack.postgres import LocalPostgres


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A command's `main()` sets up logging as for a process of its own, to the stderr
    pytest captured for that test and closes after it; later tests' log lines must not
    go there ("--- Logging error ---" in every failing test's output)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    server = LocalPostgres.in_tempdir(free_port(), fsync=False)
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def migrated_template(pg_server: LocalPostgres) -> str:
    """A database the whole migration path ran on once, for the tests' databases to copy:
    a copy takes a fifth of the time the migrations do (`tests/integration/test_migrations.py`
    runs the path itself)."""
    name = "t_migrated_template"
    with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        migrate(pg_server.admin_dsn(name))
        # A copy fails while anyone is connected to the source; TimescaleDB's scheduler
        # would be, so nobody may connect any more.
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    return name


def copy_database(server: LocalPostgres, template: str, name: str) -> None:
    deadline = time.monotonic() + 10
    with psycopg.connect(server.admin_dsn(), autocommit=True) as conn:
        while True:
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except psycopg.errors.ObjectInUse:
                # A backend on its way out after the termination above still counts.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture
def database_url(pg_server: LocalPostgres, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    copy_database(pg_server, migrated_template, name)
    url = pg_server.admin_dsn(name)
    yield url
    with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    mosquitto = LocalMosquitto(tmp_path / "mosquitto", free_port())
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


def cloud_env(
    database_url: str, broker: LocalMosquitto, http_port: int, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_DATABASE_URL=database_url,
        CAREBRIDGE_MQTT_HOST="127.0.0.1",
        CAREBRIDGE_MQTT_PORT=str(broker.port),
        CAREBRIDGE_HTTP_PORT=str(http_port),
        CAREBRIDGE_INGEST_WORKER_ID=f"ingest-test-{uuid.uuid4().hex[:8]}",
        CAREBRIDGE_INGEST_HEARTBEAT_S="0.5",
        **extra,
    )
    return env


@contextlib.contextmanager
def running_cloud(
    database_url: str, broker: LocalMosquitto, workdir: Path, **extra: str
) -> Iterator[CloudProcess]:
    """The real cloud (`python -m cloud serve`) as a subprocess, with its ingest worker;
    `extra` are more `CAREBRIDGE_*` variables (a test's compressed intervals)."""
    port = free_port()
    env = cloud_env(database_url, broker, port, **extra)
    process = CloudProcess(env, port, workdir / "cloud.log")
    process.start(timeout=30)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def cloud(database_url: str, broker: LocalMosquitto, tmp_path: Path) -> Iterator[CloudProcess]:
    """The real cloud (`python -m cloud serve`) as a subprocess, with its ingest worker."""
    with running_cloud(database_url, broker, tmp_path) as process:
        yield process


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1, message: str = ""):  # type: ignore[no-untyped-def]
    """Poll until `predicate()` is truthy; return its value or fail with `message`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


PASSWORD = "correct horse battery staple"


def make_user(database_url: str, user_id: str, role: str, teams: tuple[str, ...] = ()) -> str:
    """Create a user (and any missing team) straight in the database; return a bearer token."""
    from datetime import timedelta

    from cloud.auth import Role
    from cloud.db import care_store

    with psycopg.connect(database_url, autocommit=True) as conn:
        for team in teams:
            conn.execute(
                "INSERT INTO care_teams (team_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (team, f"Team {team}"),
            )
        care_store.create_user(conn, user_id, user_id.title(), Role(role), PASSWORD, list(teams))
        token = care_store.issue_token(conn, user_id, PASSWORD, timedelta(hours=1))
    assert token is not None
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
