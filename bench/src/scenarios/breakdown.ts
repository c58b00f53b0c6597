/**
 * Where a chain step's time goes: the 50-step chain again, on a second cluster that exports its traces to a receiver
 * in this process, each step's period cut into hops by the spans the services already make (the coordinator's BullMQ
 * add, the worker's attempt, the coordinator's command and its commit of the step's outputs). On the same cluster, the
 * timeline of a single-step run (`singleStepTimeline`), in the row's detail.
 * A diagnostic row: it has no target of its own (the chain row above has), and tracing costs a little.
 */
import { OtlpReceiver, type ReceivedSpan } from '@muse/cluster';
import { bullChain } from '../baselines.js';
import { floorChain } from '../design-floor.js';
import { register, RunWatcher, startBench, submit, type BenchContext } from '../context.js';
import { CHAIN_DEFINITION, CHAIN_LENGTH, SINGLE_STEP_DEFINITION } from './latency.js';
import type { Row } from '../report.js';
import { percentile, summarize } from '../stats.js';

/**
 * The hops of one step, in order; consecutive ones share a boundary, so they add up to the step's period:
 * the coordinator's BullMQ add of the step's job; the job waiting until a worker takes it; the worker running the step
 * and publishing its report, until JetStream delivers it to the coordinator; the coordinator's work until the commit
 * starts (the run lock's round trip first when the artifact store commits; when the coordinator commits itself, its
 * commit goes out with the lock's first try); the commit of the step's outputs (small ones by the coordinator, in
 * Redis, with the run lock; others by a request to the artifact store); fold, append to the run log, until the next
 * step's add starts.
 */
export const HOPS = ['add', 'pickup', 'runAndReport', 'beforeCommit', 'commit', 'foldToNextAdd'] as const;
export type Hop = (typeof HOPS)[number];
/** One step's hops, and whether the coordinator committed its outputs itself (else the artifact store did). */
export type StepHops = Record<Hop, number> & { inlineCommit: boolean; clockAdjusted: boolean };

const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/**
 * Each step's hops, from the spans of one run (`spans`: every span of its trace). A step whose spans are not all there
 * (a span dropped by the exporter, the last step, which has no next add) is left out.
 */
export function stepHops(spans: ReceivedSpan[], stepIds: string[]): StepHops[] {
  const byParent = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const siblings = byParent.get(s.parentSpanId);
    if (siblings) siblings.push(s);
    else byParent.set(s.parentSpanId, [s]);
  }
  // Each step's first add and first attempt (a chain step has one of each unless it was retried).
  const adds = new Map<string, ReceivedSpan>();
  const attempts = new Map<string, ReceivedSpan>();
  for (const s of spans) {
    const into = s.name.startsWith('muse.step.enqueue') ? adds : s.name.startsWith('muse.step.attempt') ? attempts : undefined;
    const step = String(s.attributes['muse.step_id']);
    const seen = into?.get(step);
    if (into && (!seen || s.startNanos < seen.startNanos)) into.set(step, s);
  }
  const out: StepHops[] = [];
  for (let i = 0; i + 1 < stepIds.length; i++) {
    const add = adds.get(stepIds[i]!);
    const attempt = attempts.get(stepIds[i]!);
    const nextAdd = adds.get(stepIds[i + 1]!);
    if (!add || !attempt || !nextAdd) continue;
    // The attempt's report: the command under the attempt's span that committed the step's outputs.
    let command: ReceivedSpan | undefined;
    let commit: ReceivedSpan | undefined;
    for (const c of byParent.get(attempt.spanId) ?? []) {
      if (!c.name.startsWith('muse.command')) continue;
      // A commit sent with the run lock's try that found the lock another's committed nothing ('none'): the next one did.
      const found = (byParent.get(c.spanId) ?? []).find((x) => x.name === 'muse.artifact.commit' && x.attributes['muse.artifact.committed_by'] !== 'none');
      if (found) [command, commit] = [c, found];
    }
    if (!command || !commit) continue;
    // The attempt's start is on the worker's clock, the other boundaries on the coordinator's, so that start is moved
    // into the window between the add's end and the report's command's start when it falls outside: before the add's
    // end, the worker took the job before the coordinator had read Redis's reply to the add; after the command's
    // start, the two processes' span clocks are offset (the SDK anchors each to the wall clock as its process starts:
    // the attempt was seen 5 ms after its own report on a loaded machine). `pickup` + `runAndReport` stays the same.
    const lo = add.endNanos;
    const hi = command.startNanos;
    const attemptStart = attempt.startNanos < lo ? lo : attempt.startNanos > hi ? (hi > lo ? hi : lo) : attempt.startNanos;
    out.push({
      add: ms(add.startNanos, add.endNanos),
      pickup: ms(add.endNanos, attemptStart),
      runAndReport: ms(attemptStart, command.startNanos),
      beforeCommit: ms(command.startNanos, commit.startNanos),
      commit: ms(commit.startNanos, commit.endNanos),
      foldToNextAdd: ms(commit.endNanos, nextAdd.startNanos),
      inlineCommit: commit.attributes['muse.artifact.committed_by'] === 'coordinator',
      clockAdjusted: attemptStart !== attempt.startNanos,
    });
  }
  return out;
}

