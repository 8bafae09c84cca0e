// The centre station: the chosen patient's readings and the readings no patient has been
// chosen for yet, reloaded whenever the cloud stores new centre readings (server-sent
// events from /centre/events); each unassigned measurement can be confirmed to the current
// patient. While the stream is down the page polls every few seconds instead.
import { announce, api, t } from "/static/common.js";

const current = document.getElementById("current-patient");
const patient = current?.dataset.patient || null;
const unassigned = document.getElementById("unassigned");
const mine = document.getElementById("patient-readings");
const FALLBACK_POLL_MS = 3000;
const live = document.getElementById("centre-live");
let poll = null;

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderUnassigned(items) {
  if (!items.length) {
    const none = document.createElement("p");
    none.className = "muted";
    none.textContent = t("pt.no_data");
    unassigned.replaceChildren(none);
    return;
  }
  const table = document.createElement("table");
  table.innerHTML = `<thead><tr><th scope="col">${t("pt.measured_at")}</th><th scope="col">${t("centre.edge")}</th><th scope="col">${t("pt.device")}</th><th scope="col">${t("pt.value")}</th><th scope="col"></th></tr></thead>`;
  const body = document.createElement("tbody");
  for (const item of items) {
    const row = document.createElement("tr");
    row.dataset.measurement = item.measurement_id;
    row.append(
      cell(new Date(item.measured_at).toLocaleTimeString(document.documentElement.lang, { hour12: false })),
      cell(item.edge_id),
      cell(`${t(`device.${item.device.kind}`)} ${item.device.serial}`),
      cell(item.values.map((v) => `${t(`metric.${v.metric}`)} ${v.value} ${v.unit}`).join(" · "), "num"),
    );
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t("centre.confirm");
    button.disabled = !patient;
    button.addEventListener("click", () => confirm(item.measurement_id));
    action.append(button);
    row.append(action);
    body.append(row);
  }
  table.append(body);
  unassigned.replaceChildren(table);
}

async function confirm(measurementId) {
  try {
    await api("POST", `/api/v1/measurements/${measurementId}/assignment`, { patient_id: patient });
    announce(t("common.saved"));
    await refresh();
  } catch (error) {
    announce(`${t("common.save_failed")}: ${error.message}`);
  }
}

async function refresh() {
  try {
    const body = await api("GET", "/api/v1/unassigned-readings?limit=50");
    renderUnassigned(body.items || []);
  } catch (error) {
    const message = document.createElement("p");
    message.className = "error";
    message.textContent = `${t("centre.unavailable")} (${error.message})`;
    unassigned.replaceChildren(message);
  }
  if (patient && mine) {
    const response = await fetch(`/centre/patient-readings?patient=${encodeURIComponent(patient)}`, {
      credentials: "same-origin",
    });
    if (response.ok) mine.innerHTML = await response.text();
  }
}

function showLive(on) {
  if (!live) return;
  live.textContent = on ? live.dataset.on : live.dataset.off;
  live.classList.toggle("off", !on);
  live.dataset.state = on ? "on" : "off";
}

function connect() {
  const source = new EventSource("/centre/events");
  source.addEventListener("open", () => {
    showLive(true);
    if (poll !== null) {
      clearInterval(poll);
      poll = null;
    }
    // Notices are not replayed: reload on every open, so a reading that came while the
    // stream was down, or between the first load and the first open, is not missed.
    refresh();
  });
  source.addEventListener("readings", refresh);
  source.addEventListener("error", () => {
    showLive(false);
    if (poll === null) poll = setInterval(refresh, FALLBACK_POLL_MS);
  });
}

refresh();
connect();
