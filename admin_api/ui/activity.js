// The last changes (from the history: who changed what, when) and the worker processes.

import { h, since } from "./dom.js";

// A change's before/after in one short line: only the leaves that differ, by their path, e.g.
// "routes.web.weights.canary: 10 → 30" or "pools.blue.backends.blue-2.admin_state: drain →
// ready". Lists of named things (backends) and of pairs (weights) are read as maps by name, so
// one backend's change is one leaf, not the whole list.
function keyed(list) {
  if (list.length && list.every((x) => x && typeof x === "object" && !Array.isArray(x) && typeof x.name === "string")) {
    return Object.fromEntries(list.map((x) => [x.name, x]));
  }
  if (list.length && list.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === "string")) {
    return Object.fromEntries(list);
  }
  return null;
}

function leaves(value, prefix, into) {
  const map = Array.isArray(value) ? keyed(value) : value;
  if (map && typeof map === "object" && !Array.isArray(map)) {
    for (const [key, inner] of Object.entries(map)) leaves(inner, prefix ? `${prefix}.${key}` : key, into);
  } else {
    into.set(prefix, value);
  }
  return into;
}

function delta(before, after) {
  const a = leaves(before || {}, "", new Map());
  const b = leaves(after || {}, "", new Map());
  const text = (value) => (value === undefined ? "–" : typeof value === "object" ? JSON.stringify(value) : String(value));
  const parts = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (JSON.stringify(a.get(key)) !== JSON.stringify(b.get(key))) parts.push(`${key}: ${text(a.get(key))} → ${text(b.get(key))}`);
  }
  const line = parts.join("; ");
  return line.length > 240 ? `${line.slice(0, 237)}…` : line;
}

function table(caption, columns, rows) {
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, columns.map((title) => h("th", { attrs: { scope: "col" } }, title)))),
    h("tbody", {}, rows),
  );
}

export function renderHistory(frame) {
  const changes = Array.isArray(frame.history) ? frame.history : (frame.history || {}).changes || [];
  if (!changes.length) return [h("p", { class: "muted" }, "No changes yet.")];
  return [
    table(
      "The last changes, newest first",
      ["Revision", "When", "Who", "What", "Target", "Change"],
      changes.map((change) =>
        h(
          "tr",
          { data: { revision: change.revision } },
          h("td", { class: "num" }, String(change.revision)),
          h("td", { attrs: { title: change.time } }, since(change.time, frame.time)),
          h("td", {}, change.actor),
          h("td", {}, change.action),
          h("td", {}, change.target),
          h("td", { class: "small delta" }, delta(change.before, change.after)),
        ),
      ),
    ),
  ];
}

export function renderWorkers(frame) {
  const list = frame.workers || { workers: [] };
  const workers = list.workers || [];
  return [
    h("p", { class: "muted" }, `${workers.length} worker(s); ${list.crashes ?? 0} crash(es) since start.`),
    table(
      "Worker processes",
      ["Worker", "PID", "Serving", "Revision", "Crashes", "Requests", "Connections"],
      workers.map((worker) =>
        h(
          "tr",
          {},
          h("th", { attrs: { scope: "row" } }, String(worker.id)),
          h("td", { class: "num" }, String(worker.pid)),
          h("td", { class: worker.serving ? "ok" : "bad" }, worker.serving ? "✔ yes" : "✖ no"),
          h("td", { class: "num" }, String(worker.revision)),
          h("td", { class: "num" }, String(worker.crashes)),
          h("td", { class: "num" }, String(worker.requests)),
          h("td", { class: "num" }, String(worker.connections)),
        ),
      ),
    ),
  ];
}
