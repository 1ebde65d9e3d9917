// What is deployed in each stage of each pipeline, and one stage's history.
// Both re-fetch when a deployment finishes (the only events that change them).
import { api, coalesced, fetchFresh, path } from './api.js';
import { badge, h, show, time } from './dom.js';

const FINISHING = new Set(['DeploymentSucceeded', 'DeploymentFailed', 'DeploymentCanceled']);

// The read model trails the log: fresh once the stage's last deployment is
// the one the event finished.
const reflects = (environment, id, event) => environment?.stage === event.data?.stage
  && environment?.last?.release === id && environment?.last?.attempt === event.data?.attempt;

function finishedDeployment(event) {
  if (!FINISHING.has(event.type) || !event.stream.startsWith('release-')) return null;
  return event.stream.slice('release-'.length);
}

export async function environmentsView(root) {
  const content = h('div');
  show(root, h('h1', {}, 'Environments'), content);
  let fresh = () => true;

  const refresh = coalesced(async () => {
    const { environments } = await fetchFresh('/environments', (answer) => fresh(answer.environments));
    const pipelines = [...new Set(environments.map((environment) => environment.pipeline))];
    show(content, pipelines.length === 0 ? h('p', { class: 'muted' }, 'Nothing has been deployed yet.')
      : pipelines.map((pipeline) => h('section', {},
        h('h2', {}, pipeline),
        h('table', { class: 'environments' },
          h('thead', {}, h('tr', {}, ['Stage', 'Deployed release', 'Artifact', 'Deployed at', 'Trigger', 'Last deployment']
            .map((text) => h('th', { scope: 'col' }, text)))),
          h('tbody', {}, environments.filter((environment) => environment.pipeline === pipeline).map((environment) => {
            const { current, last } = environment;
            return h('tr', { 'data-stage': environment.stage },
              h('th', { scope: 'row' }, h('a', { href: `#/environments/${path(pipeline)}/${path(environment.stage)}` }, environment.stage)),
              h('td', {}, current ? h('a', { href: `#/releases/${path(current.release)}` }, current.release_name) : h('span', { class: 'muted' }, 'nothing succeeded yet')),
              h('td', {}, current?.artifact_version ?? ''),
              h('td', {}, time(current?.deployed_at)),
              h('td', {}, current?.trigger_reason ?? ''),
              h('td', {}, last ? [badge(last.outcome), ' ', last.release_name, ' ', time(last.finished_at)] : ''));
          }))))));
  });

  await refresh();
  return {
    onEvent(event) {
      const id = finishedDeployment(event);
      if (id === null) return;
      fresh = (environments) => environments.some((environment) => reflects(environment, id, event));
      refresh();
    },
    onOpen(resumed) {
      if (!resumed) refresh();
    },
  };
}

export async function historyView(root, { params }) {
  const { pipeline, stage } = params;
  const body = h('tbody');
  const older = h('button', { type: 'button', class: 'secondary', onclick: () => loadOlder() }, 'Show older deployments');
  const summary = h('p', { class: 'meta' });
  show(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/environments' }, 'Environments'), ` › ${pipeline} › ${stage}`),
    h('h1', {}, `${pipeline} · ${stage}`), summary,
    h('table', { class: 'history' },
      h('caption', { class: 'visually-hidden' }, `Deployments to ${stage}, newest first`),
      h('thead', {}, h('tr', {}, ['Release', 'Artifact', 'Attempt', 'Outcome', 'Started', 'Finished', 'Trigger', 'Reason']
        .map((text) => h('th', { scope: 'col' }, text)))),
      body), older);

  let deployments = [];
  let nextCursor = null;
  const base = `/environments/${path(pipeline)}/${path(stage)}`;
  const row = (deployment) => h('tr', {},
    h('th', { scope: 'row' }, h('a', { href: `#/releases/${path(deployment.release)}` }, deployment.release_name)),
    h('td', {}, deployment.artifact_version), h('td', {}, deployment.attempt), h('td', {}, badge(deployment.outcome)),
    h('td', {}, time(deployment.started_at)), h('td', {}, time(deployment.finished_at)),
    h('td', {}, deployment.trigger_reason), h('td', {}, deployment.reason));
  function render(environment) {
    const current = environment.current;
    show(summary, current ? ['Now: ', h('a', { href: `#/releases/${path(current.release)}` }, current.release_name),
      ` (artifact ${current.artifact_version}), deployed `, time(current.deployed_at)] : 'Nothing has succeeded here yet.');
    show(body, deployments.map(row));
    older.hidden = nextCursor === null;
  }

  let fresh = () => true;
  const refresh = coalesced(async () => {
    const answer = await fetchFresh(base, (page) => fresh(page.environment));
    const seen = new Set(answer.history.map((deployment) => `${deployment.release}/${deployment.attempt}`));
    deployments = [...answer.history, ...deployments.filter((deployment) => !seen.has(`${deployment.release}/${deployment.attempt}`))];
    if (nextCursor === null || deployments.length === answer.history.length) nextCursor = answer.next_cursor;
    render(answer.environment);
  });
  async function loadOlder() {
    const answer = await api(`${base}?cursor=${encodeURIComponent(nextCursor)}`);
    deployments = [...deployments, ...answer.history];
    nextCursor = answer.next_cursor;
    render(answer.environment);
  }

  await refresh();
  return {
    onEvent(event) {
      const id = finishedDeployment(event);
      if (id === null || event.data?.stage !== stage) return;
      fresh = (environment) => reflects(environment, id, event);
      refresh();
    },
    onOpen(resumed) {
      if (!resumed) refresh();
    },
  };
}
