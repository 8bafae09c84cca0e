"""Threshold rules as data: which value of which metric, in which context and cohort, is
how urgent. Pure; the default set is `shared/docs/clinical_rules.md` §1, and a hospital
replaces or extends it by configuration it signs off.

A value is judged against every rule of its metric that applies to the patient's cohorts
and the reading's meal context; the most urgent match wins. A doctor's per-patient target
replaces the default out-of-target rules for that metric, never the critical ones.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.metrics import Metric
from protocols.reading import MealContext, StatusFlag


class Tier(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher is more urgent."""
        return _RANK[self]


_RANK = {Tier.CRITICAL: 4, Tier.HIGH: 3, Tier.MEDIUM: 2, Tier.LOW: 1}


class Cohort(StrEnum):
    GENERAL = "general"
    DIABETES = "diabetes"
    HYPERTENSION = "hypertension"
    HEART_FAILURE = "heart_failure"
    COPD = "copd"


class Op(StrEnum):
    LT = "<"
    LE = "<="
    GE = ">="
    GT = ">"


_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GE: operator.ge,
    Op.GT: operator.gt,
}

FASTING_LIKE = frozenset({MealContext.FASTING, MealContext.BEFORE_MEAL})
NON_FASTING = frozenset({MealContext.AFTER_MEAL, MealContext.BEDTIME, MealContext.RANDOM})


