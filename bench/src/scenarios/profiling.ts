/**
 * The cost of a profiling session: the DAG throughput workload (10-step
 * runs, as in `throughput.ts`) with and without a cluster-wide session
 * running, in ABBA order rep by rep (off-on, on-off, …) so that drift of a
 * shared machine hits both sides alike. Twice: a session as `muse profile`
 * starts one (the figure judged against the 5% target), and one with V8's
 * CPU profiler (`cpuProfile: true`, opt-in), reported beside it.
 *
 * Two figures per rep: steps/s (wall clock), and the CPU time all the
 * cluster's processes spent per step (utime + stime from /proc). On a shared,
 * noisy machine steps/s swings by ±50% from one rep to the next, far more than
 * the 5% to detect; CPU time per step moves less with other people's load,
 * so the target is judged on it (the median of the paired on/off ratios), and
 * the steps/s ratio is reported beside it.
 *
 * The session is started before and stopped after the measured window of its
 * rep: its start (V8's profiler walks the compiled code once) and its report
 * are one-off costs, reported apart (`startMs`, `stopMs`).
 *
 * The paired figure cannot resolve 5% here: one pair's ratio swings by ±20%,
 * so the median of 10 pairs is known to about ±8%. The target is therefore
 * judged on the session's own CPU time, which is measured precisely where the
 * cluster is quiet: a default session's work is timer-driven (a 1 s sampler,
 * the 20 ms event-loop delay monitor) and does not grow with the load, so its
 * added CPU per second on the idle cluster (ABBA pairs of idle windows),
 * divided by the cluster's CPU per second under the workload, is its share of
 * that workload (`sessionCostPct`). The paired figures stay beside it as the
 * check that nothing load-dependent was missed.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { RunEventSchema } from '@muse/contracts';
import { ServiceProfiler } from '@muse/telemetry';
import { clusterCpuMs, register, RunWatcher, submit, type BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { summarize } from '../stats.js';

const dag = {
  name: 'bench-profiled-dag',
  steps: [
    { id: 'a', agent: 'executor', prompt: 'a' },
    ...Array.from({ length: 8 }, (_, i) => ({ id: `b${i}`, agent: i % 2 ? 'reviewer' : 'optimizer', prompt: `b${i}`, needs: ['a'] })),
    { id: 'z', agent: 'orchestrator', prompt: 'z', needs: Array.from({ length: 8 }, (_, i) => `b${i}`) },
  ],
};

/** Steps per second, and cluster CPU ms per step, over `runs` concurrent runs of the DAG. */
async function measure(ctx: BenchContext, runs: number): Promise<{ rate: number; cpuMsPerStep: number }> {
  const watcher = await RunWatcher.open(ctx);
  try {
    const cpu0 = clusterCpuMs(ctx);
    const t0 = performance.now();
    const ids: string[] = [];
    let i = 0;
    await Promise.all(Array.from({ length: 25 }, async () => {
      while (i++ < runs) ids.push(await submit(ctx, dag.name));
    }));
    await Promise.all(ids.map((id) => watcher.finished(id, 300_000)));
    return { rate: (runs * 10) / ((performance.now() - t0) / 1000), cpuMsPerStep: (clusterCpuMs(ctx) - cpu0) / (runs * 10) };
  } finally {
    watcher.close();
  }
}

/** The pause before every measured window, with or without a session (shorter with --quick, which keeps to its minute). */
const settle = (ctx: BenchContext): Promise<void> => new Promise((r) => setTimeout(r, ctx.quick ? 250 : 1_000));

/**
 * `pairs` measurements without and with the thing measured, in ABBA order (off-on, on-off, …): a machine that
 * speeds up or slows down over the run favours neither side. `each` sees every finished pair.
 */
async function abba<T>(pairs: number, off: () => Promise<T>, on: () => Promise<T>, each?: (off: T, on: T, i: number) => void): Promise<{ off: T[]; on: T[] }> {
  const offs: T[] = [];
  const ons: T[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      offs.push(await off());
      ons.push(await on());
    } else {
      ons.push(await on());
      offs.push(await off());
    }
    each?.(offs[i]!, ons[i]!, i);
  }
  return { off: offs, on: ons };
}

