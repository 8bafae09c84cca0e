// The workbench: live refresh on server-sent events, SLA countdowns, and the row actions
// (claim, acknowledge, resolve with an outcome, log a contact).
import { announce, api, askWith, logContact, t } from "/static/common.js";

const queue = document.getElementById("queue");
const live = document.getElementById("live");
const me = queue.dataset.me;

function formatLeft(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const clock = `${h > 0 ? `${h}:` : ""}${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return ms >= 0 ? `${t("wb.remaining")} ${clock}` : `${t("wb.overdue")} ${clock}`;
}

function tick() {
  const now = Date.now();
  for (const cell of queue.querySelectorAll("[data-due]")) {
    const left = Date.parse(cell.dataset.due) - now;
    cell.textContent = formatLeft(left);
    cell.classList.toggle("overdue", left < 0);
  }
}

async function refresh(highlight) {
  const known = new Set([...queue.querySelectorAll("tr[data-alert]")].map((r) => r.dataset.alert));
  const response = await fetch(`/workbench/rows${window.location.search}`, { credentials: "same-origin" });
  if (!response.ok) return;
  queue.innerHTML = await response.text();
  let fresh = 0;
  for (const row of queue.querySelectorAll("tr[data-alert]")) {
    if (highlight && !known.has(row.dataset.alert)) {
      row.classList.add("fresh");
      fresh += 1;
    }
  }
  if (fresh) announce(t("wb.new_items"));
  tick();
}

async function act(row, action) {
  const id = row.dataset.alert;
  const subject = row.querySelector(".title")?.textContent || "";
  try {
    if (action === "claim") {
      await api("POST", `/api/v1/alerts/${id}/assignment`, { assignee_id: me });
    } else if (action === "acknowledge") {
      await api("POST", `/api/v1/alerts/${id}/actions`, { action: "acknowledge" });
    } else if (action === "resolve") {
      const values = await askWith(document.getElementById("resolve-dialog"), subject);
      if (!values) return;
      // Resolving needs an acknowledgement first (the lifecycle's rule); do both in order.
      if (row.dataset.status === "open") {
        await api("POST", `/api/v1/alerts/${id}/actions`, { action: "acknowledge" });
      }
      await api("POST", `/api/v1/alerts/${id}/actions`, {
        action: "resolve",
        outcome_code: values.outcome_code,
        note: values.note,
      });
    } else if (action === "contact") {
      if (!(await logContact(row.dataset.patient, id, subject))) return;
    }
    announce(t("common.saved"));
    await refresh(false);
  } catch (error) {
    announce(`${t("common.save_failed")}: ${error.message}`);
  }
}

queue.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-act]");
  if (button) act(button.closest("tr"), button.dataset.act);
});

// A burst of changes (a fleet's morning upload) becomes one refresh.
let pending = null;
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(() => refresh(true), 250);
}

function connect() {
  const source = new EventSource("/api/v1/queue/events");
  source.addEventListener("open", () => {
    live.textContent = live.dataset.on;
    live.classList.remove("off");
    // Notices are not replayed: reload the list on every open, so an alert raised while the
    // stream was down, or between rendering this page and the first open, is not missed.
    refreshSoon();
  });
  source.addEventListener("alert", refreshSoon);
  source.addEventListener("error", () => {
    live.textContent = live.dataset.off;
    live.classList.add("off");
  });
}

connect();
tick();
setInterval(tick, 1000);
