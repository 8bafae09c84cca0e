"""The monthly QC report as a PDF with charts, for the hospital's quality meeting.

matplotlib draws offline through its object API (no pyplot, so no GUI backend and no global
figure state in a server process) and embeds the installed Noto Sans CJK font, so the zh-CN
text renders on an intranet machine with no internet access.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from cloud.reports.qc_sheets import COMPONENT_NAMES

CJK_FONTS = ("Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "Droid Sans Fallback")
A4 = (8.27, 11.69)


def _font() -> str:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), "DejaVu Sans")


def _title_page(pdf: PdfPages, hospital: str, result: dict[str, Any]) -> None:
    score = result["score"]
    fig = Figure(figsize=A4)
    fig.text(0.08, 0.93, f"{hospital} 诊后疾病管理月度质控报告", fontsize=18, weight="bold")
    fig.text(
        0.08,
        0.90,
        f"Monthly QC report · {result['month']}"
        + (f" · {result['department']}" if result["department"] else ""),
        fontsize=11,
    )
    lines = [
        f"总分 Total: {score['total']:.2f} / 100",
        f"基础分 Base: {score['base']:.2f}   加分 Bonus: {score['bonus']:.0f}",
        f"当月结算扣款 Payment deduction: {score['payment_deduction_pct']:.2f}%",
        "抽样 Sample: "
        + (
            f"seed {result['sample']['seed']}, {result['sample']['sampled']} / "
            f"{result['sample']['population']}"
            if result["sample"]
            else "未抽样（暂估）provisional, no sample recorded"
        ),
    ]
    for n, line in enumerate(lines):
        fig.text(0.08, 0.84 - n * 0.03, line, fontsize=12)
    ax = fig.add_axes((0.12, 0.12, 0.8, 0.5))
    labels = [COMPONENT_NAMES[k].split("/")[0].strip() for k in COMPONENT_NAMES]
    points = [score[k]["points"] for k in COMPONENT_NAMES]
    maxima = [score[k]["max_points"] for k in COMPONENT_NAMES]
    ax.bar(labels, maxima, color="#dddddd", label="分值 max")
    ax.bar(labels, points, color="#2a7ab9", label="得分 score")
    for x, (p, k) in enumerate(zip(points, COMPONENT_NAMES, strict=True)):
        rate = score[k]["rate_pct"]
        ax.text(
            x,
            p + 0.5,
            f"{p:.2f}\n({'—' if rate is None else f'{rate:.1f}%'})",
            ha="center",
            fontsize=10,
        )
    ax.set_ylabel("分 points")
    ax.set_title("考核项目得分 Component scores")
    ax.legend(loc="upper right")
    pdf.savefig(fig)


def _departments_page(pdf: PdfPages, departments: list[dict[str, Any]]) -> None:
    fig = Figure(figsize=A4)
    ax = fig.subplots()
    names = [d["department"] or "（未填）" for d in departments]
    totals = [d["score"]["total"] for d in departments]
    ax.barh(names, totals, color="#52a552")
    ax.axvline(90, color="#c0392b", linestyle="--", label="90 分 (扣款线)")
    ax.set_xlim(0, 100)
    ax.set_title("科室得分 Score per department")
    for y, total in enumerate(totals):
        ax.text(total + 0.5, y, f"{total:.1f}", va="center")
    ax.legend(loc="lower right")
    fig.tight_layout()
    pdf.savefig(fig)


def _work_page(pdf: PdfPages, stats: dict[str, Any]) -> None:
    fig = Figure(figsize=A4)
    top, bottom = fig.subplots(2, 1)
    f = stats["follow_ups"]
    top.bar(
        ["应访 due", "实访 done", "按时 on time", "逾期 overdue"],
        [f["due"], f["done"], f["done_on_time"], f["overdue"]],
        color=["#999999", "#2a7ab9", "#52a552", "#c0392b"],
    )
    top.set_title("随访工作量 Follow-ups")
    c = stats["connection"]
    rates = [
        c["call_level"]["rate_pct"] or 0,
        c["patient_level"]["rate_pct"] or 0,
        stats["adherence"]["measured_pct"] or 0,
    ]
    bottom.bar(
        ["接通率(次)\ncalls", "接通率(人)\npatients", "测量依从\nadherence"], rates, color="#2a7ab9"
    )
    bottom.set_ylim(0, 100)
    bottom.set_ylabel("%")
    bottom.set_title("接通率与依从率 Connection and adherence")
    for x, rate in enumerate(rates):
        bottom.text(x, rate + 1, f"{rate:.1f}%", ha="center")
    fig.tight_layout()
    pdf.savefig(fig)


def monthly_report(
    hospital: str,
    result: dict[str, Any],
    departments: list[dict[str, Any]],
    stats: dict[str, Any],
) -> bytes:
    out = io.BytesIO()
    metadata = {"Title": f"{hospital} QC {result['month']}", "Creator": "carebridge"}
    with (
        rc_context({"font.family": _font(), "axes.unicode_minus": False}),
        PdfPages(out, metadata=metadata) as pdf,
    ):
        _title_page(pdf, hospital, result)
        _departments_page(pdf, departments)
        _work_page(pdf, stats)
    return out.getvalue()
