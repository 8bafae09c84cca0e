"""The cloud's one settings object, read from `CAREBRIDGE_*` environment variables."""

from __future__ import annotations

import socket
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_worker_id() -> str:
    # Stable across restarts on purpose: the broker keeps a persistent session (and the
    # messages queued for it) under this id. Give each worker on one host its own id.
    return f"ingest-{socket.gethostname()}"


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:55432/carebridge"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 18830
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca_file: str | None = None
    mqtt_password_file: str | None = None
    """Mosquitto's password file, where provisioning adds each edge's account."""
    mqtt_pid_file: str | None = None
    """Mosquitto's pid file: provisioning sends SIGHUP so the broker reloads its accounts."""
    provision_mqtt_host: str | None = None
    """The broker address handed to enrolling edges (default: `mqtt_host`)."""
    provision_mqtt_port: int | None = None
    provision_mqtt_tls: bool = False
    provision_failure_limit: int = Field(default=10, ge=1)
    """Wrong or spent enrolment codes one client address may try per window before 429."""
    provision_failure_window_s: float = Field(default=600.0, gt=0)

    timezone: str = "Asia/Shanghai"
    """The hospital's time zone: it decides which calendar day a reading belongs to."""
    retention_days: int | None = Field(default=None, ge=1)
    """Drop raw readings older than this (whole chunks); None keeps them for ever."""
    dead_letter_retention_days: int | None = Field(default=None, ge=1)
    """Delete dead letters older than this; None: the readings' horizon, if there is one.
    They hold readings too, which should not outlive the stored ones."""

    sweep_interval_s: float = Field(default=30.0, gt=0)
    """How often the clinical sweeps run (escalations, no-repeat, trends; adherence hourly)."""

    web_node_modules: str | None = None
    """Where the web UI's npm packages are (default: cloud/web/node_modules, set-up puts
    them there); pages answer with an explanation when they are missing."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "info"

    ingest_in_process: bool = True
    """Run one ingest worker inside the API process (small sites, the demo, tests)."""
    ingest_worker_id: str = Field(default_factory=_default_worker_id)
    ingest_batch_max_readings: int = Field(default=5000, ge=1)
    ingest_linger_ms: int = Field(default=20, ge=0)
    ingest_queue_max_messages: int = Field(default=1000, ge=1)
    """Messages held in memory before the worker stops reading from the broker."""
    ingest_queue_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    """Payload bytes held in memory before the worker stops reading from the broker (one
    message larger than this is still taken, alone)."""
    ingest_retry_max_s: float = Field(default=10.0, gt=0)
    ingest_heartbeat_s: float = Field(default=2.0, gt=0)
    ingest_profile_cache_patients: int = Field(default=100_000, ge=1)
    """Patient profiles a worker keeps between flushes (a few hundred bytes each)."""
    ingest_profile_max_age_s: float = Field(default=300.0, gt=0)
    """A kept profile is read again after this long, even if no change was announced."""
    ingest_metrics_port: int | None = None
    """Where a standalone worker (`python -m cloud ingest`) serves /metrics on 127.0.0.1."""
    ingest_worker_stale_s: float = Field(default=15.0, gt=0)
    """A worker silent for longer is reported down by /health."""
    edge_offline_warn_minutes: float = Field(default=15.0, gt=0)
    """/health lists an edge offline for longer than this (and any with an outbox alarm)."""

    @property
    def database_location(self) -> str:
        """Where `database_url` points, without its password, for messages to operators."""
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(self.database_url)
        except ProgrammingError:
            return "(an unreadable CAREBRIDGE_DATABASE_URL)"
        keys = ("host", "port", "dbname", "user")
        return (
            " ".join(f"{key}={parts[key]}" for key in keys if key in parts) or "(libpq's defaults)"
        )


@lru_cache(maxsize=1)
def get_settings() -> CloudSettings:
    return CloudSettings()
