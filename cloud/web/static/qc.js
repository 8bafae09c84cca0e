// The QC page: points per component against their maximum, the monthly total against the
// 90-point line, and the supervisor's review of a sampled case through the API.
import { announce, api, askWith, t } from "/static/common.js";

const data = JSON.parse(document.getElementById("qc-data").textContent);

const components = window.echarts.init(document.getElementById("chart-components"));
// No animation: the figures are final, and a screenshot or a reader sees them at once.
components.setOption({
  animation: false,
  tooltip: { trigger: "axis" },
  legend: { top: 0 },
  grid: { left: 48, right: 16, top: 28, bottom: 32 },
  xAxis: { type: "category", data: data.components.map((c) => t(`qc.c.${c}`)) },
  yAxis: { type: "value", min: 0, max: 40 },
  series: [
    {
      name: t("qc.points"),
      type: "bar",
      itemStyle: { color: "#1f4e79" },
      label: { show: true, position: "top" },
      data: data.components.map((c) => data.score[c].points),
    },
    {
      name: t("qc.max"),
      type: "bar",
      itemStyle: { color: "#cbd5e0" },
      data: data.components.map((c) => data.score[c].max_points),
    },
  ],
});

const trend = window.echarts.init(document.getElementById("chart-trend"));
trend.setOption({
  animation: false,
  tooltip: { trigger: "axis" },
  grid: { left: 48, right: 16, top: 16, bottom: 32 },
  xAxis: { type: "category", data: data.trend.map((m) => m.month) },
  yAxis: { type: "value", min: 50, max: 100 },
  series: [
    {
      name: t("qc.total"),
      type: "line",
      symbolSize: 8,
      label: { show: true },
      data: data.trend.map((m) => m.total),
      markLine: {
        silent: true,
        symbol: "none",
        data: [{ yAxis: 90, lineStyle: { color: "#b3261e", type: "dashed" }, label: { formatter: t("qc.chart_line") } }],
      },
    },
  ],
});

const cases = document.getElementById("sample-cases");
const dialog = document.getElementById("review-dialog");
if (cases && dialog) {
  cases.addEventListener("click", async (event) => {
    const button = event.target.closest("button.score-case");
    if (!button) return;
    const values = await askWith(dialog, button.dataset.subject);
    if (!values) return;
    const body = { compliant: values.compliant === "true", note: values.note };
    if (values.points !== "") body.points = Number(values.points);
    if (values.rectification.trim()) body.rectification = values.rectification.trim();
    try {
      await api("PUT", `/api/v1/qc/samples/${cases.dataset.sample}/reviews/${button.dataset.enrolment}`, body);
      announce(t("common.saved"));
      window.location.reload();
    } catch (error) {
      announce(`${t("common.save_failed")}: ${error.message}`);
    }
  });
}

const draw = document.getElementById("draw-sample");
if (draw) {
  draw.addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/qc/samples", { hospital_id: draw.dataset.hospital, month: draw.dataset.month });
      window.location.reload();
    } catch (error) {
      announce(`${t("common.save_failed")}: ${error.message}`);
    }
  });
}
