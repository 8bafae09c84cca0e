// The dashboard's weekly trends: alerts opened per week by tier, and the share of
// critical and high alerts acknowledged within their service level.
import { TIER_COLOURS, t } from "/static/common.js";

const weeks = JSON.parse(document.getElementById("weekly").textContent);
const labels = weeks.map((w) => w.week);

const alerts = window.echarts.init(document.getElementById("chart-weekly-alerts"));
alerts.setOption({
  tooltip: { trigger: "axis" },
  legend: { top: 0 },
  grid: { left: 48, right: 16, top: 28, bottom: 32 },
  xAxis: { type: "category", data: labels },
  yAxis: { type: "value" },
  series: ["critical", "high", "medium", "low"].map((tier) => ({
    name: t(`tier.${tier}`),
    type: "bar",
    stack: "alerts",
    itemStyle: { color: TIER_COLOURS[tier] },
    data: weeks.map((w) => w[tier]),
  })),
});

const sla = window.echarts.init(document.getElementById("chart-weekly-sla"));
sla.setOption({
  tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "—" : `${v}%`) },
  grid: { left: 48, right: 16, top: 16, bottom: 32 },
  xAxis: { type: "category", data: labels },
  yAxis: { type: "value", min: 0, max: 100 },
  series: [
    {
      name: t("dash.sla_per_week"),
      type: "line",
      data: weeks.map((w) => (w.with_deadline ? Math.round((1000 * w.in_time) / w.with_deadline) / 10 : null)),
    },
  ],
});
