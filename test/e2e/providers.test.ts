/**
 * Model providers end to end: a cluster (every service its own process, real
 * NATS and Redis) whose agent worker calls a failover chain
 * [fake OpenAI server → fake Anthropic server] configured by
 * MUSE_PROVIDERS_CONFIG. The fake servers speak the real wire protocols
 * (SSE streaming) to the official SDKs; the test makes the first one fail
 * (500, hang, 429) and checks the failover is recorded in the step's events,
 * that the first provider's breaker opens, skips it, half-opens and closes,
 * and that the worker's metrics say so.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunEvent, RunView, StepProgress } from '@muse/contracts';
import { FakeModelServer } from '@muse/providers/testing';
import { http, startTestCluster, StreamRecorder, waitForRun, type TestCluster } from '../support/harness.js';

/** Breaker settings short enough to drive in a test: opens after 3 failures in a row, trial call after 1.5 s. */
const OPEN_MS = 1_500;
const WORKFLOW = {
  name: 'ask',
  steps: [{ id: 'ask', agent: 'reviewer', prompt: 'Review change {{ input.n }} of the retry module' }],
  output: '{{ steps.ask.output.text }}',
};

interface AskOutput {
  text: string;
  model: string;
  provider: string;
  usage: { inputTokens: number; outputTokens: number };
  fallbacks?: Array<{ provider: string; code: string; message: string }>;
}

