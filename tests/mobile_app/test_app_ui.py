"""Issue 9 end to end, headless: the Kivy app on Kivy's offscreen window, touched like a
finger would; the emulated cuff through the real driver (bleak → bumble); the embedded
edge agent; real Mosquitto, the real cloud (`python -m cloud serve`) and TimescaleDB.
Every screen is photographed to test-artifacts/mobile_app/screenshots/."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg

from cloud.db import care_store
from mobile_app.__main__ import demo_code
from mobile_app.phone import Phone
from mobile_app.simulated import SelfStartingCuff, SimulatedHome
from protocols import topics
from protocols.messages import NotificationSeverity, PatientNotification, encode
from tests.conftest import PASSWORD, bearer, make_user
from tests.mobile_app.conftest import AppDriver, running_app, until

PATIENT = "P-100"
UI_OPTIONS = {"measure_options": {"scan_timeout": 1.0, "wait_s": 10.0}}


def _care_team(database_url: str) -> str:
    token = make_user(database_url, "cm-a", "case_manager", ("team-a",))
    with psycopg.connect(database_url, autocommit=True) as conn:
        care_store.create_patient(
            conn,
            PATIENT,
            "王建国",
            team_id="team-a",
            case_manager_id="cm-a",
            cohorts=["hypertension"],
        )
    return token


def _enrolment_code(base_url: str, token: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/enrolment-codes",
        headers=bearer(token),
        json={"mode": "home", "patient_id": PATIENT, "label": "patient phone"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def _stored_readings(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE patient_id = %s", (PATIENT,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _send_notification(port: int, edge_id: str) -> None:
    """What the cloud's approved-message path publishes to a home edge."""
    note = PatientNotification(
        notification_id=uuid.uuid4(),
        patient_id=PATIENT,
        template_id="revisit.reminder",
        severity=NotificationSeverity.INFO,
        title="12月8日上午心内科复诊",
        body="请带上血压记录和正在服用的药。",
        created_at=datetime.now(UTC),
    )
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topics.notifications(edge_id), encode(note), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _panel(ui: AppDriver) -> Any:
    return ui.screen("measure").ids.stage_area.children[0]


async def _measure_with_cuff(ui: AppDriver) -> Any:
    """Find → choose the cuff → guided measurement → the result panel."""
    measure = ui.app.measure

    def seen() -> str:
        return f"stage {measure.stage!r}: {measure.status_text!r}"

    await ui.tap(_panel(ui).ids.find if measure.stage == "idle" else _again_button(ui))
    await until(lambda: measure.stage == "choose", message=lambda: "devices, " + seen())
    (cuff,) = [b for b in _panel(ui).ids.device_list.children if "CB-BPM" in b.text]
    await ui.tap(cuff)
    await until(
        lambda: measure.stage == "measuring", message=lambda: "the cuff inflating, " + seen()
    )
    await until(
        lambda: measure.stage == "result", within=15, message=lambda: "the result, " + seen()
    )
    await ui.frames(3)
    return _panel(ui)


def _again_button(ui: AppDriver) -> Any:
    panel = _panel(ui)
    (again,) = [c for c in panel.children if getattr(c, "text", "") == "再测一次"]
    return again


async def test_bind_measure_and_see_it_uploaded_on_every_screen(
    cloud: Any, broker: Any, database_url: str, tmp_path: Path
) -> None:
    token = _care_team(database_url)
    code = _enrolment_code(cloud.base_url, token)
    cuff = SelfStartingCuff([(128, 82, 70)], step_interval=0.05, start_after=0.3)
    async with SimulatedHome(cuff=cuff) as home:
        phone = Phone(tmp_path / "phone", cloud_url=cloud.base_url, backends=home.backends)
        async with running_app(phone, **UI_OPTIONS) as ui:
            assert ui.root.current == "bind"
            await ui.shoot("01_bind")
            bind = ui.screen("bind")
            bind.ids.code.text = code.lower().replace("-", " ")  # as an older patient types it
            await ui.tap(bind.ids.submit)
            await until(lambda: ui.root.current == "members", message="bound")
            assert phone.profile is not None and phone.profile.owner.patient_id == PATIENT
            await ui.shoot("02_members")
            await ui.tap(ui.screen("members").ids.start)
            assert ui.root.current == "today"
            await ui.shoot("03_today")

            await ui.tap(ui.root.ids.nav_measure)
            await ui.shoot("04_measure")
            panel = await _measure_with_cuff(ui)
            assert cuff.cuff_pressures_sent, "the cuff reported its pressure while inflating"
            assert (panel.ids.value.text, panel.ids.unit.text) == ("128/82", "毫米汞柱")
            assert panel.ids.tier.text == "✓ 正常，在目标范围内"
            await until(lambda: ui.app.measure.sync == "uploaded", within=20, message="upload")
            await ui.frames(3)
            assert panel.ids.sync.text == "✓ 已上传"
            await ui.shoot("05_result_in_target")
            assert _stored_readings(database_url) == 4  # systolic, diastolic, MAP, pulse

            assert phone.profile is not None
            await asyncio.to_thread(_send_notification, broker.port, phone.profile.edge_id)
            await ui.tap(ui.root.ids.nav_today)
            await until(lambda: any(s["done"] for s in ui.app.today.slots), message="plan done")
            await until(lambda: ui.app.today.unread == 1, message="the revisit notice")
            assert "复诊：12月8日上午心内科复诊" in ui.app.today.reminders
            await ui.shoot("06_today_after_measuring")
            await ui.tap(ui.root.ids.nav_history)
            await until(lambda: ui.app.history.rows, message="history rows")
            (row,) = ui.app.history.rows
            assert row["sync_text"] == "✓ 已上传" and "128/82" in row["text"]
            await ui.shoot("07_history")
            await ui.tap(ui.root.ids.nav_messages)
            await until(lambda: ui.app.messages.messages, message="messages listed")
            assert ui.app.messages.messages[0]["body"] == "请带上血压记录和正在服用的药。"
            await until(lambda: not any(i.unread for i in phone.inbox), message="read")
            await ui.shoot("08_messages")
            await ui.tap(ui.root.ids.nav_settings)
            await ui.shoot("09_settings")


