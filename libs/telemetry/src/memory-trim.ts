/**
 * Gives memory back once a service goes idle. V8 keeps the heap a process grew to (startup's module loading, a
 * burst of work) and the bytecode of every function that ran once, and its memory reducer does not compact it:
 * measured here, a service at rest after start holds ~10-18 MB more than it needs, for as long as it stays idle.
 * Once startup is followed by one whole quiet period, after each later stretch of work followed by `afterWorkMs` of
 * quiet, and after the heap grew by TRIM_GROWTH_BYTES since the last trim without any busy period (start-up work that
 * finished after the first trim, or what a long idle stretch allocates), the trimmer runs one memory-reducing full
 * GC, the same V8 runs on a low-memory notification: it compacts the heap, flushes bytecode of functions that have
 * not run lately (they are compiled again if they run), and releases the freed pages.
 *
 * The next burst of work pays for a trim: its code compiled and optimized again, its heap faulted in again. Measured
 * with two clusters taking turns at 4 s of `POST /v1/runs` (the bench's accept load): a burst after a trim accepted
 * 979-1,334 runs/s at 0.43-0.60 gateway cpu-ms a request, one right after another burst 1,617-1,923 at 0.27-0.35,
 * and with the trimmer off every burst ran at the second rate. So work that comes and goes every few seconds is not
 * trimmed after each burst: only once it has stopped for `afterWorkMs` (the service's `MUSE_MEMORY_TRIM_AFTER_WORK_MS`).
 *
 * It needs V8's `gc` function (`--expose-gc`, which the cluster launcher and the Dockerfile pass); without it the
 * trimmer does nothing. The GC blocks the event loop for ~0.1-0.3 s, only ever while the process is idle.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Histogram } from 'prom-client';
import type { Logger } from './logger.js';
import type { MuseMetrics } from './metrics.js';

/** A period whose event loop was busy more than this share is work: the next quiet period trims. */
const TRIM_BUSY_SHARE = 0.05;
/** A period whose event loop was busy less than this share is quiet. */
const TRIM_IDLE_SHARE = 0.02;
/**
 * Heap growth since the last trim that calls for another even without a busy period, in bytes. An idle service
 * allocates a little (heartbeats, metrics, queue polls) and V8 collects old space only now and then: measured here
 * its heap creeps by 1-2 MB between two of V8's own collections, so at this size idle services trim rarely.
 */
const TRIM_GROWTH_BYTES = 4 * 1024 * 1024;

/** The shape of V8's `gc` function under `--expose-gc` (Node 24). */
export type GcFunction = (options: { type: 'major'; flavor: 'last-resort'; execution: 'sync' }) => void;

export interface MemoryTrimOptions {
  /** Length of a period, in ms; 0 turns the trimmer off. */
  periodMs: number;
  /** Quiet after work (not startup's) before a trim, in ms; counted in whole periods, at least one. @default periodMs */
  afterWorkMs?: number;
  logger: Logger;
  metrics: MuseMetrics;
  /** @default globalThis.gc */
  gc?: GcFunction;
  /** Share of the time the event loop was busy since the last call. @default from `performance.eventLoopUtilization` */
  utilization?: () => number;
  /** Bytes of heap in use now. @default V8's `used_heap_size` */
  heapUsed?: () => number;
}

export class MemoryTrimmer {
  private readonly gc?: GcFunction;
  private readonly utilization: () => number;
  private readonly heapUsed: () => number;
  /** The heap in use right after the last trim (before the first: none, startup marks work anyway). */
  private heapAfterTrim = Infinity;
  private readonly duration: Histogram;
  private timer?: NodeJS.Timeout;
  /** Work happened since the last trim; startup is work. */
  private dirty = true;
  /** Quiet periods in a row, up to now. */
  private quietPeriods = 0;

  constructor(private readonly opts: MemoryTrimOptions) {
    this.gc = opts.gc ?? (globalThis as { gc?: GcFunction }).gc;
    this.utilization = opts.utilization ?? eventLoopShare();
    this.heapUsed = opts.heapUsed ?? (() => getHeapStatistics().used_heap_size);
    this.duration = opts.metrics.histogram('muse_memory_trim_duration_seconds', 'Memory-reducing GCs run after the service went idle, and how long each blocked it', [], [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  }

  /** Starts watching; a no-op when off or when V8's `gc` is not exposed. */
  start(): this {
    if (this.opts.periodMs <= 0) return this;
    if (!this.gc) {
      this.opts.logger.debug('memory trim off: V8 gc not exposed (run node with --expose-gc)');
      return this;
    }
    this.utilization(); // the first period starts now
    this.timer = setInterval(() => this.check(), this.opts.periodMs);
    this.timer.unref();
    return this;
  }

  /** One period's end: marks work, or trims after work once the loop was quiet. @returns whether it trimmed */
  check(): boolean {
    const share = this.utilization();
    if (share > TRIM_BUSY_SHARE) this.dirty = true;
    if (share >= TRIM_IDLE_SHARE || !this.gc) {
      this.quietPeriods = 0;
      return false;
    }
    this.quietPeriods++;
    const afterStartup = this.heapAfterTrim === Infinity;
    if (this.dirty) {
      if (!afterStartup && this.quietPeriods * this.opts.periodMs < (this.opts.afterWorkMs ?? 0)) return false;
    } else if (this.heapUsed() - this.heapAfterTrim < TRIM_GROWTH_BYTES) return false;
    const before = process.memoryUsage();
    const started = performance.now();
    this.gc({ type: 'major', flavor: 'last-resort', execution: 'sync' });
    const ms = performance.now() - started;
    this.utilization(); // the GC's own time does not count as work
    this.dirty = false;
    this.heapAfterTrim = this.heapUsed();
    this.duration.observe(ms / 1000);
    const after = process.memoryUsage();
    this.opts.logger.debug({ ms: Math.round(ms), heapUsedMb: mb(after.heapUsed), heapFreedMb: mb(before.heapUsed - after.heapUsed), rssMb: mb(after.rss) }, 'idle: memory trimmed');
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * One memory-reducing full GC at the end of startup, once the service listens and before it says so: module loading and set-up leave
 * garbage V8 would keep until its next collection, so a service starts ~7-10 MB leaner instead of holding it until
 * its first idle trim (the artifact store starts at ~83 instead of ~94 MiB resident without `--optimize-for-size`).
 * Bytecode of start-up functions is still fresh then and stays; the trimmer's first trim, one quiet period after
 * start, flushes it. A no-op without V8's `gc` (`--expose-gc`). @returns how long it blocked, in ms (0 when it did not run)
 */
export function compactAfterStartup(gc: GcFunction | undefined = (globalThis as { gc?: GcFunction }).gc): number {
  if (!gc) return 0;
  const started = performance.now();
  gc({ type: 'major', flavor: 'last-resort', execution: 'sync' });
  return performance.now() - started;
}

function eventLoopShare(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
