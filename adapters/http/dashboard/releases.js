// The releases of every pipeline, newest first, each row kept current from
// the live stream: an event of a listed release re-fetches its summary; a new
// release re-fetches the first page. Filters: pipeline and status are the
// list's query parameters (GET /api/v1/releases?pipeline=&status=), the text
// search matches the loaded rows (id, name, artifact version, who created it).
import { api, coalesced, fetchFresh, path } from './api.js';
import { badge, h, hasRole, show, statusClass, statusLabel, time } from './dom.js';

const PAGE = 50;
const STATUSES = ['InProgress', 'WaitingForApproval', 'Succeeded', 'PartiallySucceeded', 'Failed', 'Rejected', 'Canceled', 'Abandoned'];

export async function releasesView(root, { me }) {
  let order = [];  // ids, newest first
  const summaries = new Map();
  let nextCursor = null;

  const body = h('tbody');
  const older = h('button', { type: 'button', class: 'secondary', onclick: () => loadOlder() }, 'Show older releases');
  const { pipelines } = await api('/pipelines');
  const pipelineFilter = h('select', { id: 'filter-pipeline', name: 'pipeline', onchange: () => refilter() },
    h('option', { value: '' }, 'All pipelines'), pipelines.map((p) => h('option', { value: p.name }, p.name)));
  const statusFilter = h('select', { id: 'filter-status', name: 'status', onchange: () => refilter() },
    h('option', { value: '' }, 'Any status'), STATUSES.map((status) => h('option', { value: status }, statusLabel(status))));
  const search = h('input', { id: 'filter-text', name: 'q', type: 'search', spellcheck: 'false', oninput: () => render() });
  const counter = h('p', { class: 'muted', role: 'status' });
  const filters = h('form', { class: 'filters', role: 'search', onsubmit: (event) => event.preventDefault() },
    h('label', { for: pipelineFilter.id }, 'Pipeline'), ' ', pipelineFilter, ' ',
    h('label', { for: statusFilter.id }, 'Status'), ' ', statusFilter, ' ',
    h('label', { for: search.id }, 'Search'), ' ', search);
  show(root, h('div', { class: 'page-head' }, h('h1', {}, 'Releases'),
    hasRole(me, 'releaser') ? h('a', { class: 'button', href: '#/new-release' }, 'Create release') : null),
  filters, counter, h('table', { class: 'releases' },
    h('caption', { class: 'visually-hidden' }, 'Releases of every pipeline, newest first'),
    h('thead', {}, h('tr', {}, ['Release', 'Pipeline', 'Artifact', 'Status', 'Stages', 'Created', 'By']
      .map((text) => h('th', { scope: 'col' }, text)))),
    body), older);

  const row = (release) => h('tr', { 'data-release': release.id },
    h('th', { scope: 'row' }, h('a', { href: `#/releases/${path(release.id)}` }, release.name),
      release.name !== release.id ? h('div', { class: 'muted small' }, release.id) : null),
    h('td', {}, release.pipeline),
    h('td', {}, release.artifact?.version ?? ''),
    h('td', {}, release.status ? badge(release.status) : h('span', { class: 'muted' }, 'pending')),
    h('td', {}, h('ol', { class: 'chips', 'aria-label': 'Stages' }, (release.stages ?? []).map((stage) => h('li', {
      class: `chip ${statusClass(stage.status)}`, title: `${stage.name}: ${statusLabel(stage.status)}`,
    }, stage.name, h('span', { class: 'visually-hidden' }, `: ${statusLabel(stage.status)}`))))),
    h('td', {}, time(release.created_at)),
    h('td', {}, release.requested_by ?? ''));

  // The server filters by pipeline and status; rows that changed since keep
  // to the filter too (a release that stopped waiting leaves "Waiting").
  const matches = (release) => (!pipelineFilter.value || release.pipeline === pipelineFilter.value)
    && (!statusFilter.value || release.status === statusFilter.value)
    && (!search.value.trim() || [release.id, release.name, release.artifact?.version, release.requested_by, release.pipeline]
      .some((text) => (text ?? '').toLowerCase().includes(search.value.trim().toLowerCase())));
  function render() {
    const shown = order.map((id) => summaries.get(id)).filter(matches);
    const filtered = pipelineFilter.value || statusFilter.value || search.value.trim();
    show(body, shown.length === 0
      ? h('tr', {}, h('td', { colspan: 7, class: 'muted' }, filtered ? 'No release matches.' : 'No releases yet.'))
      : shown.map(row));
    counter.textContent = filtered ? `${shown.length} of ${order.length} loaded releases match.` : '';
    older.hidden = nextCursor === null;
  }
  const query = () => `${pipelineFilter.value ? `&pipeline=${encodeURIComponent(pipelineFilter.value)}` : ''}${
    statusFilter.value ? `&status=${encodeURIComponent(statusFilter.value)}` : ''}`;
  let generation = 0;  // a filter change makes answers to the previous query stale
  function refilter() {
    generation += 1;
    order = [];
    nextCursor = null;
    awaited.clear();
    refreshFirstPage();
  }

  function take(releases) {
    for (const release of releases) summaries.set(release.id, release);
    return releases.map((release) => release.id);
  }

  // The first page, merged before the older pages already shown.
  const awaited = new Set();
  const refreshFirstPage = coalesced(async () => {
    const asked = generation;
    const page = await fetchFresh(`/releases?limit=${PAGE}${query()}`,
      (answer) => [...awaited].every((id) => answer.releases.some((release) => release.id === id)));
    if (asked !== generation) return;  // the filter changed: the run that follows answers
    awaited.clear();
    const first = take(page.releases);
    const seen = new Set(first);
    if (order.length === 0) nextCursor = page.next_cursor;
    order = [...first, ...order.filter((id) => !seen.has(id))];
    render();
  });

  async function loadOlder() {
    const asked = generation;
    const page = await api(`/releases?limit=${PAGE}&cursor=${encodeURIComponent(nextCursor)}${query()}`);
    if (asked !== generation) return;
    const seen = new Set(order);
    order = [...order, ...take(page.releases).filter((id) => !seen.has(id))];
    nextCursor = page.next_cursor;
    render();
  }

  const wanted = new Map();  // id → newest version announced
  const refreshers = new Map();
  function refreshRelease(id) {
    if (!refreshers.has(id)) {
      refreshers.set(id, coalesced(async () => {
        const summary = await fetchFresh(`/releases/${path(id)}`, (answer) => answer.version >= wanted.get(id));
        summaries.set(id, summary);
        render();
      }));
    }
    return refreshers.get(id)();
  }

  await refreshFirstPage();

  return {
    onEvent(event) {
      if (!event.stream.startsWith('release-')) return;
      const id = event.stream.slice('release-'.length);
      if (!summaries.has(id)) {
        if (event.type === 'ReleaseCreated') {
          // Wait for it only when the list would show it (a new release has no status yet).
          if (!statusFilter.value && (!pipelineFilter.value || event.data?.pipeline === pipelineFilter.value)) awaited.add(id);
          refreshFirstPage();
        }
        return;
      }
      wanted.set(id, Math.max(wanted.get(id) ?? 0, event.version));
      refreshRelease(id);
    },
    onOpen(resumed) {
      if (!resumed) refreshFirstPage();
    },
  };
}
