"""The programme and QC reports laid out as sheets (pure: store results in, sheets out)."""

from __future__ import annotations

from typing import Any

from cloud.reports.xlsx import Sheet

COMPONENT_NAMES = {
    "pathway_compliance": "路径达标率 / Pathway compliance",
    "satisfaction": "满意度（未退费率）/ Satisfaction",
    "revisit_timeliness": "复诊及时率 / Revisit timeliness",
}
COMPONENT_COLUMNS = [
    ("name", "考核项目 / Item"),
    ("max_points", "分值 / Points"),
    ("threshold_pct", "达标线% / Threshold %"),
    ("numerator", "分子 / Numerator"),
    ("denominator", "分母 / Denominator"),
    ("rate_pct", "实际% / Actual %"),
    ("deduction", "扣分 / Deduction"),
    ("points", "得分 / Score"),
    ("applicable", "适用 / Applicable"),
]


def component_rows(score: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{**score[key], "name": label} for key, label in COMPONENT_NAMES.items()]
    rows.append({"name": "加分 / Bonus", "points": score["bonus"]})
    rows.append({"name": "总分 / Total", "points": score["total"]})
    rows.append({"name": "扣款% / Payment deduction %", "points": score["payment_deduction_pct"]})
    return rows


def score_sheets(result: dict[str, Any]) -> list[Sheet]:
    drill = result["drill_down"]
    return [
        Sheet("月度质控得分", COMPONENT_COLUMNS, component_rows(result["score"])),
        Sheet(
            "路径达标抽查",
            [
                ("enrolment_id", "入组编号 / Enrolment"),
                ("patient_id", "患者ID"),
                ("patient", "患者 / Patient"),
                ("department", "科室 / Department"),
                ("ended_at", "结束管理 / Ended"),
                ("tasks_due", "应完成任务 / Tasks due"),
                ("done_on_time", "按时完成 / On time"),
                ("reviewed", "已人工审核 / Reviewed"),
                ("compliant", "达标 / Compliant"),
            ],
            drill["pathway_compliance"],
        ),
        Sheet(
            "满意度",
            [
                ("patient_id", "患者ID"),
                ("patient", "患者 / Patient"),
                ("department", "科室 / Department"),
                ("refunded_this_month", "本月退费 / Refunded"),
                ("withdrawal_reason", "退费原因 / Reason"),
            ],
            drill["satisfaction"],
        ),
        Sheet(
            "复诊及时率",
            [
                ("patient_id", "患者ID"),
                ("patient", "患者 / Patient"),
                ("department", "科室 / Department"),
                ("due_at", "复诊应到 / Due"),
                ("window_days", "窗口天数 / Window days"),
                ("timely", "按时复诊 / Timely"),
            ],
            drill["revisit_timeliness"],
        ),
        Sheet(
            "加分项",
            [
                ("kind", "类型 / Kind"),
                ("patient_id", "患者ID"),
                ("patient", "患者 / Patient"),
                ("department", "科室 / Department"),
                ("occurred_on", "日期 / Date"),
                ("note", "说明 / Note"),
            ],
            drill["bonus"],
        ),
    ]


def department_sheets(rows: list[dict[str, Any]]) -> list[Sheet]:
    flat = [
        {
            "department": r["department"],
            **{k: r["score"][k]["rate_pct"] for k in COMPONENT_NAMES},
            "total": r["score"]["total"],
            "payment_deduction_pct": r["score"]["payment_deduction_pct"],
        }
        for r in rows
    ]
    return [
        Sheet(
            "科室得分",
            [
                ("department", "科室 / Department"),
                ("pathway_compliance", "路径达标率%"),
                ("satisfaction", "满意度%"),
                ("revisit_timeliness", "复诊及时率%"),
                ("total", "总分 / Total"),
                ("payment_deduction_pct", "扣款% / Deduction %"),
            ],
            flat,
        )
    ]


def work_stat_sheets(stats: dict[str, Any]) -> list[Sheet]:
    f, c = stats["follow_ups"], stats["connection"]
    summary = [
        {"item": "应访 / Follow-ups due", "value": f["due"]},
        {"item": "实访 / Follow-ups done", "value": f["done"]},
        {"item": "按时完成 / Done on time", "value": f["done_on_time"]},
        {"item": "逾期 / Overdue", "value": f["overdue"]},
        {"item": "随访完成率% / Done %", "value": f["done_pct"]},
        {"item": "外呼次数 / Calls dialled", "value": c["call_level"]["dialled"]},
        {"item": "接通次数 / Calls answered", "value": c["call_level"]["answered"]},
        {"item": "接通率（次）% / Connection rate, calls", "value": c["call_level"]["rate_pct"]},
        {"item": "应呼患者 / Patients scheduled", "value": c["patient_level"]["scheduled"]},
        {"item": "3次内接通患者 / Reached in ≤3 tries", "value": c["patient_level"]["reached"]},
        {
            "item": "接通率（人）% / Connection rate, patients",
            "value": c["patient_level"]["rate_pct"],
        },
        {
            "item": "测量依从率% / Adherence, days measured",
            "value": stats["adherence"]["measured_pct"],
        },
        {
            "item": "测量足量率% / Adherence, days complete",
            "value": stats["adherence"]["complete_pct"],
        },
    ]
    ack = [{"tier": tier, **v} for tier, v in stats["acknowledgement"].items()]
    return [
        Sheet("工作统计", [("item", "指标 / Item"), ("value", "数值 / Value")], summary),
        Sheet(
            "工作量",
            [
                ("user_id", "人员 / Staff"),
                ("tasks_done", "完成任务 / Tasks"),
                ("calls", "电话 / Calls"),
                ("messages", "消息 / Messages"),
            ],
            stats["workload"],
        ),
        Sheet(
            "告警确认时长",
            [
                ("tier", "级别 / Tier"),
                ("acknowledged", "已确认 / Acked"),
                ("unacknowledged", "未确认 / Not acked"),
                ("median_minutes", "中位分钟 / Median min"),
                ("p90_minutes", "P90分钟 / P90 min"),
            ],
            ack,
        ),
        Sheet(
            "测量依从",
            [
                ("patient_id", "患者ID"),
                ("metric", "指标 / Metric"),
                ("plan_days", "计划天数 / Plan days"),
                ("days_measured", "有测量天数 / Days measured"),
                ("days_complete", "足量天数 / Days complete"),
            ],
            stats["adherence_by_patient"],
        ),
    ]


def enrolment_sheets(rows: list[dict[str, Any]]) -> list[Sheet]:
    return [
        Sheet(
            "入组患者",
            [
                ("enrolment_id", "入组编号 / Enrolment"),
                ("patient_id", "患者ID"),
                ("patient", "患者 / Patient"),
                ("programme_name", "服务套餐 / Package"),
                ("department", "科室 / Department"),
                ("status", "状态 / Status"),
                ("enrolled_at", "入组 / Enrolled"),
                ("ends_at", "疗程结束 / Ends"),
                ("current_phase", "当前阶段 / Phase"),
                ("tasks_total", "任务 / Tasks"),
                ("tasks_done", "已完成 / Done"),
                ("tasks_overdue", "逾期 / Overdue"),
                ("refunded", "退费 / Refunded"),
            ],
            rows,
        )
    ]
