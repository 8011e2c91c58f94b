// Talking to the admin API: the bearer token, and writes with If-Match.
//
// The token lives in this tab's sessionStorage only: never in a URL (logs, Referer) and never in
// a cookie (the API takes no cookies, so no other origin can make the browser write for you:
// there is nothing to forge). Every request carries it as `Authorization: Bearer`. Every write
// names the revision of the frame on screen in If-Match, so a change made elsewhere since then
// turns the click into a 412 that says so, never into a write over a state nobody looked at.

const KEY = "turnout.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export function headers(extra = {}) {
  const sent = { ...extra };
  const current = token();
  if (current) sent.Authorization = `Bearer ${current}`;
  return sent;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

// A problem document (RFC 9457) in words: its title, detail and each field's complaint.
export function describe(status, problem) {
  if (!problem || typeof problem !== "object") return `The API answered ${status}.`;
  const parts = [`${problem.title || "Refused"} (${status})`];
  if (problem.detail) parts.push(`: ${problem.detail}`);
  // Field complaints the detail does not already carry (some problems repeat them there).
  const errors = (problem.errors || [])
    .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
    .filter((text) => !(problem.detail || "").includes(text));
  if (errors.length) parts.push(`. ${errors.join("; ")}`);
  if (status === 412) parts.push(". The state changed since this page showed it; look again and retry.");
  return parts.join("");
}

export function segment(name) {
  return encodeURIComponent(name);
}

// One write: `revision` is the frame's, sent as the strong ETag the API gave it.
export async function write(method, path, body, revision) {
  const sent = headers({ Accept: "application/json, application/problem+json" });
  if (revision !== null && revision !== undefined) sent["If-Match"] = `"${revision}"`;
  const init = { method, headers: sent, cache: "no-store" };
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}
