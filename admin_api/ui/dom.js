// Building DOM and SVG without markup strings: the Content-Security-Policy forbids inline script
// and style, and building elements (never innerHTML) means no name from the API can inject
// markup. Styles are classes from app.css, or element.style set here (CSSOM is allowed by CSP).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// h("button", {class: "act", on: {click}, attrs: {"aria-label": "..."}}, "text", child...)
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (key === "attrs") for (const [name, v] of Object.entries(value)) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(name, v === true ? "" : String(v));
    }
    else if (key === "data") for (const [name, v] of Object.entries(value)) node.dataset[name] = String(v);
    else node[key] = value;
  }
  return append(node, children);
}

// s("path", {d: "M0 0", class: "line"}): an SVG element with attributes.
export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  return append(node, children);
}

// Replace a container's content, keeping keyboard focus on the element of the same data-key:
// sections are rebuilt on every frame, and a keyboard user must not lose their place each second.
export function replace(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

// Formatting: every figure the page shows goes through one of these, so "no data" always reads
// the same ("–") and is never shown as 0.

export const NONE = "–";

export function percent(value, digits = 1) {
  return value === null || value === undefined ? NONE : `${Number(value).toFixed(digits)} %`;
}

export function ratio(value) {
  // 0..1 -> percent; small error rates need two decimals to be told apart from 0.
  if (value === null || value === undefined) return NONE;
  const pct = value * 100;
  return `${pct.toFixed(pct !== 0 && pct < 1 ? 2 : 1)} %`;
}

export function rate(value) {
  if (value === null || value === undefined) return NONE;
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)}/s`;
}

export function seconds(value) {
  if (value === null || value === undefined) return NONE;
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
  return `${value.toFixed(2)} s`;
}

export function duration(totalSeconds) {
  if (totalSeconds === null || totalSeconds === undefined) return NONE;
  const s = Math.max(0, Math.round(totalSeconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// "12 s ago" / "in 30 s", relative to the frame's time (the server's clock, not the browser's).
export function since(iso, now) {
  if (!iso) return NONE;
  const delta = (Date.parse(now) - Date.parse(iso)) / 1000;
  return delta >= 0 ? `${duration(delta)} ago` : `in ${duration(-delta)}`;
}

export function clock(iso) {
  if (!iso) return NONE;
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function evidence(value) {
  if (value === null || value === undefined) return NONE;
  if (!Number.isFinite(value)) return "∞";
  if (value >= 10_000) return value.toExponential(1);
  return value >= 100 ? String(Math.round(value)) : value.toFixed(2);
}
