"""The monthly QC score against hand-computed values: both worked examples of
clinical_rules.md §5 and the edge cases whose handling docs/programmes.md documents."""

from __future__ import annotations

import pytest

from cloud.programmes.qc_score import (
    PATHWAY_COMPLIANCE,
    Ratio,
    component,
    contract_at_risk,
    monthly_score,
)


def test_worked_example_1_scores_93_with_no_deduction():
    # pathway 86 % (−4 pp → −2) = 28; non-refund 93 % (−2 → −1) = 39; revisit 52 % (−8 → −4) = 26
    score = monthly_score(Ratio(43, 50), Ratio(93, 100), Ratio(13, 25))
    assert [c.rate_pct for c in score.components] == [86.0, 93.0, 52.0]
    assert [c.points for c in score.components] == [28.0, 39.0, 26.0]
    assert score.total == 93.0
    assert score.payment_deduction_pct == 0.0


def test_worked_example_2_scores_75_and_cuts_15_percent():
    # pathway 70 % = 20; non-refund 85 % = 35; revisit 40 % = 20
    score = monthly_score(Ratio(7, 10), Ratio(85, 100), Ratio(2, 5))
    assert [c.points for c in score.components] == [20.0, 35.0, 20.0]
    assert score.total == 75.0
    assert score.payment_deduction_pct == 15.0


def test_a_component_never_goes_below_zero():
    revisit = monthly_score(Ratio(1, 1), Ratio(1, 1), Ratio(0, 10)).revisit_timeliness
    assert revisit.shortfall_pp == 60.0
    assert revisit.deduction == 30.0
    assert revisit.points == 0.0


def test_an_empty_denominator_is_not_applicable_and_keeps_full_points():
    score = monthly_score(Ratio(0, 0), Ratio(0, 0), Ratio(0, 0))
    assert [c.applicable for c in score.components] == [False, False, False]
    assert [c.rate_pct for c in score.components] == [None, None, None]
    assert score.total == 100.0


def test_fractional_deductions_are_kept_not_rounded_to_half_points():
    # 173/200 = 86.5 % → 3.5 pp short → 1.75 points off
    pathway = component(PATHWAY_COMPLIANCE, Ratio(173, 200))
    assert pathway.rate_pct == 86.5
    assert pathway.deduction == 1.75
    assert pathway.points == 28.25


def test_rates_are_rounded_to_one_decimal_half_up_before_comparing():
    # 2/3 = 66.666… → 66.7 %: 23.3 pp below 90 → 11.65 off
    pathway = component(PATHWAY_COMPLIANCE, Ratio(2, 3))
    assert pathway.rate_pct == 66.7
    assert pathway.deduction == pytest.approx(11.65)
    # 8.95 % → 9.0 (half up), not the banker's 8.9 (1790/20000 = 8.95 exactly)
    assert Ratio(1790, 20000).rate_pct == 9.0


def test_a_fractional_total_cuts_a_fractional_payment():
    # pathway 87 % (−1.5) = 28.5; satisfaction 100 % = 40; revisit 40 % (−10) = 20 → 88.5
    score = monthly_score(Ratio(87, 100), Ratio(10, 10), Ratio(4, 10))
    assert score.total == 88.5
    assert score.payment_deduction_pct == 1.5


def test_bonus_points_add_but_the_total_is_capped_at_full_marks():
    score = monthly_score(
        Ratio(86, 100), Ratio(93, 100), Ratio(52, 100), praise_letters=2, major_abnormalities=1
    )
    assert score.bonus == 3.0
    assert score.total == 96.0
    assert monthly_score(Ratio(1, 1), Ratio(1, 1), Ratio(1, 1), praise_letters=4).total == 100.0


def test_a_refund_lowers_satisfaction():
    none_refunded = monthly_score(Ratio(1, 1), Ratio(20, 20), Ratio(1, 1))
    two_refunded = monthly_score(Ratio(1, 1), Ratio(18, 20), Ratio(1, 1))
    assert two_refunded.satisfaction.rate_pct == 90.0
    assert two_refunded.satisfaction.points == 37.5
    assert two_refunded.total < none_refunded.total


def test_three_months_under_70_put_the_contract_at_risk():
    assert not contract_at_risk([69.0, 95.0, 69.5, 90.0])
    assert contract_at_risk([69.0, 95.0, 69.5, 50.0])


def test_a_ratio_above_one_is_refused():
    with pytest.raises(ValueError):
        Ratio(3, 2)
