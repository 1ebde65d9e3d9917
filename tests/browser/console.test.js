// The dashboard as an operator console, in headless Chromium against a real
// `cascade serve`: a releaser creates a release from the form and deploys,
// cancels and redeploys a stage from the page; an approver approves from the
// inbox; an admin finds an approval nobody can give under "All pending";
// pipelines' versions and their diff; the delivery charts drawn from known
// deployments; search and filters on the releases list; the Events tab's
// times and actors. Each page's screenshot goes to CASCADE_BROWSER_OUT.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startHarness, stageOf } from './harness.js';

// prod is started by hand and waits for the file GATE names (settable at
// release time), so a test can cancel it while it runs and let it finish.
const ops = (run = 'echo waiting; while [ ! -e $(GATE) ]; do sleep 0.05; done; echo released') => ({
  name: 'Ops',
  variables: { GATE: { value: '/nonexistent/gate', settable: true }, COLOUR: 'blue' },
  stages: [
    { name: 'build', trigger: { after_release: true }, steps: [{ name: 'check', run: 'echo checked $(CASCADE_ARTIFACT_VERSION)' }] },
    { name: 'prod', trigger: { manual: true }, steps: [{ name: 'wait', run }] },
  ],
});
const gatekeeper = {
  name: 'Gatekeeper',
  stages: [{ name: 'live', trigger: { after_release: true }, pre_approval: { approvers: ['release-manager'], timeout: '2d' },
    steps: [{ name: 'go', run: 'echo live' }] }],
};
// An approver that names nobody: the approval is in no one's inbox.
const lost = {
  name: 'Lost',
  stages: [{ name: 'go', trigger: { after_release: true }, pre_approval: { approvers: ['nobody-by-this-name'] },
    steps: [{ name: 'go', run: 'echo go' }] }],
};

let harness;
let gate;
const shot = (page, name) => page.screenshot({ path: join(harness.outDir, `${name}.png`), fullPage: true });

before(async () => {
  harness = await startHarness({
    admin: ['admin'], 'release-manager': ['approver'], rel: ['releaser'], vic: ['viewer'],
  });
  gate = join(harness.work, 'gate');
  for (const pipeline of [ops(), gatekeeper, lost]) await harness.call('PUT', `/pipelines/${pipeline.name}`, 'admin', pipeline);
  await harness.launch();
});

after(async () => {
  await harness?.stop();
});

