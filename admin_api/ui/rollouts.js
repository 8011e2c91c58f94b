// The rollouts section: a route rollout's step timeline, its reason in words, the judge's verdict
// and evidence (a chart against the abort threshold, and the counts behind it), and its commands;
// a pool rollout's batches, stage, reason, evidence and the last hook's output.

import { h, ratio, seconds, since, evidence as fmtEvidence } from "./dom.js";
import { evidenceChart } from "./charts.js";
import { segment } from "./api.js";

const PHASE_MARK = { progressing: "▶", paused: "‖", promoted: "✔", aborted: "✖" };
const RUNNING = new Set(["progressing", "paused"]);

function phaseBadge(phase) {
  return h("span", { class: ["badge", `phase-${phase}`] }, `${PHASE_MARK[phase] || ""} ${phase}`);
}

// Each step: done, the current one (marked, aria-current) or still to come; an aborted rollout's
// step shows where it stopped.
function timeline(labels, current, phase) {
  return h(
    "ol",
    { class: "timeline", attrs: { "aria-label": "Steps" } },
    labels.map((label, index) => {
      let state = index < current ? "done" : index === current ? "current" : "pending";
      if (phase === "promoted") state = "done";
      if (phase === "aborted" && index === current) state = "stopped";
      const mark = { done: "✔", current: "▶", pending: "○", stopped: "✖" }[state];
      return h(
        "li",
        { class: `step step-${state}`, attrs: { "aria-current": state === "current" ? "step" : null } },
        h("span", { class: "step-mark", attrs: { "aria-hidden": "true" } }, mark),
        h("span", {}, label),
        h("span", { class: "visually-hidden" }, ` (${state})`),
      );
    }),
  );
}

function commands(scope, name, phase, verbs, ctx) {
  const base = `/v1/${scope}/${segment(name)}/rollout`;
  const allowed = {
    pause: phase === "progressing",
    resume: phase === "paused",
    promote: RUNNING.has(phase),
    abort: RUNNING.has(phase),
  };
  const words = {
    pause: ["Pause", "It stays where it is until resumed.", false],
    resume: ["Resume", "It goes on from where it was paused.", false],
    promote: ["Promote", "The remaining steps are skipped: the new version gets 100 %.", false],
    abort: ["Abort", "Everything goes back to the old version at once.", true],
  };
  const buttons = verbs
    .filter((verb) => allowed[verb])
    .map((verb) => {
      const [label, text, danger] = words[verb];
      return ctx.button(`${label} rollout`, `${verb}-${scope}-${name}`, () =>
        ctx.act({
          title: `${label} the rollout of ${name}?`,
          text,
          action: label,
          danger,
          method: "POST",
          path: `${base}/${verb}`,
          done: `${name}: rollout ${verb} accepted.`,
        }),
      );
    });
  if (!buttons.length) return null;
  return h("div", { class: "actions", attrs: { role: "group", "aria-label": `Rollout actions on ${name}` } }, buttons);
}

// The judge's verdict in one sentence; its reason often starts with the outcome already.
function verdictText(verdict) {
  const outcome = `${verdict.outcome}${verdict.test ? ` (${verdict.test})` : ""}`;
  const words = verdict.outcome.replace("-", " ");
  const reason = verdict.reason.startsWith(words) ? verdict.reason : `${outcome}: ${verdict.reason}`;
  return `Judge: ${reason}.`;
}

function counts(rows) {
  return h(
    "table",
    { class: "counts" },
    h("caption", { class: "visually-hidden" }, "Counts behind the evidence"),
    h("thead", {}, h("tr", {}, ["Test", "New", "Old", "Evidence"].map((t) => h("th", { attrs: { scope: "col" } }, t)))),
    h("tbody", {}, rows.map(([test, fresh, old, value]) =>
      h("tr", {}, h("th", { attrs: { scope: "row" } }, test), h("td", {}, fresh), h("td", {}, old), h("td", { class: "num" }, value)),
    )),
  );
}

function share(bad, total, word) {
  return total ? `${bad} ${word} of ${total} (${ratio(bad / total)})` : `none of 0`;
}

