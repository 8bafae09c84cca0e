"""Test doubles for the app's unit tests: a provisioner that needs no cloud."""

from __future__ import annotations

from pathlib import Path

from devstack.ports import free_port
from edge_agent.provisioning import Credentials, write_credentials
from mobile_app.binding import Binding, BindingError


class FakeProvisioner:
    """Hands out patients for codes like the cloud would; the broker port is closed."""

    def __init__(self, patients: dict[str, str], *, mqtt_port: int | None = None) -> None:
        self.patients = patients
        self.spent: set[str] = set()
        self.mqtt_port = mqtt_port or free_port()

    async def __call__(self, cloud_url: str, code: str, data_dir: Path, file_name: str) -> Binding:
        if code in self.spent:
            raise BindingError("spent", "bind_error_used")
        if code not in self.patients:
            raise BindingError("unknown", "bind_error_unknown")
        self.spent.add(code)
        patient = self.patients[code]
        edge_id = f"home-{patient}"
        write_credentials(
            Credentials(
                edge_id, "home", patient, "127.0.0.1", self.mqtt_port, edge_id, "pw", False
            ),
            data_dir / file_name,
        )
        return Binding(edge_id=edge_id, patient_id=patient)
