/** Resource scenarios: idle memory of each service, Redis memory per queued step. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { StepQueues, StepWatchList, createRedis } from '@muse/queues';
import { stepJobId } from '@muse/contracts';
import { bullBytesPerJob, usedMemory } from '../baselines.js';
import type { BenchContext } from '../context.js';
import type { Row } from '../report.js';
import { summarize } from '../stats.js';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** Seconds since `pid` started (/proc/<pid>/stat's start time, in clock ticks of 1/100 s on Linux, against /proc/uptime). */
function ageSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) - Number(fields[19]) / 100;
}

/** How many idle trims (muse_memory_trim_duration_seconds_count) a service has run, from its /metrics; 0 when unreadable. */
async function trimsOf(url: string): Promise<number> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(/^muse_memory_trim_duration_seconds_count\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export async function idleRss(ctx: BenchContext): Promise<Row> {
  // Idle means after start-up: every process has been up this long (a replaced or late worker too), and has run
  // the memory trim a service runs once it goes quiet (MUSE_MEMORY_TRIM_PERIOD_MS), so neither its start-up work
  // nor the garbage it left is counted. Then each process's RSS is sampled once a second and its median taken:
  // one sample would land anywhere between two of V8's collections (an idle service's heap creeps by 1-2 MB
  // between them).
  const settledS = ctx.quick ? 1 : 8;
  const samples = ctx.quick ? 3 : 15;
  if (!ctx.quick) await new Promise((r) => setTimeout(r, 5_000));
  const youngest = Math.min(...ctx.cluster.processes.filter((p) => p.pid).map((p) => ageSeconds(p.pid!)));
  if (youngest < settledS) await new Promise((r) => setTimeout(r, (settledS - youngest) * 1_000));
  // Only the processes not yet seen trimming are asked again. --quick samples at once (it keeps to its minute; its
  // figures are not judged).
  let untrimmed = ctx.quick ? [] : ctx.cluster.processes.filter((p) => p.pid);
  for (const t0 = Date.now(); ; await new Promise((r) => setTimeout(r, 500))) {
    const trims = await Promise.all(untrimmed.map((p) => trimsOf(p.url)));
    untrimmed = untrimmed.filter((_, i) => trims[i] === 0);
    if (untrimmed.length === 0 || Date.now() - t0 >= 30_000) break;
  }
  if (untrimmed.length > 0) ctx.log(`idle RSS: no idle trim within 30 s in ${untrimmed.map((p) => p.instance).join(', ')} (sampled as it is)`);
  const series: Record<string, number[]> = {};
  for (let i = 0; i < samples; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, ctx.quick ? 500 : 1_000));
    for (const p of ctx.cluster.processes) if (p.pid) (series[p.instance] ??= []).push(rssMb(p.pid));
  }
  const per = Object.fromEntries(Object.entries(series).map(([k, v]) => [k, summarize(v)]));
  // The floor: a bare Node process of the same version serving HTTP.
  const bare = spawn(process.execPath, ['-e', "require('node:http').createServer((q,s)=>s.end()).listen(0);setInterval(()=>{},1000)"], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, ctx.quick ? 500 : 1_000));
  const bareMb = rssMb(bare.pid!);
  bare.kill();
  const muse = summarize(Object.values(per).map((s) => s.median));
  ctx.log(`idle RSS by process, median of ${samples} samples ${ctx.quick ? 0.5 : 1} s apart (min-max) in MB: ${Object.entries(per).map(([k, v]) => `${k}=${v.median.toFixed(1)} (${v.min.toFixed(1)}-${v.max.toFixed(1)})`).join(' ')}`);
  return {
    scenario: 'idle RSS of each service (median over services; max shown)',
    unit: 'MB',
    muse,
    extra: { maxMb: muse.max },
    detail: Object.fromEntries(Object.entries(per).map(([k, v]) => [`rssMb.${k}`, v.median])),
    baseline: summarize([bareMb]),
    baselineLabel: 'bare Node HTTP server',
    ratio: muse.median / bareMb,
    target: '≤ 100 each',
    met: muse.max <= 100,
  };
}

export async function redisPerQueuedStep(ctx: BenchContext): Promise<Row> {
  const count = ctx.quick ? 5_000 : 100_000;
  const redis = createRedis(ctx.redisUrl);
  const queues = new StepQueues(redis, ctx.names);
  const role = 'bench-memory';
  // A queued step is its job and the coordinator's watch of it, with the data the coordinator gives both.
  const watches = new StepWatchList<object>(redis, ctx.names, { claimMs: 5_000, tickMs: 1_000, logger: { warn: () => undefined } });
  let perStep: number;
  try {
    const before = await usedMemory(redis);
    for (let i = 0; i < count; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => {
        const runId = `run_bench${String(i + j).padStart(8, '0')}`;
        const jobId = stepJobId(runId, 'step', 1);
        return Promise.all([
          queues.enqueue({ runId, project: 'default', stepId: 'step', attempt: 1, role, kind: 'agent', prompt: 'Plan a change to github.com/acme/widgets', model: 'muse-local', seed: 0, timeoutMs: 300_000 }),
          watches.add(jobId, { kind: 'watch-step', runId, project: 'default', stepId: 'step', attempt: 1, role, jobId, timeoutMs: 300_000, n: 1 }, 5_000),
        ]);
      }));
    }
    perStep = ((await usedMemory(redis)) - before) / count;
    await queues.queue(role).obliterate({ force: true });
    await redis.del(ctx.names.stepWatchesKey, ctx.names.stepWatchDataKey);
  } finally {
    await queues.close();
    await redis.quit();
  }
  const bare = await bullBytesPerJob(ctx, count);
  return {
    scenario: `Redis memory per queued step, its job and watch (${count.toLocaleString('en')} queued)`,
    unit: 'bytes',
    muse: summarize([perStep]),
    baseline: summarize([bare]),
    baselineLabel: 'BullMQ job, minimal payload',
    ratio: perStep / bare,
    target: '≤ 2048',
    met: perStep <= 2048,
  };
}