describe('providers: failover chain and circuit breaker end to end', { timeout: 180_000 }, () => {
  let t: TestCluster;
  let oa: FakeModelServer;
  let an: FakeModelServer;
  let n = 0;
  let dir: string | undefined;

  before(async () => {
    oa = await FakeModelServer.start('openai', { apiKey: 'sk-fake-openai' });
    an = await FakeModelServer.start('anthropic', { apiKey: 'sk-fake-anthropic' });
    const config = {
      providers: {
        oa: {
          type: 'openai', baseUrl: oa.baseUrl, apiKeyEnv: 'TEST_FAKE_OPENAI_KEY', model: 'gpt-fake',
          timeoutMs: 4_000, maxAttempts: 1, maxRetryWaitMs: 500, breaker: { consecutiveFailures: 3, openMs: OPEN_MS },
        },
        an: { type: 'anthropic', baseUrl: an.baseUrl, apiKeyEnv: 'TEST_FAKE_ANTHROPIC_KEY', model: 'claude-fake', timeoutMs: 5_000 },
      },
      chains: { default: ['oa', 'an'] },
    };
    dir = mkdtempSync(join(tmpdir(), 'muse-providers-e2e-'));
    const file = join(dir, 'providers.json');
    writeFileSync(file, JSON.stringify(config));
    t = await startTestCluster({
      // One worker: breakers live in the worker process, so one process sees every call.
      workers: 1,
      env: { MUSE_PROVIDERS_CONFIG: file, TEST_FAKE_OPENAI_KEY: 'sk-fake-openai', TEST_FAKE_ANTHROPIC_KEY: 'sk-fake-anthropic' },
    });
    const reg = await http(t.gateway, 'POST', '/v1/workflows', WORKFLOW);
    assert.equal(reg.status, 201, reg.text);
  });

  after(async () => {
    await t?.stop();
    await oa?.close();
    await an?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function ask(): Promise<{ run: RunView; out: AskOutput; prompt: string; events: RunEvent[] }> {
    n += 1;
    const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'ask', input: { n } });
    assert.equal(res.status, 202, res.text);
    const run = await waitForRun(t.gateway, res.body.id, 30_000);
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${run.id}/events`)).body.items;
    const out = run.steps.find((s) => s.id === 'ask')!.output as AskOutput;
    return { run, out, prompt: `Review change ${n} of the retry module`, events };
  }

  async function workerMetric(name: string, labels: Record<string, string>): Promise<number> {
    const worker = t.cluster.processes.find((p) => p.opts.service === 'agent-worker')!;
    const text = (await http(worker.url, 'GET', '/metrics')).text;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
    }
    return 0;
  }

  test('a healthy first provider answers, streamed over the OpenAI protocol with the configured model and key', async () => {
    const { run, out, prompt } = await ask();
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(out.provider, 'oa');
    assert.equal(out.model, 'gpt-fake');
    assert.equal(out.text, FakeModelServer.replyText('openai', prompt));
    assert.equal(out.fallbacks, undefined);
    assert.ok(out.usage.inputTokens > 0 && out.usage.outputTokens > 0);
    const req = oa.requests.at(-1)!;
    assert.equal(req.body['stream'], true);
    assert.equal(req.body['model'], 'gpt-fake');
    assert.equal(an.requests.length, 0);
  });

  for (const [what, behaviour, code] of [
    ['returns 500s', { kind: 'status', status: 500 }, 'MUSE_ERR_STEP_PROVIDER'],
    ['times out', { kind: 'hang' }, 'MUSE_ERR_PROVIDER_TIMEOUT'],
    ['rate-limits with a long Retry-After', { kind: 'status', status: 429, retryAfter: '60' }, 'MUSE_ERR_PROVIDER_RATE_LIMITED'],
  ] as const) {
    test(`the first provider ${what}: the Anthropic one answers and the fallback is in step.completed`, async () => {
      oa.respondWith(behaviour);
      const before = an.requests.length;
      const { run, out, prompt, events } = await ask();
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.equal(out.provider, 'an');
      assert.equal(out.model, 'claude-fake');
      assert.equal(out.text, FakeModelServer.replyText('anthropic', prompt));
      assert.deepEqual(out.fallbacks?.map((f) => [f.provider, f.code]), [['oa', code]]);
      assert.equal(an.requests.length, before + 1);
      const completed = events.find((e) => e.type === 'step.completed')!;
      assert.deepEqual((completed.data as { output: AskOutput }).output.fallbacks, out.fallbacks);
      assert.ok((await workerMetric('muse_provider_fallbacks_total', { role: 'reviewer', provider: 'oa', code })) >= 1);
    });
  }

  test("the first provider's breaker opens after 3 failures in a row, skips it, half-opens after openMs and closes", async () => {
    // Start from a closed breaker with a zero failure count: wait out any open period, then one success.
    oa.respondWith({ kind: 'ok' });
    await new Promise((r) => setTimeout(r, OPEN_MS + 200));
    assert.equal((await ask()).out.provider, 'oa');
    assert.equal(await workerMetric('muse_provider_breaker_state', { provider: 'oa' }), 0);

    oa.respondWith({ kind: 'status', status: 503 });
    for (let i = 0; i < 3; i++) assert.equal((await ask()).out.provider, 'an');
    assert.equal(await workerMetric('muse_provider_breaker_state', { provider: 'oa' }), 2, 'open');

    // Open: the first provider is healthy again but not even called.
    oa.respondWith({ kind: 'ok' });
    const calls = oa.requests.length;
    const skipped = await ask();
    assert.equal(skipped.out.provider, 'an');
    assert.deepEqual(skipped.out.fallbacks?.map((f) => f.code), ['MUSE_ERR_PROVIDER_CIRCUIT_OPEN']);
    assert.equal(oa.requests.length, calls);

    // After openMs one trial call goes through (half-open); it succeeds, so the breaker closes.
    await new Promise((r) => setTimeout(r, OPEN_MS + 200));
    const healed = await ask();
    assert.equal(healed.out.provider, 'oa');
    assert.equal(healed.out.fallbacks, undefined);
    assert.equal(oa.requests.length, calls + 1);
    assert.equal(await workerMetric('muse_provider_breaker_state', { provider: 'oa' }), 0, 'closed');
  });

  test('token deltas stream to a WebSocket subscriber as progress messages while the step runs, before step.completed', async () => {
    // A slow stream: the first byte after 800 ms (time to subscribe), then 120 words (~1000 characters, more than the
    // 256 the worker holds back for the secret scrubber), one every 15 ms.
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
    oa.respondWith({ kind: 'slow', delayMs: 800, text: long });
    oa.chunkDelayMs = 15;
    try {
      n += 1;
      const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'ask', input: { n } });
      assert.equal(res.status, 202, res.text);
      const ws = await StreamRecorder.open(t.gateway);
      ws.send({ op: 'subscribe', runId: res.body.id });
      await ws.until((r) => r.events.some((e) => e.type === 'run.completed' || e.type === 'run.failed'));
      // Progress (core NATS, worker -> gateway) and run events (run log -> gateway) reach the socket by different
      // paths, so the last delta may land just after run.completed: wait (bounded) until the deltas cover the text.
      const streamed = (r: StreamRecorder) => r.messages.filter((m) => m.type === 'progress').reduce((n, m) => n + (m as unknown as { progress: StepProgress }).progress.text.length, 0);
      await ws.until((r) => streamed(r) >= long.length, 5_000).catch(() => undefined); // the assertions below say what is missing
      ws.close();
      const run = await waitForRun(t.gateway, res.body.id);
      const out = run.steps[0]!.output as AskOutput;
      assert.equal(out.provider, 'oa');
      assert.equal(out.text, long);
      const progress = ws.messages.filter((m) => m.type === 'progress').map((m) => (m as unknown as { progress: StepProgress }).progress);
      assert.ok(progress.length >= 3, `several throttled progress messages, got ${progress.length}`);
      assert.deepEqual(progress.map((p) => p.chunk), progress.map((_, i) => i + 1));
      assert.ok(progress.every((p) => p.runId === run.id && p.stepId === 'ask' && p.attempt === 1));
      assert.equal(progress.map((p) => p.text).join(''), out.text, 'the deltas add up to the output');
      const firstProgress = ws.messages.findIndex((m) => m.type === 'progress');
      const completed = ws.messages.findIndex((m) => m.type === 'event' && (m as unknown as { event: RunEvent }).event.type === 'step.completed');
      assert.ok(firstProgress >= 0 && firstProgress < completed, 'progress arrives while the step runs');
    } finally {
      oa.respondWith({ kind: 'ok' });
      oa.chunkDelayMs = 0;
    }
  });

  test('every provider rejecting: the step fails, not retryably, with every fallback in the error', async () => {
    oa.respondWith({ kind: 'status', status: 400 });
    an.respondWith({ kind: 'status', status: 400 });
    try {
      const { run, events } = await ask();
      assert.equal(run.status, 'failed');
      const failed = events.find((e) => e.type === 'step.failed')!;
      const error = (failed.data as { error: { code: string; retryable: boolean; details: { fallbacks: Array<{ provider: string }> } } }).error;
      assert.equal(error.code, 'MUSE_ERR_PROVIDER_REJECTED');
      assert.equal(error.retryable, false);
      assert.deepEqual(error.details.fallbacks.map((f) => f.provider), ['oa', 'an']);
    } finally {
      oa.respondWith({ kind: 'ok' });
      an.respondWith({ kind: 'ok' });
    }
  });
});
