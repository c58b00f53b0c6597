/** The REST API under load, driven by autocannon. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SERVICE_NODE_FLAGS } from '@muse/cluster';
import { createRedis } from '@muse/queues';
import { jsPublishRate } from '../baselines.js';
import { clusterCpuMs, processCpuMs, ProcessUsage, register, settleCluster, StoreUsage, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { SINGLE_STEP_DEFINITION } from './latency.js';
import { percentile, summarize } from '../stats.js';

/** autocannon.aggregateResult (documented in autocannon's README; @types/autocannon does not declare it). */
const aggregateResult = (autocannon as unknown as { aggregateResult(results: autocannon.Result[], opts: autocannon.Options): autocannon.Result }).aggregateResult;

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
  // What an accepted run costs the whole cluster, by process: the measured reps, each until the coordinators have
  // started every run it accepted (their share of the CPU the accept rate competes with).
  const usage = new ProcessUsage(ctx);
  // And what an accepted run stores and runs in JetStream and Redis, the same on any machine.
  const stores = new StoreUsage(ctx);
  let accepted = 0;
  for (let rep = 0; rep <= ctx.reps; rep++) {
    const load = async () => {
      const res = await run({
        url: `${ctx.gateway}/v1/runs`,
        method: 'POST',
        connections: 20,
        duration,
        headers: ctx.headers({ 'content-type': 'application/json' }),
        body: JSON.stringify({ workflow: 'bench-accept', input: {} }),
      });
      await settleCluster(ctx);
      return res;
    };
    const res = rep === 0 ? await load() : await stores.measure(() => usage.measure(load));
    if (res.non2xx > 0) ctx.log(`accept: ${res.non2xx} non-2xx answers`);
    if (rep === 0) continue;
    accepted += res['2xx'];
    rates.push(res.requests.average);
    p99s.push(res.latency.p99);
  }
  const { extra, detail } = usage.per(accepted, 'Run');
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push((await jsPublishRate(ctx, ctx.quick ? 1_000 : 10_000, 20)).rate);
  const muse = summarize(rates);
  const p99 = summarize(p99s).median;
  const baseline = summarize(base);
  return {
    scenario: 'POST /v1/runs accepted per second (durable)',
    unit: 'runs/s',
    muse,
    extra: { p99ms: p99, ...extra, ...stores.per(accepted, 'Run') },
    detail,
    baseline,
    baselineLabel: 'JetStream acked publishes/s',
    ratio: muse.median / baseline.median,
    target: '≥ 3000/s, p99 ≤ 20 ms',
    met: muse.median >= 3000 && p99 <= 20,
  };
}

/** Connections of the read load: 20, each its own autocannon instance at 100 req/s. */
const READ_CONNECTIONS = 20;
const READ_RATE = 2000;

/**
 * `durationS` seconds of GETs of `url` at READ_RATE req/s, spread over each second. autocannon paces a connection
 * by letting it send its whole second's quota back to back as each second starts, then pausing: one instance
 * with `overallRate: 2000` sends all 2,000 requests in a burst at the top of every second (as fast as the
 * server answers, 20 at a time) and idles for the rest, so its p99 is that of a saturated server. Here each
 * connection is its own instance, started 1/20 s after the one before (autocannon.aggregateResult merges their
 * histograms, as its docs describe), so the bursts take turns and requests arrive at about 2,000/s all through
 * the second. autocannon's correction for coordinated omission still applies to each connection.
 */
async function spreadLoad(url: string, headers: Record<string, string>, durationS: number): Promise<autocannon.Result> {
  const runs: Promise<autocannon.Result>[] = [];
  for (let i = 0; i < READ_CONNECTIONS; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000 / READ_CONNECTIONS));
    runs.push(run({ url, connections: 1, duration: durationS, overallRate: READ_RATE / READ_CONNECTIONS, headers, skipAggregateResult: true }));
  }
  return aggregateResult(await Promise.all(runs), { url, connections: READ_CONNECTIONS });
}

interface ReadLoad {
  p99s: number[];
  rates: number[];
  cpuMsPerRequest: number[];
  /** p99 of autocannon's own pacing (one instance, the second's 2,000 requests in one burst), when asked for. */
  burstP99s: number[];
}

/**
 * `reps` loads (after one warm-up; one load and no warm-up with --quick) of GETs of `url` at 2,000 req/s over 20 connections (spreadLoad): p99s, rates
 * reached and, with `burst`, the p99 of the same rate in autocannon's per-second bursts.
 */
async function readLoad(ctx: BenchContext, url: string, headers: Record<string, string>, opts: { cpuMs?: () => number; burst?: boolean } = {}): Promise<ReadLoad> {
  const out: ReadLoad = { p99s: [], rates: [], cpuMsPerRequest: [], burstP99s: [] };
  const durationS = ctx.quick ? 1 : 4;
  // No warm-up and one load with --quick (its figures are not judged; it keeps to its minute).
  const reps = ctx.quick ? 1 : ctx.reps;
  for (let rep = ctx.quick ? 1 : 0; rep <= reps; rep++) {
    const cpu0 = opts.cpuMs?.() ?? 0;
    const res = await spreadLoad(url, headers, durationS);
    const cpuMs = (opts.cpuMs?.() ?? 0) - cpu0;
    const burst = opts.burst ? await run({ url, connections: READ_CONNECTIONS, duration: ctx.quick ? 1 : 2, overallRate: READ_RATE, headers }) : undefined;
    const non2xx = res.non2xx + (burst?.non2xx ?? 0);
    if (non2xx > 0) ctx.log(`read: ${non2xx} non-2xx answers from ${url}`);
    if (rep === 0) continue;
    out.p99s.push(res.latency.p99);
    out.rates.push(res.requests.total / durationS);
    if (opts.cpuMs) out.cpuMsPerRequest.push(cpuMs / res.requests.total);
    if (burst) out.burstP99s.push(burst.latency.p99);
  }
  return out;
}

/** The same load on a bare Node HTTP server answering each request with one Redis GET of `key` (bare-read-server.ts). */
async function bareReadLoad(ctx: BenchContext, key: string): Promise<ReadLoad> {
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
    return await readLoad(ctx, `http://127.0.0.1:${port}/`, {}, { cpuMs: () => processCpuMs(server.pid!) });
  } finally {
    server.kill('SIGTERM');
  }
}

export async function readUnderLoad(ctx: BenchContext): Promise<Row> {
  await register(ctx, SINGLE_STEP_DEFINITION);
  const id = await submit(ctx, SINGLE_STEP_DEFINITION.name);
  // The burst figure only in a full run: --quick keeps to its minute.
  const museLoad = await readLoad(ctx, `${ctx.gateway}/v1/runs/${id}`, ctx.headers(), { cpuMs: () => clusterCpuMs(ctx, ['gateway']), burst: !ctx.quick });
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
      ...(museLoad.burstP99s.length > 0 ? { burstP99ms: summarize(museLoad.burstP99s).median } : {}),
      gatewayCpuMsPerRequest: summarize(museLoad.cpuMsPerRequest).median,
      bareReqPerS: summarize(bareLoad.rates).median,
      bareCpuMsPerRequest: summarize(bareLoad.cpuMsPerRequest).median,
      redisGetP99ms: summarize(redisP99s).median,
    },
    baseline,
    baselineLabel: 'bare Node HTTP + Redis GET, same load, p99 (autocannon counts whole ms: 0 is under 1)',
    ...(baseline.median > 0 ? { ratio: muse.median / baseline.median } : {}),
    target: 'p99 ≤ 5 at 2000 req/s',
    met: muse.median <= 5 && reqPerS >= 1900,
  };
}
