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
    mqtt_tls: bool = False
    """TLS to the broker with the system's CAs (or `mqtt_tls_ca_file` when set)."""
    mqtt_tls_ca_file: str | None = None
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    credentials_path: Path = Path(".local/edge/credentials.json")
    """Written by `enrol` (mode 0600); when present its edge id, mode and broker account
    replace the values above."""
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    """Jittered exponential backoff between broker connection attempts."""
    drain_rate_readings_per_s: float = Field(default=2000.0, gt=0)
    """The most readings a second the edge sends on average, so a backlog drains paced."""
    drain_burst_readings: int = Field(default=2000, ge=1)
    outbox_max_readings: int = Field(default=1_000_000, ge=1)
    """Beyond this the outbox refuses, loudly, new readings a device keeps to give again (a
    glucose meter's memory); those a device forgot once handed over are stored past it."""
    outbox_warn_ratio: float = Field(default=0.8, gt=0, le=1)
    outbox_critical_ratio: float = Field(default=0.95, gt=0, le=1)
    batch_max_readings: int = Field(default=500, ge=1, le=MAX_READINGS_PER_BATCH)
    linger_ms: int = Field(default=50, ge=0)
    in_flight_batches: int = Field(default=8, ge=1)
    ack_timeout_s: float = Field(default=30.0, gt=0)
    """A batch not acknowledged within this time is sent again (ids make that safe)."""
    status_interval_s: float = Field(default=30.0, gt=0)
    log_level: str = "info"

    # -- devices and sessions (docs/edge_agent.md) --------------------------------------
    home_patient_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")
    """Home mode: the phone's patient, owner of every reading not given to a family member."""
    device_timezone: str | None = None
    """IANA zone device clocks are set to and read in; None is the machine's own zone."""
    session_timeout_s: float = Field(default=600.0, gt=0)
    """A centre patient session ends after this long without a reading."""
    member_choice_s: float = Field(default=300.0, gt=0)
    """Home mode: how long a family member chosen for a measurement stays chosen."""
    clock_tolerance_s: float = Field(default=90.0, ge=0)
    """A device clock off by no more than this is trusted as it is."""
    max_device_links: int = Field(default=8, ge=1)
    """Devices connected at once (a centre has several shared devices)."""
    connect_timeout_s: float = Field(default=20.0, gt=0)
    device_idle_timeout_s: float = Field(default=10.0, gt=0)
    """A session ends once the device has sent nothing for this long."""
    link_watchdog_s: float = Field(default=120.0, gt=0)
    """A link up this long without a single record or the driver ending is cut and retried."""
    resync_after_s: float = Field(default=30.0, ge=0)
    """After a good session, wait this long before connecting to the same device again."""
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=18790, ge=0, le=65535)
    """Local health endpoint (`GET /health`); 0 switches it off."""