/**
 * `measured` inside a cluster-wide profiling session: started, a settling pause (every process answered; the
 * slowest gets a moment to have its sampling running), `measured`, stopped — with the start and stop times.
 */
async function inClusterSession<T>(ctx: BenchContext, cpuProfile: boolean, measured: () => Promise<T>): Promise<{ value: T; startMs: number; stopMs: number; services: number }> {
  let t = performance.now();
  const started = await ctx.api<{ id: string }>('POST', '/v1/profiling/sessions', { maxSeconds: 600, cpuProfile });
  if (started.status !== 201) throw new Error(`profiling session refused (${started.status}): ${JSON.stringify(started.body)}`);
  const startMs = performance.now() - t;
  await settle(ctx);
  const value = await measured();
  t = performance.now();
  const report = await ctx.api<{ services: unknown[] }>('DELETE', `/v1/profiling/sessions/${started.body.id}`);
  if (report.status !== 200) throw new Error(`profiling report failed (${report.status})`);
  return { value, startMs, stopMs: performance.now() - t, services: report.body.services.length };
}

/**
 * The profiler's cost inside one process, without the cluster's noise: the CPU time of a fixed piece of
 * service-like work (parse, validate and serialize run events, 40 at a time between event-loop turns), with
 * and without a `ServiceProfiler` session (V8 sampler, loop monitor, memory timer), interleaved.
 * @returns the median of the paired on/off CPU-time ratios
 */
async function inProcessRatio(pairs: number, slices: number, cpuProfile: boolean): Promise<number> {
  const event = JSON.stringify({ id: 'e1', runId: 'run_x', project: 'p', seq: 3, at: new Date().toISOString(), type: 'step.completed', data: { stepId: 's', attempt: 1, agentId: 'a', output: { text: 'x'.repeat(200), model: 'm', usage: { inputTokens: 1, outputTokens: 2 } } } });
  const work = async (): Promise<number> => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < slices; i++) {
      for (let j = 0; j < 40; j++) JSON.stringify(RunEventSchema.safeParse(JSON.parse(event)));
      await tick();
    }
    const c = process.cpuUsage(c0);
    return c.user + c.system;
  };
  const profiler = new ServiceProfiler('bench');
  await work(); // warm-up
  let n = 0;
  const on = async (): Promise<number> => {
    const id = `bench-${n++}`;
    await profiler.start(id, { maxSeconds: 600, cpuProfile });
    const cpu = await work();
    await profiler.stop(id);
    return cpu;
  };
  const measured = await abba(pairs, work, on);
  const ratios = measured.on.map((x, i) => x / measured.off[i]!);
  return summarize(ratios).median;
}

/**
 * The cluster CPU a session adds per second of wall time, measured on the idle cluster: `pairs` ABBA pairs of
 * `windowMs` windows without and with a session (cpuProfile off), the median of the paired differences.
 */
async function idleSessionCpuMsPerSec(ctx: BenchContext, pairs: number, windowMs: number): Promise<{ added: number[]; idleMsPerSec: number }> {
  const window = async (): Promise<number> => {
    const cpu0 = clusterCpuMs(ctx);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    return (clusterCpuMs(ctx) - cpu0) / ((performance.now() - t0) / 1000);
  };
  const { off, on } = await abba(
    pairs,
    async () => {
      await settle(ctx); // the same pause as before a measured session
      return window();
    },
    async () => (await inClusterSession(ctx, false, window)).value,
    (a, b, i) => ctx.log(`profiling idle pair ${i + 1}/${pairs}: off ${a.toFixed(2)} cpu-ms/s, on ${b.toFixed(2)} cpu-ms/s`),
  );
  return { added: on.map((x, i) => x - off[i]!), idleMsPerSec: summarize(off).median };
}

interface Sample {
  rate: number;
  cpuMsPerStep: number;
}

