/**
 * The dashboard's script run in a bare `vm` context with a stand-in DOM and
 * WebSocket: what it draws from a snapshot and from pushed events, and the
 * latency samples it records. (The real browser test is
 * test/e2e/dashboard-browser.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.page.js';
import type { Snapshot, SnapshotRun } from './snapshot.schema.js';

const SCRIPT = /<script>([\s\S]*)<\/script>/.exec(DASHBOARD_HTML)![1]!;

function page() {
  const els: Record<string, { innerHTML: string; textContent: string; className: string }> = {};
  const frames: Array<() => void> = [];
  const sockets: Array<{ url: string; onopen?: () => void; onmessage?: (m: { data: string }) => void; onclose?: () => void }> = [];
  const ctx: Record<string, unknown> = {
    document: {
      hidden: false,
      getElementById: (id: string) => (els[id] ??= { innerHTML: '', textContent: '', className: '' }),
      addEventListener: () => undefined,
      body: { setAttribute: () => undefined },
    },
    location: { protocol: 'http:', host: 'obs:3004', pathname: '/muse/', hash: '' },
    WebSocket: function (this: { url: string }, url: string) {
      this.url = url;
      sockets.push(this);
    },
    requestAnimationFrame: (f: () => void) => frames.push(f),
    addEventListener: () => undefined,
    fetch: () => new Promise(() => undefined),
    setTimeout,
    setInterval,
    clearInterval,
  };
  ctx.window = ctx;
  runInNewContext(SCRIPT, ctx);
  const flush = () => frames.splice(0).forEach((f) => f());
  const send = (msg: unknown) => sockets[0]!.onmessage!({ data: JSON.stringify(msg) });
  return { els, flush, send, sockets, ctx };
}

const run = (statuses: string[]): SnapshotRun => ({
  id: 'run_1',
  project: 'default',
  workflow: { name: 'chain', version: 1 },
  status: statuses.every((s) => s === 'succeeded') ? 'succeeded' : 'running',
  updatedAt: new Date().toISOString(),
  seq: 3,
  steps: ['a', 'b', 'c'].map((id, i) => ({ id, status: statuses[i] as 'pending', attempts: 1, ...(i > 0 ? { needs: [['a', 'b', 'c'][i - 1]!] } : {}) })),
  tokens: { input: 12, output: 34 },
});

const snapshot = (r: SnapshotRun): Snapshot => ({
  generatedAt: new Date().toISOString(),
  namespace: 'muse',
  runs: { byStatus: { pending: 0, running: 1, waiting: 0, succeeded: 0, failed: 0, cancelled: 0 }, active: 1, recent: [r] },
  events: [],
  agents: [],
  queues: [{ role: 'executor', waiting: 1, active: 0, delayed: 0 }],
  totals: { since: new Date().toISOString(), runsStarted: 1, runsSucceeded: 0, runsFailed: 0, runsCancelled: 0, stepsCompleted: 0, stepsFailed: 0, stepsRetried: 0, eventsSeen: 3, duplicatesIgnored: 0 },
  spend: { inputTokens: 12, outputTokens: 34, byModel: [{ model: 'muse-local', inputTokens: 12, outputTokens: 34, steps: 1 }] },
});

test('the CSP pins the inline script by its hash', () => {
  const hash = createHash('sha256').update(SCRIPT).digest('base64');
  assert.ok(DASHBOARD_CSP.includes(`'sha256-${hash}'`));
});

test('connects to v1/live beside the page, draws the DAG from the snapshot, then redraws on each pushed event', () => {
  const p = page();
  assert.equal(p.sockets[0]!.url, 'ws://obs:3004/muse/v1/live');
  p.sockets[0]!.onopen!();
  p.send({ type: 'snapshot', sentAt: new Date().toISOString(), snapshot: snapshot(run(['running', 'pending', 'pending'])) });
  p.flush();
  const view = p.els.runview!.innerHTML;
  assert.match(view, /data-step="a" data-status="running" transform="translate\(12,12\)"/);
  assert.match(view, /data-step="b" data-status="pending" transform="translate\(218,12\)"/, 'b is one layer right of a');
  assert.match(view, /data-from="a" data-to="b"/);
  assert.match(view, /data-from="b" data-to="c"/);
  assert.match(p.els.runs!.innerHTML, /data-run="run_1"/);
  assert.match(p.els.spend!.innerHTML, /id="tokens-in">12</);

  const at = new Date(Date.now() - 40).toISOString();
  p.send({
    type: 'event',
    sentAt: new Date().toISOString(),
    event: { id: 'e4', runId: 'run_1', seq: 4, type: 'step.completed', at, stepId: 'a' },
    run: run(['succeeded', 'queued', 'pending']),
    runs: { byStatus: { running: 1 }, active: 1 },
    totals: snapshot(run([])).totals,
    spend: snapshot(run([])).spend,
  });
  assert.match(p.els.runview!.innerHTML, /data-step="a" data-status="running"/, 'nothing is drawn before the next frame');
  p.flush();
  assert.match(p.els.runview!.innerHTML, /data-step="a" data-status="succeeded"/);
  assert.match(p.els.runview!.innerHTML, /data-step="b" data-status="queued"/);
  assert.match(p.els.events!.innerHTML, /step\.completed/);
  const samples = (p.ctx as { __museLatency: Array<{ ms: number; seq: number }> }).__museLatency;
  assert.equal(samples.length, 1);
  assert.equal(samples[0]!.seq, 4);
  assert.ok(samples[0]!.ms >= 40 && samples[0]!.ms < 5_000, `latency ${samples[0]!.ms} ms`);
  assert.match(p.els.lat!.textContent, /p50 \d+ ms/);
});

test('user data is escaped before it reaches innerHTML', () => {
  const p = page();
  p.sockets[0]!.onopen!();
  const evil = { ...run(['pending', 'pending', 'pending']), id: '<img src=x onerror=alert(1)>' };
  evil.steps = [{ id: '<script>x</script>', status: 'pending', attempts: 0 }];
  p.send({ type: 'snapshot', sentAt: new Date().toISOString(), snapshot: snapshot(evil) });
  p.flush();
  for (const el of ['runs', 'runview']) {
    assert.ok(!p.els[el]!.innerHTML.includes('<img'), el);
    assert.ok(!p.els[el]!.innerHTML.includes('<script>'), el);
  }
});