function routeRollout(frame, rollout, ctx) {
  const labels =
    rollout.strategy === "canary"
      ? (rollout.steps || []).map((pct) => `${pct} %`)
      : ["pre-checks", `watching ${rollout.candidate}${rollout.watch ? ` ${rollout.watch} s` : ""}`];
  const ev = rollout.evidence;
  const threshold = ev.errors.threshold ?? (frame.evidence || {}).threshold;
  const series = (frame.evidence || {})[`route/${rollout.route}`] || [];
  const id = `rollout-${rollout.route}`;
  return h(
    "article",
    { class: ["card", "rollout", `phase-${rollout.phase}`], data: { rollout: rollout.route }, attrs: { "aria-labelledby": id } },
    h(
      "header",
      {},
      h("h3", { id }, `${rollout.route}: ${rollout.baseline} → ${rollout.candidate}`),
      h("span", { class: "badge" }, rollout.strategy),
      phaseBadge(rollout.phase),
      rollout.cause ? h("span", { class: "badge bad" }, `cause: ${rollout.cause}`) : null,
    ),
    h("p", { class: "reason" }, rollout.reason),
    h(
      "p",
      { class: "verdict muted" },
      `${verdictText(rollout.verdict)} `,
      `Started ${since(rollout.started, frame.time)}, this step ${since(rollout.stepStarted, frame.time)}.`,
    ),
    timeline(labels, rollout.step, rollout.phase),
    h(
      "div",
      { class: "evidence" },
      evidenceChart(series, threshold),
      h(
        "div",
        {},
        h("p", { class: "legend small" }, h("span", { class: "key key-errors" }, "━ errors"), " ", h("span", { class: "key key-latency" }, "┅ latency"), " ", h("span", { class: "key key-threshold" }, "╌ abort threshold")),
        counts([
          ["errors", share(ev.errors.canaryErrors, ev.errors.canaryRequests, "errors"), share(ev.errors.baselineErrors, ev.errors.baselineRequests, "errors"), fmtEvidence(ev.errors.evidence)],
          ["latency", share(ev.latency.canarySlow, ev.latency.canaryRequests, `slower than ${seconds(ev.latency.slowAbove)}`), share(ev.latency.baselineSlow, ev.latency.baselineRequests, "slow"), fmtEvidence(ev.latency.evidence)],
        ]),
        h(
          "p",
          { class: "small muted" },
          `This step: the new version answered ${ev.stepRequests} requests; it must answer ${ev.minRequests} before it can be called not worse.`,
        ),
      ),
    ),
    commands("routes", rollout.route, rollout.phase, ["pause", "resume", "promote", "abort"], ctx),
  );
}

function hookView(title, kind, hook) {
  if (!hook) return null;
  return h(
    "div",
    { class: ["hook", kind, failedClass(hook)] },
    h("p", {}, `${title}: ${hook.action} ${hook.backend} ${hook.ok ? "✔ succeeded" : "✖ failed"} (${hook.reason})`),
    hook.tail && hook.tail.length ? h("pre", { class: "hook-output" }, hook.tail.join("\n")) : h("p", { class: "muted small" }, "no output"),
  );
}

function failedClass(hook) {
  return hook.ok ? null : "bad";
}

function poolRollout(frame, rollout, ctx) {
  const labels = rollout.batches.map((names, index) => {
    const fresh = (rollout.newBatches || [])[index];
    return `batch ${index + 1}: ${names.join(", ")}${fresh && fresh.length ? ` → ${fresh.join(", ")}` : ""}`;
  });
  // The last hook, and the last failed one when it is not the same (a revert follows a failed
  // replace: the failure's output is what the operator needs).
  const hooks = rollout.hooks || [];
  const last = hooks.length ? hooks[hooks.length - 1] : null;
  const failed = [...hooks].reverse().find((hook) => !hook.ok) || null;
  const series = (frame.evidence || {})[`pool/${rollout.pool}`] || [];
  const id = `pool-rollout-${rollout.pool}`;
  const ev = rollout.evidence;
  return h(
    "article",
    { class: ["card", "rollout", `phase-${rollout.phase}`], data: { poolRollout: rollout.pool }, attrs: { "aria-labelledby": id } },
    h(
      "header",
      {},
      h("h3", { id }, `pool ${rollout.pool}`),
      h("span", { class: "badge" }, rollout.mode),
      phaseBadge(rollout.phase),
      h("span", { class: "badge" }, `stage: ${rollout.stage}`),
      rollout.cause ? h("span", { class: "badge bad" }, `cause: ${rollout.cause}`) : null,
    ),
    h("p", { class: "reason" }, rollout.reason),
    rollout.verdict ? h("p", { class: "verdict muted" }, verdictText(rollout.verdict)) : null,
    timeline(labels, rollout.batch - 1, rollout.phase),
    rollout.reverting && rollout.reverting.length ? h("p", { class: "bad" }, `Still to revert: ${rollout.reverting.join(", ")}`) : null,
    h(
      "div",
      { class: "evidence" },
      evidenceChart(series, ev.threshold),
      h("div", {}, counts([["errors", share(ev.newErrors, ev.newRequests, "errors"), share(ev.oldErrors, ev.oldRequests, "errors"), fmtEvidence(ev.evidence)]])),
    ),
    hookView("Last hook", "hook-last", last),
    failed && failed !== last ? hookView("Last failed hook", "hook-failed", failed) : null,
    commands("pools", rollout.pool, rollout.phase, ["pause", "resume", "abort"], ctx),
  );
}

export function renderRollouts(frame, ctx) {
  const routes = frame.rollouts || [];
  const pools = frame.poolRollouts || [];
  if (!routes.length && !pools.length) return [h("p", { class: "muted" }, "No rollouts.")];
  // Running ones first: they are what the operator is watching.
  const order = (a, b) => Number(RUNNING.has(b.phase)) - Number(RUNNING.has(a.phase));
  return [
    ...[...routes].sort(order).map((rollout) => routeRollout(frame, rollout, ctx)),
    ...[...pools].sort(order).map((rollout) => poolRollout(frame, rollout, ctx)),
  ];
}
