// Create release: a pipeline, the artifact's version and path (inside the
// server's artifacts root), and the variables the pipeline's latest
// definition declares settable (pipeline and stage variables alike), each
// prefilled with its declared value. POST /api/v1/releases; on success the new
// release opens. Viewers see the form disabled, with the reason.
import { api, path } from './api.js';
import { failure, h, hasRole, needsRole, setMessage, show } from './dom.js';

// The settable variables of a definition: name → {value, secret, where}.
function settableVariables(definition) {
  const out = new Map();
  const take = (variables, where) => {
    for (const [name, declared] of Object.entries(variables ?? {})) {
      if (typeof declared === 'object' && declared?.settable && !out.has(name)) {
        out.set(name, { value: declared.secret ? '' : (declared.value ?? ''), secret: !!declared.secret, where });
      }
    }
  };
  take(definition.variables, 'pipeline');
  for (const stage of definition.stages ?? []) take(stage.variables, `stage ${stage.name}`);
  return out;
}

export async function createView(root, { me, params }) {
  const allowed = hasRole(me, 'releaser');
  const { pipelines } = await api('/pipelines');
  const message = h('p', { class: 'form-message', role: 'status' });
  const pipeline = h('select', { id: 'create-pipeline', name: 'pipeline', required: true },
    pipelines.map((p) => h('option', { value: p.name, selected: p.name === params.pipeline }, p.name)));
  const version = h('input', { id: 'create-version', name: 'version', required: true, spellcheck: 'false' });
  const artifact = h('input', { id: 'create-artifact', name: 'artifact', required: true, spellcheck: 'false' });
  const variables = h('fieldset', { class: 'variables' });
  const submit = h('button', { type: 'submit' }, 'Create release');
  let fields = [];  // [{name, input, secret}]

  async function loadVariables() {
    if (!pipeline.value) return;
    const chosen = pipeline.value;
    const { definition, version: pipelineVersion } = await api(`/pipelines/${path(chosen)}`);
    if (chosen !== pipeline.value) return;
    const settable = settableVariables(definition);
    fields = [...settable].map(([name, declared]) => ({
      name, secret: declared.secret,
      input: h('input', { id: `create-var-${name}`, name, value: declared.value, type: declared.secret ? 'password' : 'text', spellcheck: 'false' }),
      where: declared.where,
    }));
    show(variables, h('legend', {}, `Variables settable at release time (${chosen} v${pipelineVersion})`),
      fields.length === 0 ? h('p', { class: 'muted' }, 'This pipeline declares no settable variable.')
        : fields.map((field) => h('p', { class: 'field' }, h('label', { for: field.input.id }, field.name,
          h('span', { class: 'muted' }, ` (${field.where}${field.secret ? ', secret' : ''})`)), field.input)));
  }

  async function create(event) {
    event.preventDefault();
    submit.disabled = true;
    setMessage(message, 'Creating…');
    const body = { pipeline: pipeline.value, artifact: { version: version.value.trim(), path: artifact.value.trim() } };
    const plain = fields.filter((field) => !field.secret);
    const secret = fields.filter((field) => field.secret && field.input.value !== '');
    if (plain.length) body.variables = Object.fromEntries(plain.map((field) => [field.name, field.input.value]));
    if (secret.length) body.secrets = Object.fromEntries(secret.map((field) => [field.name, field.input.value]));
    try {
      const created = await api('/releases', { method: 'POST', body });
      setMessage(message, `Created ${created.name}.`);
      location.hash = `#/releases/${path(created.id)}`;
    } catch (error) {
      // Field problems (details) say which field and why.
      const details = (error.details ?? []).map((problem) => `${problem.path}: ${problem.message}`).join('; ');
      setMessage(message, details && !error.message.includes(details) ? `${failure(error)} — ${details}` : failure(error), true);
      submit.disabled = false;
    }
  }

  const form = h('form', { class: 'create-form', onsubmit: create },
    h('fieldset', { disabled: !allowed },
      h('p', { class: 'field' }, h('label', { for: pipeline.id }, 'Pipeline'), pipeline),
      h('p', { class: 'field' }, h('label', { for: version.id }, 'Artifact version'), version),
      h('p', { class: 'field' }, h('label', { for: artifact.id }, 'Artifact path'), artifact,
        h('span', { class: 'muted hint' }, ' a directory on the server, inside its artifacts root (<data>/artifacts by default)')),
      variables,
      h('div', { class: 'actions' }, submit)),
    message);
  pipeline.addEventListener('change', () => loadVariables().catch((error) => setMessage(message, failure(error), true)));
  show(root, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/releases' }, 'Releases'), ' › New release'),
    h('h1', {}, 'Create release'),
    allowed ? null : h('p', { class: 'notice', role: 'note' }, needsRole(me, 'Creating a release', 'releaser')),
    pipelines.length === 0 ? h('p', { class: 'muted' }, 'No pipeline is defined yet (cascade pipeline apply).') : form);
  await loadVariables();
  return {};
}
