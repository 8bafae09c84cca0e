"""Binding the phone to a patient with the code (or QR) the case manager hands out.

The code is an enrolment code of the provisioning contract: `POST /api/v1/provision`
with it returns the home edge's id, its patient and its MQTT credentials, which
`edge_agent.provisioning.enrol` keeps in the credentials file the agent reads. The QR code
carries the same code, optionally with the cloud's address:
``carebridge://enrol?code=ABCD-2345&cloud=https://care.example-hospital.cn``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from edge_agent.provisioning import (
    EnrolmentCodeSpentError,
    EnrolmentCodeUnknownError,
    EnrolmentError,
    enrol,
)
from protocols.errors import CareBridgeError

_CODE = re.compile(r"^[A-Z0-9]{8}$")
PROVISION_TIMEOUT_S = 15.0


class BindingError(CareBridgeError):
    """The phone could not be bound; `code` says why in words the screens translate."""

    code = "binding_failed"

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class Binding:
    edge_id: str
    patient_id: str


def parse_code(entered: str) -> tuple[str, str | None]:
    """(code as XXXX-XXXX, cloud URL from a QR link or None); BindingError if malformed."""
    text = entered.strip()
    cloud_url: str | None = None
    if text.lower().startswith("carebridge://"):
        query = parse_qs(urlparse(text).query)
        text = (query.get("code") or [""])[0]
        clouds = query.get("cloud")
        cloud_url = clouds[0] if clouds else None
    compact = re.sub(r"[\s\-–—]", "", text).upper()
    if not _CODE.match(compact):
        raise BindingError(f"malformed code {entered!r}", "bind_error_format")
    return f"{compact[:4]}-{compact[4:]}", cloud_url


async def provision(cloud_url: str, code: str, data_dir: Path, file_name: str) -> Binding:
    """Spend the code (`edge_agent.provisioning.enrol`, which keeps the broker account in
    `data_dir/file_name`, mode 0600) and say whom this phone now measures for."""
    try:
        credentials = await asyncio.to_thread(
            enrol, cloud_url, code, data_dir, file_name=file_name, timeout_s=PROVISION_TIMEOUT_S
        )
    except EnrolmentCodeSpentError as exc:
        raise BindingError(exc.reason, "bind_error_used") from exc
    except EnrolmentCodeUnknownError as exc:
        raise BindingError(exc.reason, "bind_error_unknown") from exc
    except EnrolmentError as exc:
        raise BindingError(exc.reason, "bind_error_network") from exc
    if credentials.mode != "home" or not credentials.patient_id:
        (data_dir / file_name).unlink(missing_ok=True)
        raise BindingError("the code is not a home-patient code", "bind_error_unknown")
    return Binding(edge_id=credentials.edge_id, patient_id=credentials.patient_id)
