"""Provisioning on an authenticated Mosquitto: a one-time code becomes an edge identity with
its own broker account; that edge can publish only as itself. Real cloud, broker, database."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from cloud.db import care_store
from devstack.cloud import CloudProcess
from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port
from edge_agent.agent import EdgeAgent
from edge_agent.outbox import Outbox
from edge_agent.provisioning import (
    EnrolmentCodeSpentError,
    EnrolmentCodeUnknownError,
    apply_credentials,
    enrol,
    load_credentials,
)
from edge_agent.uplink import MqttUplink
from protocols import topics
from protocols.messages import ReadingsBatch, encode
from simulators.readings import SimulatedGlucoseMeter
from tests.conftest import bearer, cloud_env, make_user, wait_for
from tests.integration.edge_support import fast_edge_settings, stored

CLOUD_USER, CLOUD_PASSWORD = "carebridge-cloud", "cloud-secret"


@pytest.fixture
def secure_broker(tmp_path):
    mosquitto = LocalMosquitto.authenticated(
        tmp_path / "mosquitto", free_port(), {CLOUD_USER: CLOUD_PASSWORD}
    )
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture
def secure_cloud(database_url, secure_broker, tmp_path):
    port = free_port()
    env = cloud_env(
        database_url,
        secure_broker,
        port,
        CAREBRIDGE_MQTT_USERNAME=CLOUD_USER,
        CAREBRIDGE_MQTT_PASSWORD=CLOUD_PASSWORD,
        CAREBRIDGE_MQTT_PASSWORD_FILE=str(secure_broker.password_file),
        CAREBRIDGE_MQTT_PID_FILE=str(secure_broker.pid_file),
    )
    process = CloudProcess(env, port, tmp_path / "cloud.log")
    process.start(timeout=30)
    try:
        yield process
    finally:
        process.stop()


def _code(cloud: CloudProcess, token: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{cloud.base_url}/api/v1/enrolment-codes", json=body, headers=bearer(token), timeout=10
    )


def _connack(port: int, username: str | None, password: str | None) -> str:
    result: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _f, rc, _p: result.append(str(rc))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_for(lambda: result, timeout=5, message="CONNACK")
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def test_enrolled_edge_gets_its_own_account_and_cannot_publish_as_another(
    secure_cloud, secure_broker, database_url, tmp_path
):
    admin = make_user(database_url, "adm", "admin")
    nurse = make_user(database_url, "nur", "nurse")
    assert _code(secure_cloud, nurse, mode="centre").status_code == 403
    assert _code(secure_cloud, admin, mode="home").status_code == 422  # home needs a patient

    issued = _code(secure_cloud, admin, mode="centre", label="社区中心", ttl_minutes=5)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert set(body) == {"code", "mode", "patient_id", "expires_at"}
    assert body["mode"] == "centre" and len(body["code"]) == 9 and body["code"][4] == "-"

    creds = enrol(secure_cloud.base_url, body["code"].lower(), tmp_path / "edge-a")
    path = tmp_path / "edge-a" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert creds.mqtt_username == creds.edge_id and creds.mode == "centre"
    with pytest.raises(EnrolmentCodeSpentError):
        enrol(secure_cloud.base_url, body["code"], tmp_path / "again")
    with pytest.raises(EnrolmentCodeUnknownError):
        enrol(secure_cloud.base_url, "ZZZZ-ZZZZ", tmp_path / "nobody")
    other = enrol(
        secure_cloud.base_url,
        _code(secure_cloud, admin, mode="centre").json()["code"],
        tmp_path / "edge-b",
    )

    # The broker takes the issued account, and nothing else.
    assert _connack(secure_broker.port, creds.mqtt_username, creds.mqtt_password) == "Success"
    assert _connack(secure_broker.port, None, None) == "Not authorized"
    assert _connack(secure_broker.port, creds.mqtt_username, "guess") == "Not authorized"

    # The real agent with the enrolled identity delivers its readings.
    settings = apply_credentials(
        fast_edge_settings("unenrolled", tmp_path / "edge-a", 1, credentials_path=path)
    )
    assert settings.edge_id == creds.edge_id and settings.mqtt_port == secure_broker.port
    own = SimulatedGlucoseMeter("GLU-A").measure(6.1, patient_id="P1")
    asyncio.run(_run_agent_until_acked(settings, own))
    assert stored(database_url, [r.reading_id for r in own]) == (1, 1)

    # Publishing on the other edge's topic, even with a batch naming it, is refused.
    forged = SimulatedGlucoseMeter("GLU-FORGED").measure(9.9, patient_id="P1")
    batch = ReadingsBatch(
        edge_id=other.edge_id, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=forged
    )
    assert _publish_as(
        secure_broker.port, creds, topics.readings(other.edge_id), encode(batch)
    ) == ("Not authorized")
    time.sleep(1.0)  # had it got through, the ingest would have stored it by now
    assert stored(database_url, [r.reading_id for r in forged]) == (0, 0)


async def _run_agent_until_acked(settings, readings) -> None:  # type: ignore[no-untyped-def]
    async with Outbox.from_settings(settings) as outbox:
        agent = EdgeAgent(settings, outbox, MqttUplink(settings, asyncio.get_running_loop()))
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop))
        await agent.submit(readings)
        deadline = time.monotonic() + 20
        while set((await outbox.states([r.reading_id for r in readings])).values()) != {"acked"}:
            assert time.monotonic() < deadline, agent.uplink.link_state()
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(running, 10)


def _publish_as(port: int, creds, topic: str, payload: bytes) -> str:  # type: ignore[no-untyped-def]
    done = threading.Event()
    outcome: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger", protocol=mqtt.MQTTv5)
    client.username_pw_set(creds.mqtt_username, creds.mqtt_password)

    def on_publish(_c, _u, _mid, rc, _p) -> None:  # type: ignore[no-untyped-def]
        outcome.append(str(rc))
        done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert done.wait(5), "no PUBACK"
    finally:
        client.loop_stop()
        client.disconnect()
    return outcome[0]


def test_a_home_code_is_for_one_patient_of_the_carers_team_and_expires(
    cloud, database_url, tmp_path
):
    carer = make_user(database_url, "cm-home", "case_manager", teams=("T1",))
    stranger = make_user(database_url, "cm-other", "case_manager", teams=("T2",))
    with psycopg.connect(database_url, autocommit=True) as conn:
        care_store.create_patient(conn, "PH1", "王小明", team_id="T1")
    assert _code(cloud, stranger, mode="home", patient_id="PH1").status_code == 404
    assert _code(cloud, carer, mode="centre").status_code == 403

    issued = _code(cloud, carer, mode="home", patient_id="PH1", ttl_minutes=1)
    assert issued.status_code == 201, issued.text
    assert issued.json()["patient_id"] == "PH1"
    # Through the CLI this time: `python -m edge_agent enrol --cloud-url URL --code CODE`.
    path = tmp_path / "phone" / "credentials.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env["CAREBRIDGE_EDGE_CREDENTIALS_PATH"] = str(path)
    code = issued.json()["code"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent",
            "enrol",
            "--cloud-url",
            cloud.base_url,
            "--code",
            code,
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    creds = load_credentials(path)
    assert creds is not None and creds.edge_id in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (creds.mode, creds.patient_id) == ("home", "PH1")
    assert creds.edge_id.startswith("home-")
    with psycopg.connect(database_url) as conn:
        edge = conn.execute(
            "SELECT mode, patient_id, mqtt_username FROM edges WHERE edge_id = %s",
            (creds.edge_id,),
        ).fetchone()
    assert edge == ("home", "PH1", creds.edge_id)

    late = _code(cloud, carer, mode="home", patient_id="PH1").json()["code"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE enrolment_codes SET expires_at = now() - interval '1 s'")
    response = httpx.post(f"{cloud.base_url}/api/v1/provision", json={"code": late}, timeout=10)
    assert response.status_code == 410


def test_a_revoked_edge_cannot_log_in_and_wrong_codes_are_limited(
    secure_cloud, secure_broker, database_url, tmp_path
):
    admin = make_user(database_url, "adm-revoke", "admin")
    manager = make_user(database_url, "hm-revoke", "health_manager")
    creds = enrol(
        secure_cloud.base_url,
        _code(secure_cloud, admin, mode="centre").json()["code"],
        tmp_path / "edge-r",
    )
    assert _connack(secure_broker.port, creds.mqtt_username, creds.mqtt_password) == "Success"
    url = f"{secure_cloud.base_url}/api/v1/edges/{creds.edge_id}/credentials"

    assert httpx.delete(url, headers=bearer(manager), timeout=10).status_code == 403
    revoked = httpx.delete(url, headers=bearer(admin), timeout=10)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["broker_account_removed"] is True
    assert _connack(secure_broker.port, creds.mqtt_username, creds.mqtt_password) == (
        "Not authorized"
    )
    again = httpx.delete(url, headers=bearer(admin), timeout=10)
    assert again.status_code == 200 and again.json()["broker_account_removed"] is False
    unknown = f"{secure_cloud.base_url}/api/v1/edges/centre-nobody/credentials"
    assert httpx.delete(unknown, headers=bearer(admin), timeout=10).status_code == 404
    with psycopg.connect(database_url) as conn:
        edge = conn.execute(
            "SELECT disabled_at, mqtt_username FROM edges WHERE edge_id = %s", (creds.edge_id,)
        ).fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'edge:revoke' AND user_id = %s",
            ("adm-revoke",),
        ).fetchone()
    assert edge is not None and edge[0] is not None and edge[1] is None
    assert audited == (2,)

    # Ten wrong codes from one address, then even a good code waits.
    good = _code(secure_cloud, admin, mode="centre").json()["code"]
    provision = f"{secure_cloud.base_url}/api/v1/provision"
    for n in range(10):
        wrong = httpx.post(provision, json={"code": f"ZZZZ-ZZ{n:02d}"}, timeout=10)
        assert wrong.status_code == 404
    limited = httpx.post(provision, json={"code": good}, timeout=10)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 500
