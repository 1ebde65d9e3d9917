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

// A <time> in the viewer's local time, "2026-11-28 14:03:07"; "—" for 0.
export function time(ms) {
  if (!ms) return h('span', { class: 'muted' }, '—');
  const d = new Date(ms);
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h('time', { datetime: d.toISOString() }, text);
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
