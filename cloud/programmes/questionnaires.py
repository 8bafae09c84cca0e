"""Questionnaires (随访表单) as data: questions with skip logic, scoring, risk levels. Pure.

A question is shown when its `show_if` holds for an earlier answer; hidden questions are
neither asked nor scored, and answers to them are refused (a form entered during a call
must match what the patient was actually asked). The score is the sum of the chosen
options' points (numbers score through bands); the risk level is the highest level whose
`min_score` is reached, raised further by any chosen option with a `min_level` (a red-flag
symptom is high risk whatever the total).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloud.programmes.errors import AnswersInvalid, QuestionnaireInvalid

# The format and the skip logic are the protocol's: the patient app shows the same forms.
from protocols.questionnaires import (
    LEVELS,
    Band,
    Option,
    Question,
    Questionnaire,
    RiskLevel,
    ShowIf,
    visible_questions,
)

QUESTIONNAIRE_DIR = Path(__file__).with_name("questionnaires")


@dataclass(frozen=True)
class Result:
    score: float
    risk_level: str
    label: str
    task_title: str | None
    task_tier: str | None
    asked: list[str]


def parse_questionnaire(data: dict[str, Any]) -> Questionnaire:
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as exc:
        raise QuestionnaireInvalid(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from exc


def _points(q: Question, answer: Any) -> tuple[float, str | None]:
    if q.type == "number":
        if not isinstance(answer, int | float) or isinstance(answer, bool):
            raise AnswersInvalid(f"{q.id}: a number is needed")
        for band in q.bands:
            if band.min <= answer <= band.max:
                return band.score, None
        return 0.0, None
    chosen = answer if q.type == "multi" else [answer]
    if q.type == "multi" and not isinstance(answer, list):
        raise AnswersInvalid(f"{q.id}: a list of options is needed")
    options = {o.value: o for o in q.options}
    total, level = 0.0, None
    for value in chosen:
        option = options.get(value)
        if option is None:
            raise AnswersInvalid(f"{q.id}: {value!r} is not one of the options")
        total += option.score
        if option.min_level and (
            level is None or LEVELS.index(option.min_level) > LEVELS.index(level)
        ):
            level = option.min_level
    return total, level


def score(form: Questionnaire, answers: dict[str, Any]) -> Result:
    """Score a completed form; raise AnswersInvalid for missing, unknown or hidden answers."""
    visible = visible_questions(form, answers)
    visible_ids = {q.id for q in visible}
    known = {q.id for q in form.questions}
    unknown = set(answers) - known
    if unknown:
        raise AnswersInvalid(f"unknown questions: {sorted(unknown)}")
    hidden = set(answers) - visible_ids
    if hidden:
        raise AnswersInvalid(f"answers to questions the skip logic hides: {sorted(hidden)}")
    total, floor = 0.0, "low"
    for q in visible:
        if q.id not in answers:
            if q.required:
                raise AnswersInvalid(f"{q.id} must be answered")
            continue
        points, level = _points(q, answers[q.id])
        total += points
        if level and LEVELS.index(level) > LEVELS.index(floor):
            floor = level
    by_score = max((r for r in form.risk_levels if r.min_score <= total), key=lambda r: r.min_score)
    chosen = by_score
    if LEVELS.index(floor) > LEVELS.index(by_score.level):
        chosen = next(r for r in form.risk_levels if r.level == floor)
    return Result(
        score=total,
        risk_level=chosen.level,
        label=chosen.label,
        task_title=chosen.task_title,
        task_tier=chosen.task_tier,
        asked=[q.id for q in visible],
    )


@lru_cache(maxsize=1)
def shipped_questionnaires() -> dict[str, Questionnaire]:
    found = {}
    for path in sorted(QUESTIONNAIRE_DIR.glob("*.json")):
        form = parse_questionnaire(json.loads(path.read_text(encoding="utf-8")))
        found[form.questionnaire_id] = form
    return found


__all__ = [
    "LEVELS",
    "QUESTIONNAIRE_DIR",
    "Band",
    "Option",
    "Question",
    "Questionnaire",
    "Result",
    "RiskLevel",
    "ShowIf",
    "parse_questionnaire",
    "score",
    "shipped_questionnaires",
    "visible_questions",
]
