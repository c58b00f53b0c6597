/**
 * One process's side of a profiling session: between `start` and `stop` it
 * samples CPU time (`process.cpuUsage`), the event loop (utilization and
 * delay, `perf_hooks`), memory (`process.memoryUsage`, once a second), the
 * V8 CPU profiler (`node:inspector`, optional) and the process's message and
 * queue figures, and returns a `ServiceProfile`.
 *
 * Costs: nothing while no session runs (no timer, no inspector session). During one,
 * a 1 s timer and the event-loop delay monitor: no measurable CPU in the `profiling`
 * bench row. V8's sampler (`cpuProfile`, opt-in) at `CPU_SAMPLING_INTERVAL_US` costs
 * more, and could not be bounded under 5% there (see the README).
 */
import { hostname } from 'node:os';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Profiler } from 'node:inspector';
import type { ServiceProfile } from '@muse/contracts';
import type { MuseMetrics } from './metrics.js';

/**
 * V8 CPU sampling interval, in µs. V8's default (1 ms) costs several % of a busy process; at 50 ms a 10 s session
 * still takes 200 samples per process — enough to name the hot functions of the busy process a report is about.
 * @default 50_000
 */
export const CPU_SAMPLING_INTERVAL_US = 50_000;
/** How often memory and queue depths are sampled, in ms. */
const SAMPLE_EVERY_MS = 1_000;
const TOP_FUNCTIONS = 10;

/** A counter the session reports as a delta (messages in and out over NATS, from the bus). */
export type MessageProbe = () => { in: number; out: number };

interface Running {
  sessionId: string;
  startedAt: number;
  cpu0: NodeJS.CpuUsage;
  elu0: ReturnType<typeof performance.eventLoopUtilization>;
  delay: ReturnType<typeof monitorEventLoopDelay>;
  mem0: NodeJS.MemoryUsage;
  rssPeak: number;
  heapPeak: number;
  msg0: { in: number; out: number };
  queues: Map<string, { start: number; end: number; peak: number }>;
  timer: NodeJS.Timeout;
  autoStop: NodeJS.Timeout;
  inspector?: Session;
  /** A profile taken by the auto-stop, kept for a late `stop`. */
  done?: Promise<ServiceProfile>;
}

export class ServiceProfiler {
  readonly instance: string;
  private running?: Running;
  private messages: MessageProbe = () => ({ in: 0, out: 0 });

  constructor(
    readonly service: string,
    private readonly metrics?: MuseMetrics,
  ) {
    this.instance = `${hostname()}-${process.pid}`;
  }

  /** Where message counts come from (the service's NATS connection). */
  setMessageProbe(probe: MessageProbe): void {
    this.messages = probe;
  }

  get activeSession(): string | undefined {
    return this.running?.sessionId;
  }

