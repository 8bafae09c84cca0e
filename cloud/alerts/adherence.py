"""Missed measurements against a measurement plan (clinical_rules.md §3): a reminder to
the patient at day 2, a call task at day 3, a disengagement escalation at day 7. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cloud.alerts.thresholds import Tier


class Stage(StrEnum):
    REMIND = "remind"
    CALL = "call"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class AdherencePolicy:
    remind_after: timedelta = timedelta(days=2)
    call_after: timedelta = timedelta(days=3)
    escalate_after: timedelta = timedelta(days=7)


DEFAULT_POLICY = AdherencePolicy()
# Heart-failure weight: two days without a weighing already needs a call.
HEART_FAILURE_WEIGHT = AdherencePolicy(remind_after=timedelta(days=1), call_after=timedelta(days=2))

STAGE_TIER = {Stage.REMIND: Tier.LOW, Stage.CALL: Tier.MEDIUM, Stage.ESCALATE: Tier.HIGH}
STAGE_TITLE = {
    Stage.REMIND: "提醒患者测量",
    Stage.CALL: "未按计划测量，请电话随访",
    Stage.ESCALATE: "连续7天未测量，脱管风险",
}


def missed_stage(
    plan_started_at: datetime,
    last_reading_at: datetime | None,
    now: datetime,
    policy: AdherencePolicy = DEFAULT_POLICY,
) -> Stage | None:
    """How far a patient has fallen behind a daily plan, or None when on track."""
    since = max(plan_started_at, last_reading_at) if last_reading_at else plan_started_at
    silent = now - since
    if silent >= policy.escalate_after:
        return Stage.ESCALATE
    if silent >= policy.call_after:
        return Stage.CALL
    if silent >= policy.remind_after:
        return Stage.REMIND
    return None