export async function chainBreakdown(ctx: BenchContext): Promise<Row> {
  const length = CHAIN_LENGTH;
  const receiver = new OtlpReceiver();
  const endpoint = await receiver.start();
  // A short batch delay: the spans of a run arrive within a second of its end.
  const traced = await startBench({ quick: ctx.quick, log: ctx.log, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' } }).catch(async (err: unknown) => {
    await receiver.stop();
    throw err;
  });
  const stepIds = CHAIN_DEFINITION.steps.map((s) => s.id);
  const perStep: number[] = [];
  const hops: StepHops[] = [];
  let timeline: Record<string, number> = {};
  try {
    const t = traced.ctx;
    await register(t, CHAIN_DEFINITION);
    const watcher = await RunWatcher.open(t);
    try {
      for (let rep = 0; rep <= ctx.reps; rep++) {
        const t0 = performance.now();
        const id = await submit(t, CHAIN_DEFINITION.name);
        const took = (await watcher.finished(id, 120_000)) - t0;
        if (rep === 0) continue; // warm-up
        perStep.push(took / length);
        const run = await spansOf(receiver, id, length);
        hops.push(...stepHops(run, stepIds));
      }
    } finally {
      watcher.close();
    }
    timeline = await singleStepTimeline(t, receiver);
  } finally {
    await traced.stop();
    await receiver.stop();
  }
  const expected = ctx.reps * (length - 1);
  if (hops.length < expected / 2) throw new Error(`only ${hops.length} of ${expected} steps had all their spans`);
  // Means, not medians: the means of the hops add up to the mean step period. (The spans' times are finer than a
  // millisecond, see `spanClock` in @muse/telemetry, so even a hop of a tenth of a millisecond is measured, not rounded.)
  const mean = (h: Hop) => hops.reduce((sum, x) => sum + x[h], 0) / hops.length;
  const extra = Object.fromEntries(HOPS.map((h) => [h, mean(h)]));
  const base: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) base.push(await bullChain(ctx, length));
  // What the same chain costs with no Muse code: with 3 hops a step (the design that would reach the chain's target),
  // and with today's design's round trips (the run lock of every command, the job through BullMQ).
  const floorReps = ctx.quick ? 1 : ctx.reps;
  const floorNatsPush = await floorChain(ctx, { dispatch: 'nats' }, length, floorReps);
  const floorBullmqDispatch = await floorChain(ctx, { dispatch: 'bullmq' }, length, floorReps);
  const floorToday = await floorChain(ctx, { dispatch: 'bullmq', lock: true }, length, floorReps);
  const muse = summarize(perStep);
  const baseline = summarize(base);
  return {
    scenario: "50-step chain with tracing on: time per step, and the mean of each hop (ms) from the spans; beside them, with no Muse code, the floors of a 3-hop design and of today's (ms/step)",
    unit: 'ms/step',
    muse,
    extra: { ...extra, stepsTraced: hops.length, inlineCommits: hops.filter((h) => h.inlineCommit).length, clockAdjustedSteps: hops.filter((h) => h.clockAdjusted).length, floorNatsPush, floorBullmqDispatch, floorToday },
    detail: timeline,
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
    const spans = root ? [...receiver.trace(root.traceId).values()] : [];
    const attempts = spans.filter((s) => s.name.startsWith('muse.step.attempt')).length;
    if (attempts >= length || Date.now() > deadline) return spans;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The spans of a single-step run, in the order they start, by the name they start with: the gateway's submission
 * (publish, then the first view), the coordinator's handling of it (run lock, append, effects: the step's BullMQ add
 * among them), the worker's attempt (the model call inside it), the coordinator's handling of the step's report
 * (run lock and the commit of its outputs in one round trip, append, effects).
 */
