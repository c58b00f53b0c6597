/** Latency scenarios: one step end to end, a 50-step chain, event → WebSocket. */
import { jsDeliveryP99, bullChain, bullRoundTrip } from '../baselines.js';
import { connect } from '@nats-io/transport-node';
import { decodeRunEvents } from '@muse/messaging';
import { ProcessUsage, register, RunWatcher, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { percentile, summarize } from '../stats.js';

const step = (id: string, needs?: string[]) => ({ id, agent: 'executor', prompt: `no-op ${id}`, ...(needs ? { needs } : {}) });

/** The single-step rows' workflow (`single-step`, `event-to-ws`, the timeline of `chain-breakdown`). */
export const SINGLE_STEP_DEFINITION = { name: 'bench-one', steps: [step('only')] };

export async function singleStep(ctx: BenchContext): Promise<Row> {
  await register(ctx, SINGLE_STEP_DEFINITION);
  const samples = ctx.quick ? 10 : 50;
  const watcher = await RunWatcher.open(ctx);
  const p50s: number[] = [];
  const p99s: number[] = [];
  // The CPU the runs cost, one at a time on a quiet cluster: set beside the DAG row's per step under load.
  const usage = new ProcessUsage(ctx);
  try {
    for (let rep = 0; rep <= ctx.reps; rep++) {
      const times: number[] = [];
      const work = async () => {
        for (let i = 0; i < samples; i++) {
          const t0 = performance.now();
          const id = await submit(ctx, SINGLE_STEP_DEFINITION.name);
          times.push((await watcher.finished(id)) - t0);
        }
      };
      if (rep === 0) {
        await work(); // warm-up
        continue;
      }
      await usage.measure(work);
      p50s.push(percentile(times, 50));
      p99s.push(percentile(times, 99));
    }
  } finally {
    watcher.close();
  }
  const base50: number[] = [];
  const base99: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    const b = await bullRoundTrip(ctx, samples);
    base50.push(b.p50);
    base99.push(b.p99);
  }
  const muse = summarize(p50s);
  const p99 = summarize(p99s).median;
  const { extra, detail } = usage.per(samples * ctx.reps, 'Run');
  return {
    scenario: 'single-step run: REST submit → succeeded on WebSocket (p50)',
    unit: 'ms',
    muse,
    extra: { p99, ...extra },
    detail,
    baseline: summarize(base50),
    baselineLabel: 'BullMQ add+wait',
    ratio: muse.median / summarize(base50).median,
    target: 'p50 ≤ 5, p99 ≤ 20',
    met: muse.median <= 5 && p99 <= 20,
  };
}

/** Length of the chain rows' workflow (`chain`, `chain-breakdown`). */
export const CHAIN_LENGTH = 50;
/** The chain rows' workflow: steps `s0` … `s49`, each needing the one before. */
export const CHAIN_DEFINITION = { name: 'bench-chain', steps: Array.from({ length: CHAIN_LENGTH }, (_, i) => step(`s${i}`, i > 0 ? [`s${i - 1}`] : undefined)) };

export async function chain(ctx: BenchContext): Promise<Row> {
  const length = CHAIN_LENGTH;
  await register(ctx, CHAIN_DEFINITION);
  const watcher = await RunWatcher.open(ctx);
  const per: number[] = [];
  try {
    for (let rep = 0; rep <= ctx.reps; rep++) {
      const t0 = performance.now();
      const id = await submit(ctx, CHAIN_DEFINITION.name);
      const ms = (await watcher.finished(id, 120_000)) - t0;
      if (rep > 0) per.push(ms / length);
    }
  } finally {
    watcher.close();
  }
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push(await bullChain(ctx, length));
  const muse = summarize(per);
  const baseline = summarize(base);
  const ratio = muse.median / baseline.median;
  return {
    scenario: '50-step sequential chain: time per step',
    unit: 'ms/step',
    muse,
    baseline,
    baselineLabel: 'BullMQ chain',
    ratio,
    target: '≤ 2 and ≤ 3.5x BullMQ',
    met: muse.median <= 2 && ratio <= 3.5,
  };
}

/**
 * `runs` runs submitted at once, each event's lag from its `at` (the coordinator's fold) to the WebSocket client.
 * The same events are also read straight off NATS (a core subscription to the run log's subjects in this process),
 * which splits each lag in two: until the append is on NATS (the coordinator: fold, append) and from there to the
 * WebSocket client (the gateway: its JetStream consumer, the session, the socket).
 */
export async function eventToWebSocket(ctx: BenchContext): Promise<Row> {
  await register(ctx, SINGLE_STEP_DEFINITION);
  const p99s: number[] = [];
  const toNatsP99s: number[] = [];
  const natsToWsP99s: number[] = [];
  const runs = ctx.quick ? 20 : 100;
  const nc = await connect({ servers: ctx.natsUrl });
  try {
    const onNats = new Map<string, { at: number; seen: number }>();
    nc.subscribe(ctx.names.runSubjectWildcard, {
      callback: (err, m) => {
        if (err) return;
        const seen = Date.now();
        try {
          for (const e of decodeRunEvents(m.data)) onNats.set(e.id, { at: Date.parse(e.at), seen });
        } catch {
          // not a run-log message this row reads; its events go without the split
        }
      },
    });
    await nc.flush();
    for (let rep = 0; rep <= ctx.reps; rep++) {
      const watcher = await RunWatcher.open(ctx, { arrivals: true });
      onNats.clear();
      try {
        const ids = await Promise.all(Array.from({ length: runs }, () => submit(ctx, SINGLE_STEP_DEFINITION.name)));
        await Promise.all(ids.map((id) => watcher.finished(id)));
        if (rep === 0) continue;
        p99s.push(percentile(watcher.lags, 99));
        const toNats: number[] = [];
        const natsToWs: number[] = [];
        for (const [id, wsAt] of watcher.arrivals) {
          const n = onNats.get(id);
          if (!n) continue;
          toNats.push(n.seen - n.at);
          natsToWs.push(wsAt - n.seen);
        }
        if (toNats.length > 0) {
          toNatsP99s.push(percentile(toNats, 99));
          natsToWsP99s.push(percentile(natsToWs, 99));
        }
      } finally {
        watcher.close();
      }
    }
  } finally {
    await nc.close();
  }
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push(await jsDeliveryP99(ctx, runs));
  const muse = summarize(p99s);
  const baseline = summarize(base);
  return {
    scenario: 'event appended → WebSocket client (p99)',
    unit: 'ms',
    muse,
    ...(toNatsP99s.length > 0 ? { extra: { foldToNatsP99ms: summarize(toNatsP99s).median, natsToWsP99ms: summarize(natsToWsP99s).median } } : {}),
    baseline,
    baselineLabel: 'JetStream publish→consume',
    ratio: muse.median / baseline.median,
    target: 'p99 ≤ 50',
    met: muse.median <= 50,
  };
}
