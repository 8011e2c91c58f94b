// Reading GET /v1/events/stream with fetch() and a ReadableStream reader.
//
// EventSource cannot send an Authorization header, so this parses text/event-stream itself
// (the WHATWG "event stream interpretation": lines, blank line ends an event, ':' a comment,
// `retry:` the reconnection delay). One connection at a time; when it ends or fails it is opened
// again after a delay that doubles up to a minute and resets once a frame arrives. A 401 stops
// it until a token is given (reconnecting would only be refused again). If nothing at all
// arrives for longer than three keep-alive periods the connection is taken as dead and reopened.

import { headers } from "./api.js";

const PATH = "/v1/events/stream";
const SILENCE_MS = 45_000;
const MAX_DELAY_MS = 60_000;

export class Stream {
  // onFrame(frame), onStatus({state: "connecting"|"live"|"waiting"|"unauthorized", delay?, error?})
  constructor({ onFrame, onStatus }) {
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.retry = 2000;
    this.delay = 0;
    this.controller = null;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    clearTimeout(this.timer);
    this.delay = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
  }

  async connect() {
    if (this.stopped) return;
    this.controller = new AbortController();
    const { signal } = this.controller;
    this.onStatus({ state: "connecting" });
    let failure = null;
    try {
      const response = await fetch(PATH, {
        headers: headers({ Accept: "text/event-stream" }),
        cache: "no-store",
        signal,
      });
      if (response.status === 401) {
        this.stopped = true;
        this.onStatus({ state: "unauthorized" });
        return;
      }
      if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`);
      await this.read(response.body.getReader(), signal);
      failure = "the stream ended";
    } catch (error) {
      if (this.stopped) return;
      failure = error && error.name === "AbortError" ? "no data for too long" : String(error.message || error);
    }
    this.again(failure);
  }

  again(failure) {
    if (this.stopped) return;
    this.delay = Math.min(MAX_DELAY_MS, this.delay ? this.delay * 2 : this.retry);
    this.onStatus({ state: "waiting", delay: this.delay, error: failure });
    this.timer = setTimeout(() => this.connect(), this.delay);
  }

  async read(reader, signal) {
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { type: "message", data: [] };
    let watchdog = setTimeout(() => this.controller.abort(), SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || signal.aborted) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => this.controller.abort(), SILENCE_MS);
        buffer += decoder.decode(value, { stream: true });
        // Lines end with CRLF, LF or CR; the last piece may be incomplete and waits for more.
        const lines = buffer.split(/\r\n|\n|\r(?!$)/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (event.data.length) this.dispatch(event.type, event.data.join("\n"));
            event = { type: "message", data: [] };
            continue;
          }
          if (line.startsWith(":")) continue; // keep-alive comment
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "data") event.data.push(text);
          else if (field === "event") event.type = text;
          else if (field === "retry" && /^\d+$/.test(text)) this.retry = Number(text);
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  dispatch(type, data) {
    if (type !== "state") return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // a torn frame: the next one comes within a second
    }
    this.delay = 0;
    this.onStatus({ state: "live" });
    this.onFrame(frame);
  }
}
