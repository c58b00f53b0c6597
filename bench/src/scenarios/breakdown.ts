/**
 * Where a chain step's time goes: the 50-step chain again, on a second cluster that exports its traces to a receiver
 * in this process, each step's period cut into hops by the spans the services already make (the coordinator's BullMQ
 * add, the worker's attempt, the coordinator's command, its commit request and the store's handling of it).
 * A diagnostic row: it has no target of its own (the chain row above has), and tracing costs a little.
 */
import { OtlpReceiver, type ReceivedSpan } from '@muse/cluster';
import { bullChain } from '../baselines.js';
import { register, RunWatcher, startBench, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { percentile, summarize } from '../stats.js';

/** The hops of one step, in order; consecutive ones share a boundary, so they add up to the step's period. */
export const HOPS = {
  add: "coordinator's BullMQ add of the step's job",
  pickup: 'the job waits until a worker takes it',
  runAndReport: "the worker runs the step and publishes its report; JetStream delivers it to the coordinator",
  beforeCommit: 'the coordinator takes the run lock and asks the store to commit the outputs',
  toStore: 'the commit request travels to the store (NATS)',
  store: 'the store checks and commits the outputs (Redis)',
  reply: "the store's reply travels back",
  foldToNextAdd: 'fold, append to the run log, then the next step\'s add starts',
} as const;
export type Hop = keyof typeof HOPS;

const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/**
 * Each step's hops, from the spans of one run (`spans`: every span of its trace). A step whose spans are not all there
 * (a span dropped by the exporter, the last step, which has no next add) is left out.
 */
export function stepHops(spans: ReceivedSpan[], stepIds: string[]): Array<Record<Hop, number>> {
  const byParent = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const siblings = byParent.get(s.parentSpanId);
    if (siblings) siblings.push(s);
    else byParent.set(s.parentSpanId, [s]);
  }
  const firstOf = (kind: string, step: string) => spans.filter((s) => s.name.startsWith(kind) && s.attributes['muse.step_id'] === step).sort((a, b) => (a.startNanos < b.startNanos ? -1 : 1))[0];
  const out: Array<Record<Hop, number>> = [];
  for (let i = 0; i + 1 < stepIds.length; i++) {
    const add = firstOf('muse.step.enqueue', stepIds[i]!);
    const attempt = firstOf('muse.step.attempt', stepIds[i]!);
    const nextAdd = firstOf('muse.step.enqueue', stepIds[i + 1]!);
    if (!add || !attempt || !nextAdd) continue;
    // The attempt's report: the command under the attempt's span that asked the store to commit.
    let command: ReceivedSpan | undefined;
    let request: ReceivedSpan | undefined;
    for (const c of byParent.get(attempt.spanId) ?? []) {
      if (!c.name.startsWith('muse.command')) continue;
      const r = (byParent.get(c.spanId) ?? []).find((x) => x.name.startsWith('muse.request') && String(x.attributes['messaging.destination.name']).includes('commit'));
      if (r) [command, request] = [c, r];
    }
    const serve = request && (byParent.get(request.spanId) ?? []).find((x) => x.name.startsWith('muse.serve'));
    if (!command || !request || !serve) continue;
    out.push({
      add: ms(add.startNanos, add.endNanos),
      pickup: ms(add.endNanos, attempt.startNanos),
      runAndReport: ms(attempt.startNanos, command.startNanos),
      beforeCommit: ms(command.startNanos, request.startNanos),
      toStore: ms(request.startNanos, serve.startNanos),
      store: ms(serve.startNanos, serve.endNanos),
      reply: ms(serve.endNanos, request.endNanos),
      foldToNextAdd: ms(request.endNanos, nextAdd.startNanos),
    });
  }
  return out;
}

export async function chainBreakdown(ctx: BenchContext): Promise<Row> {
  const length = 50;
  const receiver = new OtlpReceiver();
  const endpoint = await receiver.start();
  // A short batch delay: the spans of a run arrive within a second of its end.
  const traced = await startBench({ quick: ctx.quick, log: ctx.log, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' } }).catch(async (err: unknown) => {
    await receiver.stop();
    throw err;
  });
  const stepIds = Array.from({ length }, (_, i) => `s${i}`);
  const perStep: number[] = [];
  const hops: Array<Record<Hop, number>> = [];
  try {
    const t = traced.ctx;
    await register(t, { name: 'bench-chain', steps: stepIds.map((id, i) => ({ id, agent: 'executor', prompt: `no-op ${id}`, ...(i > 0 ? { needs: [stepIds[i - 1]] } : {}) })) });
    const watcher = await RunWatcher.open(t);
    try {
      for (let rep = 0; rep <= ctx.reps; rep++) {
        const t0 = performance.now();
        const id = await submit(t, 'bench-chain');
        const took = (await watcher.finished(id, 120_000)) - t0;
        if (rep === 0) continue; // warm-up
        perStep.push(took / length);
        const run = await spansOf(receiver, id, length);
        hops.push(...stepHops(run, stepIds));
      }
    } finally {
      watcher.close();
    }
  } finally {
    await traced.stop();
    await receiver.stop();
  }
  const expected = ctx.reps * (length - 1);
  if (hops.length < expected / 2) throw new Error(`only ${hops.length} of ${expected} steps had all their spans`);
  const median = (h: Hop) => percentile(hops.map((x) => x[h]), 50);
  const extra = Object.fromEntries((Object.keys(HOPS) as Hop[]).map((h) => [h, median(h)]));
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push(await bullChain(ctx, length));
  const muse = summarize(perStep);
  const baseline = summarize(base);
  return {
    scenario: '50-step chain with tracing on: time per step, and the median of each hop (ms) from the spans',
    unit: 'ms/step',
    muse,
    extra: { ...extra, stepsTraced: hops.length },
    baseline,
    baselineLabel: 'BullMQ chain',
    ratio: muse.median / baseline.median,
    target: 'none: where the time goes',
  };
}

/** The spans of run `runId`'s trace, once its last step's attempt has arrived (the exporter sends in batches). */
async function spansOf(receiver: OtlpReceiver, runId: string, length: number): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const root = receiver.spans.find((s) => s.name === 'muse.run.submit' && s.attributes['muse.run_id'] === runId);
    const spans = root ? receiver.spans.filter((s) => s.traceId === root.traceId) : [];
    const attempts = spans.filter((s) => s.name.startsWith('muse.step.attempt')).length;
    if (attempts >= length || Date.now() > deadline) return spans;
    await new Promise((r) => setTimeout(r, 100));
  }
}
