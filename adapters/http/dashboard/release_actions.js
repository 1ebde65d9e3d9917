// The operator's controls of a release page: Deploy / Redeploy / Cancel per
// stage and Abandon for the release, for releasers and above. Every action
// asks for a confirmation in the page first; a failure shows the server's
// message. The element is built once and updated in place as the summary
// changes, so an open confirmation and a reason being typed survive events.
import { api, path } from './api.js';
import { failure, h, hasRole, needsRole, setMessage, show, statusLabel } from './dom.js';

// What each action asks for, and which stage states offer it (the server
// decides; these only spare a click that would certainly be refused).
const ACTIONS = {
  deploy: { label: 'Deploy', offered: (stage) => stage.status === 'NotStarted' },
  redeploy: { label: 'Redeploy', offered: (stage) => ['Succeeded', 'PartiallySucceeded', 'Failed', 'Rejected', 'Canceled'].includes(stage.status) },
  cancel: { label: 'Cancel', offered: (stage) => ['Queued', 'Deploying', 'AwaitingPreApproval', 'AwaitingPostApproval', 'Deferred', 'Triggered'].includes(stage.status) },
};

export function releaseActions(releaseId, me, onDone) {
  const allowed = hasRole(me, 'releaser');
  const message = h('p', { class: 'form-message', role: 'status' });
  const confirmBox = h('div', { class: 'confirm', hidden: true });
  const reason = h('input', { id: 'action-reason', name: 'reason', spellcheck: 'false', placeholder: 'optional' });
  const rows = h('tbody');
  const abandon = h('button', { type: 'button', class: 'reject', onclick: () => ask('abandon', null) }, 'Abandon release…');
  const element = h('section', { class: 'actions-panel', 'aria-labelledby': 'actions-heading' },
    h('h2', { id: 'actions-heading' }, 'Actions'),
    allowed ? [
      h('p', { class: 'field' }, h('label', { for: reason.id }, 'Reason (recorded with the action)'), ' ', reason),
      h('table', { class: 'actions-table' },
        h('caption', { class: 'visually-hidden' }, 'Stage actions'),
        h('thead', {}, h('tr', {}, ['Stage', 'Status', 'Actions'].map((text) => h('th', { scope: 'col' }, text)))),
        rows),
      h('p', {}, abandon),
      confirmBox, message,
    ] : h('p', { class: 'notice' }, needsRole(me, 'Deploying, redeploying, canceling or abandoning', 'releaser')));

  let busy = false;
  let pending = null;  // {action, stage}

  function ask(action, stage) {
    pending = { action, stage };
    const what = action === 'abandon' ? `Abandon release ${releaseId}? Waiting stages are canceled and nothing deploys again.`
      : `${ACTIONS[action].label} stage ${stage} of ${releaseId}?`;
    const yes = action === 'abandon' ? 'Yes, abandon' : `Yes, ${action} ${stage}`;
    show(confirmBox, h('p', { role: 'alert' }, what), h('div', { class: 'actions' },
      h('button', { type: 'button', class: action === 'deploy' || action === 'redeploy' ? 'approve' : 'reject', onclick: perform }, yes),
      h('button', { type: 'button', class: 'secondary', onclick: dismiss }, 'No, keep it')));
    confirmBox.hidden = false;
    confirmBox.querySelector('button').focus();
  }
  function dismiss() {
    pending = null;
    confirmBox.hidden = true;
    confirmBox.replaceChildren();
  }

  async function perform() {
    if (!pending || busy) return;
    const { action, stage } = pending;
    dismiss();
    busy = true;
    element.querySelectorAll('button').forEach((button) => { button.disabled = true; });
    setMessage(message, `${action === 'abandon' ? 'Abandoning' : `${ACTIONS[action].label.replace(/e$/, '')}ing ${stage}`}…`);
    const target = action === 'abandon' ? `/releases/${path(releaseId)}/abandon`
      : `/releases/${path(releaseId)}/stages/${path(stage)}/${action}`;
    const body = action === 'deploy' ? undefined : (reason.value.trim() ? { reason: reason.value.trim() } : {});
    try {
      const answer = await api(target, { method: 'POST', body });
      setMessage(message, action === 'abandon' ? 'Abandoned.' : `${ACTIONS[action].label}: done (${stage}).`);
      reason.value = '';
      onDone(answer?.version ?? 0);
    } catch (error) {
      setMessage(message, `${action === 'abandon' ? 'Abandon' : `${ACTIONS[action].label} ${stage}`} failed: ${failure(error)}`, true);
    } finally {
      busy = false;
      element.querySelectorAll('button').forEach((button) => { button.disabled = false; });
    }
  }

  return {
    element,
    update(summary) {
      if (!allowed) return;
      abandon.hidden = summary.abandoned;
      // Every action stays reachable (the server is the authority); the
      // likely ones come first and are marked.
      show(rows, summary.stages.map((stage) => h('tr', { 'data-stage': stage.name },
        h('th', { scope: 'row' }, stage.name),
        h('td', {}, statusLabel(stage.status)),
        h('td', {}, Object.entries(ACTIONS).map(([action, { label, offered }]) => h('button', {
          type: 'button', class: offered(stage) ? 'action likely' : 'action secondary', 'data-action': action,
          disabled: busy || summary.abandoned, onclick: () => ask(action, stage.name),
        }, `${label}…`))))));
    },
  };
}