test('a releaser creates a release, then deploys, cancels and redeploys prod from the page', { timeout: 90000 }, async () => {
  const { call, newArtifactDir, signedIn, waitForRelease } = harness;
  const artifact = newArtifactDir({ 'app.txt': 'ops 2.0.0\n' });
  const page = await signedIn('rel');
  await page.getByRole('link', { name: 'Create release' }).click();
  await page.getByLabel('Pipeline').selectOption('Ops');
  // The settable variable, prefilled with its declared value; COLOUR is not settable.
  const gateField = page.getByLabel(/^GATE/);
  await gateField.waitFor();
  assert.equal(await gateField.inputValue(), '/nonexistent/gate');
  assert.equal(await page.getByLabel(/^COLOUR/).count(), 0);
  // A refused creation shows the server's message, field by field.
  await page.getByLabel('Artifact version').fill('2.0.0');
  await page.getByLabel('Artifact path').fill('/etc');
  await page.getByRole('button', { name: 'Create release' }).click();
  await page.locator('.create-form .form-message.error', { hasText: 'artifact.path' }).waitFor();
  await page.getByLabel('Artifact path').fill(artifact);
  await gateField.fill(gate);
  await shot(page, 'create-release');
  await page.getByRole('button', { name: 'Create release' }).click();

  await page.waitForURL(/#\/releases\/Ops-1$/);
  const graphStage = (stage, status) => page.locator(`svg.pipeline-graph a[data-stage="${stage}"][data-status="${status}"]`);
  await graphStage('build', 'Succeeded').waitFor();
  const created = await call('GET', '/releases/Ops-1', 'vic');
  assert.equal(created.requested_by, 'rel');
  assert.deepEqual(created.variables, { GATE: gate });
  assert.equal(created.artifact.path, artifact);

  const actions = page.locator('.actions-panel');
  const prodAction = (action) => actions.locator(`tr[data-stage="prod"] button[data-action="${action}"]`);
  const confirm = async (name) => {
    await actions.locator('.confirm').getByRole('button', { name }).click();
  };

  // Deploy, after a confirmation; "No" first leaves everything as it was.
  await prodAction('deploy').click();
  await actions.locator('.confirm').getByRole('button', { name: 'No, keep it' }).click();
  assert.ok(await actions.locator('.confirm').isHidden());
  assert.equal(stageOf(await call('GET', '/releases/Ops-1', 'vic'), 'prod').status, 'NotStarted');
  await prodAction('deploy').click();
  await confirm('Yes, deploy prod');
  await graphStage('prod', 'Deploying').waitFor();

  // Deploying again is refused: the page shows the server's own message.
  let refusal;
  try {
    await call('POST', '/releases/Ops-1/stages/prod/deploy', 'rel');
  } catch (error) {
    refusal = error.answer.error.message;
  }
  assert.ok(refusal, 'the API refuses a second deploy');
  await prodAction('deploy').click();
  await confirm('Yes, deploy prod');
  const alert = actions.locator('.form-message.error');
  await alert.waitFor();
  assert.equal(await alert.innerText(), `Deploy prod failed: ${refusal} (HTTP 409)`);

  // Cancel with a reason: the stage ends Canceled and says who.
  await page.getByLabel('Reason (recorded with the action)').fill('wrong window');
  await prodAction('cancel').click();
  await confirm('Yes, cancel prod');
  await graphStage('prod', 'Canceled').waitFor();
  const prodRow = page.locator('table.stages tr[data-stage="prod"]');
  await prodRow.getByText('canceled by rel').waitFor();
  assert.match(await prodRow.innerText(), /wrong window/);

  // Redeploy: a second attempt, which finishes once the gate opens.
  await prodAction('redeploy').click();
  await confirm('Yes, redeploy prod');
  await graphStage('prod', 'Deploying').waitFor();
  await shot(page, 'release-actions');
  writeFileSync(gate, 'open\n');
  await graphStage('prod', 'Succeeded').waitFor({ timeout: 30000 });
  const done = await waitForRelease('Ops-1', 'prod succeeded', (s) => stageOf(s, 'prod').status === 'Succeeded');
  assert.equal(stageOf(done, 'prod').attempt, 2);
  assert.match(stageOf(done, 'prod').trigger_reason, /redeploy by rel/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a viewer sees why they cannot create or operate', { timeout: 30000 }, async () => {
  const page = await harness.signedIn('vic');
  assert.equal(await page.getByRole('link', { name: 'Create release' }).count(), 0);
  await page.evaluate(() => { location.hash = '#/new-release/Ops'; });
  await page.getByText('Creating a release needs the releaser role (you have viewer).').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Create release' }).isDisabled());
  await page.evaluate(() => { location.hash = '#/releases/Ops-1'; });
  await page.locator('.actions-panel', { hasText: 'needs the releaser role (you have viewer)' }).waitFor();
  assert.equal(await page.locator('.actions-panel button').count(), 0);
  // The API says the same, naming the role rather than the route.
  await assert.rejects(harness.call('POST', '/releases/Ops-1/abandon', 'vic', {}),
    (error) => error.status === 403 && error.answer.error.message === 'this needs the releaser role (you have viewer)');
  await page.close();
});

test('an approver approves from the inbox, with a comment', { timeout: 60000 }, async () => {
  const { call, newArtifactDir, signedIn, waitForRelease } = harness;
  const { id } = await call('POST', '/releases', 'admin', { pipeline: 'Gatekeeper', artifact: { version: '1', path: newArtifactDir() } });
  await waitForRelease(id, 'live awaiting approval', (s) => stageOf(s, 'live').status === 'AwaitingPreApproval');
  await harness.until('the approval in the inbox', async () => (await call('GET', '/approvals', 'release-manager')).approvals.length === 1);
  const page = await signedIn('release-manager');
  await page.getByRole('link', { name: 'Approvals' }).click();
  const item = page.locator(`.approval-item[data-release="${id}"][data-stage="live"]`);
  await item.waitFor();
  assert.match(await item.innerText(), /approvers: release-manager · 0 of 1 approved/);
  assert.match(await item.locator('.deadline').innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(await page.locator('#approvals-all').count(), 0, '"All pending" is for admins');
  await shot(page, 'approvals');
  await item.getByLabel('Comment').fill('looks good');
  await item.getByRole('button', { name: 'Approve' }).click();
  await item.waitFor({ state: 'detached' });
  await page.getByText('Nothing waits for you.').waitFor();
  const summary = await waitForRelease(id, 'live succeeded', (s) => stageOf(s, 'live').status === 'Succeeded');
  const [approval] = stageOf(summary, 'live').approvals;
  assert.equal(approval.approver, 'release-manager');
  assert.equal(approval.comment, 'looks good');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('an admin sees under "All pending" an approval nobody can give', { timeout: 60000 }, async () => {
  const { call, newArtifactDir, signedIn, waitForRelease } = harness;
  const { id } = await call('POST', '/releases', 'admin', { pipeline: 'Lost', artifact: { version: '1', path: newArtifactDir() } });
  await waitForRelease(id, 'go awaiting approval', (s) => stageOf(s, 'go').status === 'AwaitingPreApproval');
  await harness.until('the approval among all pending', async () => (await call('GET', '/approvals?all=true', 'admin')).approvals.length === 1);
  const page = await signedIn('admin');
  await page.evaluate(() => { location.hash = '#/approvals'; });
  await page.getByText('Nothing waits for you.').waitFor();
  await page.getByLabel(/All pending/).check();
  const item = page.locator(`.approval-item[data-release="${id}"]`);
  await item.waitFor();
  assert.match(await item.innerText(), /approvers: nobody-by-this-name/);
  await shot(page, 'approvals-all');
  await assert.rejects(call('GET', '/approvals?all=true', 'release-manager'),
    (error) => error.status === 403 && /needs the admin role \(you have approver\)/.test(error.answer.error.message));
  // Abandoned from its page: the approval is closed, by the admin, and leaves the list.
  await item.getByRole('link').click();
  await page.locator('.actions-panel').getByRole('button', { name: 'Abandon release…' }).click();
  await page.locator('.actions-panel .confirm').getByRole('button', { name: 'Yes, abandon' }).click();
  await page.locator('table.stages tr[data-stage="go"]').getByText('closed by admin').waitFor();
  await page.locator('.release-head .meta', { hasText: 'abandoned by admin' }).waitFor();
  await harness.until('the approval closed in the inbox', async () => (await call('GET', '/approvals?all=true', 'admin')).approvals.length === 0);
  await page.getByRole('link', { name: 'Approvals' }).click();
  await page.getByLabel(/All pending/).check();
  await page.getByText('No approval is pending.').waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the Events tab shows UTC dates and names the actor', { timeout: 30000 }, async () => {
  const page = await harness.signedIn('vic');
  await page.evaluate(() => { location.hash = '#/releases/Gatekeeper-1/events'; });
  const rows = page.locator('table.events tbody tr');
  await rows.first().waitFor();
  assert.match(await page.locator('table.events thead').innerText(), /Time \(UTC\)/);
  assert.match(await rows.first().locator('time').innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  assert.equal(await rows.first().locator('td.actor').innerText(), 'admin');
  const requested = rows.filter({ hasText: 'ApprovalRequested' });
  assert.match(await requested.innerText(), /deadline: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  const granted = rows.filter({ hasText: 'ApprovalGranted' });
  assert.equal(await granted.locator('td.actor').innerText(), 'release-manager');
  await page.close();
});

test('the pipelines page lists versions, their releases and the diff between two', { timeout: 30000 }, async () => {
  const { call, signedIn, until } = harness;
  await call('PUT', '/pipelines/Ops', 'admin', ops('echo waiting; while [ ! -e $(GATE) ]; do sleep 0.1; done; echo released v2'));
  await until('version 2 in the read model', async () => (await call('GET', '/pipelines/Ops/versions', 'vic')).versions.length === 2);
  const diff = await call('GET', '/pipelines/Ops/diff?from=1&to=2', 'vic');
  assert.ok(diff.changes.length > 0);
  const page = await signedIn('vic');
  await page.getByRole('link', { name: 'Pipelines' }).click();
  await page.locator('table.pipelines tr[data-pipeline="Ops"]', { hasText: 'v2' }).waitFor();
  await page.locator('table.pipelines').getByRole('link', { name: 'Ops' }).click();
  const v1 = page.locator('table.versions tr[data-version="1"]');
  await v1.waitFor();
  assert.match(await v1.locator('td.releases').innerText(), /Ops-1/);
  assert.match(await page.locator('table.versions tr[data-version="2"] td.releases').innerText(), /none/);
  await page.getByRole('button', { name: 'Show the difference' }).click();
  const changes = page.locator('table.diff tbody tr');
  await changes.first().waitFor();
  assert.equal(await changes.count(), diff.changes.length);
  assert.match(await page.locator('table.diff').innerText(), new RegExp(diff.changes[0].path.replace(/[/[\]]/g, '\\$&')));
  await page.locator('.definition', { hasText: 'Definition v2' }).waitFor();
  await shot(page, 'pipelines');
  await page.close();
});

test('the delivery page draws the DORA four from the deployments', { timeout: 60000 }, async () => {
  const { call, newArtifactDir, signedIn, until } = harness;
  // A second Ops release: build deploys again (prod is manual).
  await call('POST', '/releases', 'rel', { pipeline: 'Ops', artifact: { version: '2.0.1', path: newArtifactDir() } });
  const metrics = await until('the second build deployment in the metrics', async () => {
    const answer = await call('GET', '/metrics/delivery?pipeline=Ops&days=30&bucket=day', 'vic');
    return answer.stages.find((stage) => stage.stage === 'build').deployment_frequency.deployments === 2 ? answer : null;
  });
  const build = metrics.stages.find((stage) => stage.stage === 'build');

  const page = await signedIn('vic');
  await page.getByRole('link', { name: 'Delivery' }).click();
  await page.getByRole('navigation', { name: 'Pipeline' }).getByRole('link', { name: 'Ops' }).click();
  const section = page.locator('.delivery-stage[data-stage="build"]');
  await section.waitFor();
  for (const chart of ['deployments', 'lead-time', 'failure-rate', 'restore']) {
    assert.equal(await section.locator(`svg.chart.${chart} rect.bar`).count(), build.series.length, chart);
  }
  const values = await section.locator('svg.chart.deployments rect.bar').evaluateAll((bars) => bars.map((bar) => Number(bar.dataset.value || 0)));
  assert.equal(values.reduce((a, b) => a + b, 0), 2, 'two deployments of build');
  assert.match(await section.locator('dl.totals').innerText(), /Deployments\s+2 \(/);
  assert.match(await section.locator('svg.chart.deployments').getAttribute('aria-label'), /Successful deployments: \d+ of \d+ buckets with data/);
  assert.match(await section.locator('svg.chart.deployments text.x-last').textContent(), /\(UTC\)$/);
  // prod: one canceled attempt (counted neither way), one success: no failures.
  const prod = page.locator('.delivery-stage[data-stage="prod"]');
  assert.match(await prod.locator('dl.totals').innerText(), /Change failure rate\s+0% \(0 of 1\)/);
  await shot(page, 'delivery');
  // By week: fewer, wider bars, the same total.
  await page.getByRole('link', { name: 'By week (12 weeks)' }).click();
  const weekly = await call('GET', '/metrics/delivery?pipeline=Ops&days=84&bucket=week', 'vic');
  const weeklyBuild = weekly.stages.find((stage) => stage.stage === 'build');
  await page.waitForFunction((count) => document.querySelectorAll('.delivery-stage[data-stage="build"] svg.chart.deployments rect.bar').length === count,
    weeklyBuild.series.length);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('search and filters narrow the releases list', { timeout: 30000 }, async () => {
  const { call, signedIn, until } = harness;
  const all = await until('every release settled in the list', async () => {
    const { releases } = await call('GET', '/releases?limit=50', 'vic');
    return releases.length === 4 && releases.find((release) => release.id === 'Lost-1')?.status === 'Abandoned' ? releases : null;
  });
  const page = await signedIn('vic');
  const rows = page.locator('table.releases tbody tr[data-release]');
  await page.locator('table.releases tbody tr[data-release="Ops-1"]').waitFor();
  assert.equal(await rows.count(), all.length);
  await page.getByLabel('Pipeline').selectOption('Ops');
  await page.waitForFunction(() => [...document.querySelectorAll('table.releases tbody tr[data-release]')]
    .every((row) => row.dataset.release.startsWith('Ops-')));
  assert.equal(await rows.count(), all.filter((release) => release.pipeline === 'Ops').length);
  await page.getByLabel('Search').fill('2.0.1');
  await page.waitForFunction(() => document.querySelectorAll('table.releases tbody tr[data-release]').length === 1);
  assert.equal(await rows.first().getAttribute('data-release'), 'Ops-2');
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Pipeline').selectOption('');
  await page.getByLabel('Status').selectOption('Abandoned');
  await page.waitForFunction(() => {
    const shown = [...document.querySelectorAll('table.releases tbody tr[data-release]')];
    return shown.length === 1 && shown[0].dataset.release === 'Lost-1';
  });
  await page.getByLabel('Search').fill('no such release');
  await page.getByText('No release matches.').waitFor();
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Status').selectOption('');
  await page.locator('table.releases tbody tr[data-release="Gatekeeper-1"]').waitFor();
  await page.getByLabel('Search').fill('gatekeeper');
  await page.waitForFunction(() => document.querySelectorAll('table.releases tbody tr[data-release]').length === 1);
  await shot(page, 'releases-filter');
  assert.deepEqual(page.errors, []);
  await page.close();
});
