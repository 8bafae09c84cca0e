"""Issues 8 and 9: a questionnaire answered in the app reaches the case manager's queue.

Real Mosquitto, the real cloud (`python -m cloud serve`), TimescaleDB; the phone bound
with a real enrolment code; the answers go app view-model → the embedded edge agent's
SQLite → MQTT → ingest → `record_response` (the store function behind
`POST /api/v1/questionnaire-responses`)."""

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
from mobile_app.phone import Phone
from mobile_app.viewmodels.questionnaire import QuestionnaireViewModel
from protocols import topics
from protocols.messages import (
    EdgeConfig,
    EdgeMode,
    QuestionnaireAnswers,
    QuestionnaireAnswersResult,
    decode,
    encode,
)
from protocols.metrics import Metric
from protocols.reading import (
    DeviceKind,
    DeviceRef,
    Reading,
    Source,
    derive_measurement_id,
    derive_reading_id,
)
from tests.conftest import bearer, make_user
from tests.edge_agent.test_answer_sync import HTN
from tests.mobile_app.conftest import until

OWNER, MEMBER = "P-300", "P-301"
HIGH_RISK = {  # chest pain is a red flag: high risk whatever the total
    "symptoms": ["chest_pain"],
    "medication": "always",
    "salt": "light",
    "exercise_days": 5,
}


def _patients(database_url: str) -> str:
    token = make_user(database_url, "cm-q", "case_manager", ("team-q",))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for patient_id, name in ((OWNER, "李秀英"), (MEMBER, "李大山")):
            care_store.create_patient(
                conn,
                patient_id,
                name,
                team_id="team-q",
                case_manager_id="cm-q",
                cohorts=["hypertension"],
            )
    return token


def _code(base_url: str, token: str, patient_id: str) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/enrolment-codes",
        headers=bearer(token),
        json={"mode": "home", "patient_id": patient_id, "label": "phone"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


class CloudSide:
    """A test client on the broker: what the cloud would publish, and what it answers."""

    def __init__(self, port: int, edge_id: str) -> None:
        self.results: list[QuestionnaireAnswersResult] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.results.append(
            decode(msg.payload, QuestionnaireAnswersResult)
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topics.questionnaire_answer_results(edge_id), qos=1)
        self.edge_id = edge_id

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


async def test_answers_given_in_the_app_are_stored_once_scored_and_raise_a_task(
    cloud: Any, broker: Any, database_url: str, tmp_path: Path
) -> None:
    token = _patients(database_url)
    phone = Phone(tmp_path / "phone", cloud_url=cloud.base_url)
    try:
        await phone.bind(await asyncio.to_thread(_code, cloud.base_url, token, OWNER))
        await phone.add_member(
            await asyncio.to_thread(_code, cloud.base_url, token, MEMBER), "老伴"
        )
        assert phone.edge is not None and phone.profile is not None
        edge_id = phone.profile.edge_id
        side = await asyncio.to_thread(CloudSide, broker.port, edge_id)
        # The forms reach the phone in its configuration (retained, as the cloud's is).
        config = EdgeConfig(
            edge_id=edge_id, issued_at=datetime.now(UTC), mode=EdgeMode.HOME, questionnaires=[HTN]
        )
        await asyncio.to_thread(side.publish, topics.config(edge_id), encode(config), retain=True)
        await until(lambda: phone.edge and phone.edge.questionnaires, within=15, message="forms")

        vm = QuestionnaireViewModel(phone)
        assert vm.open("htn_follow_up")
        vm.choose("symptoms", "chest_pain")
        vm.choose("medication", "always")
        vm.choose("salt", "light")
        assert vm.enter_number("exercise_days", "5")
        assert await vm.submit()

        async def state() -> str:
            await vm.refresh()
            return str(vm.forms[0]["state"])

        for _ in range(150):
            if await state() == "stored":
                break
            await asyncio.sleep(0.1)
        assert vm.forms[0]["state_text"] == "✓ 已提交给个案管理师"
        assert vm.status == "✓ 已提交给个案管理师"
        [kept] = await phone.edge.kept_answers([OWNER])
        assert (kept.state, kept.risk_level) == ("stored", "high")

        # The same answers sent again (a lost result, a resend): stored once.
        again = QuestionnaireAnswers(
            answer_id=uuid.UUID(kept.answer_id),
            edge_id=edge_id,
            patient_id=OWNER,
            questionnaire_id="htn_follow_up",
            questionnaire_version=HTN.version,
            answers=HIGH_RISK,
            answered_at=kept.answered_at,
        )
        await asyncio.to_thread(side.publish, topics.questionnaire_answers(edge_id), encode(again))
        await until(lambda: side.results, within=15, message="the resend's result")
        assert side.results[0].status == "stored" and side.results[0].risk_level == "high"
        rows = _rows(
            database_url,
            "SELECT response_id, score, risk_level, channel, entered_by, answers "
            "FROM questionnaire_responses WHERE patient_id = %s",
            OWNER,
        )
        assert rows == [(uuid.UUID(kept.answer_id), 4.0, "high", "app", OWNER, HIGH_RISK)]

        got = await asyncio.to_thread(
            httpx.get, f"{cloud.base_url}/api/v1/queue", headers=bearer(token)
        )
        tasks = [i for i in got.json()["items"] if i["rule_id"] == "questionnaire.htn_follow_up"]
        assert [(t["tier"], t["patient_id"]) for t in tasks] == [("high", OWNER)]

        # A family member on the owner's phone: the cloud knows no household, so it refuses
        # her answers with a reason (kept as a dead letter) — but stores her reading.
        phone.choose_member(MEMBER)
        assert vm.open("htn_follow_up")
        for question, value in (("symptoms", "none"), ("medication", "always"), ("salt", "light")):
            vm.choose(question, value)
        assert vm.enter_number("exercise_days", "3") and await vm.submit()
        for _ in range(150):
            if await state() == "rejected":
                break
            await asyncio.sleep(0.1)
        assert vm.forms[0]["state_text"] == "⚠ 未被接收，请联系个案管理师"
        [refused] = await phone.edge.kept_answers([MEMBER])
        assert refused.code == "patient_not_bound"
        letters = _rows(
            database_url,
            "SELECT code, edge_id FROM dead_letters WHERE topic = %s",
            topics.questionnaire_answers(edge_id),
        )
        assert letters == [("patient_not_bound", edge_id)]
        assert _rows(
            database_url,
            "SELECT count(*) FROM questionnaire_responses WHERE patient_id = %s",
            MEMBER,
        ) == [(0,)]

        device = DeviceRef(kind=DeviceKind.GLUCOSE_METER, model="CB-Glucose", serial="G-1")
        measurement_id = derive_measurement_id(device, "seq:7")
        now = datetime.now(UTC)
        reading = Reading(
            reading_id=derive_reading_id(measurement_id, Metric.GLUCOSE),
            measurement_id=measurement_id,
            patient_id=MEMBER,
            device=device,
            record_key="seq:7",
            metric=Metric.GLUCOSE,
            value=6.1,
            unit="mmol/L",
            measured_at=now,
            received_at=now,
            source=Source.HOME,
        )
        await phone.edge.submit([reading])
        for _ in range(150):
            if (await phone.edge.states([str(reading.reading_id)])).get(
                str(reading.reading_id)
            ) == "acked":
                break
            await asyncio.sleep(0.1)
        assert _rows(
            database_url,
            "SELECT patient_id, edge_id FROM readings WHERE reading_id = %s",
            reading.reading_id,
        ) == [(MEMBER, edge_id)]
        side.close()
    finally:
        await phone.stop()
        phone.close()
