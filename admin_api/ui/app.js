// turnout's dashboard: the state of one instance, live, and its actions.
//
// Theory of operation. The page holds one value, the last frame the event stream delivered (the
// whole state: routes, pools, rollouts, history, workers, fleet, per-second series and evidence; see
// admin_api/events.py). Every frame replaces it and re-renders each section from it: no section
// keeps state of its own, so what is shown is always one consistent frame, never a mix of two.
// Rendering pauses while a pointer is pressed, so a click never lands on a button that a frame
// replaced between press and release. Actions go through the public API, after a confirmation,
// with If-Match set to the revision of the frame on screen; their answer (or refusal, in words)
// goes to the message area, and their effect arrives with the next frame.

import { Stream } from "./stream.js";
import { token, setToken, write } from "./api.js";
import { confirmAction } from "./confirm.js";
import { h, replace, clock } from "./dom.js";
import { renderRoutes } from "./routes.js";
import { renderPools } from "./pools.js";
import { renderRollouts } from "./rollouts.js";
import { renderHistory, renderWorkers } from "./activity.js";
import { renderFleet } from "./fleet.js";

const $ = (id) => document.getElementById(id);

const SECTIONS = [
  ["routes", renderRoutes],
  ["rollouts", renderRollouts],
  ["pools", renderPools],
  ["history", renderHistory],
  ["workers", renderWorkers],
  ["fleet", renderFleet],
];

let frame = null;
let pressed = false;
let stale = false;

function say(text, kind = "info") {
  const area = $("message");
  const prefix = { error: "Error: ", ok: "Done: ", info: "" }[kind];
  area.className = `message message-${kind}`;
  area.replaceChildren(
    h("span", {}, prefix + text),
    h("button", { type: "button", class: "link", on: { click: () => area.replaceChildren() } }, "Dismiss"),
  );
}

const ctx = {
  button(label, key, onClick, { disabled = false, title = null } = {}) {
    return h("button", { type: "button", disabled, title, data: { key }, on: { click: onClick } }, label);
  },
  async act({ title, text, action, danger, fields, method, path, body, done }) {
    if (!frame) return;
    const revision = frame.revision;
    const values = await confirmAction({
      title,
      text: `${text} This applies to revision ${revision} and is refused if anything changed since.`,
      action,
      danger,
      fields,
    });
    if (values === null) return;
    try {
      const answer = await write(method, path, typeof body === "function" ? body(values) : body, revision);
      const now = answer && answer.revision !== undefined ? ` Revision ${answer.revision}.` : "";
      say(`${done}${now}`, "ok");
    } catch (error) {
      if (error.status === 401) askToken("The token was refused; give another.");
      say(error.message, "error");
    }
  },
};

function render() {
  if (!frame) return;
  if (pressed) return; // released soon: pointerup renders the newest frame
  if (document.hidden) return; // a background tab draws nothing; visibilitychange catches up
  for (const [id, view] of SECTIONS) replace($(id), ...view(frame, ctx));
  showConnection();
}

let connection = { state: "connecting" };

function showConnection() {
  const text = {
    connecting: "Connecting…",
    live: frame ? `● Live · revision ${frame.revision} · ${clock(frame.time)}` : "● Live",
    waiting: `○ Disconnected (${connection.error}); retrying in ${Math.round((connection.delay || 0) / 1000)} s`,
    unauthorized: "○ Needs a token",
  }[connection.state];
  const shown = stale && frame ? `${text} · showing the state of ${clock(frame.time)}` : text;
  $("connection").textContent = shown;
  $("connection").className = `connection connection-${connection.state}`;
  document.body.classList.toggle("stale", stale);
}

const stream = new Stream({
  onFrame(next) {
    frame = next;
    stale = false;
    render();
  },
  onStatus(status) {
    connection = status;
    if (status.state !== "live") stale = frame !== null;
    if (status.state === "unauthorized") askToken(token() ? "That token was refused; give another." : null);
    showConnection();
  },
});

function askToken(problem) {
  if (problem) say(problem, "error");
  setToken(null);
  $("forget-token").hidden = true;
  $("token").hidden = false;
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault(); // never submitted: the CSP's form-action 'none' forbids it anyway
  const value = $("token-input").value.trim();
  if (!value) return;
  setToken(value);
  $("token-input").value = "";
  $("token").hidden = true;
  $("forget-token").hidden = false;
  $("message").replaceChildren();
  stream.start();
});

$("forget-token").addEventListener("click", () => {
  setToken(null);
  stream.stop();
  askToken(null);
});

document.addEventListener("pointerdown", () => {
  pressed = true;
});
for (const type of ["pointerup", "pointercancel", "blur"]) {
  window.addEventListener(type, () => {
    pressed = false;
    // After the click event that follows this pointerup, not before it.
    setTimeout(render, 0);
  });
}

document.addEventListener("visibilitychange", render);

$("forget-token").hidden = !token();
stream.start();
