"""Work statistics of a month (工作量统计): follow-ups due vs done (应访/实访), call connection
rate (接通率) at call and at patient level, workload per staff member, time to acknowledge
alerts, adherence to measurement plans. Pure functions over rows the store reads."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cloud.programmes.qc_score import Ratio

FOLLOW_UP_ACTIONS = frozenset(
    {"follow_up_call", "questionnaire", "lifestyle_check_in", "no_show_follow_up"}
)
ANSWERED = frozenset({"reached"})
ATTEMPTS_COUNTED = 3


def _pct(numerator: int, denominator: int) -> float | None:
    return Ratio(numerator, denominator).rate_pct


def done_on_time(task: Mapping[str, Any]) -> bool:
    if task["status"] != "done" or task["completed_at"] is None:
        return False
    deadline: datetime = task["due_at"] + timedelta(days=task["grace_days"] + 1)
    return bool(task["completed_at"] < deadline)


def is_overdue(task: Mapping[str, Any], now: datetime) -> bool:
    """Still to do after its grace days (the whole last day of grace counts)."""
    if task["status"] not in ("scheduled", "open"):
        return False
    return bool(now >= task["due_at"] + timedelta(days=task["grace_days"] + 1))


def follow_ups(tasks: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    due = [t for t in tasks if t["action"] in FOLLOW_UP_ACTIONS and t["status"] != "cancelled"]
    done = [t for t in due if t["status"] == "done"]
    on_time = [t for t in due if done_on_time(t)]
    return {
        "due": len(due),
        "done": len(done),
        "done_on_time": len(on_time),
        "overdue": sum(1 for t in due if is_overdue(t, now)),
        "done_pct": _pct(len(done), len(due)),
    }


def connection_rates(
    calls: Iterable[Mapping[str, Any]], scheduled_patients: Iterable[str]
) -> dict[str, Any]:
    """Call level: answered ÷ dialled. Patient level: patients reached within their first
    three attempts ÷ patients scheduled for a call (clinical_rules.md §5: the fairer one)."""
    outbound = sorted(
        (c for c in calls if c["channel"] == "call" and c["direction"] == "outbound"),
        key=lambda c: c["at"],
    )
    answered = sum(1 for c in outbound if c["outcome"] in ANSWERED)
    attempts: dict[str, list[str]] = defaultdict(list)
    for call in outbound:
        attempts[call["patient_id"]].append(call["outcome"])
    scheduled = set(scheduled_patients)
    reached = {p for p in scheduled if any(o in ANSWERED for o in attempts[p][:ATTEMPTS_COUNTED])}
    return {
        "call_level": {
            "dialled": len(outbound),
            "answered": answered,
            "rate_pct": _pct(answered, len(outbound)),
        },
        "patient_level": {
            "scheduled": len(scheduled),
            "reached": len(reached),
            "rate_pct": _pct(len(reached), len(scheduled)),
        },
    }


def workload(
    tasks: Iterable[Mapping[str, Any]], contacts: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"tasks_done": 0, "calls": 0, "messages": 0}
    )
    for task in tasks:
        if task["status"] == "done" and task.get("completed_by") not in (None, "system"):
            per[task["completed_by"]]["tasks_done"] += 1
    for contact in contacts:
        if contact["user_id"] == "system":
            continue
        kind = "calls" if contact["channel"] == "call" else "messages"
        per[contact["user_id"]][kind] += 1
    return [{"user_id": user, **counts} for user, counts in sorted(per.items())]


def acknowledgement_times(alerts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    by_tier: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for alert in alerts:
        if alert["acknowledged_at"] is None:
            waiting[alert["tier"]] += 1
            continue
        minutes = (alert["acknowledged_at"] - alert["opened_at"]).total_seconds() / 60
        by_tier[alert["tier"]].append(minutes)
    result = {}
    for tier in ("critical", "high", "medium", "low"):
        values = sorted(by_tier.get(tier, []))
        result[tier] = {
            "acknowledged": len(values),
            "unacknowledged": waiting.get(tier, 0),
            "median_minutes": round(statistics.median(values), 1) if values else None,
            "p90_minutes": round(values[max(0, -(-len(values) * 9 // 10) - 1)], 1)
            if values
            else None,
        }
    return result


def adherence(plan_days: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of (patient, metric, plan_days, days_measured, days_complete): a day is measured
    with any reading, complete with as many as the plan asks for."""
    rows = list(plan_days)
    total = sum(r["plan_days"] for r in rows)
    measured = sum(min(r["days_measured"], r["plan_days"]) for r in rows)
    complete = sum(min(r["days_complete"], r["plan_days"]) for r in rows)
    return {
        "plans": len(rows),
        "plan_days": total,
        "days_measured": measured,
        "days_complete": complete,
        "measured_pct": _pct(measured, total),
        "complete_pct": _pct(complete, total),
    }
