// The releases of every pipeline, newest first, each row kept current from
// the live stream: an event of a listed release re-fetches its summary; a new
// release re-fetches the first page.
import { api, coalesced, fetchFresh, path } from './api.js';
import { badge, h, show, statusClass, statusLabel, time } from './dom.js';

const PAGE = 50;

export async function releasesView(root) {
  let order = [];  // ids, newest first
  const summaries = new Map();
  let nextCursor = null;

  const body = h('tbody');
  const older = h('button', { type: 'button', class: 'secondary', onclick: () => loadOlder() }, 'Show older releases');
  show(root, h('h1', {}, 'Releases'), h('table', { class: 'releases' },
    h('caption', { class: 'visually-hidden' }, 'Releases of every pipeline, newest first'),
    h('thead', {}, h('tr', {}, ['Release', 'Pipeline', 'Artifact', 'Status', 'Stages', 'Created', 'By']
      .map((text) => h('th', { scope: 'col' }, text)))),
    body), older);

  const row = (release) => h('tr', { 'data-release': release.id },
    h('th', { scope: 'row' }, h('a', { href: `#/releases/${path(release.id)}` }, release.name)),
    h('td', {}, release.pipeline),
    h('td', {}, release.artifact?.version ?? ''),
    h('td', {}, release.status ? badge(release.status) : h('span', { class: 'muted' }, 'pending')),
    h('td', {}, h('ol', { class: 'chips', 'aria-label': 'Stages' }, (release.stages ?? []).map((stage) => h('li', {
      class: `chip ${statusClass(stage.status)}`, title: `${stage.name}: ${statusLabel(stage.status)}`,
    }, stage.name, h('span', { class: 'visually-hidden' }, `: ${statusLabel(stage.status)}`))))),
    h('td', {}, time(release.created_at)),
    h('td', {}, release.requested_by ?? ''));

  function render() {
    show(body, order.length === 0
      ? h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No releases yet.'))
      : order.map((id) => row(summaries.get(id))));
    older.hidden = nextCursor === null;
  }

  function take(releases) {
    for (const release of releases) summaries.set(release.id, release);
    return releases.map((release) => release.id);
  }

  // The first page, merged before the older pages already shown.
  const awaited = new Set();
  const refreshFirstPage = coalesced(async () => {
    const page = await fetchFresh(`/releases?limit=${PAGE}`,
      (answer) => [...awaited].every((id) => answer.releases.some((release) => release.id === id)));
    awaited.clear();
    const first = take(page.releases);
    const seen = new Set(first);
    if (order.length === 0) nextCursor = page.next_cursor;
    order = [...first, ...order.filter((id) => !seen.has(id))];
    render();
  });

  async function loadOlder() {
    const page = await api(`/releases?limit=${PAGE}&cursor=${encodeURIComponent(nextCursor)}`);
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
          awaited.add(id);
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
