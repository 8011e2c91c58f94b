// Inline-SVG charts: a sparkline for a minute of per-second figures, and a rollout's evidence over
// time against its threshold. Each chart is an image with a text alternative that says what the
// lines say, so the figure is readable without seeing the picture (or its colours).

import { s, evidence as fmtEvidence } from "./dom.js";

function points(values, width, height, top) {
  // One x per sample (oldest left); null samples break the line instead of reading as 0.
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  let d = "";
  let pen = false;
  values.forEach((value, index) => {
    if (value === null || value === undefined || !Number.isFinite(value)) {
      pen = false;
      return;
    }
    const x = (index * step).toFixed(1);
    const y = (height - (top > 0 ? (value / top) * (height - 2) : 0) - 1).toFixed(1);
    d += `${pen ? "L" : "M"}${x} ${y}`;
    pen = true;
  });
  return d;
}

// A sparkline of `values` (e.g. 60 requests-per-second samples). `label` names the figure for the
// text alternative; `format` renders a value in it.
export function sparkline(values, { label, format, kind = "rate", width = 120, height = 28, floor = 0 }) {
  const present = (values || []).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const top = Math.max(floor, ...present, 0);
  const now = present.length ? present[present.length - 1] : null;
  const high = present.length ? Math.max(...present) : null;
  const text = present.length
    ? `${label} over the last minute: now ${format(now)}, highest ${format(high)}`
    : `${label}: no data in the last minute`;
  return s(
    "svg",
    { class: `spark spark-${kind}`, viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": text },
    s("title", {}, text),
    s("line", { class: "spark-base", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }),
    s("path", { class: "spark-line", d: points(values || [], width, height, top) }),
  );
}

const LOG_FLOOR = -1; // evidence below 0.1 is drawn at 0.1: only the way up to the threshold matters

function logOf(value) {
  if (value === null || value === undefined) return null;
  if (!Number.isFinite(value)) return Infinity;
  return Math.max(LOG_FLOOR, Math.log10(Math.max(value, 1e-12)));
}

// The judge's evidence (an e-value: 1 at the start, the rollout aborts when it reaches the
// threshold) on a log scale, one line per test, the threshold as a dashed line.
// `series`: [[epochSeconds, errors, latency|null], ...] oldest first.
export function evidenceChart(series, threshold, { width = 420, height = 140 } = {}) {
  const pad = { left: 34, right: 8, top: 10, bottom: 18 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const rows = series || [];
  const limit = threshold && Number.isFinite(threshold) ? Math.log10(threshold) : 2;
  const logs = rows.flatMap(([, e, l]) => [logOf(e), logOf(l)]).filter((v) => v !== null && Number.isFinite(v));
  const top = Math.max(limit * 1.15, ...logs, 0.5);
  const bottom = LOG_FLOOR;
  const t0 = rows.length ? rows[0][0] : 0;
  const t1 = rows.length ? rows[rows.length - 1][0] : 1;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => pad.left + ((t - t0) / span) * innerW;
  const y = (v) => pad.top + innerH - ((Math.min(v, top) - bottom) / (top - bottom)) * innerH;

  const line = (column) => {
    let d = "";
    let pen = false;
    for (const row of rows) {
      const v = logOf(row[column]);
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(row[0]).toFixed(1)} ${y(v).toFixed(1)}`;
      pen = true;
    }
    return d;
  };

  const last = rows.length ? rows[rows.length - 1] : null;
  const text = last
    ? `Evidence against the new version over ${Math.round(span)} s: errors ${fmtEvidence(last[1])}` +
      (last[2] !== null && last[2] !== undefined ? `, latency ${fmtEvidence(last[2])}` : "") +
      `; the rollout aborts at ${fmtEvidence(threshold)}`
    : "No evidence recorded yet";

  const ticks = [];
  for (let power = Math.ceil(bottom); power <= Math.floor(top); power += 1) {
    ticks.push(
      s("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(power), y2: y(power) }),
      s("text", { class: "tick", x: pad.left - 4, y: y(power) + 3, "text-anchor": "end" }, power < 0 ? `${10 ** power}` : String(10 ** power)),
    );
  }
  return s(
    "svg",
    { class: "evidence-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": text },
    s("title", {}, text),
    ticks,
    s("line", { class: "threshold", x1: pad.left, x2: width - pad.right, y1: y(limit), y2: y(limit) }),
    s("text", { class: "threshold-label", x: width - pad.right, y: y(limit) - 4, "text-anchor": "end" },
      `abort at ${fmtEvidence(threshold)}`),
    s("path", { class: "ev-errors", d: line(1) }),
    s("path", { class: "ev-latency", d: line(2) }),
    s("text", { class: "tick", x: pad.left, y: height - 4 }, rows.length ? `the last ${Math.round(span)} s` : ""),
  );
}
