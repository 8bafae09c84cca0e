"""The closure summary (结案小结) a case manager reviews and sends. Pure: facts in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The last week's mean against the home targets of clinical_rules.md §1/§3 (a doctor's
# per-patient target, when set, is passed in instead).
DEFAULT_TARGETS: dict[str, tuple[str, float]] = {
    "systolic": ("<", 135.0),
    "diastolic": ("<", 85.0),
    "glucose": ("<=", 7.0),
}


@dataclass(frozen=True)
class ClosureFacts:
    patient_name: str
    programme_name: str
    enrolled_on: str
    closed_on: str
    readings: dict[str, int]
    last_week_means: dict[str, float]
    alerts_opened: int
    alerts_closed: int
    tasks_due: int
    tasks_done_on_time: int
    plan_days: int
    plan_days_measured: int
    revisits: int
    targets: dict[str, tuple[str, float]]


def _reached(op: str, value: float, limit: float) -> bool:
    return value < limit if op == "<" else value <= limit


def build_summary(facts: ClosureFacts) -> dict[str, Any]:
    targets = []
    for metric, (op, limit) in sorted(facts.targets.items()):
        if metric in facts.last_week_means:
            mean = round(facts.last_week_means[metric], 1)
            targets.append(
                {
                    "metric": metric,
                    "target": f"{op}{limit:g}",
                    "last_week_mean": mean,
                    "reached": _reached(op, mean, limit),
                }
            )
    adherence = (
        round(100 * facts.plan_days_measured / facts.plan_days, 1) if facts.plan_days else None
    )
    lines = [
        f"{facts.patient_name}，{facts.programme_name}，{facts.enrolled_on} 至 {facts.closed_on}。",
        f"共上传测量 {sum(facts.readings.values())} 次"
        + (
            "（" + "，".join(f"{m} {n} 次" for m, n in sorted(facts.readings.items())) + "）"
            if facts.readings
            else ""
        )
        + "。",
        f"异常提醒 {facts.alerts_opened} 条，已处理 {facts.alerts_closed} 条。",
        f"路径任务 {facts.tasks_due} 项，按时完成 {facts.tasks_done_on_time} 项。",
        f"测量计划依从率 {adherence if adherence is not None else '—'}%。",
        f"完成复诊 {facts.revisits} 次。",
    ]
    for t in targets:
        verdict = "达标" if t["reached"] else "未达标"
        lines.append(
            f"{t['metric']} 近7天均值 {t['last_week_mean']}（目标 {t['target']}）：{verdict}。"
        )
    return {
        "text_zh": "\n".join(lines),
        "readings": facts.readings,
        "alerts": {"opened": facts.alerts_opened, "closed": facts.alerts_closed},
        "tasks": {"due": facts.tasks_due, "done_on_time": facts.tasks_done_on_time},
        "adherence_pct": adherence,
        "revisits": facts.revisits,
        "targets": targets,
    }
