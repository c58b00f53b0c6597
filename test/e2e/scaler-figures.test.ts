/**
 * The scaler's figures for the issue note (issue 6), measured on real
 * processes: (1) from the executor queue crossing the scale-up threshold to
 * the first job taken by a worker the scaler started for it, median of
 * several; (2) worker-seconds of a 500-step burst under the `queueDepth`
 * policy (min 1, max 4) against a fixed pool at max (min = max = 4), over the
 * burst and a 30 s horizon after it.
 *
 * It takes about five minutes and keeps both cores busy, so `npm test` skips
 * it; run it with `MUSE_SCALER_FIGURES=1 node --test test/dist/e2e/scaler-figures.test.js`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { museNames, type RunEvent, type RunView } from '@muse/contracts';
import { createRedis, StepQueues } from '@muse/queues';
import { http, processAlive as isAlive, REDIS_URL, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const STEP_MS = 200;
const HORIZON_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pools(min: number, max: number): string {
  return `
[orchestration.scaling.defaults]
min_pool_size = 0
max_pool_size = 1
[orchestration.scaling.executor]
min_pool_size = ${min}
max_pool_size = ${max}
scale_up_threshold = 10
scale_down_threshold = 2
cooldown_secs = 5
idle_timeout_mins = ${10 / 60}
`;
}

async function withCluster<T>(min: number, max: number, fn: (t: TestCluster, h: Helpers) => Promise<T>): Promise<T> {
  const scratch = mkdtempSync(join(tmpdir(), 'muse-scaler-figures-'));
  writeFileSync(join(scratch, 'pools.toml'), pools(min, max));
  const t = await startTestCluster({
    workers: 0,
    env: { MUSE_LOCAL_PROVIDER_DELAY_MS: String(STEP_MS), MUSE_AGENT_CONCURRENCY: '1', MUSE_HEARTBEAT_MS: '500' },
    serviceEnv: { scaler: { MUSE_SCALER_DRIVER: 'local', MUSE_SCALER_INTERVAL_MS: '500', MUSE_SCALER_CONFIG: join(scratch, 'pools.toml') } },
  });
  const names = museNames(t.namespace);
  const redis = createRedis(REDIS_URL);
  const queues = new StepQueues(redis, names);
  const h: Helpers = {
    queues,
    /** Worker processes of the pool alive now, draining ones included: they still hold their memory. */
    alive: async () => {
      const raw = await redis.hgetall(names.scalerWorkersKey);
      return Object.entries(raw)
        .map(([agentId, json]) => ({ agentId, ...(JSON.parse(json) as { pid: number; stoppingAt?: string }) }))
        .filter((w) => isAlive(w.pid));
    },
  };
  try {
    return await fn(t, h);
  } finally {
    await queues.close();
    await redis.quit();
    await t.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

interface Helpers {
  queues: StepQueues;
  alive: () => Promise<Array<{ agentId: string; pid: number; stoppingAt?: string }>>;
}

async function until<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(everyMs);
  }
}

async function submit(t: TestCluster, name: string, n: number): Promise<string> {
  const res = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', {
    definition: { name, steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, agent: 'executor', prompt: `item ${i}` })) },
  });
  assert.equal(res.status, 202, res.text);
  return res.body.id;
}

/** Integrates the number of live pool workers over time until `stop()` says so; in worker-seconds. */
async function integrate(h: Helpers, stop: () => boolean): Promise<number> {
  let ws = 0;
  let last = Date.now();
  let n = (await h.alive()).length;
  while (!stop()) {
    await sleep(100);
    const now = Date.now();
    ws += (n * (now - last)) / 1000;
    last = now;
    n = (await h.alive()).length;
  }
  return ws;
}

test('figures: threshold -> first job on a new worker; worker-seconds of a 500-step burst', { skip: process.env.MUSE_SCALER_FIGURES ? false : 'takes ~5 min of both cores: set MUSE_SCALER_FIGURES=1', timeout: 600_000 }, async () => {
  // (1) Latency, five times: pool at min, a burst of 40 steps, the first job on a worker other than the one that was there.
  const latencies = await withCluster(1, 4, async (t, h) => {
    const out: number[] = [];
    for (let i = 0; i < 5; i++) {
      await until(async () => (await h.alive()).length === 1, 60_000, 200);
      const [old] = await h.alive();
      const id = await submit(t, `lat-${i}`, 40);
      const crossedAt = await until(async () => ((await h.queues.depth('executor')).waiting > 10 ? Date.now() : undefined), 10_000, 10);
      const run = (await waitForRun(t.gateway, id, 120_000)) as RunView;
      assert.equal(run.status, 'succeeded');
      const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
      const firstNew = Math.min(
        ...events.filter((e) => e.type === 'step.started' && (e.data as { agentId: string }).agentId !== old!.agentId).map((e) => Date.parse((e.data as { startedAt: string }).startedAt)),
      );
      out.push(firstNew - crossedAt);
    }
    return out;
  });
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(`# FIGURE threshold crossing -> first job on a new worker (ms): ${latencies.join(', ')}; median ${sorted[2]}`);

  // (2) Worker-seconds of 500 steps (5 runs of 100), policy vs fixed at max.
  const burst = async (min: number, max: number) =>
    withCluster(min, max, async (t, h) => {
      await until(async () => (await h.alive()).length === min, 60_000, 200);
      await sleep(2_000);
      const started = Date.now();
      const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => submit(t, `burst-${i}`, 100)));
      let doneAt = 0;
      const finished = Promise.all(ids.map((id) => waitForRun(t.gateway, id, 300_000))).then((runs) => {
        doneAt = Date.now();
        return runs;
      });
      const during = await integrate(h, () => doneAt > 0);
      const runs = await finished;
      assert.ok(runs.every((r) => r.status === 'succeeded' && r.steps.every((s) => s.attempts === 1)));
      const horizonEnd = doneAt + HORIZON_MS;
      const after = await integrate(h, () => Date.now() >= horizonEnd);
      return { makespanS: (doneAt - started) / 1000, during, after, total: during + after };
    });
  const policy = await burst(1, 4);
  const fixed = await burst(4, 4);
  const useful = (500 * STEP_MS) / 1000;
  const waste = (r: { total: number }) => r.total - useful;
  const saved = 1 - waste(policy) / waste(fixed);
  const f = (x: number) => x.toFixed(1);
  console.log(
    `# FIGURE 500 x ${STEP_MS} ms steps (${useful} worker-s of work): policy makespan ${f(policy.makespanS)} s, ${f(policy.during)} worker-s during + ${f(policy.after)} in the ${HORIZON_MS / 1000} s after = ${f(policy.total)}; ` +
      `fixed at 4: makespan ${f(fixed.makespanS)} s, ${f(fixed.during)} + ${f(fixed.after)} = ${f(fixed.total)}; waste (total - work) ${f(waste(policy))} vs ${f(waste(fixed))}: ${(saved * 100).toFixed(0)} % less`,
  );
  assert.ok(policy.total < fixed.total, 'the policy used fewer worker-seconds');
});
