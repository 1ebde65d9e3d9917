// Building the page: elements, status badges, times.

// h('a', {href: '#/', class: 'x', onclick: f}, 'text', child, [more]) → element.
// Attributes named on* become listeners; null, undefined and false are skipped
// (as attributes and as children).
export function h(tag, attributes = {}, ...children) {
  return build(document.createElement(tag), attributes, children);
}

export function svg(tag, attributes = {}, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attributes, children);
}

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const LABELS = {
  NotStarted: 'Not started',
  AwaitingPreApproval: 'Awaiting approval',
  AwaitingPostApproval: 'Awaiting post-approval',
  PartiallySucceeded: 'Partially succeeded',
  InProgress: 'In progress',
  WaitingForApproval: 'Waiting for approval',
};

// "AwaitingPreApproval" → "Awaiting approval": the status in words, so it
// never rests on colour alone.
export const statusLabel = (status) => LABELS[status] ?? status ?? 'Unknown';

// The CSS class of a status: "status-awaitingpreapproval".
export const statusClass = (status) => `status-${String(status ?? 'unknown').toLowerCase()}`;

export const badge = (status) => h('span', { class: `badge ${statusClass(status)}` }, statusLabel(status));

const pad = (n, width = 2) => String(n).padStart(width, '0');

// Every time on the dashboard is shown in UTC and says so (log lines and the
// CLI are UTC too): "2026-11-28 14:03:07 UTC".
export function utcText(ms) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

// A <time> with utcText(ms); "—" for 0.
export function time(ms) {
  if (!ms) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString() }, utcText(ms));
}

// 1234 → "1.2 s"; 0 or less → "".
export function duration(ms) {
  if (!(ms > 0)) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// Replaces the contents of `element`.
export function show(element, ...children) {
  element.replaceChildren();
  return build(element, {}, children);
}

export const errorBox = (error) => h('p', { class: 'error', role: 'alert' }, error.message ?? String(error));

// The roles are ordered, each including those below it (as the server has them).
const RANKS = { viewer: 0, releaser: 1, approver: 2, admin: 3 };
export const hasRole = (me, role) => (me.roles ?? [me.role]).some((held) => RANKS[held] >= RANKS[role]);
// Why a control is not offered: "Creating a release needs the releaser role (you have viewer)."
export const needsRole = (me, what, role) => `${what} needs the ${role} role (you have ${(me.roles ?? [me.role]).join(', ')}).`;

// The server's message of a failed call, with its HTTP status.
export const failure = (error) => (error?.status ? `${error.message} (HTTP ${error.status})` : String(error?.message ?? error));

// A message line that becomes an alert when it reports a failure.
export function setMessage(element, text, isError = false) {
  element.className = isError ? 'form-message error' : 'form-message';
  element.setAttribute('role', isError ? 'alert' : 'status');
  element.textContent = text;
}
