"""Trend rules on constructed daily histories, both sides of each boundary."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from cloud.alerts.thresholds import Tier
from cloud.alerts.trends import (
    daily_frame,
    days_out_of_target,
    findings,
    heart_failure_weight_gain,
    home_bp_mean,
    recurrent_hypoglycaemia,
    systolic_rising,
)

TODAY = date(2026, 11, 24)


def frame(metric, values, *, n=2, today=TODAY):
    """Daily rows ending today: values[-1] is today's mean (None skips a day)."""
    rows = []
    for back, value in enumerate(reversed(values)):
        if value is None:
            continue
        rows.append(
            {
                "day": today - timedelta(days=back),
                "metric": metric,
                "n": n,
                "mean": value,
                "min": value,
                "max": value,
                "sum": value * n,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("weights", "rule", "tier"),
    [
        ([70.0, 70.5, 71.0, 72.0], None, None),  # +2.0 in 3 days: not more than 2
        ([70.0, 70.5, 71.5, 72.1], "weight.hf.gain_3d", Tier.HIGH),
        ([70.0, 70.0, 70.0, 71.0], None, None),  # +1.0 overnight: not more than 1
        ([70.0, 70.0, 70.0, 71.1], "weight.hf.gain_overnight", Tier.MEDIUM),
        ([72.1], None, None),
    ],
)
def test_heart_failure_weight_gain(weights, rule, tier):
    finding = heart_failure_weight_gain(frame("weight", weights), TODAY)
    assert (finding.rule_id, finding.tier) == (rule, tier) if rule else finding is None


@pytest.mark.parametrize(
    ("fasting_means", "tier"),
    [
        ([6.5, 7.5, 6.8, 7.2, 6.9, 6.0, 6.2], None),  # 2 of 7 above 7.0
        ([6.5, 7.5, 6.8, 7.2, 6.9, 7.6, 6.2], Tier.MEDIUM),  # 3 of 7
        ([7.5, 7.5, 7.8, 7.2, 6.9, 7.6, 6.2], Tier.HIGH),  # 5 of 7
    ],
)
def test_days_out_of_target(fasting_means, tier):
    finding = days_out_of_target(
        frame("glucose", fasting_means),
        TODAY,
        "glucose",
        7.0,
        "glucose.fasting.days_above",
        "空腹血糖多日未达标",
    )
    assert (finding.tier if finding else None) is tier


def test_home_bp_mean_needs_three_days_and_either_side_above():
    below = pd.concat([frame("systolic", [130, 132, 134]), frame("diastolic", [80, 82, 84])])
    assert home_bp_mean(below, TODAY) is None
    systolic_high = pd.concat(
        [frame("systolic", [134, 136, 136]), frame("diastolic", [80, 80, 80])]
    )
    finding = home_bp_mean(systolic_high, TODAY)
    assert finding.rule_id == "bp.home_mean_7d" and "135/80" in finding.reason
    two_days = pd.concat([frame("systolic", [150, 150]), frame("diastolic", [95, 95])])
    assert home_bp_mean(two_days, TODAY) is None


@pytest.mark.parametrize(
    ("daily_minimums", "found"),
    [
        ([5.0, 3.8, 5.2, 6.0], False),  # one level-1 day
        ([5.0, 3.8, 5.2, 3.5], True),  # two level-1 days
        ([5.0, 2.9, 5.2, 6.0], True),  # any level 2
        ([3.5, None, None, None, None, None, None, None, 3.8], False),  # 8 days apart
    ],
)
def test_recurrent_hypoglycaemia(daily_minimums, found):
    finding = recurrent_hypoglycaemia(frame("glucose", daily_minimums), TODAY)
    assert (finding is not None) is found
    if found:
        assert finding.tier is Tier.HIGH


def test_systolic_rising_by_20_week_on_week():
    flat = frame("systolic", [130] * 7 + [149] * 7)
    assert systolic_rising(flat, TODAY) is None
    rising = frame("systolic", [130] * 7 + [150] * 7)
    finding = systolic_rising(rising, TODAY)
    assert finding.rule_id == "bp.systolic_rising" and "20 mmHg" in finding.reason


def _reading(at, metric, value, source="home", meal=None):
    return {"time": at, "metric": metric, "value": value, "source": source, "meal": meal}


def test_readings_become_one_row_per_hospital_day_and_metric():
    rows = [
        # 23:30 UTC on the 23rd is 07:30 on the 24th in Shanghai.
        _reading(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), "weight", 70.0),
        _reading(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), "weight", 72.0),
        _reading(datetime(2026, 11, 23, 1, 0, tzinfo=UTC), "weight", 69.0),
    ]
    daily = daily_frame(rows, "Asia/Shanghai").set_index("day")
    assert list(daily.index) == [date(2026, 11, 23), TODAY]
    assert daily.loc[TODAY, ["n", "mean", "min", "max", "sum"]].tolist() == [2, 71, 70, 72, 142]
    assert daily_frame([], "Asia/Shanghai").empty


def test_only_the_rules_of_the_patients_cohorts_are_judged():
    gain = [
        _reading(datetime(2026, 11, 22, 2, 0, tzinfo=UTC), "weight", 70.0),
        _reading(datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "weight", 72.5),
    ]
    assert [f.rule_id for f in findings({"heart_failure"}, gain, TODAY, "Asia/Shanghai")] == [
        "weight.hf.gain_3d"
    ]
    assert findings({"diabetes"}, gain, TODAY, "Asia/Shanghai") == []
