// Billing page actions: show a raw body, replay, replay all of a reason, discard.
// Every request goes to the page's own JSON API (relative URLs, Airflow's session cookie).
"use strict";

const statusBox = () => document.getElementById("status");
const canAct = () => document.body.dataset.canAct === "1";

function say(text, ok) {
  const box = statusBox();
  box.textContent = text;
  box.className = ok ? "ok" : "error";
  box.dataset.state = ok ? "ok" : "error";
}

async function post(path, payload) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  let data = {};
  try {
    data = await response.json();
  } catch (err) {
    data = { detail: response.statusText };
  }
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw new Error(`HTTP ${response.status}: ${detail}`);
  }
  return data;
}

function resolved(id, text) {
  const row = document.querySelector(`tr[data-quarantine-id="${id}"]`);
  if (row) {
    row.classList.add("resolved");
    row.querySelectorAll("button[data-action=replay], button[data-action=discard], input.note")
      .forEach((el) => el.remove());
    row.lastElementChild.textContent = text;
  }
}

async function showBody(id) {
  const holder = document.querySelector(`div[data-body-for="${id}"]`);
  const response = await fetch(`api/quarantine/${id}/body`, { credentials: "same-origin" });
  if (!response.ok) {
    say(`Body of row ${id}: HTTP ${response.status}`, false);
    return;
  }
  const data = await response.json();
  holder.replaceChildren();
  const info = document.createElement("div");
  info.textContent = `${data.length} bytes${data.masked ? " (caller numbers masked)" : data.utf8 ? "" : " (not UTF-8: shown with replacement characters)"}`;
  const area = document.createElement("textarea");
  area.value = data.text;
  area.rows = 6;
  area.dataset.bodyText = id;
  holder.append(info, area);
  if (canAct()) {
    const button = document.createElement("button");
    button.textContent = "Replay this corrected body";
    button.dataset.action = "replay-corrected";
    button.dataset.id = id;
    holder.append(button);
  }
}

async function act(el) {
  const id = el.dataset.id;
  switch (el.dataset.action) {
    case "body":
      return showBody(id);
    case "replay": {
      const r = await post(`api/quarantine/${id}/replay`, {});
      resolved(id, `replayed as ${r.call_id}`);
      return say(`Row ${id} replayed as call_id ${r.call_id} (${r.logged ? "logged" : "already logged"}). Reload for the new figures.`, true);
    }
    case "replay-corrected": {
      const text = document.querySelector(`textarea[data-body-text="${id}"]`).value;
      const r = await post(`api/quarantine/${id}/replay`, { body: text });
      resolved(id, `replayed as ${r.call_id}`);
      return say(`Row ${id} replayed (corrected) as call_id ${r.call_id}.`, true);
    }
    case "discard": {
      const note = document.querySelector(`input[data-note-for="${id}"]`).value.trim();
      if (!note) return say(`Say why row ${id} is discarded (the note is recorded).`, false);
      await post(`api/quarantine/${id}/discard`, { note });
      resolved(id, "discarded");
      return say(`Row ${id} discarded.`, true);
    }
    case "replay-reason": {
      const r = await post("api/quarantine/replay-reason", { reason: el.dataset.reason });
      const invalid = Object.keys(r.still_invalid).length;
      const failed = Object.entries(r.failed || {});
      const failures = failed.length ? ` ${failed.length} failed and stay open (retry later): ${failed.map(([row, why]) => `row ${row}: ${why}`).join("; ")}.` : "";
      return say(`Replayed ${r.replayed} (${invalid} still invalid, ${r.remaining} left with this reason).${failures} Reload for the new figures.`, failed.length === 0);
    }
    default:
      return undefined;
  }
}

document.addEventListener("click", (event) => {
  const el = event.target.closest("button[data-action]");
  if (!el) return;
  event.preventDefault();
  el.disabled = true;
  act(el)
    .catch((err) => say(err.message, false))
    .finally(() => { el.disabled = false; });
});