/** `reps` ABBA pairs of the DAG workload without and with a session (`cpuProfile`: V8's profiler too). */
async function paired(ctx: BenchContext, runs: number, reps: number, cpuProfile: boolean) {
  const startMs: number[] = [];
  const stopMs: number[] = [];
  let profiles = Infinity;
  const { off, on } = await abba<Sample>(
    reps,
    async () => {
      await settle(ctx); // the same pause as before a measured session
      return measure(ctx, runs);
    },
    async () => {
      const s = await inClusterSession(ctx, cpuProfile, () => measure(ctx, runs));
      startMs.push(s.startMs);
      stopMs.push(s.stopMs);
      profiles = Math.min(profiles, s.services);
      return s.value;
    },
    (a, b, rep) => ctx.log(`profiling${cpuProfile ? ' (cpu profile)' : ''} rep ${rep + 1}/${reps}: off ${a.rate.toFixed(0)} steps/s ${a.cpuMsPerStep.toFixed(2)} cpu-ms/step, on ${b.rate.toFixed(0)} steps/s ${b.cpuMsPerStep.toFixed(2)} cpu-ms/step`),
  );
  // Paired: each rep's on against its off, then the median of those ratios.
  const cpuRatio = summarize(on.map((x, i) => x.cpuMsPerStep / off[i]!.cpuMsPerStep)).median;
  const rateRatio = summarize(on.map((x, i) => x.rate / off[i]!.rate)).median;
  return { on, off, cpuRatio, rateRatio, startMs: summarize(startMs).median, stopMs: summarize(stopMs).median, profiles };
}

export async function profilingOverhead(ctx: BenchContext): Promise<Row> {
  await register(ctx, dag);
  const runs = ctx.quick ? 10 : 60;
  await measure(ctx, runs); // warm-up
  // A session as `muse profile` starts one (no V8 profiler), paired on the workload. Rep-to-rep noise of the
  // cluster's CPU per step is about ±10% here, so many short pairs: the median of 6 paired ratios (10 took the
  // whole bench past its time limit on a slow day, and this figure only checks the idle one below).
  const plain = await paired(ctx, runs, ctx.quick ? 1 : 6, false);
  // With V8's CPU profiler (`cpuProfile: true`, opt-in): reported beside it.
  const cpu = await paired(ctx, runs, ctx.quick ? 1 : 3, true);
  // The session's own CPU, on the quiet cluster, as a share of the cluster's CPU per second under the workload.
  const idle = await idleSessionCpuMsPerSec(ctx, ctx.quick ? 1 : 6, ctx.quick ? 500 : 5_000);
  const added = summarize(idle.added);
  const workload = summarize(plain.off.map((x) => x.cpuMsPerStep * x.rate));
  const ratio = Math.max(0, added.median) / workload.median;
  return {
    scenario: `profiling session: cluster CPU it adds per second (idle cluster, ABBA pairs) vs the cluster's CPU per second under the DAG workload (${runs} runs a rep)`,
    unit: 'cpu-ms/s',
    muse: added,
    baseline: workload,
    baselineLabel: 'cluster CPU under the workload, no session',
    ratio,
    target: 'session cost ≤ 5% of the workload',
    met: ratio <= 0.05,
    extra: {
      sessionCostPct: ratio * 100,
      idleClusterCpuMsPerSec: idle.idleMsPerSec,
      // The paired workload figures (noisy here, see above): CPU per step and steps/s, with a session vs without.
      cpuMsPerStepOff: summarize(plain.off.map((x) => x.cpuMsPerStep)).median,
      cpuMsPerStepOn: summarize(plain.on.map((x) => x.cpuMsPerStep)).median,
      overheadPct: (plain.cpuRatio - 1) * 100,
      stepsPerSecRatio: plain.rateRatio,
      startMs: plain.startMs,
      stopMs: plain.stopMs,
      profiles: plain.profiles,
      cpuProfileOverheadPct: (cpu.cpuRatio - 1) * 100,
      cpuProfileStepsPerSecRatio: cpu.rateRatio,
      // The same two, in one process on a fixed piece of work (no cluster noise).
      inProcessSessionOverheadPct: ((await inProcessRatio(ctx.quick ? 3 : 20, ctx.quick ? 100 : 500, false)) - 1) * 100,
      inProcessCpuProfileOverheadPct: ((await inProcessRatio(ctx.quick ? 3 : 20, ctx.quick ? 100 : 500, true)) - 1) * 100,
    },
  };
}
