// The patient page and its printable summary: charts with a 7/30/90-day range, showing
// identifiers in full (with a reason), a doctor's target, and logging a contact.
import { announce, api, logContact, t } from "/static/common.js";
import { drawCharts } from "/static/charts.js";

const root = document.getElementById("charts");
const specs = JSON.parse(document.getElementById("chart-specs").textContent);
const printable = root.dataset.static === "1";

if (!window.echarts) {
  root.textContent = t("common.save_failed");
} else {
  const initial = Number(root.dataset.days || 30);
  drawCharts(root, specs, initial, !printable).then(() => {
    root.dataset.ready = "1";
  });
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", async () => {
      for (const other of document.querySelectorAll("[data-days]")) other.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", "true");
      root.dataset.ready = "0";
      await drawCharts(root, specs, Number(button.dataset.days), true);
      root.dataset.ready = "1";
    });
  }
  window.addEventListener("resize", () => {
    for (const node of root.querySelectorAll(".chart")) window.echarts.getInstanceByDom(node)?.resize();
  });
}

const unmask = document.getElementById("unmask-form");
unmask?.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const body = await api("POST", `/web/patients/${encodeURIComponent(unmask.dataset.patient)}/identifiers`, {
      reason: new FormData(unmask).get("reason"),
    });
    document.getElementById("id-number").textContent = body.id_number || "—";
    document.getElementById("phone").textContent = body.phone || "—";
    unmask.hidden = true;
  } catch (error) {
    announce(`${t("common.save_failed")}: ${error.message}`);
  }
});

const target = document.getElementById("target-form");
target?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(target);
  const number = (name) => (form.get(name) === "" ? null : Number(form.get(name)));
  try {
    await api("PUT", `/api/v1/patients/${encodeURIComponent(target.dataset.patient)}/targets/${form.get("metric")}`, {
      low: number("low"),
      high: number("high"),
      reason: form.get("reason"),
    });
    window.location.reload();
  } catch (error) {
    announce(`${t("common.save_failed")}: ${error.message}`);
  }
});

const contact = document.getElementById("log-contact");
contact?.addEventListener("click", async () => {
  try {
    if (await logContact(contact.dataset.patient, null, "")) window.location.reload();
  } catch (error) {
    announce(`${t("common.save_failed")}: ${error.message}`);
  }
});
