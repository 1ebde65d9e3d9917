// Pipelines: every pipeline's latest version (GET /api/v1/pipelines), and per
// pipeline its versions — when, by whom, the releases created from each —,
// the difference between two versions (GET …/diff?from=&to=) and a
// version's definition. Definitions change only when one is applied, so the
// pages re-fetch on PipelineDefined and on a new release.
import { api, coalesced, path } from './api.js';
import { h, show, time } from './dom.js';

export async function pipelinesView(root) {
  const body = h('tbody');
  show(root, h('h1', {}, 'Pipelines'), h('table', { class: 'pipelines' },
    h('caption', { class: 'visually-hidden' }, 'Pipelines, latest version'),
    h('thead', {}, h('tr', {}, ['Pipeline', 'Latest version', 'Defined', 'By', ''].map((text) => h('th', { scope: 'col' }, text)))),
    body));
  const refresh = coalesced(async () => {
    const { pipelines } = await api('/pipelines');
    show(body, pipelines.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No pipeline yet.'))
      : pipelines.map((p) => h('tr', { 'data-pipeline': p.name },
        h('th', { scope: 'row' }, h('a', { href: `#/pipelines/${path(p.name)}` }, p.name)),
        h('td', {}, `v${p.version}`), h('td', {}, time(p.defined_at)), h('td', {}, p.actor),
        h('td', {}, h('a', { href: `#/delivery/${path(p.name)}` }, 'Delivery'), ' · ',
          h('a', { href: `#/new-release/${path(p.name)}` }, 'Create release')))));
  });
  await refresh();
  return {
    onEvent(event) { if (event.type === 'PipelineDefined') refresh(); },
    onOpen(resumed) { if (!resumed) refresh(); },
  };
}

export async function pipelineView(root, { params }) {
  const name = params.pipeline;
  const versionsBody = h('tbody');
  const from = h('select', { id: 'diff-from', name: 'from' });
  const to = h('select', { id: 'diff-to', name: 'to' });
  const diffResult = h('div', { class: 'diff-result', 'aria-live': 'polite' });
  const definitionView = h('div', { class: 'definition' });
  let versions = [];

  async function showDiff(event) {
    event?.preventDefault();
    if (!from.value || !to.value) return;
    try {
      const diff = await api(`/pipelines/${path(name)}/diff?from=${from.value}&to=${to.value}`);
      const value = (v) => (v === undefined ? '' : h('code', {}, JSON.stringify(v)));
      show(diffResult, h('h3', {}, `v${diff.from} → v${diff.to}: ${diff.changes.length} change${diff.changes.length === 1 ? '' : 's'}`),
        diff.changes.length === 0 ? h('p', { class: 'muted' }, 'The definitions are the same.')
          : h('table', { class: 'diff' },
            h('thead', {}, h('tr', {}, ['Change', 'Where', 'Was', 'Is'].map((text) => h('th', { scope: 'col' }, text)))),
            h('tbody', {}, diff.changes.map((change) => h('tr', { class: `op-${change.op}` },
              h('td', {}, change.op), h('td', {}, h('code', {}, change.path)), h('td', {}, value(change.from)), h('td', {}, value(change.to)))))));
    } catch (error) {
      show(diffResult, h('p', { class: 'error', role: 'alert' }, error.message));
    }
  }

  function showDefinition(version) {
    const chosen = versions.find((v) => v.version === version);
    if (!chosen) return;
    show(definitionView, h('h3', {}, `Definition v${chosen.version}`),
      h('ul', { class: 'plain stages-summary' }, (chosen.definition.stages ?? []).map((stage) => h('li', {},
        h('strong', {}, stage.name), ' — ', Object.keys(stage.trigger ?? {}).join(', '),
        stage.trigger?.after_stages ? ` ${stage.trigger.after_stages.join(', ')}` : '',
        stage.pre_approval ? ` · approval before by ${stage.pre_approval.approvers.join(', ')}` : '',
        stage.post_approval ? ` · approval after by ${stage.post_approval.approvers.join(', ')}` : '',
        ` · ${(stage.steps ?? []).length} step${(stage.steps ?? []).length === 1 ? '' : 's'}`))),
      h('details', {}, h('summary', {}, 'The definition as JSON'), h('pre', { class: 'json' }, JSON.stringify(chosen.definition, null, 2))));
  }

  const refresh = coalesced(async () => {
    versions = (await api(`/pipelines/${path(name)}/versions`)).versions;
    show(versionsBody, [...versions].reverse().map((v) => h('tr', { 'data-version': v.version },
      h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => showDefinition(v.version) }, `v${v.version}`)),
      h('td', {}, time(v.defined_at)), h('td', {}, v.actor),
      h('td', { class: 'releases' }, v.releases.length === 0 ? h('span', { class: 'muted' }, 'none')
        : v.releases.map((id, i) => [i ? ', ' : '', h('a', { href: `#/releases/${path(id)}` }, id)])))));
    const keepFrom = from.value;
    const keepTo = to.value;
    const options = (selected) => versions.map((v) => h('option', { value: v.version, selected: v.version === selected }, `v${v.version}`));
    const last = versions[versions.length - 1]?.version;
    show(from, options(Number(keepFrom) || (versions.length > 1 ? versions[versions.length - 2].version : last)));
    show(to, options(Number(keepTo) || last));
    if (!definitionView.hasChildNodes()) showDefinition(last);
  });

  show(root, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' › ', name),
    h('h1', {}, name, ' ', h('a', { class: 'small', href: `#/delivery/${path(name)}` }, 'Delivery'),
      ' ', h('a', { class: 'small', href: `#/new-release/${path(name)}` }, 'Create release')),
    h('h2', {}, 'Versions'),
    h('table', { class: 'versions' },
      h('caption', { class: 'visually-hidden' }, 'Versions, newest first, with their releases'),
      h('thead', {}, h('tr', {}, ['Version', 'Defined', 'By', 'Releases'].map((text) => h('th', { scope: 'col' }, text)))),
      versionsBody),
    h('h2', {}, 'Compare two versions'),
    h('form', { class: 'diff-form', onsubmit: showDiff },
      h('label', { for: from.id }, 'From'), ' ', from, ' ', h('label', { for: to.id }, 'to'), ' ', to, ' ',
      h('button', { type: 'submit' }, 'Show the difference')),
    diffResult, definitionView);
  await refresh();
  return {
    onEvent(event) {
      if (event.type === 'PipelineDefined' || event.type === 'ReleaseCreated') refresh();
    },
    onOpen(resumed) { if (!resumed) refresh(); },
  };
}
