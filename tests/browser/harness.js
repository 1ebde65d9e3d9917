// What the browser tests share: a `cascade serve` on a temporary data
// directory and an ephemeral port with a users file written here, API calls
// as a named user, polling the API (never a fixed sleep) and Chromium.
//
// Environment: CASCADE_BINARY (the `cascade` program, required),
// CASCADE_BROWSER_OUT (where screenshots go; default a temporary folder).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const binary = process.env.CASCADE_BINARY;
if (!binary) throw new Error('set CASCADE_BINARY to the path of the cascade program (ctest does)');

// The network here is closed: without these Chromium waits on lookups.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// A server with `roles` ({name: [role…]}) as its users; returns
// {base, work, dataDir, tokens, call, waitForRelease, newArtifactDir, outDir, launch, stop}.
export async function startHarness(roles) {
  const work = mkdtempSync(join(tmpdir(), 'cascade-browser-'));
  // As root, steps run as cascade-step, who must pass through to the data
  // dir's work/ and write here; the data dir guards itself.
  if (process.geteuid() === 0) chmodSync(work, 0o1777);
  const outDir = process.env.CASCADE_BROWSER_OUT ?? join(work, 'out');
  mkdirSync(outDir, { recursive: true });
  const dataDir = join(work, 'data');
  const usersFile = join(work, 'users.json');
  const tokens = Object.fromEntries(Object.keys(roles).map((name) => [name, randomBytes(32).toString('hex')]));
  writeFileSync(usersFile, JSON.stringify({
    users: Object.entries(roles).map(([name, userRoles]) => ({ name, roles: userRoles, token_sha256: sha256(tokens[name]) })),
  }), { mode: 0o600 });

  const stepUser = process.geteuid() === 0 ? ['--step-user', 'cascade-step'] : [];
  const child = spawn(binary, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--users', usersFile, ...stepUser],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let output = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cascade serve printed no port within 20 s:\n${output}`)), 20000);
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`cascade serve exited with ${code} before listening:\n${output}`));
    });
  });

  // The answer, or throws with the server's error.
  async function call(method, path, user, body) {
    const response = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${tokens[user]}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      const error = new Error(`${method} ${path}: HTTP ${response.status} ${JSON.stringify(answer)}`);
      error.status = response.status;
      error.answer = answer;
      throw error;
    }
    return answer;
  }

  // Polls the API until `done(summary)` or the deadline.
  async function waitForRelease(id, what, done, timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    let summary;
    while (Date.now() < deadline) {
      summary = await call('GET', `/releases/${id}`, Object.keys(roles)[0]);
      if (done(summary)) return summary;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`release ${id}: no ${what} within ${timeoutMs} ms; last summary ${JSON.stringify(summary)}`);
  }

  // Polls `probe()` until it returns something truthy (read models trail the
  // log by a moment: a page opened after an event must find it there).
  async function until(what, probe, timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  // A fresh artifact directory inside the server's artifacts root.
  function newArtifactDir(files = {}) {
    mkdirSync(join(dataDir, 'artifacts'), { recursive: true });
    const artifact = mkdtempSync(join(dataDir, 'artifacts', 'artifact-'));
    chmodSync(artifact, 0o755);  // mkdtemp's 0700 would keep it from the step user
    for (const [name, text] of Object.entries(files)) writeFileSync(join(artifact, name), text);
    return artifact;
  }

  let context = null;
  async function launch() {
    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 },
    });
    return context;
  }

  // A new page signed in as `user`, collecting page errors in page.errors.
  async function signedIn(user) {
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (error) => page.errors.push(error.message));
    await page.goto(`${base}/`);
    await page.getByLabel('Token').fill(tokens[user]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#whoami', { hasText: user }).waitFor();
    return page;
  }

  async function stop() {
    await context?.close();
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  }

  return { base, work, dataDir, tokens, outDir, call, until, waitForRelease, newArtifactDir, launch, signedIn, stop, output: () => output };
}

export const stageOf = (summary, name) => summary.stages.find((stage) => stage.name === name);
