// Shared by every page: the page's texts, JSON calls to the API with the session cookie,
// a status message for screen readers, and the tier palette (always with a text label).

const textsNode = document.getElementById("texts");
export const texts = textsNode ? JSON.parse(textsNode.textContent) : {};

export function t(key, values = {}) {
  let text = texts[key] || key;
  for (const [name, value] of Object.entries(values)) text = text.replace(`{${name}}`, value);
  return text;
}

export async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const reason = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    throw new Error(`${response.status}: ${reason}`);
  }
  return data;
}

export function announce(message) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = message;
  toast.classList.add("shown");
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => toast.classList.remove("shown"), 4000);
}

export const TIER_COLOURS = {
  critical: "#b3261e",
  high: "#d9480f",
  medium: "#b7791f",
  low: "#2b6cb0",
  none: "#2f855a",
};

// Opens a <dialog>, resolves with the form's values on save, null on cancel.
export function askWith(dialog, subject) {
  const form = dialog.querySelector("form");
  const error = form.querySelector(".error");
  form.reset();
  error.hidden = true;
  const subjectNode = form.querySelector(".dialog-subject");
  if (subjectNode) subjectNode.textContent = subject || "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "save" ? Object.fromEntries(new FormData(form)) : null),
      { once: true },
    );
  });
}

export async function logContact(patientId, alertId, subject) {
  const dialog = document.getElementById("contact-dialog");
  const values = await askWith(dialog, subject);
  if (!values) return false;
  const body = { ...values };
  if (alertId) body.alert_id = alertId;
  await api("POST", `/api/v1/patients/${encodeURIComponent(patientId)}/contacts`, body);
  announce(t("common.saved"));
  return true;
}
