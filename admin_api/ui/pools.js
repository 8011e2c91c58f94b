// The pools section: every backend with its admin state (ready/drain/maint), its health (the last
// probe; an ejection's reason and the time left), requests in flight and slow-start progress;
// drain and enable act on it. States are words and symbols, never colour alone.

import { h, since, duration, NONE } from "./dom.js";
import { segment } from "./api.js";

const ADMIN_MARK = { ready: "▶", drain: "‖", maint: "■" };

function probeText(check, now) {
  if (!check) return "not checked";
  const probe = check.lastProbe;
  if (!probe) return `${check.state}, no probe yet`;
  const outcome = probe.ok
    ? `${probe.status ?? "ok"} · ${probe.durationMs.toFixed(0)} ms`
    : `failed: ${probe.error || `status ${probe.status}`}`;
  return `${outcome} · ${since(probe.at, now)}`;
}

function healthCell(backend, now) {
  const healthy = backend.health === "healthy" && !backend.ejection;
  const parts = [
    h("span", { class: ["state", healthy ? "ok" : "bad"] }, `${healthy ? "✔" : "✖"} ${backend.health}`),
    h("span", { class: "muted small" }, probeText(backend.check, now)),
  ];
  if (backend.ejection) {
    const left = (Date.parse(backend.ejection.until) - Date.parse(now)) / 1000;
    parts.push(
      h(
        "span",
        { class: "ejection bad small" },
        `ejected (${backend.ejection.ejections}× in a row): ${backend.ejection.reason}; back in ${duration(left)}`,
      ),
    );
  }
  return h("td", { class: "health" }, parts);
}

function slowStartCell(backend) {
  const ramp = backend.slowStart;
  if (!ramp) return h("td", { class: "muted" }, NONE);
  return h(
    "td",
    { class: "slow-start" },
    h("progress", {
      max: 100,
      value: ramp.progress,
      attrs: { "aria-label": `${backend.name} slow start ${ramp.progress.toFixed(0)} percent` },
    }),
    h("span", { class: "small" }, ` ${ramp.progress.toFixed(0)} %, ${duration(ramp.remainingSeconds)} left`),
  );
}

function action(pool, backend, ctx) {
  const path = `/v1/pools/${segment(pool.name)}/backends/${segment(backend.name)}`;
  if (backend.adminState === "ready") {
    return ctx.button(`Drain ${backend.name}`, `drain-${pool.name}-${backend.name}`, () =>
      ctx.act({
        title: `Drain ${backend.name}?`,
        text: `${backend.name} (pool ${pool.name}) gets no new requests; the ${backend.inflight} in flight finish.`,
        action: "Drain",
        danger: true,
        method: "PATCH",
        path,
        body: { adminState: "drain" },
        done: `${backend.name} is draining.`,
      }),
    );
  }
  return ctx.button(`Enable ${backend.name}`, `enable-${pool.name}-${backend.name}`, () =>
    ctx.act({
      title: `Enable ${backend.name}?`,
      text: `${backend.name} (pool ${pool.name}) takes new requests again${pool.slowStart ? `, ramping up over ${duration(pool.slowStart)}` : ""}.`,
      action: "Enable",
      method: "PATCH",
      path,
      body: { adminState: "ready" },
      done: `${backend.name} is enabled.`,
    }),
  );
}

function backendRow(frame, pool, backend, ctx) {
  const ramp = pool.slowStart ? slowStartCell(backend) : null;
  return h(
    "tr",
    { data: { backend: backend.name } },
    h("th", { attrs: { scope: "row" } }, backend.name, h("div", { class: "muted small" }, backend.url)),
    h(
      "td",
      { class: ["admin-state", `admin-${backend.adminState}`] },
      `${ADMIN_MARK[backend.adminState] || ""} ${backend.adminState}`,
      backend.eligible ? null : h("div", { class: "muted small" }, "takes no new requests"),
    ),
    healthCell(backend, frame.time),
    h("td", { class: "num inflight" }, String(backend.inflight)),
    h(
      "td",
      { class: "num" },
      String(backend.weight),
      backend.effectiveWeight !== backend.weight
        ? h("div", { class: "muted small" }, `now ${backend.effectiveWeight.toFixed(1)}`)
        : null,
    ),
    ramp,
    h("td", {}, action(pool, backend, ctx)),
  );
}

export function renderPools(frame, ctx) {
  const pools = frame.pools || [];
  if (!pools.length) return [h("p", { class: "muted" }, "No pools.")];
  return pools.map((pool) => {
    const id = `pool-${pool.name}`;
    return h(
      "article",
      { class: "card pool", data: { pool: pool.name }, attrs: { "aria-labelledby": id } },
      h(
        "header",
        {},
        h("h3", { id }, pool.name),
        h("span", { class: "muted" }, `${pool.eligible} of ${pool.backends.length} taking requests`),
        pool.slowStart ? h("span", { class: "muted" }, `· slow start over ${duration(pool.slowStart)}`) : null,
        pool.panic ? h("span", { class: "badge bad" }, "⚠ panic: every ready backend gets traffic") : null,
      ),
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, `Backends of ${pool.name}`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Backend", "Admin state", "Health", "In flight", "Weight", pool.slowStart ? "Slow start" : null, "Action"]
              .filter(Boolean)
              .map((title) => h("th", { attrs: { scope: "col" } }, title)),
          ),
        ),
        h("tbody", {}, pool.backends.map((backend) => backendRow(frame, pool, backend, ctx))),
      ),
    );
  });
}
