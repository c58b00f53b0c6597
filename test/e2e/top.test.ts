/**
 * `muse top` in a real terminal: tmux runs it in a detached session (its own
 * tmux server socket, so nothing else's sessions are touched) against a test
 * cluster; the test reads the screen with `tmux capture-pane -p` while a
 * workflow runs, and presses `q` at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@muse/cluster';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const run = promisify(execFile);

const CHAIN = {
  name: 'top-chain',
  steps: [
    { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.topic }}' },
    { id: 'build', tool: 'shell', command: 'sleep 0.5; echo built', needs: ['plan'] },
    { id: 'review', agent: 'reviewer', prompt: 'Review {{ steps.plan.output.text }}', needs: ['build'] },
  ],
};

describe('muse top under tmux', { timeout: 180_000 }, () => {
  let t: TestCluster;
  let socket: string;
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args], { timeout: 10_000 });
  const screen = async () => (await tmux('capture-pane', '-p', '-t', 'top')).stdout;
  /** Polls the screen until `ok` holds; returns every distinct screen seen on the way. */
  async function waitForScreen(ok: (s: string) => boolean, what: string, timeoutMs = 30_000): Promise<string[]> {
    const seen: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await screen();
      if (seen.at(-1) !== s) seen.push(s);
      if (ok(s)) return seen;
      if (Date.now() > deadline) assert.fail(`the screen never showed ${what}; last screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  before(async () => {
    t = await startTestCluster({ workers: 1, env: { MUSE_LOCAL_PROVIDER_DELAY_MS: '400', MUSE_HEARTBEAT_MS: '500' } });
    socket = `muse-top-${t.namespace}`;
    const cmd = [process.execPath, join(REPO_ROOT, 'apps', 'cli', 'dist', 'main.js'), 'top', '--url', t.cluster.url('observability'), '--interval', '500']
      .map((w) => `'${w.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    await tmux('new-session', '-d', '-s', 'top', '-x', '160', '-y', '60', cmd);
  });

  after(async () => {
    await tmux('kill-server').catch(() => undefined);
    await t?.stop();
  });

  test('shows the namespace, the live agent and every role queue', async () => {
    const seen = await waitForScreen((s) => s.includes('Agent Status (1 alive)') && s.includes('agent-worker-1'), 'the agent');
    const s = seen.at(-1)!;
    assert.match(s, new RegExp(`Muse top ─ ${t.namespace} ─ `));
    assert.match(s, /Queue Status/);
    for (const role of ['orchestrator', 'optimizer', 'reviewer', 'executor']) assert.match(s, new RegExp(`│ ${role}\\s+\\d+\\s+\\d+\\s+\\d+`), `queue row of ${role}`);
    assert.match(s, /agent-worker-1\s+(IDLE|ACTIVE|FULL)/);
    assert.match(s, /q quit/);
  });

  test('follows a run live: running, then succeeded with its events', async () => {
    const submitted = await http(t.gateway, 'POST', '/v1/runs', { definition: CHAIN, input: { topic: 'top' } });
    assert.equal(submitted.status, 202, submitted.text);
    const id: string = submitted.body.id;
    const runRow = (status: string) => new RegExp(`${status}\\s+${id}\\s+top-chain v\\d+`);
    const seen = await waitForScreen((s) => runRow('SUCCEEDED').test(s) && new RegExp(`run\\.completed\\s+${id}`).test(s), `run ${id} succeeded`);
    const final = seen.at(-1)!;
    assert.match(final, new RegExp(`SUCCEEDED\\s+${id}\\s+top-chain v\\d+\\s+3/3 steps`));
    for (const step of ['plan', 'build', 'review']) {
      assert.match(final, new RegExp(`step.completed\\s+${id} ${step}#1 agent=agent-worker-1`), `the ${step} completion is listed`);
    }
    assert.match(final, new RegExp(`step.queued\\s+${id} build#1 role=executor`));
    // The screen refreshed while the run went on: it showed the run running before it showed it done.
    assert.ok(seen.some((s) => runRow('RUNNING').test(s)), 'the run was seen running');
    assert.ok(seen.length >= 3, `only ${seen.length} distinct screens`);
    assert.equal((await waitForRun(t.gateway, id)).status, 'succeeded');
  });

  test('q quits and leaves the terminal (the session ends)', async () => {
    await tmux('send-keys', '-t', 'top', 'q');
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      alive = await tmux('has-session', '-t', 'top').then(() => true, () => false);
      if (alive) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(alive, false, 'muse top still runs after q');
  });
});
