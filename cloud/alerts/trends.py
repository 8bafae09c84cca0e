"""Trend rules over a patient's history (clinical_rules.md §1 and §3). Pure: they take a
frame of daily values and return findings; reading the history is the caller's job.

The frame has one row per calendar day and metric: columns `day` (date), `metric`, `n`,
`mean`, `min`, `max` — the shape of `readings_daily`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from cloud.alerts.thresholds import Cohort, Tier


@dataclass(frozen=True)
class TrendFinding:
    rule_id: str
    tier: Tier
    title_zh: str
    reason: str
    days: list[date]


def _series(frame: pd.DataFrame, metric: str, column: str = "mean") -> pd.Series:
    rows = frame[frame["metric"] == metric].sort_values("day")
    return pd.Series(rows[column].to_numpy(), index=pd.to_datetime(rows["day"]))


def _window(series: pd.Series, today: date, days: int) -> pd.Series:
    start = pd.Timestamp(today - timedelta(days=days - 1))
    return series[(series.index >= start) & (series.index <= pd.Timestamp(today))]


def heart_failure_weight_gain(frame: pd.DataFrame, today: date) -> TrendFinding | None:
    """> 2 kg within 3 days (high), or > 1 kg overnight (medium), on daily mean weight."""
    weight = _window(_series(frame, "weight"), today, 4)
    if len(weight) < 2:
        return None
    latest_day, latest = weight.index[-1], float(weight.iloc[-1])
    earlier = weight[weight.index >= latest_day - pd.Timedelta(days=3)].iloc[:-1]
    if len(earlier) and latest - float(earlier.min()) > 2.0:
        base_day = earlier.idxmin()
        return TrendFinding(
            "weight.hf.gain_3d",
            Tier.HIGH,
            "心衰体重3天增加超过2kg",
            f"weight {latest:.1f} kg is {latest - float(earlier.min()):.1f} kg above "
            f"{base_day.date()} (> 2 kg in 3 days)",
            [base_day.date(), latest_day.date()],
        )
    yesterday = latest_day - pd.Timedelta(days=1)
    if yesterday in weight.index and latest - float(weight[yesterday]) > 1.0:
        return TrendFinding(
            "weight.hf.gain_overnight",
            Tier.MEDIUM,
            "心衰体重一夜增加超过1kg",
            f"weight {latest:.1f} kg is {latest - float(weight[yesterday]):.1f} kg above "
            "yesterday (> 1 kg overnight)",
            [yesterday.date(), latest_day.date()],
        )
    return None


def days_out_of_target(
    frame: pd.DataFrame, today: date, metric: str, high: float, rule_id: str, title_zh: str
) -> TrendFinding | None:
    """≥ 3 of the last 7 days above target → medium; ≥ 5 of 7 → high (on the day's mean)."""
    means = _window(_series(frame, metric), today, 7)
    above = means[means > high]
    if len(above) >= 5:
        tier = Tier.HIGH
    elif len(above) >= 3:
        tier = Tier.MEDIUM
    else:
        return None
    return TrendFinding(
        rule_id,
        tier,
        title_zh,
        f"{metric} above {high:g} on {len(above)} of the last 7 days",
        [d.date() for d in above.index],
    )


def home_bp_mean(frame: pd.DataFrame, today: date) -> TrendFinding | None:
    """7-day home mean ≥ 135/85 mmHg (hypertension cohort) → medium. The frame must hold
    home measurements only (the protocol excludes clinic readings)."""
    systolic = _window(_series(frame, "systolic", "sum"), today, 7)
    diastolic = _window(_series(frame, "diastolic", "sum"), today, 7)
    counts = _window(_series(frame, "systolic", "n"), today, 7)
    if counts.sum() == 0 or len(counts) < 3:
        return None
    mean_sys = float(systolic.sum() / counts.sum())
    mean_dia = float(diastolic.sum() / _window(_series(frame, "diastolic", "n"), today, 7).sum())
    if mean_sys < 135 and mean_dia < 85:
        return None
    return TrendFinding(
        "bp.home_mean_7d",
        Tier.MEDIUM,
        "7天家庭血压均值未达标",
        f"7-day home mean {mean_sys:.0f}/{mean_dia:.0f} mmHg ≥ 135/85",
        [d.date() for d in counts.index],
    )


def recurrent_hypoglycaemia(frame: pd.DataFrame, today: date) -> TrendFinding | None:
    """≥ 2 days with a level-1 hypo (< 3.9) in 7 days, or any level 2 (< 3.0): a treatment
    review (high). Counted by days, as the daily minimum is what the rollup keeps."""
    lows = _window(_series(frame, "glucose", "min"), today, 7)
    level2 = lows[lows < 3.0]
    level1 = lows[lows < 3.9]
    if len(level2) == 0 and len(level1) < 2:
        return None
    return TrendFinding(
        "glucose.recurrent_hypo",
        Tier.HIGH,
        "反复低血糖，需评估治疗方案",
        f"hypoglycaemia on {len(level1)} of the last 7 days"
        + (f", level 2 on {len(level2)}" if len(level2) else ""),
        [d.date() for d in level1.index],
    )


def systolic_rising(frame: pd.DataFrame, today: date) -> TrendFinding | None:
    """Systolic 7-day mean up ≥ 20 mmHg on the 7 days before → medium."""
    systolic = _series(frame, "systolic")
    recent = _window(systolic, today, 7)
    before = _window(systolic, today - timedelta(days=7), 7)
    if len(recent) < 3 or len(before) < 3:
        return None
    rise = float(recent.mean() - before.mean())
    if rise < 20:
        return None
    return TrendFinding(
        "bp.systolic_rising",
        Tier.MEDIUM,
        "收缩压较前一周明显上升",
        f"systolic 7-day mean {recent.mean():.0f} is {rise:.0f} mmHg above the week before",
        [d.date() for d in recent.index],
    )


def daily_frame(rows: list[dict[str, Any]], timezone: str) -> pd.DataFrame:
    """Readings → one row per day and metric, the shape the trend rules take."""
    if not rows:
        return pd.DataFrame(columns=["day", "metric", "n", "mean", "min", "max", "sum"])
    frame = pd.DataFrame(rows)
    frame["day"] = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(timezone).dt.date
    grouped = frame.groupby(["day", "metric"])["value"]
    return grouped.agg(n="count", mean="mean", min="min", max="max", sum="sum").reset_index()


def findings(
    cohorts: set[str], rows: list[dict[str, Any]], today: Any, timezone: str
) -> list[TrendFinding]:
    """Every trend rule of the patient's cohorts over its readings (`time`, `metric`,
    `value`, `source`, `meal`) of the last weeks."""
    everything = daily_frame(rows, timezone)
    home = daily_frame([r for r in rows if r["source"] == "home"], timezone)
    fasting = daily_frame(
        [r for r in rows if r["metric"] == "glucose" and r["meal"] in ("fasting", "before_meal")],
        timezone,
    )
    checks: list[Callable[[], TrendFinding | None]] = []
    if Cohort.HEART_FAILURE in cohorts:
        checks.append(lambda: heart_failure_weight_gain(everything, today))
    if Cohort.HYPERTENSION in cohorts:
        checks += [
            lambda: home_bp_mean(home, today),
            lambda: systolic_rising(everything, today),
            lambda: days_out_of_target(
                everything, today, "systolic", 135, "bp.days_above_target", "血压多日未达标"
            ),
        ]
    if Cohort.DIABETES in cohorts:
        checks += [
            lambda: recurrent_hypoglycaemia(everything, today),
            lambda: days_out_of_target(
                fasting, today, "glucose", 7.0, "glucose.fasting.days_above", "空腹血糖多日未达标"
            ),
        ]
    return [finding for check in checks if (finding := check()) is not None]
