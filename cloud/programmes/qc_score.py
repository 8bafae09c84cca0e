"""The monthly quality-control score (seed 001, domain.md, clinical_rules.md §5). Pure.

component = max(0, points − 0.5 × max(0, threshold − rate)), the rate in percent rounded to
one decimal; pathway compliance 30 points (threshold 90 %), satisfaction as non-refund 40
(95 %), revisit timeliness 30 (60 %); +1 per praise letter and per major abnormality caught
and handled in time; payment deduction = 1 % per point below 90.

Choices where the contract is silent (docs/programmes.md, "QC score"):
- rates are rounded half-up to 0.1 percentage point before comparing, as the KPI
  definitions say ("in percent to 1 decimal");
- deductions are not rounded to 0.5 steps: 86.5 % compliance loses 1.75 points;
- an empty denominator (nobody to measure) makes the component "not applicable" and it
  keeps its full points: the contract deducts for shortfalls, and nothing fell short. The
  report marks it so a reader sees the component measured nobody;
- the total including bonus points is capped at 100 (the contract's full marks);
- the payment deduction is fractional: a total of 88.5 cuts 1.5 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

FULL_MARKS = 100.0
PAYMENT_THRESHOLD = 90.0
CONTRACT_RISK_THRESHOLD = 70.0
CONTRACT_RISK_MONTHS = 3
LOSS_PER_POINT = 0.5


@dataclass(frozen=True)
class Rule:
    name: str
    points: float
    threshold_pct: float


PATHWAY_COMPLIANCE = Rule("pathway_compliance", 30.0, 90.0)
SATISFACTION = Rule("satisfaction", 40.0, 95.0)
REVISIT_TIMELINESS = Rule("revisit_timeliness", 30.0, 60.0)


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if self.denominator < 0 or not 0 <= self.numerator <= max(self.denominator, 0):
            raise ValueError(f"not a ratio: {self.numerator}/{self.denominator}")

    @property
    def rate_pct(self) -> float | None:
        if self.denominator == 0:
            return None
        exact = Decimal(self.numerator) * 100 / Decimal(self.denominator)
        return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Component:
    name: str
    max_points: float
    threshold_pct: float
    numerator: int
    denominator: int
    rate_pct: float | None
    shortfall_pp: float
    deduction: float
    points: float
    applicable: bool


@dataclass(frozen=True)
class MonthlyScore:
    pathway_compliance: Component
    satisfaction: Component
    revisit_timeliness: Component
    praise_letters: int
    major_abnormalities: int
    base: float
    bonus: float
    total: float
    payment_deduction_pct: float

    @property
    def components(self) -> list[Component]:
        return [self.pathway_compliance, self.satisfaction, self.revisit_timeliness]


def component(rule: Rule, ratio: Ratio) -> Component:
    rate_pct = ratio.rate_pct
    if rate_pct is None:
        return Component(
            rule.name,
            rule.points,
            rule.threshold_pct,
            ratio.numerator,
            ratio.denominator,
            None,
            0.0,
            0.0,
            rule.points,
            False,
        )
    shortfall = max(0.0, round(rule.threshold_pct - rate_pct, 1))
    deduction = min(rule.points, LOSS_PER_POINT * shortfall)
    return Component(
        rule.name,
        rule.points,
        rule.threshold_pct,
        ratio.numerator,
        ratio.denominator,
        rate_pct,
        shortfall,
        deduction,
        rule.points - deduction,
        True,
    )


def payment_deduction_pct(total: float) -> float:
    return round(max(0.0, PAYMENT_THRESHOLD - total), 2)


def monthly_score(
    pathway: Ratio,
    satisfaction: Ratio,
    revisit: Ratio,
    praise_letters: int = 0,
    major_abnormalities: int = 0,
) -> MonthlyScore:
    parts = (
        component(PATHWAY_COMPLIANCE, pathway),
        component(SATISFACTION, satisfaction),
        component(REVISIT_TIMELINESS, revisit),
    )
    base = sum(p.points for p in parts)
    bonus = float(praise_letters + major_abnormalities)
    total = min(FULL_MARKS, base + bonus)
    return MonthlyScore(
        *parts,
        praise_letters,
        major_abnormalities,
        base,
        bonus,
        total,
        payment_deduction_pct(total),
    )


def contract_at_risk(totals_in_year: list[float]) -> bool:
    """Three months under 70 in a contract year let the hospital end the contract."""
    return sum(1 for t in totals_in_year if t < CONTRACT_RISK_THRESHOLD) >= CONTRACT_RISK_MONTHS
