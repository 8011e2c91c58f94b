// The routes section: per route its set split (weights and percent) or its colours (active,
// previous), the observed split, and per pool the last minute's request rate, error rate and
// p50/p99 with sparklines; and the route's actions (switch, roll back, set weights).

import { h, percent, ratio, rate, seconds, NONE } from "./dom.js";
import { sparkline } from "./charts.js";
import { segment } from "./api.js";

// The pools the split or the colours name, then those only a header/cookie rule or the
// fallback reaches (their traffic shows in the series too).
function splitPools(route) {
  if (route.mode === "blue-green") return route.pools || [];
  return Object.keys(route.weights || {});
}

function poolsOf(route) {
  const listed = splitPools(route);
  const extra = [...(route.rules || []).map((rule) => rule.pool), route.fallbackPool];
  return [...new Set([...listed, ...extra.filter((pool) => pool && !listed.includes(pool))])];
}

function matchText(route) {
  const parts = [`path ${route.match.pathPrefix || "/"}*`];
  if (route.match.hosts && route.match.hosts.length) parts.push(`hosts ${route.match.hosts.join(", ")}`);
  if (route.rules && route.rules.length) parts.push(`${route.rules.length} header/cookie rule(s)`);
  return parts.join(" · ");
}

function roleOf(route, pool) {
  if (route.active === pool) return { word: "active", mark: "●" };
  if (route.previous === pool) return { word: "previous", mark: "◐" };
  return { word: "standby", mark: "○" };
}

function poolRow(frame, route, pool) {
  const series = (frame.series || {})[`${route.name}/${pool}`] || null;
  const observedPct = (route.observedPercentages || {})[pool];
  const observed = (route.observed || {})[pool] ?? 0;
  const rps = series ? series.rps : [];
  const errors = series ? series.errorRate : [];
  const nowRps = rps && rps.length ? rps[rps.length - 1] : null;
  const errorShare = series && series.requests ? series.errors / series.requests : null;
  const setCell = !splitPools(route).includes(pool)
    ? h("td", { class: "muted" }, pool === route.fallbackPool ? "fallback" : "by rule only")
    : route.mode === "blue-green"
      ? (() => {
          const role = roleOf(route, pool);
          return h("td", { class: `role role-${role.word}` }, `${role.mark} ${role.word}`);
        })()
      : h(
          "td",
          { class: "weight" },
          h("span", { class: "weight-value" }, String(route.weights[pool])),
          h("span", { class: "muted" }, ` (${percent((route.percentages || {})[pool])})`),
        );
  return h(
    "tr",
    { data: { pool } },
    h("th", { attrs: { scope: "row" } }, pool),
    setCell,
    h("td", { class: "observed" }, percent(observedPct), h("span", { class: "muted" }, ` (${observed})`)),
    h(
      "td",
      { class: "spark-cell" },
      h("span", { class: "figure" }, rate(nowRps)),
      sparkline(rps, { label: `${pool} requests per second`, format: rate, kind: "rate", floor: 1 }),
    ),
    h(
      "td",
      { class: "spark-cell" },
      h("span", { class: ["figure", errorShare ? "bad" : null] }, errorShare === null ? NONE : ratio(errorShare)),
      sparkline(errors, { label: `${pool} error rate`, format: ratio, kind: "errors", floor: 0.01 }),
    ),
    h("td", { class: "num" }, seconds(series ? series.p50 : null)),
    h("td", { class: "num" }, seconds(series ? series.p99 : null)),
  );
}

function actions(frame, route, ctx) {
  const path = `/v1/routes/${segment(route.name)}`;
  const buttons = [];
  if (route.mode === "blue-green") {
    for (const pool of route.pools || []) {
      if (pool === route.active) continue;
      buttons.push(
        ctx.button(`Switch to ${pool}`, `switch-${route.name}-${pool}`, () =>
          ctx.act({
            title: `Switch ${route.name} to ${pool}?`,
            text: `Every new request on ${route.name} goes to ${pool} instead of ${route.active}.`,
            action: `Switch to ${pool}`,
            method: "POST",
            path: `${path}/switch`,
            body: { to: pool },
            done: `${route.name} switched to ${pool}.`,
          }),
        ),
      );
    }
  } else {
    buttons.push(
      ctx.button("Set weights…", `weights-${route.name}`, () =>
        ctx.act({
          title: `Set the weights of ${route.name}`,
          text: "Weights are proportions: 0 sends a pool nothing; they may not all be 0.",
          action: "Set weights",
          fields: splitPools(route).map((pool) => ({ name: pool, label: pool, value: route.weights[pool] })),
          method: "PUT",
          path: `${path}/weights`,
          body: (values) => ({ weights: values }),
          done: `${route.name}: weights set.`,
        }),
      ),
    );
  }
  const previous = route.mode === "blue-green" ? route.previous : route.previousWeights;
  const back =
    route.mode === "blue-green"
      ? `back to ${route.previous}`
      : `back to ${Object.entries(route.previousWeights || {}).map(([p, w]) => `${p} ${w}`).join(", ")}`;
  buttons.push(
    ctx.button(
      "Roll back",
      `rollback-${route.name}`,
      () =>
        ctx.act({
          title: `Roll ${route.name} back?`,
          text: `${route.name} goes ${back}.`,
          action: "Roll back",
          danger: true,
          method: "POST",
          path: `${path}/rollback`,
          done: `${route.name} rolled back.`,
        }),
      { disabled: !previous, title: previous ? back : "nothing to roll back to" },
    ),
  );
  return h("div", { class: "actions", attrs: { role: "group", "aria-label": `Actions on ${route.name}` } }, buttons);
}

function summary(route) {
  if (route.mode === "blue-green") {
    return h(
      "p",
      { class: "summary" },
      "Active: ",
      h("strong", { class: "active-colour" }, route.active),
      " · previous: ",
      h("span", { class: "previous-colour" }, route.previous || "none"),
    );
  }
  const split = Object.entries(route.percentages || {}).map(([pool, pct]) => `${pool} ${percent(pct)}`);
  return h("p", { class: "summary" }, "Set split: ", h("strong", { class: "split" }, split.join(" · ")));
}

export function renderRoutes(frame, ctx) {
  const routes = frame.routes || [];
  if (!routes.length) return [h("p", { class: "muted" }, "No routes.")];
  return routes.map((route) => {
    const id = `route-${route.name}`;
    return h(
      "article",
      { class: "card route", data: { route: route.name }, attrs: { "aria-labelledby": id } },
      h(
        "header",
        {},
        h("h3", { id }, route.name),
        h("span", { class: "badge" }, route.mode),
        h("span", { class: "muted" }, matchText(route)),
      ),
      summary(route),
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, `Pools of ${route.name}, last minute`),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Pool", route.mode === "blue-green" ? "Colour" : "Weight (set)", "Observed", "Requests", "Errors", "p50", "p99"].map(
              (title) => h("th", { attrs: { scope: "col" } }, title),
            ),
          ),
        ),
        h("tbody", {}, poolsOf(route).map((pool) => poolRow(frame, route, pool))),
      ),
      actions(frame, route, ctx),
    );
  });
}
