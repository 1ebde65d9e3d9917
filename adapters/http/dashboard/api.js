// Calls to /api/v1: the bearer token of the session on every request, JSON in
// and out, and the server's {"error": {code, message, details}} as ApiError.

const TOKEN_KEY = 'cascade.token';

export const session = {
  // The token lives in sessionStorage: gone when the tab closes, never in a URL.
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let unauthorizedHandler = () => {};
// `handler(message)` runs when the server answers 401: the token is no longer valid.
export function whenUnauthorized(handler) { unauthorizedHandler = handler; }
export function reportUnauthorized(message) { unauthorizedHandler(message); }

export function authorization() { return { Authorization: `Bearer ${session.token}` }; }

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { ...authorization(), Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/api/v1${path}`, {
    method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) return response.status === 204 ? null : response.json();
  let error = { code: `http_${response.status}`, message: response.statusText || `HTTP ${response.status}`, details: [] };
  try {
    error = (await response.json()).error ?? error;
  } catch { /* not JSON: keep the status line */ }
  if (response.status === 401) reportUnauthorized(error.message);
  throw new ApiError(response.status, error.code, error.message, error.details);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Read models trail the log by a moment: an event can arrive before the
// summary that reflects it. Fetches `path` again, backing off, until
// `isFresh(answer)` holds or five seconds passed, and returns the last answer.
export async function fetchFresh(path, isFresh) {
  const deadline = Date.now() + 5000;
  for (let wait = 25; ; wait = Math.min(wait * 2, 500)) {
    const answer = await api(path);
    if (isFresh(answer) || Date.now() > deadline) return answer;
    await pause(wait);
  }
}

// Wraps an async `task` so that it never runs twice at once: a call while it
// runs makes it run once more afterwards (a burst of events, one re-fetch).
export function coalesced(task) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await task();
      } while (again);
    })().finally(() => { running = null; });
    return running;
  };
}

export const path = (...segments) => segments.map(encodeURIComponent).join('/');
