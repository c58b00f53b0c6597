/** Throughput scenarios: a 10-step DAG at scale, a 1,000-item fan-out. */
import { bullThroughput } from '../baselines.js';
import { floorThroughput } from '../design-floor.js';
import { ProcessUsage, register, RunWatcher, StoreUsage, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { summarize } from '../stats.js';

/** 10 steps: a, then b1..b8 in parallel, then z. */
const dag = {
  name: 'bench-dag',
  steps: [
    { id: 'a', agent: 'executor', prompt: 'a' },
    ...Array.from({ length: 8 }, (_, i) => ({ id: `b${i}`, agent: i % 2 ? 'reviewer' : 'optimizer', prompt: `b${i}`, needs: ['a'] })),
    { id: 'z', agent: 'orchestrator', prompt: 'z', needs: Array.from({ length: 8 }, (_, i) => `b${i}`) },
  ],
};

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

const prefixed = (prefix: string, o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [prefix + k, v]));

export async function dagThroughput(ctx: BenchContext): Promise<Row> {
  await register(ctx, dag);
  const runs = ctx.quick ? 40 : 500;
  const rates: number[] = [];
  // Where the CPU goes and how many writes a step costs, by process, over the measured reps (not the warm-up).
  const usage = new ProcessUsage(ctx);
  // And what a step stores and runs in JetStream and Redis, the same on any machine.
  const stores = new StoreUsage(ctx);
  for (let rep = 0; rep <= ctx.reps; rep++) {
    const watcher = await RunWatcher.open(ctx);
    try {
      const work = async () => {
        const t0 = performance.now();
        const ids: string[] = [];
        await pool(Array.from({ length: runs }, (_, i) => i), 50, async () => void ids.push(await submit(ctx, 'bench-dag')));
        await Promise.all(ids.map((id) => watcher.finished(id, 300_000)));
        return (runs * 10) / ((performance.now() - t0) / 1000);
      };
      if (rep === 0) await work();
      else rates.push(await stores.measure(() => usage.measure(work)));
    } finally {
      watcher.close();
    }
  }
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push(await bullThroughput(ctx, ctx.quick ? 2_000 : 20_000));
  // The same load with no Muse code (design-floor.ts): runs of the same shape, each report a command appended to a
  // run log, with today's design's round trips (the run lock taken for every report, the jobs through BullMQ) and with
  // the 3-hop design's (no lock, jobs pushed over NATS). One worker process: both Muse workers' 50 slots with BullMQ,
  // every pushed job at once over NATS.
  const shape = [1, 8, 1];
  // Three rounds after a warm-up (they are not judged, and the whole run keeps to its 10 minutes on a slow day); one
  // and no warm-up with --quick (it keeps to its minute).
  const floorReps = ctx.quick ? 1 : 3;
  const floorStart = performance.now();
  const today = await floorThroughput(ctx, { dispatch: 'bullmq', lock: true, concurrency: 50 }, runs, shape, floorReps, !ctx.quick);
  const push = await floorThroughput(ctx, { dispatch: 'nats' }, runs, shape, floorReps, !ctx.quick);
  ctx.log(`dag-throughput: the design floors took ${((performance.now() - floorStart) / 1000).toFixed(1)} s`);
  const muse = summarize(rates);
  const baseline = summarize(base);
  const steps = runs * 10 * ctx.reps;
  const { extra, detail } = usage.per(steps, 'Step');
  return {
    scenario: `throughput: steps/s over ${runs} concurrent runs of a 10-step DAG`,
    unit: 'steps/s',
    muse,
    baseline,
    baselineLabel: 'BullMQ no-op jobs/s',
    ratio: muse.median / baseline.median,
    extra: {
      ...extra,
      ...stores.per(steps, 'Step'),
      floorTodayStepsPerS: today.stepsPerS,
      floorTodayCpuMsPerStep: today.cpuMsPerStep,
      floorNatsPushStepsPerS: push.stepsPerS,
      floorNatsPushCpuMsPerStep: push.cpuMsPerStep,
    },
    detail: { ...detail, ...prefixed('floorToday.', today.detail), ...prefixed('floorNatsPush.', push.detail) },
    target: '≥ 2000',
    met: muse.median >= 2000,
  };
}

export async function fanOut(ctx: BenchContext): Promise<Row> {
  const items = ctx.quick ? 100 : 1000;
  const def = {
    name: 'bench-fanout',
    steps: [
      { id: 'each', agent: 'executor', prompt: 'item {{ item }}', forEach: 'input.items', concurrency: 100 },
      { id: 'join', agent: 'reviewer', prompt: 'joined', needs: ['each'] },
    ],
  };
  const base = { scenario: `${items}-item forEach fan-out and join`, unit: 's', baselineLabel: `BullMQ: ${items} jobs added and drained`, target: '≤ 2' };
  try {
    await register(ctx, def);
  } catch (err) {
    return { ...base, note: `forEach is not available in this build (${(err as Error).message.slice(0, 80)}…)` };
  }
  const times: number[] = [];
  const watcher = await RunWatcher.open(ctx);
  try {
    for (let rep = 0; rep <= ctx.reps; rep++) {
      const t0 = performance.now();
      const id = await submit(ctx, 'bench-fanout', { items: Array.from({ length: items }, (_, i) => i) });
      const t = (await watcher.finished(id, 300_000)) - t0;
      if (rep > 0) times.push(t / 1000);
    }
  } finally {
    watcher.close();
  }
  const bare: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) bare.push(items / (await bullThroughput(ctx, items)));
  const muse = summarize(times);
  const baseline = summarize(bare);
  return { ...base, muse, baseline, ratio: muse.median / baseline.median, met: muse.median <= 2 };
}
