// One release: its pipeline as a graph, a banner for each pending approval
// (Approve / Reject with a comment), and three tabs — Summary, Logs (per
// stage and step, following live) and Events (the audit timeline with the
// result of verifying it). Every event of the release on the live stream
// re-fetches what it changes.
import { api, ApiError, coalesced, fetchFresh, path } from './api.js';
import { badge, duration, h, show, statusLabel, time, utcText } from './dom.js';
import { pipelineGraph } from './graph.js';
import { followLogs } from './live.js';
import { releaseActions } from './release_actions.js';

const TABS = [['summary', 'Summary'], ['logs', 'Logs'], ['events', 'Events']];
const AWAITING = new Set(['AwaitingPreApproval', 'AwaitingPostApproval']);

// Definitions never change once stored: "pipeline@version" → definition.
const definitions = new Map();

async function definitionOf(summary) {
  const key = `${summary.pipeline}@${summary.pipeline_version}`;
  if (!definitions.has(key)) {
    const { versions } = await api(`/pipelines/${path(summary.pipeline)}/versions`);
    for (const version of versions) definitions.set(`${summary.pipeline}@${version.version}`, version.definition);
  }
  return definitions.get(key);
}

const canApprove = (me) => (me.roles ?? [me.role]).some((role) => role === 'approver' || role === 'admin');

