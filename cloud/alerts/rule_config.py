"""Rule sets as JSON configuration a hospital signs off: validated on the way in, and the
built-in default expressible the same way (so a hospital starts from it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.alerts.thresholds import (
    DEFAULT_RULES,
    Cohort,
    FlagRule,
    Op,
    RuleSet,
    Threshold,
    Tier,
)
from protocols.errors import CareBridgeError
from protocols.metrics import Metric
from protocols.reading import MealContext, StatusFlag


class RuleSetError(CareBridgeError):
    code = "invalid_rule_set"


class _ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(pattern=r"^[a-z0-9_.]{3,80}$")
    metric: Metric
    tier: Tier
    op: Op
    value: float
    title_zh: str = Field(min_length=1, max_length=40)
    meals: list[MealContext | None] | None = None
    cohorts: list[Cohort] | None = None
    excludes: list[Cohort] = []
    out_of_target: bool = False


class _FlagRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: str = Field(pattern=r"^[a-z0-9_.]{3,80}$")
    metric: Metric
    flag: StatusFlag
    tier: Tier
    title_zh: str = Field(min_length=1, max_length=40)


class _RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_\-]{1,40}$")
    version: str = Field(min_length=1, max_length=60)
    thresholds: list[_ThresholdIn] = Field(min_length=1)
    flag_rules: list[_FlagRuleIn] = []


def rule_set_from_json(data: dict[str, Any]) -> RuleSet:
    try:
        parsed = _RuleSetIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RuleSetError(f"{where}: {first['msg']}") from exc
    ids = [t.rule_id for t in parsed.thresholds] + [f.rule_id for f in parsed.flag_rules]
    if len(ids) != len(set(ids)):
        raise RuleSetError("rule ids must be unique within a rule set")
    critical_metrics = {t.metric for t in parsed.thresholds if t.tier is Tier.CRITICAL}
    missing = {Metric.GLUCOSE, Metric.SYSTOLIC, Metric.SPO2} - critical_metrics
    if missing:
        # A hospital may tune thresholds, not switch off the emergencies.
        raise RuleSetError(
            f"a rule set needs critical rules for {', '.join(sorted(m.value for m in missing))}"
        )
    return RuleSet(
        name=parsed.name,
        version=parsed.version,
        thresholds=tuple(
            Threshold(
                t.rule_id,
                t.metric,
                t.tier,
                t.op,
                t.value,
                t.title_zh,
                meals=None if t.meals is None else frozenset(t.meals),
                cohorts=None if t.cohorts is None else frozenset(t.cohorts),
                excludes=frozenset(t.excludes),
                out_of_target=t.out_of_target,
            )
            for t in parsed.thresholds
        ),
        flag_rules=tuple(
            FlagRule(f.rule_id, f.metric, f.flag, f.tier, f.title_zh) for f in parsed.flag_rules
        ),
    )


def rule_set_to_json(rules: RuleSet) -> dict[str, Any]:
    def threshold(t: Threshold) -> dict[str, Any]:
        return {
            "rule_id": t.rule_id,
            "metric": t.metric.value,
            "tier": t.tier.value,
            "op": t.op.value,
            "value": t.value,
            "title_zh": t.title_zh,
            "meals": None
            if t.meals is None
            else sorted((m.value if m else None for m in t.meals), key=lambda v: v or ""),
            "cohorts": None if t.cohorts is None else sorted(c.value for c in t.cohorts),
            "excludes": sorted(c.value for c in t.excludes),
            "out_of_target": t.out_of_target,
        }

    return {
        "name": rules.name,
        "version": rules.version,
        "thresholds": [threshold(t) for t in rules.thresholds],
        "flag_rules": [
            {
                "rule_id": f.rule_id,
                "metric": f.metric.value,
                "flag": f.flag.value,
                "tier": f.tier.value,
                "title_zh": f.title_zh,
            }
            for f in rules.flag_rules
        ],
    }


def default_rule_set_json() -> dict[str, Any]:
    return rule_set_to_json(DEFAULT_RULES)