async def test_abnormal_reading_alerts_the_case_manager_and_outlasts_a_broker_outage(
    cloud: Any, broker: Any, database_url: str, tmp_path: Path
) -> None:
    token = _care_team(database_url)
    cuff = SelfStartingCuff([(186, 124, 96), (182, 118, 90)], step_interval=0.02, start_after=0.2)
    async with SimulatedHome(cuff=cuff) as home:
        phone = Phone(
            tmp_path / "phone",
            cloud_url=cloud.base_url,
            backends=home.backends,
            # Retry the broker every 2 s at most, so the test waits less after the outage.
            agent_overrides={"reconnect_max_s": 2.0},
        )
        # The code as the desktop demo gets it (`python -m mobile_app --simulated`).
        code = await asyncio.to_thread(demo_code, cloud.base_url, PATIENT, ("cm-a", PASSWORD))
        assert code is not None
        await phone.bind(code)
        async with running_app(phone, **UI_OPTIONS) as ui:
            assert ui.root.current == "today"
            await ui.tap(ui.root.ids.nav_measure)
            panel = await _measure_with_cuff(ui)
            assert (panel.ids.value.text, panel.ids.unit.text) == ("186/124", "毫米汞柱")
            assert panel.ids.tier.text == "!! 需要尽快就医"
            advice = ui.app.measure.advice
            assert "请坐下休息 5 分钟，然后再测一次。" in advice
            await until(lambda: ui.app.measure.sync == "uploaded", within=20, message="upload")
            await until(lambda: "您的个案管理师已收到通知，会联系您。" in ui.app.measure.advice)
            await ui.shoot("10_result_see_doctor")

            async def queue() -> list[dict[str, Any]]:
                got = await asyncio.to_thread(
                    httpx.get, f"{cloud.base_url}/api/v1/queue", headers=bearer(token)
                )
                return list(got.json()["items"])

            items: list[dict[str, Any]] = []
            for _ in range(100):
                items = [i for i in await queue() if i.get("rule_id", "").startswith("bp.")]
                if items:
                    break
                await asyncio.sleep(0.1)
            assert [(i["tier"], i["patient_name"]) for i in items] == [("critical", "王建国")]

            # The broker goes away: the next reading is kept and shown as waiting.
            await asyncio.to_thread(broker.stop)
            await until(lambda: not phone.edge.online, message="the edge notices")
            await _measure_with_cuff(ui)
            assert ui.app.measure.result_text == "182/118"
            await asyncio.sleep(1.5)
            await ui.app.measure.refresh_sync()
            assert ui.app.measure.sync == "waiting"
            assert ui.app.measure.sync_text == "○ 等待上传"
            assert "联网后会自动通知您的个案管理师。" in ui.app.measure.advice
            await ui.shoot("11_result_waiting_offline")
            assert _stored_readings(database_url) == 4

            await asyncio.to_thread(broker.start)
            await until(
                lambda: ui.app.measure.sync == "uploaded", within=40, message="upload after outage"
            )
            assert _stored_readings(database_url) == 8
            await ui.tap(ui.root.ids.nav_history)
            await until(lambda: len(ui.app.history.rows) == 2, message="history rows")
            assert {row["sync"] for row in ui.app.history.rows} == {"uploaded"}
            await ui.shoot("12_history_all_uploaded")