export async function releaseView(root, { params, me }) {
  const id = params.id;
  const href = (tab, stage) => `#/releases/${path(id)}/${tab}${stage ? `/${path(stage)}` : ''}`;
  let tab = params.tab;
  let selected = params.stage;
  let summary = await api(`/releases/${path(id)}`);
  const definition = await definitionOf(summary);
  let wanted = summary.version;  // the newest release version an event announced

  const title = h('h1');
  const meta = h('p', { class: 'meta' });
  const banners = h('div', { class: 'banners' });
  const graph = h('div', { class: 'graph' });
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Release details' });
  const panel = h('section', { class: 'panel', 'aria-live': 'off' });
  const actions = releaseActions(id, me, (version) => {
    wanted = Math.max(wanted, version);
    refreshSummary();
  });
  show(root,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/releases' }, 'Releases'), ' › ', id),
    h('header', { class: 'release-head' }, title, meta),
    banners,
    h('section', { class: 'graph-section', 'aria-label': 'Pipeline graph' }, graph),
    actions.element,
    tabs, panel);

  // ---- the parts drawn from the summary

  const bannerByKey = new Map();

  function renderSummaryParts() {
    show(title, summary.name, ' ', badge(summary.status));
    show(meta, `${summary.pipeline} v${summary.pipeline_version} · artifact ${summary.artifact.version} · created `,
      time(summary.created_at), ` by ${summary.requested_by}`,
      summary.abandoned ? ` · abandoned${summary.abandoned_by ? ` by ${summary.abandoned_by}` : ''}: ${summary.abandon_reason}` : '');
    actions.update(summary);
    show(graph, pipelineGraph(definition, summary, (stage) => href('logs', stage), tab === 'logs' ? logsStage() : null));
    renderBanners();
    show(tabs, TABS.map(([name, label]) => h('a', {
      href: href(name, name === 'logs' ? selected : null),
      'aria-current': name === tab ? 'page' : null,
    }, label)));
  }

  function renderBanners() {
    const pending = summary.stages.filter((stage) => AWAITING.has(stage.status));
    const keys = new Set();
    for (const stage of pending) {
      const key = `${stage.name}/${stage.attempt}/${stage.pending_approval.phase}`;
      keys.add(key);
      if (!bannerByKey.has(key)) bannerByKey.set(key, approvalBanner(stage));
      bannerByKey.get(key).update(stage);
    }
    for (const key of [...bannerByKey.keys()]) if (!keys.has(key)) bannerByKey.delete(key);
    show(banners, [...bannerByKey.values()].map((banner) => banner.element));
  }

  // A banner keeps its element (and the comment being typed) while the
  // release changes around it.
  function approvalBanner(stage) {
    const phase = stage.pending_approval.phase === 'post' ? 'after deployment' : 'before deployment';
    const headingId = `approval-${stage.name}`;
    const progress = h('p');
    const message = h('p', { class: 'form-message', role: 'status' });
    const comment = h('textarea', { id: `${headingId}-comment`, name: 'comment', rows: 2 });
    const buttons = [
      h('button', { type: 'submit', value: 'approve', class: 'approve' }, 'Approve'),
      h('button', { type: 'submit', value: 'reject', class: 'reject' }, 'Reject'),
    ];
    // Administrators may decide in place of the approvers (recorded as an override).
    const isAdmin = (me.roles ?? [me.role]).includes('admin');
    const override = isAdmin ? h('input', { type: 'checkbox', id: `${headingId}-override`, name: 'override' }) : null;
    const form = h('form', { class: 'approval-form', onsubmit: decide },
      h('label', { for: comment.id }, 'Comment'), comment,
      override ? h('p', { class: 'override' }, override, ' ',
        h('label', { for: override.id }, 'Override the approval policy (admin)')) : null,
      h('div', { class: 'actions' }, buttons), message);

    async function decide(event) {
      event.preventDefault();
      const decision = event.submitter?.value ?? 'approve';
      buttons.forEach((button) => { button.disabled = true; });
      message.className = 'form-message';
      show(message, decision === 'approve' ? 'Approving…' : 'Rejecting…');
      try {
        const answer = await api(`/releases/${path(id)}/stages/${path(stage.name)}/approvals`, {
          method: 'POST', body: { decision, comment: comment.value, ...(override?.checked ? { override: true } : {}) },
        });
        show(message, decision === 'approve' ? 'Approved.' : 'Rejected.');
        wanted = Math.max(wanted, answer.version);
        refreshSummary();
      } catch (error) {
        message.className = 'form-message error';
        message.setAttribute('role', 'alert');
        show(message, error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : String(error));
      } finally {
        buttons.forEach((button) => { button.disabled = false; });
      }
    }

    const element = h('section', { class: 'banner', 'aria-labelledby': headingId, 'data-stage': stage.name },
      h('h2', { id: headingId }, `${stage.name} is awaiting approval ${phase}`), progress,
      canApprove(me) ? form
        : h('p', {}, `You are signed in as ${me.name} (${me.role}); approving needs the approver role.`));
    return {
      element,
      update(current) {
        const approval = current.pending_approval;
        show(progress, `Approvers: ${approval.approvers.join(', ')} · ${approval.approved_by.length} of ${approval.required} approved`,
          approval.order === 'sequential' ? ' · in order' : '', ' · deadline ', time(approval.deadline));
      },
    };
  }

  // ---- tabs

  const logsStage = () => selected ?? defaultStage();
  // The stage most worth watching: one deploying, else one waiting, else the
  // last one that started.
  function defaultStage() {
    const stages = summary.stages;
    return (stages.find((stage) => stage.status === 'Deploying')
      ?? stages.find((stage) => AWAITING.has(stage.status))
      ?? [...stages].filter((stage) => stage.started_at).sort((a, b) => b.started_at - a.started_at)[0]
      ?? stages[0])?.name;
  }

  let logs = { stage: null, lines: [] };  // the lines of one stage's latest attempt
  let events = [];
  let verification = null;

  function renderTab() {
    panel.setAttribute('aria-label', TABS.find(([name]) => name === tab)[1]);
    if (tab === 'logs') renderLogs();
    else if (tab === 'events') renderEvents();
    else renderStages();
  }

  function renderStages() {
    const approvals = (stage) => (stage.approvals.length === 0 ? h('span', { class: 'muted' }, '—')
      : h('ul', { class: 'plain' }, stage.approvals.map((approval) => h('li', {},
        approval.approver ? `${approval.decision} by ${approval.approver}` : approval.decision,
        approval.override ? ' (admin override)' : '',
        approval.on_behalf_of && approval.on_behalf_of !== approval.approver ? ` for ${approval.on_behalf_of}` : '',
        ' at ', time(approval.at), approval.comment ? `: “${approval.comment}”` : ''))));
    const steps = (stage) => h('ul', { class: 'plain' }, stage.steps.map((step) => h('li', {},
      `${step.name}: ${statusLabel(step.status)}`, step.tries > 1 ? ` (${step.tries} tries)` : '',
      step.duration_ms ? ` · ${duration(step.duration_ms)}` : '')));
    const row = (stage) => h('tr', { 'data-stage': stage.name },
      h('th', { scope: 'row' }, h('a', { href: href('logs', stage.name) }, stage.name)),
      h('td', {}, badge(stage.status), stage.failure_reason ? h('div', { class: 'reason' }, stage.failure_reason) : null,
        stage.canceled_by && !(stage.failure_reason ?? '').includes(` by ${stage.canceled_by}`)
          ? h('div', { class: 'muted canceled-by' }, `canceled by ${stage.canceled_by}`) : null),
      h('td', {}, stage.attempt || '—'),
      h('td', {}, time(stage.triggered_at), stage.trigger_reason ? h('div', { class: 'muted' }, stage.trigger_reason) : null),
      h('td', {}, time(stage.started_at)),
      h('td', {}, time(stage.finished_at)),
      h('td', {}, stage.started_at && stage.finished_at ? duration(stage.finished_at - stage.started_at) : ''),
      h('td', {}, approvals(stage)),
      h('td', {}, steps(stage)));
    const head = ['Stage', 'Status', 'Attempt', 'Triggered', 'Started', 'Finished', 'Took', 'Approvals', 'Steps'];
    show(panel, h('table', { class: 'stages' },
      h('caption', { class: 'visually-hidden' }, 'Stages of the release'),
      h('thead', {}, h('tr', {}, head.map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, summary.stages.map(row))));
  }

  function renderLogs() {
    const stageName = logsStage();
    const stage = summary.stages.find((candidate) => candidate.name === stageName);
    const picker = h('nav', { class: 'stage-picker', 'aria-label': 'Stage' }, summary.stages.map((candidate) => h('a', {
      href: href('logs', candidate.name), 'aria-current': candidate.name === stageName ? 'page' : null,
    }, candidate.name)));
    if (!stage) {
      show(panel, picker, h('p', { class: 'muted' }, `This release has no stage '${stageName}'.`));
      return;
    }
    // The default stage moved on, or the followed deployment ended.
    if (logs.stage !== stage.name || (following && stage.status !== 'Deploying')) refreshLogs();
    const shown = logs.stage === stage.name ? logs.lines : [];
    const steps = stage.steps.map((step) => {
      const lines = shown.filter((line) => line.step === step.name);
      return h('section', { class: 'step', 'data-step': step.name },
        h('h3', {}, step.name, ' ', badge(step.status), step.duration_ms ? h('span', { class: 'muted' }, ` ${duration(step.duration_ms)}`) : null),
        lines.length === 0
          ? h('p', { class: 'muted' }, step.status === 'Pending' ? 'Not run yet.' : 'No output.')
          : h('pre', { class: 'log' }, lines.map((line) => h('span', { class: `line ${line.stream}` },
            h('span', { class: 'at' }, new Date(line.at).toISOString().slice(11, 23)), ' ', line.text, '\n'))));
    });
    // A long log comes a page (1,000 lines) at a time.
    const more = logs.stage === stage.name && logs.next
      ? h('p', {}, h('button', { type: 'button', class: 'load-more', onclick: loadMoreLogs },
        `Showing ${logs.lines.length} lines — load more`))
      : null;
    show(panel, picker,
      h('h2', {}, `${stage.name} — attempt ${stage.attempt || '—'} `, badge(stage.status)),
      h('p', { class: 'muted' }, 'Line times are UTC.'),
      stage.failure_reason ? h('p', { class: 'reason' }, stage.failure_reason) : null,
      steps, more);
  }

  // The data of an event in a few words: its fields but the definition copy;
  // times (milliseconds since the epoch in the event) as UTC dates.
  const TIME_FIELDS = new Set(['deadline', 'defer_until', 'built_at', 'at']);
  const shown = (name, value) => {
    if (TIME_FIELDS.has(name) && typeof value === 'number') return value === 0 ? '—' : utcText(value);
    return typeof value === 'object' ? JSON.stringify(value) : value;
  };
  function details(event) {
    return Object.entries(event.data ?? {})
      .filter(([name]) => !['definition', 'stage'].includes(name))
      .map(([name, value]) => `${name}: ${shown(name, value)}`)
      .join(' · ');
  }

  function renderEvents() {
    const checks = verification === null ? h('p', { class: 'muted' }, 'Verifying…')
      : h('div', { class: `verification ${verification.ok ? 'ok' : 'failed'}`, role: 'status' },
        h('h2', {}, verification.ok ? 'Verified: the stored history is intact' : 'Verification FAILED'),
        verification.failure ? h('p', { class: 'reason' }, verification.failure.message) : null,
        h('ul', { class: 'plain checks' }, verification.checks.map((check) => h('li', {},
          h('strong', {}, `${check.name}: ${check.outcome}`), check.detail ? ` — ${check.detail}` : ''))));
    show(panel, checks, h('table', { class: 'events' },
      h('caption', { class: 'visually-hidden' }, 'Events of the release, oldest first'),
      h('thead', {}, h('tr', {}, ['#', 'Time (UTC)', 'Actor', 'Event', 'Stage', 'Details'].map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, events.map((event) => h('tr', {},
        h('td', {}, event.version), h('td', {}, time(event.recorded_at)), h('td', { class: 'actor' }, event.actor),
        h('td', {}, h('code', {}, event.type)), h('td', {}, event.data?.stage ?? ''),
        h('td', { class: 'details' }, details(event)))))));
  }

  // ---- fetching

  const refreshSummary = coalesced(async () => {
    summary = await fetchFresh(`/releases/${path(id)}`, (answer) => answer.version >= wanted);
    renderSummaryParts();
    if (tab !== 'events') renderTab();
  });
  // While the shown stage deploys, its lines arrive one by one over a
  // follow stream; otherwise (and when that stream ends) they are read whole.
  let following = null;  // { stage, attempt, controller }
  function stopFollowing() {
    following?.controller.abort();
    following = null;
  }
  function follow(stage) {
    if (following && following.stage === stage.name && following.attempt === stage.attempt) return;
    stopFollowing();
    const controller = new AbortController();
    following = { stage: stage.name, attempt: stage.attempt, controller };
    // A follow stream starts at the attempt's first line. Following the same
    // attempt again (its last stream ended before the summary said so) keeps
    // the lines on screen and skips their replay, so no line blinks out or
    // shows twice.
    if (logs.stage !== stage.name || logs.attempt !== stage.attempt) {
      logs = { stage: stage.name, attempt: stage.attempt, lines: [] };
    }
    logs.next = null;  // the stream brings every line: nothing left to page
    let toSkip = logs.lines.length;
    followLogs(`/releases/${path(id)}/stages/${path(stage.name)}/logs`, (line) => {
      if (following?.controller !== controller) return;
      if (toSkip > 0) {
        toSkip -= 1;
        return;
      }
      logs.lines.push(line);
      if (tab === 'logs' && logsStage() === stage.name) renderLogs();
    }, controller.signal).catch(() => {}).finally(() => {
      if (following?.controller === controller) following = null;
    });
  }
  const refreshLogs = coalesced(async () => {
    const stageName = logsStage();
    const stage = summary.stages.find((candidate) => candidate.name === stageName);
    if (tab === 'logs' && stage?.status === 'Deploying') {
      follow(stage);
      return;
    }
    stopFollowing();
    const answer = await api(`/releases/${path(id)}/stages/${path(stageName)}/logs`);
    logs = { stage: stageName, attempt: stage?.attempt, lines: answer.lines, next: answer.next };
    if (tab === 'logs' && stageName === logsStage()) renderLogs();
  });
  async function loadMoreLogs() {
    const { stage: stageName, next } = logs;
    if (!next) return;
    const answer = await api(`/releases/${path(id)}/stages/${path(stageName)}/logs?after=${encodeURIComponent(next)}`);
    if (logs.stage !== stageName || logs.next !== next) return;  // moved on meanwhile
    logs = { ...logs, lines: logs.lines.concat(answer.lines), next: answer.next };
    if (tab === 'logs' && stageName === logsStage()) renderLogs();
  }
  const refreshEvents = coalesced(async () => {
    events = (await api(`/releases/${path(id)}/events`)).events;
    if (tab === 'events') renderEvents();
  });
  const refreshVerification = coalesced(async () => {
    verification = await api(`/releases/${path(id)}/verify`);
    if (tab === 'events') renderEvents();
  });

  function loadTab() {
    if (tab === 'logs') {
      renderTab();
      return refreshLogs();
    }
    renderTab();
    if (tab === 'events') return Promise.all([refreshEvents(), refreshVerification()]);
    return null;
  }

  renderSummaryParts();
  await loadTab();

  return {
    navigate(next) {
      if (next.tab !== 'logs') stopFollowing();
      tab = next.tab;
      selected = next.stage;
      renderSummaryParts();
      loadTab();
    },
    onEvent(event) {
      if (event.stream !== `release-${id}`) return;
      wanted = Math.max(wanted, event.version);
      refreshSummary();
      // Step events of a followed deployment need no re-read: lines stream in.
      if (tab === 'logs' && event.data?.stage === logsStage() && !following) refreshLogs();
      if (tab === 'events') {
        if (events.length > 0 && events[events.length - 1].version === event.version - 1) {
          events.push(event);
          renderEvents();
        } else {
          refreshEvents();
        }
        refreshVerification();
      }
    },
    // A fresh stream (not a resumed one) may have missed events: reload.
    onOpen(resumed) {
      if (resumed) return;
      refreshSummary();
      loadTab();
    },
  };
}
