// The dashboard's entry point: sign-in, the hash routes, and the one live
// event stream, whose events go to the page on screen.
//
// Routes: #/releases, #/releases/ID/{summary|logs|events}[/STAGE],
// #/new-release[/PIPELINE], #/approvals, #/pipelines, #/pipelines/NAME,
// #/delivery[/PIPELINE[/day|week]], #/environments, #/environments/PIPELINE/STAGE.
import { api, session, whenUnauthorized } from './api.js';
import { approvalsView } from './approvals.js';
import { createView } from './create.js';
import { deliveryView } from './delivery.js';
import { errorBox, h, show } from './dom.js';
import { environmentsView, historyView } from './environments.js';
import { LiveEvents } from './live.js';
import { pipelinesView, pipelineView } from './pipelines.js';
import { releaseView } from './release.js';
import { releasesView } from './releases.js';

const main = document.getElementById('main');
const signIn = document.getElementById('sign-in');
const signInForm = document.getElementById('sign-in-form');
const signInError = document.getElementById('sign-in-error');
const appHeader = document.getElementById('app-header');
const whoami = document.getElementById('whoami');
const liveStatus = document.getElementById('live-status');

let me = null;
let live = null;
let page = null;  // {key, onEvent, onOpen, navigate?} of the page on screen
let rendering = 0;
// Events that arrive while a page loads (its first fetch may predate them);
// null while no page is loading.
let arrivedWhileLoading = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'releases' && parts[1]) {
    const tab = ['summary', 'logs', 'events'].includes(parts[2]) ? parts[2] : 'summary';
    return { key: `release:${parts[1]}`, view: releaseView, nav: 'releases', params: { id: parts[1], tab, stage: parts[3] } };
  }
  if (parts[0] === 'environments' && parts[1] && parts[2]) {
    return { key: `history:${parts[1]}/${parts[2]}`, view: historyView, nav: 'environments', params: { pipeline: parts[1], stage: parts[2] } };
  }
  if (parts[0] === 'new-release') return { key: `create:${parts[1] ?? ''}`, view: createView, nav: 'releases', params: { pipeline: parts[1] } };
  if (parts[0] === 'approvals') return { key: 'approvals', view: approvalsView, nav: 'approvals', params: {} };
  if (parts[0] === 'pipelines' && parts[1]) return { key: `pipeline:${parts[1]}`, view: pipelineView, nav: 'pipelines', params: { pipeline: parts[1] } };
  if (parts[0] === 'pipelines') return { key: 'pipelines', view: pipelinesView, nav: 'pipelines', params: {} };
  if (parts[0] === 'delivery') return { key: `delivery:${parts[1] ?? ''}/${parts[2] ?? ''}`, view: deliveryView, nav: 'delivery', params: { pipeline: parts[1], bucket: parts[2] } };
  if (parts[0] === 'environments') return { key: 'environments', view: environmentsView, nav: 'environments', params: {} };
  return { key: 'releases', view: releasesView, nav: 'releases', params: {} };
}

async function render() {
  if (me === null) return;
  const next = route();
  for (const link of document.querySelectorAll('#app-nav a')) {
    if (link.dataset.nav === next.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (page?.key === next.key && page.navigate) {
    page.navigate(next.params);
    return;
  }
  const turn = ++rendering;  // a later navigation wins over a slow earlier one
  page = null;
  arrivedWhileLoading = [];
  const root = h('div');
  show(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const view = await next.view(root, { params: next.params, me });
    if (turn !== rendering) return;
    page = { key: next.key, ...view };
    arrivedWhileLoading.forEach((event) => page.onEvent?.(event));
    arrivedWhileLoading = null;
    show(main, root);
    main.focus({ preventScroll: true });
  } catch (error) {
    if (turn !== rendering) return;
    arrivedWhileLoading = null;
    if (me !== null) show(main, errorBox(error));
  }
}

function showSignIn(message) {
  live?.stop();
  live = null;
  me = null;
  page = null;
  appHeader.hidden = true;
  main.hidden = true;
  main.replaceChildren();
  signIn.hidden = false;
  signInError.textContent = message ?? '';
  signInError.hidden = !message;
  signInForm.elements.token.value = '';
  signInForm.elements.token.focus();
}

async function start() {
  try {
    me = await api('/me');
  } catch (error) {
    // A 401 has already brought back the sign-in form with its message.
    if (error.status !== 401) showSignIn(`Cannot reach the server: ${error.message}`);
    return;
  }
  signIn.hidden = true;
  appHeader.hidden = false;
  main.hidden = false;
  whoami.textContent = `${me.name} (${me.role})`;
  live = new LiveEvents((status, resumed) => {
    liveStatus.textContent = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' }[status];
    liveStatus.className = `live is-${status}`;
    if (status === 'live') page?.onOpen?.(resumed);
  });
  live.listen((event) => (page ? page.onEvent?.(event) : arrivedWhileLoading?.push(event)));
  live.start();
  await render();
}

whenUnauthorized((message) => {
  session.clear();
  showSignIn(`The server did not accept the token (${message}). Sign in again.`);
});

signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = signInForm.elements.token.value.trim();
  if (!token) {
    showSignIn('Enter a token.');
    return;
  }
  session.set(token);
  start();
});

document.getElementById('sign-out').addEventListener('click', () => {
  session.clear();
  showSignIn('Signed out.');
});

window.addEventListener('hashchange', render);

if (session.token) start();
else showSignIn();
