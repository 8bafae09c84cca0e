"""Questionnaire answers from an edge, applied by the store (no broker): each refusal has
its code, goes back to the edge as `rejected` and is kept as a dead letter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from cloud.db import care_store
from cloud.db.edge_answers import apply_edge_answers
from cloud.ingest.intake import OVERSIZED_HEAD_BYTES
from protocols import topics
from protocols.messages import MAX_EDGE_PAYLOAD_BYTES, QuestionnaireAnswers, encode
from tests.conftest import make_user

GOOD = {"symptoms": ["none"], "medication": "always", "salt": "light", "exercise_days": 5}


@pytest.fixture
def conn(database_url):
    make_user(database_url, "cm-1", "case_manager", ("team-1",))
    with psycopg.connect(database_url, autocommit=True) as connection:
        for patient_id in ("P-1", "P-2"):
            care_store.create_patient(connection, patient_id, "张三", team_id="team-1")
        connection.execute(
            "INSERT INTO edges (edge_id, mode, patient_id) VALUES ('home-a', 'home', 'P-1')"
        )
        yield connection


def _answers(**changes):
    fields = {
        "answer_id": uuid.uuid4(),
        "edge_id": "home-a",
        "patient_id": "P-1",
        "questionnaire_id": "htn_follow_up",
        "questionnaire_version": 1,
        "answers": GOOD,
        "answered_at": datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    }
    return encode(QuestionnaireAnswers(**{**fields, **changes}))


def test_good_answers_are_stored_with_the_phones_time_and_bad_ones_refused(conn):
    topic = topics.questionnaire_answers("home-a")
    edge, result = apply_edge_answers(conn, topic, _answers(), "Asia/Shanghai")
    assert (edge, result.status, result.risk_level, result.score) == ("home-a", "stored", "low", 0)
    row = conn.execute("SELECT answered_at, entered_by FROM questionnaire_responses").fetchone()
    assert row == (datetime(2026, 12, 1, 8, 30, tzinfo=UTC), "P-1")

    refused = {
        "patient_not_bound": _answers(patient_id="P-2"),
        "unknown_questionnaire": _answers(questionnaire_id="no_such_form"),
        "questionnaire_version": _answers(questionnaire_version=2),
        "answers_invalid": _answers(answers={**GOOD, "stop_reason": "cost"}),
    }
    for code, payload in refused.items():
        answered = apply_edge_answers(conn, topic, payload, "Asia/Shanghai")
        assert answered is not None
        assert (answered[1].status, answered[1].code) == ("rejected", code), answered[1]
    # Not answerable at all (no id to answer to, or not this edge's): dead letters only.
    assert apply_edge_answers(conn, topic, b"{", "Asia/Shanghai") is None
    assert apply_edge_answers(conn, topic, _answers(edge_id="home-b"), "Asia/Shanghai") is None
    assert (
        apply_edge_answers(conn, topics.questionnaire_answers("home-x"), _answers(), "UTC") is None
    )
    codes = [r[0] for r in conn.execute("SELECT code FROM dead_letters ORDER BY dead_letter_id")]
    assert codes == [*refused, "malformed_message", "edge_mismatch", "unknown_edge"]
    assert conn.execute("SELECT count(*) FROM questionnaire_responses").fetchone() == (1,)


def test_oversized_answers_are_dead_lettered_before_they_are_read(conn):
    payload = _answers()[:-1] + b" " * MAX_EDGE_PAYLOAD_BYTES + b"}"
    topic = topics.questionnaire_answers("home-a")
    assert apply_edge_answers(conn, topic, payload, "Asia/Shanghai") is None
    row = conn.execute("SELECT code, edge_id, length(payload) FROM dead_letters").fetchone()
    assert row == ("message_too_large", "home-a", OVERSIZED_HEAD_BYTES)
    assert conn.execute("SELECT count(*) FROM questionnaire_responses").fetchone() == (0,)
