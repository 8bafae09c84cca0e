"""One real stack for the web tests (TimescaleDB, Mosquitto, `python -m cloud serve`),
started once for the package: two care teams, their staff, patients, and a publisher that
sends readings as an edge over MQTT."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from cloud.db import care_store
from devstack import demo
from devstack.cloud import CloudProcess
from devstack.demo_programmes import seed_programmes
from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port
from devstack.postgres import LocalPostgres
from protocols import topics
from protocols.messages import ReadingsBatch, encode
from protocols.reading import Reading
from tests.conftest import PASSWORD, cloud_env, copy_database, make_user

HOME_EDGE = "home-web"


@dataclass
class WebStack:
    base_url: str
    database_url: str
    broker_port: int

    def publish(self, readings: list[Reading], edge_id: str = HOME_EDGE) -> None:
        """Send readings as an edge does: one batch, QoS 1, on the edge's topic."""
        batch = ReadingsBatch(
            edge_id=edge_id, batch_id=uuid.uuid4(), sent_at=datetime.now(UTC), readings=readings
        )
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{edge_id}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        client.connect("127.0.0.1", self.broker_port)
        client.loop_start()
        client.publish(topics.readings(edge_id), encode(batch), qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    def signed_in(self, username: str, password: str = PASSWORD) -> httpx.Client:
        """An HTTP client holding the web session cookie of `username`."""
        client = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=10)
        response = client.post(
            "/login",
            data={"username": username, "password": password},
            headers={"Origin": self.base_url},
        )
        assert response.status_code == 303, response.text
        return client

    def sql(self, query: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def add_programme(self, hospital_id: str, programme_id: str, name: str, by: str) -> None:
        """A hospital with one 30-day package on a pathway of its own (empty definition)."""
        pathway_id = f"pw-{programme_id}"
        self.sql("INSERT INTO hospitals VALUES (%s, %s)", hospital_id, f"{hospital_id} 医院")
        self.sql(
            """INSERT INTO pathway_templates (pathway_id, version, disease, definition,
                                              approved_by)
               VALUES (%s, 1, 'hypertension', '{}', %s)""",
            pathway_id,
            by,
        )
        self.sql(
            """INSERT INTO programmes (programme_id, hospital_id, name, disease, duration_days,
                                       price_cents, pathway_id)
               VALUES (%s, %s, %s, 'hypertension', 30, 0, %s)""",
            programme_id,
            hospital_id,
            name,
            pathway_id,
        )


def _seed(url: str) -> None:
    make_user(url, "cm-a", "case_manager", ("team-a",))
    make_user(url, "doc-a", "doctor", ("team-a",))
    make_user(url, "hm-a", "health_manager", ("team-a",))
    make_user(url, "cm-b", "case_manager", ("team-b",))
    make_user(url, "qc", "qc_supervisor")
    make_user(url, "root", "admin")
    with psycopg.connect(url, autocommit=True) as conn:
        care_store.create_patient(
            conn,
            "P-100",
            "张三明",
            team_id="team-a",
            case_manager_id="cm-a",
            doctor_id="doc-a",
            id_number="110101195001011234",
            phone="13800138000",
            cohorts=["hypertension"],
        )
        care_store.create_patient(
            conn, "P-200", "李四", team_id="team-b", case_manager_id="cm-b", cohorts=[]
        )
        conn.execute(f"INSERT INTO edges (edge_id, mode) VALUES ('{HOME_EDGE}', 'home')")
        conn.execute("INSERT INTO edges (edge_id, mode) VALUES ('centre-web', 'centre')")


@pytest.fixture(scope="package")
def web_stack(
    pg_server: LocalPostgres, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebStack]:
    name = f"web_{uuid.uuid4().hex[:10]}"
    copy_database(pg_server, migrated_template, name)
    url = pg_server.admin_dsn(name)
    _seed(url)
    work: Path = tmp_path_factory.mktemp("web")
    broker = LocalMosquitto(work / "mosquitto", free_port())
    broker.start()
    port = free_port()
    # No periodic sweep: it would race the demo seeding's own sweeps (which run on the
    # seed's clock) and move task states between a page and the API call it is checked by.
    env = cloud_env(url, broker, port, CAREBRIDGE_SWEEP_INTERVAL_S="3600")
    cloud = CloudProcess(env, port, work / "cloud.log")
    try:
        cloud.start(timeout=30)
        yield WebStack(cloud.base_url, url, broker.port)
    finally:
        cloud.stop()
        broker.stop()
        with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="package")
def demo_programmes(web_stack: WebStack) -> dict[str, object]:
    """The README demo's programmes in the web stack's database: team-cardio with cm01 and
    qc01 (password `demo.DEMO_PASSWORD`), hospital H-SXZX, 18 enrolments, last month's
    sample, reviews and score. Its own team, so the other web tests' teams are untouched."""
    demo.seed_people(web_stack.database_url)
    return seed_programmes(web_stack.database_url)
