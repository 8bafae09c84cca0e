"""The edge agent's one settings object, read from `CAREBRIDGE_EDGE_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocols.messages import MAX_READINGS_PER_BATCH


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAREBRIDGE_EDGE_", extra="ignore")

    edge_id: str = Field(default="edge-demo", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    mode: str = Field(default="centre", pattern=r"^(centre|home)$")
    outbox_path: Path = Path(".local/edge/outbox.sqlite3")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 18830
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca_file: str | None = None
    batch_max_readings: int = Field(default=500, ge=1, le=MAX_READINGS_PER_BATCH)
    linger_ms: int = Field(default=50, ge=0)
    in_flight_batches: int = Field(default=8, ge=1)
    ack_timeout_s: float = Field(default=30.0, gt=0)
    """A batch not acknowledged within this time is sent again (ids make that safe)."""
    status_interval_s: float = Field(default=30.0, gt=0)
    log_level: str = "info"
