"""The questionnaire format (随访表单) shared by the cloud and the patient app, and its skip logic.

The cloud validates, scores and stores answers (`cloud.programmes.questionnaires`); the app
shows a form it was sent in `EdgeConfig.questionnaires` and asks only what the skip logic
shows, so what the patient answers is what the cloud will accept. Pure, no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
