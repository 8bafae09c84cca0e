// One time-series chart per metric group, drawn with ECharts from the spec the server
// computed: target band, threshold lines, each point coloured by its tier (and the tier
// named in the tooltip, so colour is never the only signal).
import { TIER_COLOURS, t } from "/static/common.js";

const RANK = { critical: 4, high: 3, medium: 2, low: 1 };
const OPS = { "<": (a, b) => a < b, "<=": (a, b) => a <= b, ">=": (a, b) => a >= b, ">": (a, b) => a > b };
const LINE_COLOURS = ["#1f4e79", "#6b46c1"];

export function tierOf(value, thresholds) {
  let worst = null;
  for (const th of thresholds) {
    if (OPS[th.op](value, th.value) && (!worst || RANK[th.tier] > RANK[worst])) worst = th.tier;
  }
  return worst;
}

function seriesFor(spec, line, index, points, animate) {
  const data = points.map((p) => {
    const tier = tierOf(p.value, line.thresholds);
    return {
      value: [p.measured_at, p.value],
      tier,
      itemStyle: { color: tier ? TIER_COLOURS[tier] : LINE_COLOURS[index] },
      symbol: tier ? "triangle" : "circle",
      symbolSize: tier ? 11 : 6,
    };
  });
  const band = line.band;
  const markArea =
    band.low !== null || band.high !== null
      ? {
          silent: true,
          itemStyle: { color: "rgba(47,133,90,0.10)" },
          label: { show: index === 0, position: "insideTopLeft", formatter: t("pt.target_band") },
          data: [[{ yAxis: band.low ?? 0 }, { yAxis: band.high ?? "max" }]],
        }
      : undefined;
  const name = document.documentElement.lang === "en" ? line.name_en : line.name_zh;
  return {
    name,
    type: "line",
    data,
    animation: animate,
    lineStyle: { color: LINE_COLOURS[index], width: 1.5 },
    markArea,
    markLine: {
      silent: true,
      symbol: "none",
      data: line.thresholds.filter((th) => !th.target).map((th) => ({
        yAxis: th.value,
        lineStyle: { color: TIER_COLOURS[th.tier], type: "dashed" },
        // Named by metric and condition: on the blood-pressure chart two metrics share an axis,
        // and a bare "高 <90" would read as "high" for a low value.
        label: {
          formatter: t("pt.threshold_line", { metric: name, op: th.op, value: th.value, tier: t(`tier.${th.tier}`) }),
          position: "insideEndTop",
        },
      })),
    },
  };
}

export async function drawCharts(root, specs, days, animate = true) {
  const patient = root.dataset.patient;
  const since = new Date(Date.now() - days * 86400000).toISOString();
  for (const spec of specs) {
    const node = document.getElementById(`chart-${spec.chart}`);
    const chart = window.echarts.getInstanceByDom(node) || window.echarts.init(node);
    const lines = await Promise.all(
      spec.series.map(async (line) => {
        const url = `/api/v1/patients/${encodeURIComponent(patient)}/readings?metric=${line.metric}&since=${encodeURIComponent(since)}&limit=5000`;
        const response = await fetch(url, { credentials: "same-origin" });
        const body = response.ok ? await response.json() : { items: [] };
        return body.items.slice().reverse();
      }),
    );
    const count = lines.reduce((n, points) => n + points.length, 0);
    node.dataset.points = String(count);
    node.closest(".chart-box").classList.toggle("empty-chart", count === 0);
    // "Ready" means drawn, animations included: a screenshot or a reader then sees it all.
    const drawn = new Promise((resolve) => {
      const done = () => {
        chart.off("finished", done);
        resolve();
      };
      chart.on("finished", done);
    });
    chart.setOption(
      {
        animation: animate,
        tooltip: {
          trigger: "item",
          formatter: (p) =>
            `${p.seriesName}: ${p.value[1]}${p.data.tier ? ` (${t(`tier.${p.data.tier}`)})` : ""}<br>${new Date(p.value[0]).toLocaleString()}`,
        },
        legend: { top: 0 },
        grid: { left: 48, right: 72, top: 28, bottom: animate ? 56 : 24 },
        // A little room after "now" so today's points are not clipped at the edge.
        xAxis: { type: "time", min: since, max: new Date(Date.now() + days * 86400000 * 0.03).toISOString() },
        yAxis: { type: "value", scale: true },
        dataZoom: animate ? [{ type: "inside" }, { type: "slider", height: 18 }] : [],
        series: spec.series.map((line, i) => seriesFor(spec, line, i, lines[i], animate)),
      },
      true,
    );
    await drawn;
  }
}
