/** The REST API under load, driven by autocannon. */
import autocannon from 'autocannon';
import { createRedis } from '@muse/queues';
import { jsPublishRate } from '../baselines.js';
import { register, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { percentile, summarize } from '../stats.js';

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export async function acceptRate(ctx: BenchContext): Promise<Row> {
  // A role no worker serves: the runs are accepted and queued, and nothing else competes for the CPU.
  await register(ctx, { name: 'bench-accept', steps: [{ id: 'parked', agent: 'bench-parked', prompt: 'never runs' }] });
  const rates: number[] = [];
  const p99s: number[] = [];
  const duration = ctx.quick ? 1 : 5;
  for (let rep = 0; rep <= ctx.reps; rep++) {
    const res = await run({
      url: `${ctx.gateway}/v1/runs`,
      method: 'POST',
      connections: 20,
      duration,
      headers: ctx.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ workflow: 'bench-accept', input: {} }),
    });
    if (res.non2xx > 0) ctx.log(`accept: ${res.non2xx} non-2xx answers`);
    if (rep === 0) continue;
    rates.push(res.requests.average);
    p99s.push(res.latency.p99);
  }
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push((await jsPublishRate(ctx, ctx.quick ? 1_000 : 10_000, 20)).rate);
  const muse = summarize(rates);
  const p99 = summarize(p99s).median;
  const baseline = summarize(base);
  return {
    scenario: 'POST /v1/runs accepted per second (durable)',
    unit: 'runs/s',
    muse,
    extra: { p99ms: p99 },
    baseline,
    baselineLabel: 'JetStream acked publishes/s',
    ratio: muse.median / baseline.median,
    target: '≥ 3000/s, p99 ≤ 20 ms',
    met: muse.median >= 3000 && p99 <= 20,
  };
}

export async function readUnderLoad(ctx: BenchContext): Promise<Row> {
  await register(ctx, { name: 'bench-one', steps: [{ id: 'only', agent: 'executor', prompt: 'x' }] });
  const id = await submit(ctx, 'bench-one');
  const p99s: number[] = [];
  const rates: number[] = [];
  for (let rep = 0; rep <= ctx.reps; rep++) {
    const res = await run({
      url: `${ctx.gateway}/v1/runs/${id}`,
      connections: 20,
      duration: ctx.quick ? 1 : 4,
      overallRate: 2000,
      headers: ctx.headers(),
    });
    if (rep === 0) continue;
    p99s.push(res.latency.p99);
    rates.push(res.requests.average);
  }
  // The floor: the same read straight from Redis, one at a time.
  const redis = createRedis(ctx.redisUrl);
  const base: number[] = [];
  try {
    for (let rep = 0; rep < ctx.reps; rep++) {
      const times: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t0 = performance.now();
        await redis.get(ctx.names.runKey(id));
        times.push(performance.now() - t0);
      }
      base.push(percentile(times, 99));
    }
  } finally {
    await redis.quit();
  }
  const muse = summarize(p99s);
  const baseline = summarize(base);
  return {
    scenario: 'GET /v1/runs/{id} at 2,000 req/s (p99)',
    unit: 'ms',
    muse,
    extra: { reqPerS: summarize(rates).median },
    baseline,
    baselineLabel: 'Redis GET p99',
    ratio: muse.median / baseline.median,
    target: 'p99 ≤ 5 at 2000 req/s',
    met: muse.median <= 5 && summarize(rates).median >= 1900,
  };
}
