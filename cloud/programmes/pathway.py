"""Pathway templates as data: the format, its validation and the shipped templates.

A pathway is JSON (see docs/programmes.md): phases with day offsets, scheduled actions in
each phase and the thresholds that apply. Validation is strict (unknown keys are refused)
so a typo in a clinician-written template fails loudly instead of silently dropping a task.
"""

from __future__ import annotations

import itertools
import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.programmes.errors import PathwayInvalid
from protocols.metrics import Metric

PATHWAY_DIR = Path(__file__).with_name("pathways")
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class ActionKind(StrEnum):
    FOLLOW_UP_CALL = "follow_up_call"
    QUESTIONNAIRE = "questionnaire"
    EDUCATION = "education"
    MEASUREMENT_PLAN = "measurement_plan"
    REVISIT_REMINDER = "revisit_reminder"
    LIFESTYLE_CHECK_IN = "lifestyle_check_in"


# Work that a person does from the queue (the others run by themselves when due).
STAFF_ACTIONS = frozenset(
    {ActionKind.FOLLOW_UP_CALL, ActionKind.QUESTIONNAIRE, ActionKind.LIFESTYLE_CHECK_IN}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasurementSpec(_Strict):
    metric: Metric
    times_per_day: int = Field(ge=1, le=8)
    how: str = ""


class Action(_Strict):
    key: Key
    kind: ActionKind
    day: int = Field(ge=0, description="days after the phase starts")
    repeat_every_days: int | None = Field(default=None, ge=1)
    title: str = Field(min_length=1)
    title_en: str = ""
    grace_days: int = Field(default=1, ge=0, description="done on time = by due date + grace")
    script: list[str] = []
    questionnaire: str | None = None
    template_id: str | None = None
    measurements: list[MeasurementSpec] = []
    window_days: int = Field(default=7, ge=0, description="revisit on time = due ± window")

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Action:
        needs = {
            ActionKind.FOLLOW_UP_CALL: ("script", bool(self.script)),
            ActionKind.QUESTIONNAIRE: ("questionnaire", bool(self.questionnaire)),
            ActionKind.EDUCATION: ("template_id", bool(self.template_id)),
            ActionKind.MEASUREMENT_PLAN: ("measurements", bool(self.measurements)),
            ActionKind.REVISIT_REMINDER: ("template_id", bool(self.template_id)),
            ActionKind.LIFESTYLE_CHECK_IN: ("script", bool(self.script)),
        }
        field, present = needs[self.kind]
        if not present:
            raise ValueError(f"action {self.key}: a {self.kind.value} needs `{field}`")
        if self.kind is ActionKind.MEASUREMENT_PLAN and self.repeat_every_days:
            raise ValueError(f"action {self.key}: a measurement plan runs, it does not repeat")
        return self


class Phase(_Strict):
    key: Key
    name: str = Field(min_length=1)
    name_en: str = ""
    start_day: int = Field(ge=0)
    end_day: int = Field(ge=1, description="exclusive")
    actions: list[Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _actions_inside(self) -> Phase:
        if self.end_day <= self.start_day:
            raise ValueError(f"phase {self.key}: end_day must be after start_day")
        for action in self.actions:
            if self.start_day + action.day >= self.end_day:
                raise ValueError(f"phase {self.key}: action {action.key} falls after the phase")
        return self


class Threshold(_Strict):
    metric: Metric
    tier: str = Field(pattern=r"^(critical|high|medium|low)$")
    rule: str = Field(min_length=1, description="the condition in words, as in clinical_rules")
    response: str = Field(min_length=1)


class WarningSign(_Strict):
    """A complication or adverse drug reaction the case manager must recognise."""

    sign: str = Field(min_length=1)
    response: str = Field(min_length=1)


class Pathway(_Strict):
    pathway_id: Key
    version: int = Field(ge=1)
    disease: str = Field(min_length=1)
    cohort: str = Field(pattern=r"^(hypertension|diabetes|heart_failure|copd)$")
    name: str = Field(min_length=1)
    name_en: str = ""
    source: str = Field(min_length=1, description="where the clinical content comes from")
    phases: list[Phase] = Field(min_length=1)
    thresholds: list[Threshold] = []
    warning_signs: list[WarningSign] = []

    @model_validator(mode="after")
    def _consistent(self) -> Pathway:
        keys = [a.key for p in self.phases for a in p.actions]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"action keys must be unique in a pathway: {duplicates}")
        phases = [p.key for p in self.phases]
        if len(set(phases)) != len(phases):
            raise ValueError("phase keys must be unique")
        ordered = sorted(self.phases, key=lambda p: p.start_day)
        for before, after in itertools.pairwise(ordered):
            if after.start_day < before.end_day:
                raise ValueError(f"phases {before.key} and {after.key} overlap")
        return self

    @property
    def length_days(self) -> int:
        return max(p.end_day for p in self.phases)

    def questionnaires(self) -> set[str]:
        return {a.questionnaire for p in self.phases for a in p.actions if a.questionnaire}

    def templates(self) -> set[str]:
        return {a.template_id for p in self.phases for a in p.actions if a.template_id}


def parse_pathway(data: dict[str, Any], known_questionnaires: set[str] | None = None) -> Pathway:
    """Validate a template; raise PathwayInvalid naming every problem found."""
    try:
        pathway = Pathway.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'pathway'}: {e['msg']}" for e in exc.errors()
        )
        raise PathwayInvalid(problems) from exc
    if known_questionnaires is not None:
        missing = pathway.questionnaires() - known_questionnaires
        if missing:
            raise PathwayInvalid(f"unknown questionnaires: {sorted(missing)}")
    return pathway


@lru_cache(maxsize=1)
def shipped_pathways() -> dict[str, Pathway]:
    """The templates shipped with the code, by pathway id (validated at first use)."""
    from cloud.programmes.questionnaires import shipped_questionnaires

    known = set(shipped_questionnaires())
    found = {}
    for path in sorted(PATHWAY_DIR.glob("*.json")):
        pathway = parse_pathway(json.loads(path.read_text(encoding="utf-8")), known)
        found[pathway.pathway_id] = pathway
    return found
