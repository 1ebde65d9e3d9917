// The one live connection: GET /api/v1/stream read with fetch() — EventSource
// cannot send the Authorization header — parsing text/event-stream here, and
// reconnecting with Last-Event-ID (the last global log position received),
// so no event is missed across a reconnect.
import { authorization, reportUnauthorized } from './api.js';

export class LiveEvents {
  #listeners = new Set();
  #onStatus;
  #lastEventId = null;
  #controller = null;
  #stopped = false;
  #retryMs = 500;

  // onStatus('connecting' | 'live' | 'reconnecting', resumed): resumed is true
  // when the stream picked up after a break with nothing missed.
  constructor(onStatus) {
    this.#onStatus = onStatus;
  }

  // listener(event) gets each event as GET /releases/{id}/events shows it.
  // Returns the function that removes it.
  listen(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  start() {
    this.#onStatus('connecting', false);
    this.#run();
  }

  stop() {
    this.#stopped = true;
    this.#controller?.abort();
  }

  async #run() {
    let delay = this.#retryMs;
    while (!this.#stopped) {
      this.#controller = new AbortController();
      try {
        const headers = { ...authorization(), Accept: 'text/event-stream' };
        const resumed = this.#lastEventId !== null;
        if (resumed) headers['Last-Event-ID'] = this.#lastEventId;
        const response = await fetch('/api/v1/stream', { headers, cache: 'no-store', signal: this.#controller.signal });
        if (response.status === 401) {
          reportUnauthorized('the token is no longer accepted');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        delay = this.#retryMs;
        this.#onStatus('live', resumed);
        await this.#read(response.body);
      } catch {
        // A network error or the server going away: reconnect below.
      }
      if (this.#stopped) return;
      this.#onStatus('reconnecting', false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  #read(body) {
    return readEventStream(body, (type, data, id) => {
      if (id !== undefined) this.#lastEventId = id;
      if (data !== undefined) this.#dispatch(type, data);
    }, (retryMs) => { this.#retryMs = retryMs; });
  }

  #dispatch(type, data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;  // not an event of ours
    }
    event.type ??= type;
    for (const listener of this.#listeners) listener(event);
  }
}

// Reads a text/event-stream body until it ends, calling onFrame(type, data, id)
// for each dispatched event (data and id undefined when absent) and
// onRetry(ms) for a retry field.
// https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
export async function readEventStream(body, onFrame, onRetry = () => {}) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let type = '';
  let id;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Lines end at CRLF, LF or CR; a CR at the end may be half of a CRLF.
    const ending = /\r\n|\n|\r(?!$)/g;
    let start = 0;
    for (let match; (match = ending.exec(buffer)); start = ending.lastIndex) {
      const line = buffer.slice(start, match.index);
      if (line === '') {
        if (data.length > 0 || id !== undefined) onFrame(type || 'message', data.length > 0 ? data.join('\n') : undefined, id);
        data = [];
        type = '';
        id = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;  // a comment: the server's keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
      if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
      if (field === 'data') data.push(fieldValue);
      else if (field === 'event') type = fieldValue;
      else if (field === 'id' && !fieldValue.includes('\0')) id = fieldValue;
      else if (field === 'retry' && /^\d+$/.test(fieldValue)) onRetry(Number(fieldValue));
    }
    buffer = buffer.slice(start);
  }
}

// Follows one stage attempt's step logs (GET …/logs?follow=true): onLine(line)
// for every line so far and each new one, until the deployment ends (or
// `signal` aborts). Resolves when the stream ends.
export async function followLogs(path, onLine, signal) {
  const response = await fetch(`/api/v1${path}?follow=true`, {
    headers: { ...authorization(), Accept: 'text/event-stream' }, cache: 'no-store', signal,
  });
  if (response.status === 401) {
    reportUnauthorized('the token is no longer accepted');
    return;
  }
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  await readEventStream(response.body, (type, data) => {
    if (type === 'line' && data !== undefined) onLine(JSON.parse(data));
  });
}
