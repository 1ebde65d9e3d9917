// Approvals: what waits for the signed-in person (their name and their
// groups: GET /api/v1/approvals), approved or rejected in place with a
// comment; for administrators an "All pending" filter (?all=true) that shows
// every pending approval, also those nobody's inbox holds. Rows are kept by
// (release, stage, phase), so a comment being typed survives a refresh.
import { api, coalesced, fetchFresh, path } from './api.js';
import { failure, h, hasRole, needsRole, setMessage, show, time } from './dom.js';

const CHANGES = new Set(['ApprovalRequested', 'ApprovalGranted', 'ApprovalRejected', 'ApprovalTimedOut',
  'StageCanceled', 'ReleaseAbandoned', 'DeploymentSucceeded']);

const keyOf = (item) => `${item.release}/${item.stage}/${item.phase}`;

export async function approvalsView(root, { me }) {
  const isAdmin = hasRole(me, 'admin');
  const mayDecide = hasRole(me, 'approver');
  let all = false;
  let items = [];
  let gone = new Set();  // keys decided here, hidden until the inbox drops them
  const expected = new Set();  // keys an ApprovalRequested announced (a moment ahead of the inbox)

  const list = h('div', { class: 'approval-list' });
  const heading = h('p', { class: 'muted' });
  const allBox = isAdmin ? h('input', { type: 'checkbox', id: 'approvals-all', onchange: () => {
    all = allBox.checked;
    refresh();
  } }) : null;
  show(root, h('h1', {}, 'Approvals'),
    isAdmin ? h('p', { class: 'filter' }, allBox, ' ', h('label', { for: 'approvals-all' }, 'All pending (every approval, whoever it waits for)')) : null,
    heading,
    mayDecide ? null : h('p', { class: 'notice' }, needsRole(me, 'Approving', 'approver')),
    list);

  const rows = new Map();  // key → {element, update(item)}

  function row(item) {
    const message = h('p', { class: 'form-message', role: 'status' });
    const commentId = `comment-${item.release}-${item.stage}-${item.phase}`;
    const comment = h('textarea', { id: commentId, name: 'comment', rows: 1, placeholder: 'optional' });
    const buttons = [
      h('button', { type: 'submit', value: 'approve', class: 'approve' }, 'Approve'),
      h('button', { type: 'submit', value: 'reject', class: 'reject' }, 'Reject'),
    ];
    const facts = h('p', { class: 'facts' });
    async function decide(event) {
      event.preventDefault();
      const decision = event.submitter?.value ?? 'approve';
      buttons.forEach((button) => { button.disabled = true; });
      setMessage(message, decision === 'approve' ? 'Approving…' : 'Rejecting…');
      try {
        await api(`/releases/${path(item.release)}/stages/${path(item.stage)}/approvals`, {
          method: 'POST', body: { decision, comment: comment.value },
        });
        setMessage(message, decision === 'approve' ? 'Approved.' : 'Rejected.');
        gone.add(keyOf(item));
        refresh();
      } catch (error) {
        setMessage(message, failure(error), true);
        buttons.forEach((button) => { button.disabled = false; });
      }
    }
    const element = h('section', { class: 'approval-item', 'data-release': item.release, 'data-stage': item.stage },
      h('h2', {}, h('a', { href: `#/releases/${path(item.release)}` }, item.release),
        item.release_name && item.release_name !== item.release ? h('span', { class: 'muted' }, ` (${item.release_name})`) : '', ` · ${item.stage}`,
        item.phase === 'post' ? ' (after deployment)' : ' (before deployment)'),
      facts,
      mayDecide ? h('form', { class: 'approval-form inline', onsubmit: decide }, h('label', { for: commentId }, 'Comment'), comment, h('div', { class: 'actions' }, buttons), message) : null);
    return {
      element,
      update(current) {
        show(facts, `${current.pipeline} · approvers: ${current.approvers.join(', ')} · ${current.approved} of ${current.required} approved`,
          current.order === 'sequential' ? ' · in order' : '',
          current.via ? ` · you are listed as ${current.via.join(', ')}` : '',
          ' · deadline ', h('span', { class: 'deadline' }, time(current.deadline)));
      },
    };
  }

  function render() {
    const shown = items.filter((item) => !gone.has(keyOf(item)));
    const keys = new Set(shown.map(keyOf));
    for (const key of [...rows.keys()]) if (!keys.has(key)) rows.delete(key);
    for (const item of shown) {
      if (!rows.has(keyOf(item))) rows.set(keyOf(item), row(item));
      rows.get(keyOf(item)).update(item);
    }
    heading.textContent = all ? 'Every pending approval, soonest deadline first.'
      : `Waiting for ${me.name}${me.groups?.length ? ` or the groups ${me.groups.join(', ')}` : ''}, soonest deadline first.`;
    show(list, shown.length === 0 ? h('p', { class: 'muted empty' }, all ? 'No approval is pending.' : 'Nothing waits for you.')
      : shown.map((item) => rows.get(keyOf(item)).element));
  }

  // A decision made here is hidden at once; the inbox drops it a moment later.
  const refresh = coalesced(async () => {
    const wanted = all;
    const answer = await fetchFresh(all ? '/approvals?all=true' : '/approvals',
      (fresh) => ![...gone].some((key) => fresh.approvals.some((item) => keyOf(item) === key))
        && [...expected].every((key) => fresh.approvals.some((item) => keyOf(item) === key)));
    expected.clear();
    if (wanted !== all) return;  // the filter changed meanwhile: the next run answers
    items = answer.approvals;
    gone = new Set([...gone].filter((key) => items.some((item) => keyOf(item) === key)));
    render();
  });

  await refresh();
  return {
    onEvent(event) {
      if (!CHANGES.has(event.type)) return;
      // Only the admin's list surely holds a new request; an inbox may not.
      if (event.type === 'ApprovalRequested' && all) {
        expected.add(`${event.stream.slice('release-'.length)}/${event.data.stage}/${event.data.phase}`);
      }
      refresh();
    },
    onOpen(resumed) {
      if (!resumed) refresh();
    },
  };
}
