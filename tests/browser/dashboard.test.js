// The dashboard in a real browser: `cascade serve` on a temporary data
// directory and an ephemeral port, the sample pipeline released over the API
// until prod awaits approval, then headless Chromium (Debian's) signs in as
// release-manager, approves prod, and watches it deploy without a reload.
//
// Environment: CASCADE_BINARY (the `cascade` program, required),
// CASCADE_BROWSER_OUT (where dashboard.png goes; default a temporary folder).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const binary = process.env.CASCADE_BINARY;
if (!binary) throw new Error('set CASCADE_BINARY to the path of the cascade program (ctest does)');
const work = mkdtempSync(join(tmpdir(), 'cascade-browser-'));
// As root, steps run as cascade-step, who must pass through to the data
// dir's work/ and write the sample's sites here; the data dir guards itself.
if (process.geteuid() === 0) chmodSync(work, 0o1777);
const outDir = process.env.CASCADE_BROWSER_OUT ?? join(work, 'out');
const samplePipeline = fileURLToPath(new URL('../../tools/examples/sampleapp.json', import.meta.url));

// The network here is closed: without these Chromium waits on lookups.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

const token = () => randomBytes(32).toString('hex');
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const users = { admin: token(), 'release-manager': token() };
const version = `1.4.0+browser.${Date.now()}`;

let server;       // {process, base, exited: Promise<{code, signal}>, output()}
let dataDir;
let usersFile;
let context;      // the browser (a persistent context on a fresh profile)
let releaseId;

// Starts `cascade serve` and resolves once it prints the port it listens on.
function startServer(dataDir, usersFile, listen = '127.0.0.1:0') {
  // As root, serve refuses to run steps as root: they run as tools/dev's cascade-step.
  const stepUser = process.geteuid() === 0 ? ['--step-user', 'cascade-step'] : [];
  const child = spawn(binary, ['serve', '--data', dataDir, '--listen', listen, '--users', usersFile, ...stepUser],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cascade serve printed no port within 20 s:\n${stdout}\n${stderr}`)), 20000);
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ process: child, base: match[1], exited, output: () => `${stdout}\n${stderr}` });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cascade serve exited with ${code} before listening:\n${stdout}\n${stderr}`));
    });
  });
}

async function call(method, path, user, body) {
  const response = await fetch(`${server.base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${users[user]}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

// Polls the API (no fixed sleep) until `done(summary)` or the deadline.
async function waitForRelease(id, what, done, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let summary;
  while (Date.now() < deadline) {
    summary = await call('GET', `/releases/${id}`, 'admin');
    if (done(summary)) return summary;
    const failed = summary.stages.find((stage) => ['Failed', 'Rejected', 'Canceled'].includes(stage.status));
    if (failed) throw new Error(`stage ${failed.name} ended ${failed.status}: ${failed.failure_reason}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`release ${id}: no ${what} within ${timeoutMs} ms; last summary ${JSON.stringify(summary)}`);
}

const stageStatus = (summary, name) => summary.stages.find((stage) => stage.name === name)?.status;

// A fresh artifact directory inside the server's artifacts root
// (<data>/artifacts): the API refuses any other path.
function newArtifactDir() {
  mkdirSync(join(dataDir, 'artifacts'), { recursive: true });
  const artifact = mkdtempSync(join(dataDir, 'artifacts', 'artifact-'));
  chmodSync(artifact, 0o755);  // mkdtemp's 0700 would keep it from the step user
  return artifact;
}

// A release of the sample, run until prod awaits approval; its sites go
// under `sitesRoot`. Returns its id.
async function releaseToProdApproval(sitesRoot) {
  const artifact = newArtifactDir();
  writeFileSync(join(artifact, 'index.html'),
    `<!doctype html><html><body><h1>SampleApp</h1><p>Build ${version}</p></body></html>\n`);
  const created = await call('POST', '/releases', 'admin', {
    pipeline: 'SampleApp', artifact: { version, path: artifact }, variables: { SITES_ROOT: sitesRoot },
  });
  await waitForRelease(created.id, 'prod awaiting approval', (summary) => stageStatus(summary, 'prod') === 'AwaitingPreApproval');
  return created.id;
}

