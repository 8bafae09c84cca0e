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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.programmes.errors import AnswersInvalid, QuestionnaireInvalid

QUESTIONNAIRE_DIR = Path(__file__).with_name("questionnaires")
LEVELS = ("low", "medium", "high")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    value: str
    label: str
    score: float = 0
    min_level: Literal["low", "medium", "high"] | None = None


class Band(_Strict):
    min: float
    max: float
    score: float


class ShowIf(_Strict):
    question: str
    any_of: list[str] = []
    at_least: float | None = None


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: str
    text_en: str = ""
    type: Literal["single", "multi", "number"]
    options: list[Option] = []
    bands: list[Band] = []
    required: bool = True
    show_if: ShowIf | None = None

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.type in ("single", "multi") and not self.options:
            raise ValueError(f"question {self.id}: a {self.type} question needs options")
        if self.type == "number" and self.options:
            raise ValueError(f"question {self.id}: a number question has bands, not options")
        return self


class RiskLevel(_Strict):
    level: Literal["low", "medium", "high"]
    min_score: float
    label: str
    task_title: str | None = None
    task_tier: Literal["low", "medium", "high"] | None = None


class Questionnaire(_Strict):
    questionnaire_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    version: int = Field(ge=1)
    title: str
    title_en: str = ""
    questions: list[Question] = Field(min_length=1)
    risk_levels: list[RiskLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Questionnaire:
        seen: dict[str, Question] = {}
        for q in self.questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id} repeats")
            if q.show_if is not None:
                earlier = seen.get(q.show_if.question)
                if earlier is None:
                    raise ValueError(f"question {q.id}: show_if must name an earlier question")
                values = {o.value for o in earlier.options}
                if not set(q.show_if.any_of) <= values:
                    raise ValueError(f"question {q.id}: show_if names unknown options")
            seen[q.id] = q
        defined = {r.level for r in self.risk_levels}
        for q in self.questions:
            for o in q.options:
                if o.min_level and o.min_level not in defined:
                    raise ValueError(f"question {q.id}: min_level {o.min_level} is not defined")
        if min(r.min_score for r in self.risk_levels) > 0:
            raise ValueError("the lowest risk level must start at score 0 or below")
        return self


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


def _shown(q: Question, answers: dict[str, Any]) -> bool:
    rule = q.show_if
    if rule is None:
        return True
    given = answers.get(rule.question)
    if given is None:
        return False
    if rule.any_of:
        chosen = set(given) if isinstance(given, list) else {given}
        return bool(chosen & set(rule.any_of))
    if rule.at_least is not None:
        return isinstance(given, int | float) and given >= rule.at_least
    return True


def visible_questions(form: Questionnaire, answers: dict[str, Any]) -> list[Question]:
    """The questions to ask given the answers so far (the skip logic)."""
    shown: list[Question] = []
    for q in form.questions:
        if _shown(q, answers):
            shown.append(q)
    return shown


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
