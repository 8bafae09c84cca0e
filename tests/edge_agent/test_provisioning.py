"""The credentials file: owner-only from the first byte, and applied to the settings.
(Enrolling against the real cloud is in tests/integration/test_edge_provisioning.py.)"""

import os
import stat

import pytest

from edge_agent.provisioning import (
    Credentials,
    EnrolmentError,
    apply_credentials,
    load_credentials,
    write_credentials,
)
from edge_agent.settings import EdgeSettings

CREDS = Credentials(
    edge_id="centre-ab12cd34ef",
    mode="centre",
    patient_id=None,
    mqtt_host="broker.example",
    mqtt_port=8883,
    mqtt_username="centre-ab12cd34ef",
    mqtt_password="s3cret",
    mqtt_tls=True,
)


def test_credentials_are_written_owner_only_and_read_back(tmp_path):
    path = tmp_path / "edge" / "credentials.json"
    old = os.umask(0)  # even a careless umask must not widen the file
    try:
        write_credentials(CREDS, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == CREDS
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]


def test_a_credentials_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "credentials.json"
    write_credentials(CREDS, path)
    path.chmod(0o644)
    with pytest.raises(EnrolmentError, match="chmod 600"):
        load_credentials(path)


def test_enrolled_identity_replaces_the_defaults(tmp_path):
    path = tmp_path / "credentials.json"
    settings = EdgeSettings(credentials_path=path)
    assert apply_credentials(settings) is settings  # not enrolled yet
    write_credentials(CREDS, path)
    applied = apply_credentials(settings)
    assert (applied.edge_id, applied.mqtt_host, applied.mqtt_port) == (
        "centre-ab12cd34ef",
        "broker.example",
        8883,
    )
    assert applied.mqtt_username == "centre-ab12cd34ef" and applied.mqtt_password == "s3cret"
    assert applied.mqtt_tls