  /** Starts a session; a session already running is stopped first (one at a time per process). */
  async start(sessionId: string, opts: { maxSeconds: number; cpuProfile: boolean }): Promise<void> {
    if (this.running) await this.stop(this.running.sessionId);
    const mem0 = process.memoryUsage();
    const delay = monitorEventLoopDelay({ resolution: 20 });
    delay.enable();
    const run: Running = {
      sessionId,
      startedAt: performance.now(),
      cpu0: process.cpuUsage(),
      elu0: performance.eventLoopUtilization(),
      delay,
      mem0,
      rssPeak: mem0.rss,
      heapPeak: mem0.heapUsed,
      msg0: this.messages(),
      queues: new Map(),
      timer: setInterval(() => void this.sample(run), SAMPLE_EVERY_MS),
      // Nobody stopped it: finish now (the profiler stops sampling), keep the profile for a late `stop`.
      autoStop: setTimeout(() => {
        run.done ??= this.finish(run);
        run.done.catch(() => undefined);
      }, opts.maxSeconds * 1000),
    };
    run.timer.unref();
    run.autoStop.unref();
    this.running = run;
    await this.sample(run);
    if (opts.cpuProfile) {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: CPU_SAMPLING_INTERVAL_US });
      await session.post('Profiler.start');
      run.inspector = session;
    }
  }

  /** Stops `sessionId` and returns this process's profile; undefined when it is not this process's session. */
  async stop(sessionId: string): Promise<ServiceProfile | undefined> {
    const run = this.running;
    if (!run || run.sessionId !== sessionId) return undefined;
    this.running = undefined;
    return (run.done ??= this.finish(run));
  }

  /** Stops whatever runs, dropping its profile (shutdown). */
  async close(): Promise<void> {
    if (this.running) await this.stop(this.running.sessionId).catch(() => undefined);
  }

  private async finish(run: Running): Promise<ServiceProfile> {
    clearInterval(run.timer);
    clearTimeout(run.autoStop);
    await this.sample(run);
    const wallMs = performance.now() - run.startedAt;
    const cpu = process.cpuUsage(run.cpu0);
    const elu = performance.eventLoopUtilization(run.elu0);
    run.delay.disable();
    const mem = process.memoryUsage();
    const msg = this.messages();
    let hotFunctions: ServiceProfile['hotFunctions'] = [];
    if (run.inspector) {
      try {
        const { profile } = await run.inspector.post('Profiler.stop');
        hotFunctions = hotFunctionsOf(profile, TOP_FUNCTIONS);
      } finally {
        await run.inspector.post('Profiler.disable').catch(() => undefined);
        run.inspector.disconnect();
      }
    }
    const ns = (v: number) => (Number.isFinite(v) ? v / 1e6 : 0);
    const seconds = Math.max(wallMs / 1000, 1e-3);
    const msgIn = msg.in - run.msg0.in;
    const msgOut = msg.out - run.msg0.out;
    return {
      service: this.service,
      instance: this.instance,
      sessionId: run.sessionId,
      durationMs: Math.round(wallMs),
      cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000, share: (cpu.user + cpu.system) / 1000 / wallMs },
      eventLoop: {
        utilization: elu.utilization,
        delayP50Ms: ns(run.delay.percentile(50)),
        delayP99Ms: ns(run.delay.percentile(99)),
        delayMaxMs: ns(run.delay.max),
      },
      memory: {
        rssStartBytes: run.mem0.rss,
        rssEndBytes: mem.rss,
        rssPeakBytes: Math.max(run.rssPeak, mem.rss),
        heapUsedStartBytes: run.mem0.heapUsed,
        heapUsedEndBytes: mem.heapUsed,
        heapUsedPeakBytes: Math.max(run.heapPeak, mem.heapUsed),
      },
      hotFunctions,
      messages: { in: msgIn, out: msgOut, inPerSec: msgIn / seconds, outPerSec: msgOut / seconds },
      queues: Object.fromEntries(run.queues),
    };
  }

  /** Memory peaks and, where this process exports `muse_queue_depth`, waiting jobs per role. */
  private async sample(run: Running): Promise<void> {
    const m = process.memoryUsage();
    run.rssPeak = Math.max(run.rssPeak, m.rss);
    run.heapPeak = Math.max(run.heapPeak, m.heapUsed);
    const gauge = this.metrics?.registry.getSingleMetric('muse_queue_depth');
    if (!gauge) return;
    const { values } = await gauge.get();
    for (const v of values) {
      if (v.labels.state !== 'waiting') continue;
      const role = String(v.labels.role);
      const q = run.queues.get(role);
      if (q) {
        q.end = v.value;
        q.peak = Math.max(q.peak, v.value);
      } else run.queues.set(role, { start: v.value, end: v.value, peak: v.value });
    }
  }
}

/** The functions with the most self time in a V8 CPU profile, idle time left out. */
export function hotFunctionsOf(profile: Profiler.Profile, top: number): ServiceProfile['hotFunctions'] {
  const byNode = new Map<number, Profiler.ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let total = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byNode.get(samples[i]!);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const dt = Math.max(0, deltas[i] ?? 0);
    const f = node.callFrame;
    const where = f.url ? ` (${f.url.replace(/^file:\/\//, '')}:${f.lineNumber + 1})` : '';
    const key = `${f.functionName || '(anonymous)'}${where}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({ function: fn, selfMs: us / 1000, selfShare: total > 0 ? us / total : 0 }));
}
