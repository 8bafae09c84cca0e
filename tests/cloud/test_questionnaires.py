"""Questionnaire scoring and skip logic."""

from __future__ import annotations

import pytest

from cloud.programmes.errors import AnswersInvalid, QuestionnaireInvalid
from cloud.programmes.questionnaires import (
    parse_questionnaire,
    score,
    shipped_questionnaires,
    visible_questions,
)

HTN = shipped_questionnaires()["htn_follow_up"]
CALM = {"symptoms": ["none"], "medication": "always", "salt": "light", "exercise_days": 5}


def test_a_well_patient_scores_zero_and_low_risk():
    result = score(HTN, CALM)
    assert (result.score, result.risk_level, result.task_tier) == (0, "low", None)
    assert "stop_reason" not in result.asked


def test_stopping_medication_opens_the_follow_up_question():
    assert "stop_reason" not in [q.id for q in visible_questions(HTN, CALM)]
    stopped = {**CALM, "medication": "stopped"}
    assert "stop_reason" in [q.id for q in visible_questions(HTN, stopped)]
    with pytest.raises(AnswersInvalid, match="stop_reason must be answered"):
        score(HTN, stopped)
    result = score(HTN, {**stopped, "stop_reason": "side_effect"})
    # 4 (stopped) + 2 (side effect) = 6 → medium, a follow-up task
    assert (result.score, result.risk_level, result.task_tier) == (6, "medium", "medium")


def test_points_add_up_to_the_band():
    answers = {
        "symptoms": ["headache", "faint"],
        "medication": "sometimes",
        "salt": "salty",
        "exercise_days": 1,
    }
    result = score(HTN, answers)
    assert result.score == 2 + 2 + 2 + 2 + 2
    assert result.risk_level == "high"


def test_a_red_flag_symptom_is_high_risk_whatever_the_total():
    result = score(HTN, {**CALM, "symptoms": ["chest_pain"]})
    assert result.score == 4
    assert result.risk_level == "high"
    assert result.task_tier == "high"


def test_answers_to_hidden_or_unknown_questions_are_refused():
    with pytest.raises(AnswersInvalid, match="hides"):
        score(HTN, {**CALM, "stop_reason": "cost"})
    with pytest.raises(AnswersInvalid, match="unknown"):
        score(HTN, {**CALM, "mood": "fine"})
    with pytest.raises(AnswersInvalid, match="not one of the options"):
        score(HTN, {**CALM, "salt": "very"})


def test_a_form_whose_skip_logic_points_forward_is_invalid():
    data = HTN.model_dump(mode="json")
    data["questions"][0]["show_if"] = {"question": "salt", "any_of": ["salty"]}
    with pytest.raises(QuestionnaireInvalid, match="earlier question"):
        parse_questionnaire(data)


def test_all_shipped_forms_score_a_calm_patient_low():
    calm = {
        "dm_follow_up": {
            "hypo": "no",
            "high_symptoms": ["none"],
            "medication": "always",
            "diet": "good",
        },
        "hf_follow_up": {
            "breathless": "better",
            "orthopnoea": "no",
            "oedema": "no",
            "weight_gain": "no",
            "fluid": "yes",
            "medication": "always",
        },
    }
    for form_id, answers in calm.items():
        assert score(shipped_questionnaires()[form_id], answers).risk_level == "low"
    severe_hypo = {**calm["dm_follow_up"], "hypo": "yes", "hypo_help": "yes"}
    assert score(shipped_questionnaires()["dm_follow_up"], severe_hypo).risk_level == "high"