const TIMELINE_SPANS: ReadonlyArray<readonly [label: string, namePrefix: string]> = [
  ['submit', 'muse.run.submit'],
  ['runSubmit', 'muse.command run-submit'],
  ['enqueue', 'muse.step.enqueue'],
  ['attempt', 'muse.step.attempt'],
  ['modelCall', 'muse.provider.call'],
  ['stepReport', 'muse.command step-report'],
  ['commit', 'muse.artifact.commit'],
];

/**
 * Where the single-step row's time goes: single-step runs one after another on the traced cluster, each span of
 * TIMELINE_SPANS placed by its start and end in ms after the client sent its POST (medians over the runs; the
 * services' spans and this process read the same clock, `performance.timeOrigin + performance.now()`), with
 * `posted` (the POST's 202) and `wsCompleted` (the run's last event on the WebSocket). Keys `singleStep.<label>.start`, `.end`.
 */
export async function singleStepTimeline(ctx: BenchContext, receiver: OtlpReceiver): Promise<Record<string, number>> {
  const warmup = ctx.quick ? 2 : 20;
  const runs = ctx.quick ? 5 : 40;
  await register(ctx, SINGLE_STEP_DEFINITION);
  const watcher = await RunWatcher.open(ctx);
  const measured: Array<{ id: string; sentAt: number; posted: number; wsCompleted: number }> = [];
  try {
    for (let i = 0; i < warmup + runs; i++) {
      const sentAt = performance.timeOrigin + performance.now();
      const id = await submit(ctx, SINGLE_STEP_DEFINITION.name);
      const posted = performance.timeOrigin + performance.now();
      const done = performance.timeOrigin + (await watcher.finished(id));
      if (i >= warmup) measured.push({ id, sentAt, posted: posted - sentAt, wsCompleted: done - sentAt });
    }
  } finally {
    watcher.close();
  }
  // The services export their spans in batches (every 200 ms here): the last run's are in by then.
  await new Promise((r) => setTimeout(r, 600));
  const offsets = new Map<string, number[]>();
  const add = (key: string, v: number) => {
    const list = offsets.get(key);
    if (list) list.push(v);
    else offsets.set(key, [v]);
  };
  for (const m of measured) {
    add('posted', m.posted);
    add('wsCompleted', m.wsCompleted);
    const spans = await spansOf(receiver, m.id, 1);
    for (const [label, prefix] of TIMELINE_SPANS) {
      // The first span of the name (a step retried would have more).
      const first = spans.filter((s) => s.name.startsWith(prefix)).sort((a, b) => (a.startNanos < b.startNanos ? -1 : 1))[0];
      if (!first) continue;
      add(`${label}.start`, Number(first.startNanos) / 1e6 - m.sentAt);
      add(`${label}.end`, Number(first.endNanos) / 1e6 - m.sentAt);
    }
  }
  return Object.fromEntries([...offsets].map(([k, v]) => [`singleStep.${k}`, percentile(v, 50)]));
}
