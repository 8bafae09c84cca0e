"""Enrolment: trade a one-time code from the cloud for this edge's identity and broker account.

The credentials file is the edge's only secret. It is written with owner-only permissions
(0600) from the first byte — created under a temporary name with that mode, then renamed —
so no other local user can ever read it, not even for a moment.
The standard library's HTTP client is enough for one POST; the edge needs no extra package.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_agent.agent import AGENT_VERSION
from edge_agent.settings import EdgeSettings
from protocols.errors import CareBridgeError

CREDENTIALS_FILE = "credentials.json"


class EnrolmentError(CareBridgeError):
    code = "enrolment_failed"


class EnrolmentCodeUnknownError(EnrolmentError):
    code = "enrolment_code_unknown"


class EnrolmentCodeSpentError(EnrolmentError):
    code = "enrolment_code_spent"


@dataclass(frozen=True)
class Credentials:
    edge_id: str
    mode: str
    patient_id: str | None
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str
    mqtt_tls: bool

    @classmethod
    def from_response(cls, body: dict[str, Any]) -> Credentials:
        mqtt = body["mqtt"]
        return cls(
            edge_id=str(body["edge_id"]),
            mode=str(body["mode"]),
            patient_id=body.get("patient_id"),
            mqtt_host=str(mqtt["host"]),
            mqtt_port=int(mqtt["port"]),
            mqtt_username=str(mqtt["username"]),
            mqtt_password=str(mqtt["password"]),
            mqtt_tls=bool(mqtt.get("tls", False)),
        )


def enrol(
    cloud_url: str,
    code: str,
    data_dir: Path,
    *,
    file_name: str = CREDENTIALS_FILE,
    timeout_s: float = 15.0,
) -> Credentials:
    """Spend `code` at `cloud_url` and keep the credentials in `data_dir/credentials.json`."""
    request = urllib.request.Request(
        cloud_url.rstrip("/") + "/api/v1/provision",
        data=json.dumps({"code": code.strip(), "agent_version": AGENT_VERSION}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        if exc.code == 404:
            raise EnrolmentCodeUnknownError(
                f"注册码无效，请核对后重试。 / Unknown enrolment code. ({detail})"
            ) from exc
        if exc.code == 410:
            raise EnrolmentCodeSpentError(
                "注册码已使用或已过期，请向工作人员索取新码。 / "
                f"The enrolment code was already used or has expired; ask for a new one. ({detail})"
            ) from exc
        raise EnrolmentError(f"云端拒绝注册 / the cloud refused: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnrolmentError(
            f"无法连接云端 {cloud_url} / cannot reach the cloud at {cloud_url}: {exc}"
        ) from exc
    credentials = Credentials.from_response(body)
    write_credentials(credentials, data_dir / file_name)
    return credentials


def write_credentials(credentials: Credentials, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(credentials), out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def load_credentials(path: Path) -> Credentials | None:
    """The stored credentials, or None when this edge was never enrolled."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EnrolmentError(f"credentials file {path} unreadable: {exc}") from exc
    if path.stat().st_mode & 0o077:
        raise EnrolmentError(
            f"credentials file {path} is readable by others; run `chmod 600 {path}`"
        )
    return Credentials(**data)


def apply_credentials(settings: EdgeSettings) -> EdgeSettings:
    """The settings with this edge's enrolled identity and broker account, if it has one."""
    credentials = load_credentials(settings.credentials_path)
    if credentials is None:
        return settings
    return settings.model_copy(
        update={
            "edge_id": credentials.edge_id,
            "mode": credentials.mode,
            "mqtt_host": credentials.mqtt_host,
            "mqtt_port": credentials.mqtt_port,
            "mqtt_username": credentials.mqtt_username,
            "mqtt_password": credentials.mqtt_password,
            "mqtt_tls": credentials.mqtt_tls or settings.mqtt_tls,
            "home_patient_id": credentials.patient_id or settings.home_patient_id,
        }
    )
