"""The cloud publishes each edge's `EdgeConfig` retained: after provisioning, after a plan
change over the API, from the sweep when its inputs changed, and on an admin's demand.
Real cloud process, Mosquitto, TimescaleDB and edge agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import time as clock
from pathlib import Path

import httpx
import psycopg
import pytest

from cloud.db import care_store, programme_store
from devstack.cloud import CloudProcess
from devstack.mosquitto import LocalMosquitto
from edge_agent.agent import EdgeAgent
from edge_agent.outbox import Outbox
from edge_agent.provisioning import CREDENTIALS_FILE, apply_credentials, enrol
from edge_agent.uplink import MqttUplink
from protocols.messages import EdgeConfig
from tests.conftest import bearer, make_user, running_cloud
from tests.integration.edge_support import fast_edge_settings

CONSENT = {"notice_version": "v2026.1", "scope": ["monitoring"], "channel": "paper"}


@pytest.fixture
def sweeping_cloud(
    database_url: str, broker: LocalMosquitto, tmp_path: Path
) -> Iterator[CloudProcess]:
    """The real cloud with its clinical sweep every half second (time compressed)."""
    with running_cloud(database_url, broker, tmp_path, CAREBRIDGE_SWEEP_INTERVAL_S="0.5") as cloud:
        yield cloud


def _plan(config: EdgeConfig | None) -> dict[str, list[clock]]:
    return {} if config is None else {p.metric.value: p.times for p in config.measurement_plan}


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_a_home_edge_gets_its_plan_and_forms_retained_and_every_change_after(
    sweeping_cloud, database_url, tmp_path
):
    base = sweeping_cloud.base_url
    cm = bearer(make_user(database_url, "cm-a", "case_manager", ("team-a",)))
    admin = bearer(make_user(database_url, "adm", "admin"))
    make_user(database_url, "qc-a", "qc_supervisor")
    with psycopg.connect(database_url, autocommit=True) as conn:
        programme_store.install_defaults(conn, "H1", "演示医院", "qc-a")
        care_store.create_patient(conn, "P-1", "张三明", team_id="team-a", case_manager_id="cm-a")
    enrolled = httpx.post(
        f"{base}/api/v1/enrolments",
        headers=cm,
        json={"patient_id": "P-1", "programme_id": "H1-p03", "consent": CONSENT},
        timeout=30,
    )
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["pathway_id"] == "hypertension"
    enrolment_id = enrolled.json()["enrolment_id"]

    code = httpx.post(
        f"{base}/api/v1/enrolment-codes",
        headers=cm,
        json={"mode": "home", "patient_id": "P-1"},
        timeout=10,
    ).json()["code"]
    creds = enrol(base, code, tmp_path / "phone")
    with psycopg.connect(database_url) as conn:
        published = conn.execute(
            "SELECT issued_at, content_hash, stale FROM edge_configs WHERE edge_id = %s",
            (creds.edge_id,),
        ).fetchone()
    # Published while provisioning answered, before any agent was connected.
    assert published is not None and published[1] is not None and published[2] is False

    settings = apply_credentials(
        fast_edge_settings(
            "unenrolled",
            tmp_path / "phone",
            1,
            credentials_path=tmp_path / "phone" / CREDENTIALS_FILE,
        )
    )
    assert settings.edge_id == creds.edge_id and settings.mode == "home"

    async def run() -> None:
        async with Outbox.from_settings(settings) as outbox:
            agent = EdgeAgent(settings, outbox, MqttUplink(settings, asyncio.get_running_loop()))
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            try:
                # The retained copy reaches an agent that connected only after it was sent.
                await _until(lambda: agent.config is not None, "the retained configuration")
                first = agent.config
                assert first is not None
                assert first.edge_id == creds.edge_id and first.mode.value == "home"
                assert first.issued_at == published[0]
                assert _plan(first) == {"systolic": [clock(8), clock(20)]}
                assert {p.patient_id for p in first.measurement_plan} == {"P-1"}
                assert "htn_follow_up" in {q.questionnaire_id for q in first.questionnaires}
                assert [r.title for r in first.revisits]  # the pathway's revisits to come

                # A plan changed over the API reaches the running agent at once.
                changed = await asyncio.to_thread(
                    httpx.put,
                    f"{base}/api/v1/patients/P-1/measurement-plans/systolic",
                    headers=cm,
                    json={"times_per_day": 3},
                    timeout=10,
                )
                assert changed.status_code == 200, changed.text
                await _until(
                    lambda: len(_plan(agent.config).get("systolic", [])) == 3, "the new plan"
                )
                second = agent.config
                assert second is not None and second.issued_at > first.issued_at

                # A change made behind the API's back (here: straight in the database) is
                # found by the sweep through the stale mark.
                with psycopg.connect(database_url, autocommit=True) as conn:
                    conn.execute(
                        """INSERT INTO measurement_plans (patient_id, metric, times_per_day,
                               started_at, set_by) VALUES ('P-1', 'weight', 1, now(), 'system')"""
                    )
                await _until(lambda: "weight" in _plan(agent.config), "the sweep's publish")

                # On demand (admin only), even unchanged: a newer issue of the same content.
                refused = await asyncio.to_thread(
                    httpx.post, f"{base}/api/v1/edges/{creds.edge_id}/config", headers=cm
                )
                assert refused.status_code == 403
                current = agent.config
                assert current is not None
                forced = await asyncio.to_thread(
                    httpx.post, f"{base}/api/v1/edges/{creds.edge_id}/config", headers=admin
                )
                assert forced.status_code == 200, forced.text
                assert forced.json()["published"] is True
                await _until(
                    lambda: agent.config is not None and agent.config.issued_at > current.issued_at,
                    "the forced republish",
                )
                assert _plan(agent.config) == _plan(current)

                # Withdrawn from the programme: the pathway's forms and revisits leave the app.
                withdrawn = await asyncio.to_thread(
                    httpx.post,
                    f"{base}/api/v1/enrolments/{enrolment_id}/withdrawal",
                    headers=cm,
                    json={"reason": "患者要求", "refund_cents": 0},
                )
                assert withdrawn.status_code == 200, withdrawn.text
                await _until(
                    lambda: agent.config is not None and not agent.config.questionnaires,
                    "the configuration after withdrawal",
                )
                assert agent.config.revisits == []
            finally:
                stop.set()
                await asyncio.wait_for(running, 10)

    asyncio.run(run())

    unknown = httpx.post(f"{base}/api/v1/edges/home-nobody/config", headers=admin, timeout=10)
    assert unknown.status_code == 404
