/** The REST API under load, driven by autocannon. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SERVICE_NODE_FLAGS } from '@muse/cluster';
import { createRedis } from '@muse/queues';
import { jsPublishRate } from '../baselines.js';
import { clusterCpuMs, processCpuMs, register, submit, type BenchContext } from '../context.js';
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

/** `reps` autocannon runs (after one warm-up) of GETs of `url` asked at 2,000 req/s over 20 connections: p99s and rates reached. */
async function readLoad(ctx: BenchContext, url: string, headers: Record<string, string>, cpuMs?: () => number): Promise<{ p99s: number[]; rates: number[]; cpuMsPerRequest: number[] }> {
  const p99s: number[] = [];
  const rates: number[] = [];
  const cpuMsPerRequest: number[] = [];
  for (let rep = 0; rep <= ctx.reps; rep++) {
    const cpu0 = cpuMs?.() ?? 0;
    const res = await run({ url, connections: 20, duration: ctx.quick ? 1 : 4, overallRate: 2000, headers });
    if (res.non2xx > 0) ctx.log(`read: ${res.non2xx} non-2xx answers from ${url}`);
    if (rep === 0) continue;
    p99s.push(res.latency.p99);
    rates.push(res.requests.average);
    if (cpuMs) cpuMsPerRequest.push((cpuMs() - cpu0) / res.requests.total);
  }
  return { p99s, rates, cpuMsPerRequest };
}

/** The same load on a bare Node HTTP server answering each request with one Redis GET of `key` (bare-read-server.ts). */
async function bareReadLoad(ctx: BenchContext, key: string): Promise<{ p99s: number[]; rates: number[]; cpuMsPerRequest: number[] }> {
  const server = spawn(process.execPath, [...SERVICE_NODE_FLAGS, fileURLToPath(new URL('../bare-read-server.js', import.meta.url))], {
    env: { ...process.env, REDIS_URL: ctx.redisUrl, BARE_READ_KEY: key },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      server.once('exit', (code) => reject(new Error(`the bare read server exited (${code})`)));
    });
    return await readLoad(ctx, `http://127.0.0.1:${port}/`, {}, () => processCpuMs(server.pid!));
  } finally {
    server.kill('SIGTERM');
  }
}

export async function readUnderLoad(ctx: BenchContext): Promise<Row> {
  await register(ctx, { name: 'bench-one', steps: [{ id: 'only', agent: 'executor', prompt: 'x' }] });
  const id = await submit(ctx, 'bench-one');
  const museLoad = await readLoad(ctx, `${ctx.gateway}/v1/runs/${id}`, ctx.headers(), () => clusterCpuMs(ctx, ['gateway']));
  // The floor under the same load: a bare Node HTTP server doing the same Redis read (no framework, no auth).
  const bareLoad = await bareReadLoad(ctx, ctx.names.runKey(id));
  // And the read alone, straight from Redis, one at a time.
  const redis = createRedis(ctx.redisUrl);
  const redisP99s: number[] = [];
  try {
    for (let rep = 0; rep < ctx.reps; rep++) {
      const times: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t0 = performance.now();
        await redis.get(ctx.names.runKey(id));
        times.push(performance.now() - t0);
      }
      redisP99s.push(percentile(times, 99));
    }
  } finally {
    await redis.quit();
  }
  const muse = summarize(museLoad.p99s);
  const baseline = summarize(bareLoad.p99s);
  const reqPerS = summarize(museLoad.rates).median;
  return {
    scenario: 'GET /v1/runs/{id} at 2,000 req/s (p99)',
    unit: 'ms',
    muse,
    extra: {
      reqPerS,
      gatewayCpuMsPerRequest: summarize(museLoad.cpuMsPerRequest).median,
      bareReqPerS: summarize(bareLoad.rates).median,
      bareCpuMsPerRequest: summarize(bareLoad.cpuMsPerRequest).median,
      redisGetP99ms: summarize(redisP99s).median,
    },
    baseline,
    baselineLabel: 'bare Node HTTP + Redis GET, same load, p99',
    ratio: muse.median / baseline.median,
    target: 'p99 ≤ 5 at 2000 req/s',
    met: muse.median <= 5 && reqPerS >= 1900,
  };
}