@dataclass(frozen=True)
class Threshold:
    rule_id: str
    metric: Metric
    tier: Tier
    op: Op
    value: float
    title_zh: str
    meals: frozenset[MealContext | None] | None = None
    """Meal contexts it applies to (None inside the set = context unknown); None = all."""
    cohorts: frozenset[Cohort] | None = None
    """Applies only to patients in one of these cohorts; None = everyone."""
    excludes: frozenset[Cohort] = frozenset()
    """Does not apply to patients in these cohorts (e.g. COPD has its own SpO2 targets)."""
    out_of_target: bool = False
    """A target rule, which a doctor's per-patient target replaces."""

    test: Callable[[float, float], bool] = field(init=False, repr=False, compare=False)
    """The comparison `op` names, looked up once: `test(value, self.value)`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", _OPS[self.op])

    def matches(self, value: float) -> bool:
        return self.test(value, self.value)

    def applies(self, cohorts: frozenset[Cohort], meal: MealContext | None) -> bool:
        if self.cohorts is not None and not (self.cohorts & cohorts):
            return False
        if self.excludes & cohorts:
            return False
        return self.meals is None or meal in self.meals


@dataclass(frozen=True)
class FlagRule:
    """A device flag that is itself a finding (a meter's LO/HI is a real extreme)."""

    rule_id: str
    metric: Metric
    flag: StatusFlag
    tier: Tier
    title_zh: str


@dataclass(frozen=True)
class Target:
    """A doctor's target for one patient and metric (audited where it is set)."""

    metric: Metric
    low: float | None
    high: float | None
    tier: Tier = Tier.MEDIUM


@dataclass(frozen=True)
class RuleSet:
    name: str
    version: str
    thresholds: tuple[Threshold, ...]
    flag_rules: tuple[FlagRule, ...] = ()
    _by_metric: dict[Metric, tuple[Threshold, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _applicable: dict[
        tuple[Metric, frozenset[Cohort], MealContext | None, bool], tuple[Threshold, ...]
    ] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Every value is judged against its metric's few thresholds, not all of them: ingest
        # judges each reading it stores. The set's order is kept within each metric.
        by_metric: dict[Metric, list[Threshold]] = {}
        for rule in self.thresholds:
            by_metric.setdefault(rule.metric, []).append(rule)
        object.__setattr__(
            self, "_by_metric", {metric: tuple(rules) for metric, rules in by_metric.items()}
        )
        object.__setattr__(self, "_applicable", {})

    def thresholds_for(self, metric: Metric) -> tuple[Threshold, ...]:
        return self._by_metric.get(metric, ())

    def applicable(
        self,
        metric: Metric,
        cohorts: frozenset[Cohort],
        meal: MealContext | None,
        *,
        has_target: bool,
    ) -> tuple[Threshold, ...]:
        """The thresholds that judge such a value, most urgent first and in the set's
        order within a tier, so the first that matches is the finding. A doctor's target
        stands in for the out-of-target rules.

        Remembered per combination (a few hundred at most): ingest judges thousands of
        values a second, and sifting the rules for each was most of the rules' time."""
        key = (metric, cohorts, meal, has_target)
        found = self._applicable.get(key)
        if found is None:
            rules = [
                rule
                for rule in self.thresholds_for(metric)
                if rule.applies(cohorts, meal) and not (has_target and rule.out_of_target)
            ]
            # Stable, reversed too: equally urgent rules keep the set's order.
            found = tuple(sorted(rules, key=lambda rule: rule.tier.rank, reverse=True))
            self._applicable[key] = found
        return found


@dataclass(frozen=True)
class Finding:
    """What one value means: the rule, its tier and why, for the alert's explanation."""

    rule_id: str
    tier: Tier
    metric: Metric
    value: float
    title_zh: str
    reason: str
    thresholds: dict[str, float] = field(default_factory=dict)


def _all_meals() -> frozenset[MealContext | None]:
    return frozenset([*MealContext, None])


_ANY_GLUCOSE_CONTEXT = _all_meals()
_UNKNOWN_OR_NON_FASTING: frozenset[MealContext | None] = frozenset({*NON_FASTING, None})
_DIABETES = frozenset({Cohort.DIABETES})
_HYPERTENSION = frozenset({Cohort.HYPERTENSION})
_COPD = frozenset({Cohort.COPD})

G, SBP, DBP, PR, SPO2 = (
    Metric.GLUCOSE,
    Metric.SYSTOLIC,
    Metric.DIASTOLIC,
    Metric.PULSE_RATE,
    Metric.SPO2,
)

DEFAULT_RULES = RuleSet(
    name="default",
    version="2026-11-clinical-rules-v1",
    thresholds=(
        # Glucose (mmol/L). Hypoglycaemia is judged for everyone: a level-2 value is
        # dangerous whatever the diagnosis on file.
        Threshold("glucose.hypo.level2", G, Tier.CRITICAL, Op.LT, 3.0, "严重低血糖"),
        Threshold("glucose.hyper.extreme", G, Tier.CRITICAL, Op.GE, 33.3, "血糖极高"),
        Threshold("glucose.hypo.level1", G, Tier.HIGH, Op.LT, 3.9, "低血糖"),
        Threshold("glucose.very_high", G, Tier.HIGH, Op.GE, 16.7, "血糖过高，需查酮体"),
        Threshold(
            "glucose.fasting.above_target",
            G,
            Tier.LOW,
            Op.GT,
            7.0,
            "空腹血糖未达标",
            meals=FASTING_LIKE,
            cohorts=_DIABETES,
            out_of_target=True,
        ),
        Threshold(
            "glucose.non_fasting.above_target",
            G,
            Tier.LOW,
            Op.GE,
            10.0,
            "餐后血糖未达标",
            meals=NON_FASTING,
            cohorts=_DIABETES,
            out_of_target=True,
        ),
        Threshold(
            "glucose.fasting.low_normal",
            G,
            Tier.LOW,
            Op.LT,
            4.4,
            "空腹血糖偏低",
            meals=FASTING_LIKE,
            cohorts=_DIABETES,
            out_of_target=True,
        ),
        # Blood pressure (mmHg), judged on a session's average.
        Threshold("bp.crisis.systolic", SBP, Tier.CRITICAL, Op.GE, 180, "血压危急"),
        Threshold("bp.crisis.diastolic", DBP, Tier.CRITICAL, Op.GE, 110, "血压危急"),
        Threshold("bp.grade2.systolic", SBP, Tier.HIGH, Op.GE, 160, "血压明显升高"),
        Threshold("bp.grade2.diastolic", DBP, Tier.HIGH, Op.GE, 100, "血压明显升高"),
        Threshold("bp.low.systolic", SBP, Tier.HIGH, Op.LT, 90, "低血压"),
        Threshold("bp.low.diastolic", DBP, Tier.HIGH, Op.LT, 60, "低血压"),
        Threshold(
            "bp.above_target.systolic",
            SBP,
            Tier.LOW,
            Op.GE,
            135,
            "血压未达标",
            cohorts=_HYPERTENSION,
            out_of_target=True,
        ),
        Threshold(
            "bp.above_target.diastolic",
            DBP,
            Tier.LOW,
            Op.GE,
            85,
            "血压未达标",
            cohorts=_HYPERTENSION,
            out_of_target=True,
        ),
        # Pulse (/min), at rest.
        Threshold("pulse.extreme.low", PR, Tier.CRITICAL, Op.LE, 40, "心率过缓"),
        Threshold("pulse.extreme.high", PR, Tier.CRITICAL, Op.GE, 150, "心率过速"),
        Threshold("pulse.low", PR, Tier.HIGH, Op.LT, 50, "心率偏慢"),
        Threshold("pulse.high", PR, Tier.HIGH, Op.GT, 120, "心率偏快"),
        # SpO2 (%): general targets 94–98; COPD (hypercapnic risk) targets 88–92.
        Threshold("spo2.critical", SPO2, Tier.CRITICAL, Op.LE, 90, "血氧危急", excludes=_COPD),
        Threshold("spo2.high", SPO2, Tier.HIGH, Op.LE, 92, "血氧偏低", excludes=_COPD),
        Threshold("spo2.medium", SPO2, Tier.MEDIUM, Op.LE, 94, "血氧略低", excludes=_COPD),
        Threshold(
            "spo2.copd.critical", SPO2, Tier.CRITICAL, Op.LE, 85, "血氧危急(慢阻肺)", cohorts=_COPD
        ),
        Threshold(
            "spo2.copd.high", SPO2, Tier.HIGH, Op.LE, 87, "血氧低于目标(慢阻肺)", cohorts=_COPD
        ),
    ),
    flag_rules=(
        FlagRule("glucose.meter_lo", G, StatusFlag.VALUE_LO, Tier.CRITICAL, "血糖仪显示LO"),
        FlagRule("glucose.meter_hi", G, StatusFlag.VALUE_HI, Tier.CRITICAL, "血糖仪显示HI"),
    ),
)


def judge_value(
    metric: Metric,
    value: float,
    *,
    cohorts: Iterable[Cohort] = (),
    meal: MealContext | None = None,
    flags: Iterable[StatusFlag] = (),
    targets: Iterable[Target] = (),
    rules: RuleSet = DEFAULT_RULES,
) -> Finding | None:
    """The most urgent finding for one value, or None when it is unremarkable."""
    cohort_set = _with_general(cohorts)
    # Ingest judges every value it stores, and nearly all carry no flags and no targets.
    if flags:
        flag_set = frozenset(flags)
        for flag_rule in rules.flag_rules:
            if flag_rule.metric is metric and flag_rule.flag in flag_set:
                return Finding(
                    flag_rule.rule_id,
                    flag_rule.tier,
                    metric,
                    value,
                    flag_rule.title_zh,
                    f"device reports {flag_rule.flag.value}",
                )
    target = next((t for t in targets if t.metric is metric), None) if targets else None
    best: Finding | None = None
    for rule in rules.applicable(metric, cohort_set, meal, has_target=target is not None):
        if rule.matches(value):
            best = Finding(
                rule.rule_id,
                rule.tier,
                metric,
                value,
                rule.title_zh,
                f"{metric.value} {value:g} {rule.op.value} {rule.value:g}",
                {"threshold": rule.value},
            )
            break
    if target is not None:
        finding = _judge_target(target, value)
        if finding is not None and (best is None or finding.tier.rank > best.tier.rank):
            best = finding
    return best


_WITH_GENERAL: dict[frozenset[Cohort], frozenset[Cohort]] = {}


def _with_general(cohorts: Iterable[Cohort]) -> frozenset[Cohort]:
    """`cohorts` and the general one, remembered for the few cohort sets patients have."""
    if not isinstance(cohorts, frozenset):
        return frozenset(cohorts) | {Cohort.GENERAL}
    found = _WITH_GENERAL.get(cohorts)
    if found is None:
        if len(_WITH_GENERAL) >= 1024:  # bounded; there are 2**5 sets of the five cohorts
            _WITH_GENERAL.clear()
        found = _WITH_GENERAL[cohorts] = cohorts | {Cohort.GENERAL}
    return found


def _judge_target(target: Target, value: float) -> Finding | None:
    if target.low is not None and value < target.low:
        side = f"below the patient's target {target.low:g}"
    elif target.high is not None and value > target.high:
        side = f"above the patient's target {target.high:g}"
    else:
        return None
    bounds = {k: v for k, v in (("low", target.low), ("high", target.high)) if v is not None}
    return Finding(
        f"{target.metric.value}.patient_target",
        target.tier,
        target.metric,
        value,
        "超出个人目标",
        f"{target.metric.value} {value:g} {side}",
        bounds,
    )
