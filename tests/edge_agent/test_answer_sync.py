"""The phone's pending questionnaire answers: durable, resent until answered, then final."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from edge_agent.answer_sync import AnswersIncomplete, AnswerSync, check_answers
from protocols import topics
from protocols.messages import (
    AnswersStatus,
    QuestionnaireAnswers,
    QuestionnaireAnswersResult,
    decode,
    encode,
)
from protocols.questionnaires import Questionnaire

FORM_FILE = Path(__file__).parents[2] / "cloud/programmes/questionnaires/htn_follow_up.json"
HTN = Questionnaire.model_validate_json(FORM_FILE.read_text(encoding="utf-8"))
GOOD = {
    "symptoms": ["none"],
    "medication": "always",
    "salt": "light",
    "exercise_days": 5,
}


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.up = True

    def __call__(self, topic: str, payload: bytes) -> bool:
        if self.up:
            self.sent.append((topic, payload))
        return self.up


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(tmp_path / "outbox.sqlite3") as conn:
        yield conn


def test_the_phone_checks_the_skip_logic_before_keeping_answers() -> None:
    check_answers(HTN, GOOD)
    with pytest.raises(AnswersIncomplete, match="not asked"):
        check_answers(HTN, {**GOOD, "stop_reason": "cost"})  # shown only after "stopped"
    with pytest.raises(AnswersIncomplete, match="still to answer"):
        check_answers(HTN, {**GOOD, "medication": "stopped"})
    check_answers(HTN, {**GOOD, "medication": "stopped", "stop_reason": "cost"})


async def test_answers_are_resent_until_the_cloud_answers_even_across_a_restart(
    db: aiosqlite.Connection, tmp_path: Path
) -> None:
    clock, broker = Clock(), Broker()
    broker.up = False
    sync = await AnswerSync(db, edge_id="home-1", publish=broker, now=clock).open()
    kept = await sync.submit("P-1", HTN, GOOD)
    assert kept.state == "pending" and await sync.step() == 0  # offline: nothing sent

    # A new process on the same file (the app was killed): the answers are still there.
    async with aiosqlite.connect(tmp_path / "outbox.sqlite3") as again:
        broker.up = True
        sync = await AnswerSync(again, edge_id="home-1", publish=broker, now=clock).open()
        assert await sync.step() == 1
        topic, payload = broker.sent[0]
        assert topic == topics.questionnaire_answers("home-1")
        message = decode(payload, QuestionnaireAnswers)
        assert message.answer_id.hex == kept.answer_id and message.patient_id == "P-1"
        assert message.questionnaire_version == HTN.version and message.answers == GOOD

        assert await sync.step() == 0  # not yet due again
        clock.at += timedelta(seconds=31)
        assert await sync.step() == 1  # no result: sent again, same id
        assert decode(broker.sent[1][1], QuestionnaireAnswers).answer_id == message.answer_id

        result = QuestionnaireAnswersResult(
            answer_id=message.answer_id, status=AnswersStatus.STORED, score=0, risk_level="low"
        )
        sync.on_result_payload(encode(result))
        sync.on_result_payload(b"not json")  # logged, ignored
        clock.at += timedelta(minutes=5)
        assert await sync.step() == 0
        [done] = await sync.kept("P-1")
        assert (done.state, done.score, done.risk_level) == ("stored", 0, "low")


async def test_a_rejected_answer_is_kept_with_its_reason_and_never_resent(
    db: aiosqlite.Connection,
) -> None:
    clock, broker = Clock(), Broker()
    sync = await AnswerSync(db, edge_id="home-1", publish=broker, now=clock).open()
    answer_id = uuid.uuid4()
    await sync.submit("P-2", HTN, GOOD, answer_id=answer_id)
    await sync.submit("P-2", HTN, GOOD, answer_id=answer_id)  # a double tap: kept once
    assert await sync.step() == 1
    sync.on_result_payload(
        encode(
            QuestionnaireAnswersResult(
                answer_id=answer_id,
                status=AnswersStatus.REJECTED,
                code="patient_not_bound",
                reason="edge home-1 does not speak for patient P-2",
            )
        )
    )
    clock.at += timedelta(hours=1)
    assert await sync.step() == 0
    [kept] = await sync.kept()
    assert kept.state == "rejected" and kept.code == "patient_not_bound"
    assert await sync.kept(states=("pending",)) == []
