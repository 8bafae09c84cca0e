"""What a chart of one metric draws for one patient: target band, threshold lines and the
tier of each value. Pure; the page's script draws what this returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloud.alerts.thresholds import DEFAULT_RULES, Cohort, Op, RuleSet, Threshold, Tier
from protocols.metrics import METRICS, Metric

# Charts a clinician reads; blood pressure is one chart with two lines.
CHARTS: dict[str, tuple[Metric, ...]] = {
    "blood_pressure": (Metric.SYSTOLIC, Metric.DIASTOLIC),
    "pulse_rate": (Metric.PULSE_RATE,),
    "glucose": (Metric.GLUCOSE,),
    "spo2": (Metric.SPO2,),
    "weight": (Metric.WEIGHT,),
}


@dataclass(frozen=True)
class Band:
    low: float | None
    high: float | None
    set_by_doctor: bool


def _known_cohorts(cohorts: Iterable[str]) -> frozenset[Cohort]:
    known = {c.value for c in Cohort}
    return frozenset(Cohort(c) for c in cohorts if c in known)


def context_free_thresholds(
    metric: Metric, cohorts: Iterable[str], rules: RuleSet = DEFAULT_RULES
) -> list[Threshold]:
    """The thresholds that apply to this patient whatever the meal context: the ones a line
    on a chart can honestly stand for."""
    mine = _known_cohorts(cohorts)
    return [
        th
        for th in rules.thresholds
        if th.metric is metric and th.meals is None and th.applies(mine, None)
    ]


def target_band(
    metric: Metric, cohorts: Iterable[str], doctor_target: dict[str, Any] | None
) -> Band:
    """The doctor's target when one is set, else the default target rules' bounds."""
    if doctor_target is not None:
        return Band(doctor_target.get("low"), doctor_target.get("high"), True)
    low = high = None
    for th in context_free_thresholds(metric, cohorts):
        if not th.out_of_target:
            continue
        if th.op in (Op.GE, Op.GT):
            high = th.value if high is None else min(high, th.value)
        else:
            low = th.value if low is None else max(low, th.value)
    return Band(low, high, False)


def tier_of(value: float, thresholds: Iterable[Threshold]) -> Tier | None:
    """The most urgent threshold the value crosses (the rules' "most urgent match wins")."""
    matched = [th.tier for th in thresholds if th.matches(value)]
    return max(matched, key=lambda tier: tier.rank) if matched else None


def chart_spec(
    name: str, cohorts: Iterable[str], targets: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """JSON for the page script: series, unit, band and threshold lines per metric."""
    cohort_list = list(cohorts)
    series = []
    for metric in CHARTS[name]:
        band = target_band(metric, cohort_list, targets.get(metric.value))
        series.append(
            {
                "metric": metric.value,
                "name_zh": METRICS[metric].name_zh,
                "name_en": METRICS[metric].name_en,
                "decimals": METRICS[metric].decimals,
                "band": {"low": band.low, "high": band.high, "doctor": band.set_by_doctor},
                # Target rules colour points (as their low-tier alerts would) but are drawn
                # as the band, not as lines.
                "thresholds": [
                    {
                        "value": th.value,
                        "op": th.op.value,
                        "tier": th.tier.value,
                        "target": th.out_of_target,
                    }
                    for th in context_free_thresholds(metric, cohort_list)
                ],
            }
        )
    return {"chart": name, "unit": METRICS[CHARTS[name][0]].unit, "series": series}
