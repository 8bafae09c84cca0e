"""Questionnaire answers the patient gave in the app, kept until the cloud has them.

`submit` writes the answers to the agent's SQLite file (the outbox's, WAL,
synchronous=FULL) before it returns, so they survive a power cut or a restart while
offline; the running agent sends each as a `QuestionnaireAnswers` and again every
`resend_after` until a `QuestionnaireAnswersResult` names its `answer_id` (the cloud's
idempotency key, so a resend is stored once). States: `pending` (not confirmed yet),
`stored` (with score and risk level) or `rejected` (with the cloud's reason; never resent).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from edge_agent.local_schema import ensure_schema
from edge_agent.request_sync import Publish, RequestSync
from edge_agent.sqlite_calls import run
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import QuestionnaireAnswers, QuestionnaireAnswersResult, encode
from protocols.questionnaires import Questionnaire, visible_questions

log = logging.getLogger("carebridge.edge.answers")

Answer = str | list[str] | float

class AnswersIncomplete(CareBridgeError):
    """Answers the cloud would refuse: a hidden or unknown question, or a shown one left
    unanswered. Caught before they are kept, so the patient can correct them."""

    code = "answers_invalid"


@dataclass(frozen=True)
class KeptAnswers:
    answer_id: str
    patient_id: str
    questionnaire_id: str
    version: int
    answers: dict[str, Answer]
    answered_at: datetime
    state: str
    score: float | None = None
    risk_level: str | None = None
    code: str | None = None
    reason: str | None = None


def check_answers(form: Questionnaire, answers: Mapping[str, Any]) -> None:
    """The skip logic's part of the cloud's check, done on the phone (no scoring here)."""
    shown = {q.id: q for q in visible_questions(form, dict(answers))}
    extra = sorted(set(answers) - set(shown))
    if extra:
        raise AnswersIncomplete(f"answers to questions not asked: {extra}")
    missing = [q.id for q in shown.values() if q.required and q.id not in answers]
    if missing:
        raise AnswersIncomplete(f"still to answer: {missing}")


class AnswerSync(RequestSync[QuestionnaireAnswersResult]):
    result_model = QuestionnaireAnswersResult
    log = log

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        edge_id: str,
        publish: Publish,
        resend_after: timedelta = timedelta(seconds=30),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(edge_id=edge_id, publish=publish, resend_after=resend_after, now=now)
        self._db = db
        self._ready = False

    @property
    def result_topic(self) -> str:
        return topics.questionnaire_answer_results(self.edge_id)

    async def open(self) -> AnswerSync:
        if not self._ready:
            await ensure_schema(self._db)
            self._ready = True
        return self

    async def submit(
        self,
        patient_id: str,
        form: Questionnaire,
        answers: Mapping[str, Answer],
        *,
        answer_id: uuid.UUID | None = None,
    ) -> KeptAnswers:
        """Check and keep the answers (durable on return) and send them as soon as possible."""
        check_answers(form, answers)
        kept = KeptAnswers(
            answer_id=(answer_id or uuid.uuid4()).hex,
            patient_id=patient_id,
            questionnaire_id=form.questionnaire_id,
            version=form.version,
            answers=dict(answers),
            answered_at=self._now(),
            state="pending",
        )
        await self.open()
        # The same answer id again (a double tap that reused it) keeps the first.
        await run(
            self._db,
            """INSERT OR IGNORE INTO questionnaire_answers
                   (answer_id, patient_id, questionnaire_id, version, answers, answered_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                kept.answer_id,
                kept.patient_id,
                kept.questionnaire_id,
                kept.version,
                json.dumps(kept.answers, ensure_ascii=False),
                kept.answered_at.isoformat(),
            ),
        )
        await self._db.commit()
        self.wake()
        return kept

    async def kept(
        self, patient_id: str | None = None, *, states: Sequence[str] = ()
    ) -> list[KeptAnswers]:
        """Answers kept on this phone, oldest first."""
        await self.open()
        sql = "SELECT * FROM questionnaire_answers WHERE (? IS NULL OR patient_id = ?)"
        params: list[Any] = [patient_id, patient_id]
        if states:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params.extend(states)
        async with self._db.execute(sql + " ORDER BY answered_at, answer_id", params) as cur:
            cur.row_factory = aiosqlite.Row
            rows = await cur.fetchall()
        return [_kept(row) for row in rows]

    async def step(self) -> int:
        await self.open()
        for result in self._take_results():
            await self._apply(result)
        now = self._now()
        sent = 0
        for item in await self.kept(states=("pending",)):
            if not self._due(item.answer_id, now):
                continue
            message = QuestionnaireAnswers(
                answer_id=uuid.UUID(item.answer_id),
                edge_id=self.edge_id,
                patient_id=item.patient_id,
                questionnaire_id=item.questionnaire_id,
                questionnaire_version=item.version,
                answers=item.answers,
                answered_at=item.answered_at,
            )
            topic = topics.questionnaire_answers(self.edge_id)
            if self._send(item.answer_id, topic, encode(message), now):
                await run(
                    self._db,
                    "UPDATE questionnaire_answers SET sent_at = ? WHERE answer_id = ?",
                    (now.isoformat(), item.answer_id),
                )
                await self._db.commit()
                sent += 1
        return sent

    async def _apply(self, result: QuestionnaireAnswersResult) -> None:
        changed = await run(
            self._db,
            """UPDATE questionnaire_answers
               SET state = ?, score = ?, risk_level = ?, code = ?, reason = ?,
                   answered_back_at = ?
               WHERE answer_id = ? AND state = 'pending'""",
            (
                result.status.value,
                result.score,
                result.risk_level,
                result.code,
                result.reason,
                self._now().isoformat(),
                result.answer_id.hex,
            ),
        )
        await self._db.commit()
        log.info(
            "questionnaire answers answered",
            extra={
                "answer_id": str(result.answer_id),
                "status": result.status.value,
                "known": changed > 0,
                "reason": result.reason,
            },
        )


def _kept(row: aiosqlite.Row) -> KeptAnswers:
    return KeptAnswers(
        answer_id=row["answer_id"],
        patient_id=row["patient_id"],
        questionnaire_id=row["questionnaire_id"],
        version=row["version"],
        answers=json.loads(row["answers"]),
        answered_at=datetime.fromisoformat(row["answered_at"]),
        state=row["state"],
        score=row["score"],
        risk_level=row["risk_level"],
        code=row["code"],
        reason=row["reason"],
    )