async function signIn(page, who) {
  await page.goto(`${server.base}/`);
  await page.getByLabel('Token').fill(who);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

before(async () => {
  dataDir = join(work, 'data');
  usersFile = join(work, 'users.json');
  writeFileSync(usersFile, JSON.stringify({
    users: [
      { name: 'admin', roles: ['admin'], token_sha256: sha256(users.admin) },
      { name: 'release-manager', roles: ['approver'], token_sha256: sha256(users['release-manager']) },
    ],
  }), { mode: 0o600 });
  server = await startServer(dataDir, usersFile);

  // The release, as `cascade demo` makes it: an artifact whose index.html
  // holds the version, deployed to sites under SITES_ROOT.
  await call('PUT', '/pipelines/SampleApp', 'admin', JSON.parse(readFileSync(samplePipeline, 'utf8')));
  releaseId = await releaseToProdApproval(join(work, 'sites'));

  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
});

after(async () => {
  await context?.close();
  if (server && server.process.exitCode === null) server.process.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test('release-manager approves prod and watches it deploy live', { timeout: 120000 }, async () => {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  let documentLoads = 0;
  page.on('load', () => { documentLoads += 1; });

  await signIn(page, users['release-manager']);
  await assert.doesNotReject(page.locator('#whoami', { hasText: 'release-manager (approver)' }).waitFor());

  // The list, live, with the release waiting for approval.
  const row = page.locator(`tr[data-release="${releaseId}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /Waiting for approval/);
  const loadsBefore = documentLoads;
  await page.evaluate(() => { window.sameDocument = 'yes'; });

  // The release: prod awaits approval in the graph and in the banner.
  await row.getByRole('link', { name: releaseId }).click();
  const prod = page.locator('svg.pipeline-graph a[data-stage="prod"]');
  await page.locator('svg.pipeline-graph a[data-stage="prod"][data-status="AwaitingPreApproval"]').waitFor();
  assert.match(await prod.textContent(), /Awaiting approval/);
  for (const stage of ['dev', 'test', 'qa']) {
    assert.equal(await page.locator(`svg.pipeline-graph a[data-stage="${stage}"]`).getAttribute('data-status'), 'Succeeded');
  }
  assert.equal(await page.locator('svg.pipeline-graph path.edge').count(), 4, 'dev→test, dev→qa, test→prod, qa→prod');
  const banner = page.locator('.banner[data-stage="prod"]');
  assert.match(await banner.innerText(), /prod is awaiting approval before deployment/);
  assert.match(await banner.innerText(), /Approvers: release-manager · 0 of 1 approved/);

  // Approve with a comment; prod deploys and turns green on this same page.
  await banner.getByLabel('Comment').fill('ship it');
  await banner.getByRole('button', { name: 'Approve' }).click();
  await page.locator('svg.pipeline-graph a[data-stage="prod"][data-status="Succeeded"]').waitFor({ timeout: 60000 });
  assert.match(await prod.textContent(), /Succeeded/);
  assert.equal(await page.locator('.banner').count(), 0, 'the banner is gone once prod is approved');
  assert.equal(await page.evaluate(() => window.sameDocument), 'yes', 'the page was not reloaded');
  assert.equal(documentLoads, loadsBefore, 'no document was loaded');
  await page.locator('.release-head .badge', { hasText: 'Succeeded' }).waitFor();

  // The approval is the token's user's, with the comment (Summary tab).
  const summaryRow = page.locator('table.stages tr[data-stage="prod"]');
  await summaryRow.getByText('approved by release-manager').waitFor();
  assert.match(await summaryRow.innerText(), /ship it/);

  // prod's logs: its deploy step's output line.
  await prod.click();
  const deployLog = page.locator('section.step[data-step="deploy"] pre.log');
  await deployLog.getByText(`deployed ${version} to SampleApp-Prod`).waitFor();
  assert.match(page.url(), new RegExp(`#/releases/${releaseId}/logs/prod$`));

  mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });

  // The API agrees, and the site was deployed.
  const summary = await call('GET', `/releases/${releaseId}`, 'admin');
  assert.equal(summary.status, 'Succeeded');
  const approval = summary.stages.find((stage) => stage.name === 'prod').approvals[0];
  assert.equal(approval.approver, 'release-manager');
  assert.equal(approval.comment, 'ship it');
  assert.match(readFileSync(join(work, 'sites', 'SampleApp-Prod', 'index.html'), 'utf8'), new RegExp(version.replace(/[.+]/g, '\\$&')));
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test('the Events tab shows the audit timeline and its verification', { timeout: 60000 }, async () => {
  const page = await context.newPage();
  await signIn(page, users.admin);
  await page.goto(`${server.base}/#/releases/${releaseId}/events`);
  await page.locator('.verification.ok').waitFor();
  assert.match(await page.locator('.verification').innerText(), /release stream: ok — release-SampleApp-1: versions 1–\d+, every hash and link intact/);
  const rows = page.locator('table.events tbody tr');
  assert.ok(await rows.count() >= 20, 'every event of the release');
  assert.match(await rows.first().innerText(), /ReleaseCreated/);
  await page.close();
});

test('a wrong token shows the sign-in error and keeps nothing', { timeout: 60000 }, async () => {
  const page = await context.newPage();
  await signIn(page, 'not-a-valid-token');
  const error = page.locator('#sign-in-error');
  await error.waitFor();
  assert.match(await error.innerText(), /did not accept the token \(invalid token\)/);
  assert.ok(await page.getByLabel('Token').isVisible(), 'still on the sign-in form');
  assert.ok(await page.locator('#app-header').isHidden());
  assert.equal(await page.evaluate(() => sessionStorage.getItem('cascade.token')), null);
  await page.close();
});

test('the dashboard files are public, revalidated by ETag, and locked to this origin', { timeout: 30000 }, async () => {
  const first = await fetch(`${server.base}/`);
  assert.equal(first.status, 200);
  assert.match(first.headers.get('content-type'), /^text\/html/);
  assert.match(first.headers.get('content-security-policy'), /default-src 'self'/);
  assert.equal(first.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(first.headers.get('cache-control'), 'no-cache');
  const etag = first.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const again = await fetch(`${server.base}/`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  const script = await fetch(`${server.base}/assets/app.js`);
  assert.match(script.headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(`${server.base}/assets/nothing.js`)).status, 404);
  assert.equal((await fetch(`${server.base}/api/v1/releases`)).status, 401, 'the data still needs a token');
});

test('after the server restarts, the stream resumes from Last-Event-ID and misses nothing', { timeout: 120000 }, async () => {
  const page = await context.newPage();
  const resumedFrom = [];
  page.on('request', (request) => {
    if (request.url().endsWith('/api/v1/stream')) resumedFrom.push(request.headers()['last-event-id'] ?? null);
  });
  await signIn(page, users['release-manager']);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  // Created while the page watches, so the page has seen events (and their positions).
  const id = await releaseToProdApproval(join(work, 'sites-2'));
  await page.locator(`tr[data-release="${id}"]`, { hasText: 'Waiting for approval' }).waitFor();
  await page.evaluate((hash) => { location.hash = hash; }, `#/releases/${id}`);
  await page.locator('svg.pipeline-graph a[data-stage="prod"][data-status="AwaitingPreApproval"]').waitFor();
  await page.evaluate(() => { window.sameDocument = 'yes'; });

  // The server goes away; prod is approved and deployed meanwhile, offline.
  const port = new URL(server.base).port;
  server.process.kill('SIGTERM');
  assert.equal((await server.exited).code, 0, server.output());
  await page.locator('#live-status', { hasText: 'Reconnecting' }).waitFor();
  const offline = spawnSync(binary, ['approve', id, 'prod', '--data', dataDir, '--as', 'release-manager',
    '--comment', 'while the server was down'], { encoding: 'utf8', timeout: 60000 });
  assert.equal(offline.status, 0, `${offline.stdout}\n${offline.stderr}`);

  // Back on the same port: the page catches up by itself.
  server = await startServer(dataDir, usersFile, `127.0.0.1:${port}`);
  await page.locator('svg.pipeline-graph a[data-stage="prod"][data-status="Succeeded"]').waitFor({ timeout: 60000 });
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  assert.equal(await page.evaluate(() => window.sameDocument), 'yes', 'the page was not reloaded');
  assert.equal(resumedFrom[0], null, 'the first connection starts live');
  const resumed = resumedFrom.filter((position) => position !== null);
  assert.ok(resumed.length > 0 && resumed.every((position) => /^\d+$/.test(position)), `Last-Event-ID sent: ${resumedFrom}`);
  await page.close();
});

test('an admin overrides the approval of a stage they are no approver of', { timeout: 120000 }, async () => {
  const id = await releaseToProdApproval(join(work, 'sites-override'));
  const page = await context.newPage();
  await signIn(page, users.admin);
  await page.evaluate((hash) => { location.hash = hash; }, `#/releases/${id}`);
  const banner = page.locator('.banner[data-stage="prod"]');
  await banner.waitFor();
  // Without the override the admin is refused: the policy lists release-manager only.
  await banner.getByRole('button', { name: 'Approve' }).click();
  await banner.locator('.form-message.error', { hasText: 'is not an approver' }).waitFor();
  await banner.getByLabel('Override the approval policy (admin)').check();
  await banner.getByLabel('Comment').fill('hotfix, approver away');
  await banner.getByRole('button', { name: 'Approve' }).click();
  await page.locator('svg.pipeline-graph a[data-stage="prod"][data-status="Succeeded"]').waitFor({ timeout: 60000 });
  await page.locator('table.stages tr[data-stage="prod"]').getByText('approved by admin (admin override)').waitFor();
  const approval = (await call('GET', `/releases/${id}`, 'admin')).stages.find((stage) => stage.name === 'prod').approvals[0];
  assert.equal(approval.approver, 'admin');
  assert.equal(approval.override, true);
  await page.close();
});

test('the Logs tab follows a running step line by line', { timeout: 60000 }, async () => {
  // A step that prints, waits for a file the test creates, then prints again.
  const go = join(work, 'go');
  await call('PUT', '/pipelines/Talk', 'admin', {
    name: 'Talk',
    stages: [{ name: 'dev', trigger: { after_release: true }, steps: [
      { name: 'talk', run: `echo first line; while [ ! -e ${go} ]; do sleep 0.05; done; echo second line` },
    ] }],
  });
  const artifact = newArtifactDir();
  const created = await call('POST', '/releases', 'admin', { pipeline: 'Talk', artifact: { version: '1', path: artifact } });
  await waitForRelease(created.id, 'dev deploying', (summary) => stageStatus(summary, 'dev') === 'Deploying');

  const page = await context.newPage();
  await signIn(page, users.admin);
  await page.evaluate((hash) => { location.hash = hash; }, `#/releases/${created.id}/logs/dev`);
  const log = page.locator('section.step[data-step="talk"] pre.log');
  await log.getByText('first line').waitFor();
  assert.equal(await log.getByText('second line').count(), 0, 'the step has not printed it yet');
  await page.evaluate(() => { window.sameDocument = 'yes'; });
  writeFileSync(go, 'go\n');
  await log.getByText('second line').waitFor({ timeout: 30000 });
  assert.equal(await log.getByText('first line').count(), 1, 'each line once');
  assert.equal(await page.evaluate(() => window.sameDocument), 'yes', 'the page was not reloaded');
  await page.close();
});

test('cascade serve stops on SIGTERM with exit code 0', { timeout: 30000 }, async () => {
  server.process.kill('SIGTERM');
  const { code, signal } = await server.exited;
  assert.equal(signal, null, server.output());
  assert.equal(code, 0, server.output());
});
