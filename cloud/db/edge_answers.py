"""Questionnaire answers a patient gave in the app, arriving through the phone's edge.

The phone has only its broker account, so the answers travel as `QuestionnaireAnswers` on
the edge's own branch. They are stored by `pathway_tasks.record_response` — the function
behind `POST /api/v1/questionnaire-responses` — so scoring, the risk level and the
follow-up task are the same whichever way a form comes in; the answer id is the response
id, so a resend is stored once.

An edge speaks only for the patient it was provisioned for (`edges.patient_id`, a home
edge). The cloud records no household: a family member's answers sent through the owner's
phone are refused with a reason (and dead-lettered) until such a link exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from cloud.auth import Role, User
from cloud.db.edge_requests import dead_letter, decode_from_edge
from cloud.db.pathway_tasks import record_response
from cloud.programmes.questionnaires import shipped_questionnaires
from protocols.errors import CareBridgeError
from protocols.messages import AnswersStatus, QuestionnaireAnswers, QuestionnaireAnswersResult


def _edge_patient(conn: psycopg.Connection, edge_id: str) -> str | None:
    row = conn.execute("SELECT patient_id FROM edges WHERE edge_id = %s", (edge_id,)).fetchone()
    return None if row is None else row[0]


def _refusal(conn: psycopg.Connection, message: QuestionnaireAnswers) -> tuple[str, str] | None:
    """Why these answers cannot be stored, as (code, reason); None when they can."""
    bound = _edge_patient(conn, message.edge_id)
    if bound != message.patient_id:
        return (
            "patient_not_bound",
            f"本设备未绑定该患者 / edge {message.edge_id} does not speak for "
            f"patient {message.patient_id}",
        )
    form = shipped_questionnaires().get(message.questionnaire_id)
    if form is None:
        return "unknown_questionnaire", f"no questionnaire {message.questionnaire_id!r}"
    if form.version != message.questionnaire_version:
        return (
            "questionnaire_version",
            f"answered version {message.questionnaire_version}, current is {form.version}",
        )
    return None


def apply_edge_answers(
    conn: psycopg.Connection,
    topic: str,
    payload: bytes,
    timezone: str,
    now: datetime | None = None,
) -> tuple[str, QuestionnaireAnswersResult] | None:
    """Store an edge's answers; the result to publish back to it (None: not decodable,
    dead-lettered — the edge resends, and the dead letters show why)."""
    decoded = decode_from_edge(conn, topic, payload, QuestionnaireAnswers)
    if decoded is None:
        return None
    edge_id, message = decoded

    def rejected(code: str, reason: str) -> tuple[str, QuestionnaireAnswersResult]:
        dead_letter(conn, topic, payload, code, reason)
        return edge_id, QuestionnaireAnswersResult(
            answer_id=message.answer_id, status=AnswersStatus.REJECTED, code=code, reason=reason
        )

    refusal = _refusal(conn, message)
    if refusal is not None:
        return rejected(*refusal)
    # Answered in the app by the patient: the same identity a patient account has on HTTP.
    patient = User(message.patient_id, "", Role.PATIENT, frozenset())
    try:
        stored = record_response(
            conn,
            patient_id=message.patient_id,
            questionnaire_id=message.questionnaire_id,
            answers=dict(message.answers),
            channel="app",
            user=patient,
            now=now or datetime.now(UTC),
            timezone=timezone,
            response_id=message.answer_id,
            answered_at=message.answered_at,
        )
    except CareBridgeError as exc:
        return rejected(exc.code, exc.reason)
    return edge_id, QuestionnaireAnswersResult(
        answer_id=message.answer_id,
        status=AnswersStatus.STORED,
        score=stored["score"],
        risk_level=stored["risk_level"],
    )


__all__ = ["apply_edge_answers"]
