/**
 * The web dashboard, live. First a plain WebSocket client on `/v1/live`
 * (what the page receives, and how fast); then the page itself in headless
 * Chromium (playwright-core driving Debian's /usr/bin/chromium): a 4-step
 * chain is submitted through the gateway, the run's DAG is watched turning
 * green step by step, the final page is checked, and the event-to-screen
 * latency the page recorded is reported.
 *
 * Latency = the time the DOM showed an event (`Date.now()` in the page, right
 * after the redraw that contains it) minus the event's `at` (stamped by the
 * coordinator when it appended the event). Browser and cluster run on this
 * machine, so both read one clock. It covers the JetStream append, the
 * delivery to observability, the push over the socket and the redraw.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { WebSocket } from 'ws';
import type { Browser, Page } from 'playwright-core';
import type { RunEvent } from '@muse/contracts';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const CHROMIUM = process.env.MUSE_CHROMIUM ?? '/usr/bin/chromium';
const STEPS = ['plan', 'build', 'review', 'ship'] as const;
const CHAIN = {
  name: 'dashboard-chain',
  steps: [
    { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.topic }}' },
    { id: 'build', tool: 'shell', command: 'sleep 0.3; echo built', needs: ['plan'] },
    { id: 'review', agent: 'reviewer', prompt: 'Review {{ steps.plan.output.text }}', needs: ['build'] },
    { id: 'ship', tool: 'shell', command: 'sleep 0.3; echo shipped', needs: ['review'] },
  ],
};
const ENV = { MUSE_LOCAL_PROVIDER_DELAY_MS: '400', MUSE_HEARTBEAT_MS: '500' };

interface Figures {
  n: number;
  median: number;
  p99: number;
  max: number;
}

function figures(ms: number[]): Figures {
  const xs = [...ms].sort((a, b) => a - b);
  const q = (p: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))]!;
  return { n: xs.length, median: q(0.5), p99: q(0.99), max: xs.at(-1)! };
}

async function submit(t: TestCluster, topic: string): Promise<string> {
  const res = await http(t.gateway, 'POST', '/v1/runs', { definition: CHAIN, input: { topic } });
  assert.equal(res.status, 202, res.text);
  return res.body.id as string;
}

async function eventsOf(t: TestCluster, id: string): Promise<RunEvent[]> {
  const res = await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`);
  assert.equal(res.status, 200, res.text);
  return res.body.items;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the /v1/live socket (a plain WebSocket client)', { timeout: 180_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster({ workers: 2, env: ENV });
  });
  after(async () => {
    await t?.stop();
  });

  test('sends a snapshot, then every event of every run with the run as it stands, within a second', async () => {
    const ws = new WebSocket(`${t.cluster.url('observability').replace(/^http/, 'ws')}/v1/live`);
    const messages: Array<{ msg: any; receivedAt: number }> = [];
    ws.on('message', (data) => messages.push({ msg: JSON.parse(String(data)), receivedAt: Date.now() }));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    try {
      await until(() => (messages.length > 0 ? true : undefined), 'the first message');
      assert.equal(messages[0]!.msg.type, 'snapshot');
      assert.equal(messages[0]!.msg.snapshot.namespace, t.namespace);

      const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => submit(t, `socket-${i}`)));
      for (const id of ids) assert.equal((await waitForRun(t.gateway, id)).status, 'succeeded');
      const logs = new Map<string, RunEvent[]>();
      for (const id of ids) logs.set(id, await eventsOf(t, id));
      const events = () => messages.filter((m) => m.msg.type === 'event');
      await until(() => (ids.every((id) => events().filter((m) => m.msg.event.runId === id).length >= logs.get(id)!.length) ? true : undefined), 'every event pushed');

      for (const id of ids) {
        const pushed = events().filter((m) => m.msg.event.runId === id);
        assert.deepEqual(pushed.map((m) => m.msg.event.seq), logs.get(id)!.map((e) => e.seq), `run ${id}: every event, once, in order`);
        const last = pushed.at(-1)!.msg;
        assert.equal(last.event.type, 'run.completed');
        assert.equal(last.run.status, 'succeeded');
        assert.deepEqual(last.run.steps.map((s: { id: string; needs?: string[] }) => [s.id, s.needs ?? []]), [['plan', []], ['build', ['plan']], ['review', ['build']], ['ship', ['review']]]);
        assert.ok(last.run.tokens.input > 0 && last.run.tokens.output > 0, 'the run carries its agent steps\' tokens');
      }
      assert.ok(messages.some((m) => m.msg.type === 'state' && m.msg.agents.length === 2), 'polls push the two agents');
      const f = figures(events().map((m) => m.receivedAt - Date.parse(m.msg.event.at)));
      console.log(`event-to-socket latency (Node client, ${f.n} events of 5 runs): median ${f.median} ms, p99 ${f.p99} ms, max ${f.max} ms`);
      assert.ok(f.p99 < 1000, `p99 ${f.p99} ms`);
    } finally {
      ws.close();
    }
  });
});

describe('the web dashboard in headless Chromium', { timeout: 240_000, skip: existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (Debian package chromium; MUSE_CHROMIUM names another)` }, () => {
  let t: TestCluster;
  let browser: Browser;
  let page: Page;
  let first: string;

  before(async () => {
    t = await startTestCluster({ workers: 2, env: ENV });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${t.cluster.url('observability')}/`);
    await page.waitForSelector('body[data-conn="live"]', { timeout: 15_000 });
    assert.deepEqual(errors, [], 'the page loads without script or CSP errors');
    // Records every state of the run view's DAG, independently of the page's own code.
    // (Page code as text: the test project compiles without the DOM library.)
    await page.evaluate(`(() => {
      window.__dagLog = [];
      const record = () => {
        const nodes = [...document.querySelectorAll('#dag g.node')].map((g) => [g.dataset.step, g.dataset.status]);
        window.__dagLog.push({ t: Date.now(), runId: document.getElementById('run-id')?.textContent ?? null, nodes });
      };
      new MutationObserver(record).observe(document.getElementById('runview'), { subtree: true, childList: true, attributes: true });
    })()`);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await t?.stop();
  });

  test('draws the chain\'s DAG and turns its steps green in order, live', async () => {
    first = await submit(t, 'browser');
    // The runs list shows it; clicking it selects it (the URL says which run the view shows).
    const row = page.locator(`#runs tr[data-run="${first}"]`);
    await row.waitFor({ timeout: 15_000 });
    await row.click();
    assert.equal(new URL(page.url()).hash, `#run=${first}`);
    await page.waitForSelector('#run-status[data-status="succeeded"]', { timeout: 60_000 });

    const log = (await page.evaluate('window.__dagLog')) as Array<{ t: number; runId: string; nodes: Array<[string, string]> }>;
    const states = log.filter((s) => s.runId === first).map((s) => Object.fromEntries(s.nodes));
    assert.ok(states.length > 0, 'the DAG of the run was drawn');
    // Step by step: for every k there was a moment when exactly the first k steps were green.
    for (let k = 0; k <= STEPS.length; k++) {
      const seen = states.some((st) => STEPS.every((id, i) => (st[id] === 'succeeded') === i < k));
      assert.ok(seen, `never saw exactly the first ${k} step(s) succeeded: ${JSON.stringify(states.map((st) => STEPS.map((id) => st[id])))}`);
    }
    // Green never turned back, and the order of first turning green is the chain's order.
    const greenAt = STEPS.map((id) => states.findIndex((st) => st[id] === 'succeeded'));
    assert.deepEqual([...greenAt].sort((a, b) => a - b), greenAt, `steps turned green at states ${greenAt.join(', ')}`);
    for (const id of STEPS) {
      assert.ok(states.some((st) => st[id] === 'running'), `${id} was shown running`);
      assert.ok(states.slice(states.findIndex((st) => st[id] === 'succeeded')).every((st) => st[id] === 'succeeded'), `${id} stayed green`);
    }
  });

  test('the final page: run, DAG layout, runs list, events, agents, queues, spend', async () => {
    const dag = await page.$$eval('#dag g.node', (gs) =>
      gs.map((g) => ({
        id: g.getAttribute('data-step'),
        status: g.getAttribute('data-status'),
        x: Number(/translate\(([\d.]+)/.exec(g.getAttribute('transform') ?? '')?.[1]),
      })),
    );
    assert.deepEqual(dag.map((n) => [n.id, n.status]), STEPS.map((id) => [id, 'succeeded']));
    assert.ok(dag.every((n, i) => i === 0 || n.x > dag[i - 1]!.x), `a chain is laid out in layers left to right: ${dag.map((n) => n.x).join(', ')}`);
    const edges = await page.$$eval('#dag path.edge', (ps) => ps.map((p) => `${p.getAttribute('data-from')}->${p.getAttribute('data-to')}`));
    assert.deepEqual(edges, ['plan->build', 'build->review', 'review->ship']);
    assert.equal(await page.textContent('#run-id'), first);
    assert.match((await page.textContent('#runview'))!, /dashboard-chain v\d+.*4\/4 steps succeeded · tokens \d+ in \/ \d+ out/);
    assert.equal(await page.getAttribute(`#runs tr[data-run="${first}"]`, 'data-status'), 'succeeded');
    const events = (await page.textContent('#events'))!;
    for (const type of ['run.created', 'run.started', 'step.queued', 'step.started', 'step.completed', 'run.completed']) assert.ok(events.includes(type), `events list shows ${type}`);
    assert.equal(await page.locator('#agents .agent').count(), 2);
    const roles = await page.$$eval('#queues tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
    for (const role of ['orchestrator', 'optimizer', 'reviewer', 'executor']) assert.ok(roles.includes(role), `queue row for ${role}`);
    assert.ok(Number(await page.textContent('#tokens-in')) > 0, 'spend shows input tokens');
    assert.ok(Number(await page.textContent('#tokens-out')) > 0, 'spend shows output tokens');
    assert.match((await page.textContent('#lat'))!, /event→screen p50 \d+ ms · p99 \d+ ms/);
  });

  test('event-to-screen latency: every event reaches the screen, p99 under a second', async () => {
    const more = await Promise.all(Array.from({ length: 6 }, (_, i) => submit(t, `latency-${i}`)));
    const ids = [first, ...more];
    for (const id of more) assert.equal((await waitForRun(t.gateway, id)).status, 'succeeded');
    const expected = new Map<string, number[]>();
    for (const id of ids) expected.set(id, (await eventsOf(t, id)).map((e) => e.seq));
    type Sample = { ms: number; runId: string; seq: number };
    const samples = await until(async () => {
      const got = (await page.evaluate('window.__museLatency')) as Sample[];
      return ids.every((id) => got.filter((s) => s.runId === id).length >= expected.get(id)!.length) ? got : undefined;
    }, 'every event of the 7 runs on screen');
    for (const id of ids) {
      assert.deepEqual(samples.filter((s) => s.runId === id).map((s) => s.seq), expected.get(id), `run ${id}: each event shown once, in order`);
    }
    const f = figures(samples.filter((s) => ids.includes(s.runId)).map((s) => s.ms));
    console.log(`event-to-screen latency (headless Chromium, ${f.n} events of ${ids.length} runs): median ${f.median} ms, p99 ${f.p99} ms, max ${f.max} ms`);
    assert.ok(f.median >= 0, 'clocks agree (same machine)');
    assert.ok(f.p99 < 1000, `p99 ${f.p99} ms`);
  });
});
