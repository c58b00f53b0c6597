/**
 * The coordinators' durable timers, shared by every replica (so a timer
 * outlives the replica that set it):
 *
 * - step watches, on a sorted set in Redis that every replica sweeps
 *   (libs/queues/src/step-watch-list.ts): every `watchMs` while an attempt's job runs, look at
 *   it (a job still waiting for a worker cannot be lost: its checks back off
 *   from `watchMs`, doubling up to `waitingMaxMs`, so queued backlogs cost
 *   little; a leased step's watch renews its leases, so it keeps `watchMs`). A
 *   job its worker lost (BullMQ moved it to failed after its lock lapsed; step
 *   workers never re-run a stalled job under the same attempt), a missing job,
 *   or one active past its `timeoutMs` by more than `watchMs` fails the
 *   attempt: a `step-report` from `coordinator`, with a message id, so the
 *   engine retries it under the step's policy. A report about an attempt that
 *   already ended is stale and changes nothing. A finished attempt's watch is
 *   dropped.
 * - delayed BullMQ jobs on one queue, which a killed replica's worker leaves
 *   to another replica's: `run-deadline` (when a run's `timeoutMs` passes, a
 *   `run-timeout` command) and `approval-timeout` (when an approval gate's
 *   `timeoutMs` passes, its `onTimeout` decision, by `timeout`: a person's
 *   earlier decision wins). A `watch-step` job left by an older version is
 *   looked at once and goes on in the sorted set.
 */
import { Queue, Worker, type Job, type StepQueues } from '@muse/queues';
import type { Redis } from 'ioredis';
import { stepKey, type Command, type MuseNames } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { LeaseTable } from '@muse/locks';
import type { StepWatchList, WatchOutcome } from '@muse/queues';

export type WatchStep = { kind: 'watch-step'; runId: string; project: string; stepId: string; attempt: number; role: string; jobId: string; timeoutMs: number; n: number; index?: number; leased?: boolean };

export type TimerJob =
  | WatchStep
  | { kind: 'run-deadline'; runId: string; project: string; timeoutMs: number }
  | { kind: 'approval-timeout'; runId: string; project: string; stepId: string; decision: 'approve' | 'reject' };

/** Finished timer jobs are kept this long so a repeated add stays a no-op, in seconds. */
const KEEP_FINISHED_S = 3600;

export interface StepTimersDeps {
  connection: Redis;
  names: MuseNames;
  queues: Pick<StepQueues, 'jobState'>;
  publish: (cmd: Command, msgId: string) => Promise<unknown>;
  /** Period of step watches, in ms. */
  watchMs: number;
  /** The longest gap between watches of a job still waiting for a worker, in ms. @default watchMs (no back-off) */
  waitingMaxMs?: number;
  logger: Pick<Logger, 'debug' | 'warn'>;
  now?: () => number;
  /** Renews the leases of a step whose job is alive (steps with `locks:`). */
  leases?: Pick<LeaseTable, 'renew'>;
  /** The step watches' sorted set. */
  watches: Pick<StepWatchList<WatchStep>, 'add' | 'remove' | 'start' | 'close'>;
  /** The timer queue (tests pass a fake); made from `connection` by default. */
  queue?: Pick<Queue<TimerJob>, 'add' | 'close'>;
}

export class StepTimers {
  private readonly queue: Pick<Queue<TimerJob>, 'add' | 'close'>;
  private worker: Worker<TimerJob> | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: StepTimersDeps) {
    this.queue = deps.queue ?? new Queue<TimerJob>(deps.names.timerQueue, { connection: deps.connection, prefix: deps.names.bullPrefix });
    this.now = deps.now ?? Date.now;
  }

  /** Starts the watch of an attempt (a no-op when it has one). */
  async watchStep(t: Omit<WatchStep, 'kind' | 'n'>): Promise<void> {
    await this.deps.watches.add(t.jobId, { kind: 'watch-step', ...t, n: 1 }, this.deps.watchMs);
  }

  /**
   * Drops the watch of a finished attempt (it would only find the job completed). Best effort: a watch that stays
   * (Redis did not answer) fires and finds the step finished.
   */
  forgetWatch(jobId: string): void {
    void this.deps.watches.remove(jobId).catch((err: unknown) => this.deps.logger.debug({ err, jobId }, 'step watch not dropped; it will fire and stop'));
  }

  /** Sets the run's deadline at `createdAtMs + timeoutMs` (a no-op when it exists). */
  async runDeadline(runId: string, project: string, timeoutMs: number, createdAtMs: number): Promise<void> {
    const delay = Math.max(0, createdAtMs + timeoutMs - this.now());
    await this.add({ kind: 'run-deadline', runId, project, timeoutMs }, `${runId}.deadline`, delay);
  }

  /** Decides an approval gate by itself at `waitingSinceMs + timeoutMs` (a no-op when set already). */
  async approvalTimeout(runId: string, project: string, stepId: string, timeoutMs: number, decision: 'approve' | 'reject', waitingSinceMs: number): Promise<void> {
    const delay = Math.max(0, waitingSinceMs + timeoutMs - this.now());
    // One timer per opening of the gate: a gate re-driven by a retry opens again (a later time) and gets a timer of its own.
    await this.add({ kind: 'approval-timeout', runId, project, stepId, decision }, `${runId}.${stepId}.approval-timeout.${waitingSinceMs}`, delay);
  }

  private async add(data: TimerJob, jobId: string, delay: number): Promise<void> {
    await this.queue.add(data.kind, data, {
      jobId,
      delay,
      attempts: 5,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    });
  }

  /** Starts taking timer jobs and sweeping the watches; `lockMs` is how soon another replica takes over a dead one's timers. */
  start(opts: { concurrency: number; lockMs: number }): void {
    this.deps.watches.start((t) => this.look(t));
    this.worker = new Worker<TimerJob>(this.deps.names.timerQueue, (job) => this.fire(job), {
      connection: this.deps.connection,
      prefix: this.deps.names.bullPrefix,
      concurrency: opts.concurrency,
      lockDuration: opts.lockMs,
      stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
      // Timers are idempotent: a stalled one simply runs again.
      maxStalledCount: 1000,
    });
    this.worker.on('error', (err) => this.deps.logger.warn({ err: err.message }, 'timer worker error'));
  }

  async fire(job: Pick<Job<TimerJob>, 'data'>): Promise<void> {
    const t = job.data;
    if (t.kind === 'run-deadline') {
      await this.deps.publish({ kind: 'run-timeout', runId: t.runId, project: t.project, timeoutMs: t.timeoutMs }, `${t.runId}.timeout`);
      return;
    }
    if (t.kind === 'approval-timeout') {
      await this.deps.publish(
        { kind: 'approval-decision', runId: t.runId, project: t.project, stepId: t.stepId, decision: t.decision, by: 'timeout', at: new Date(this.now()).toISOString() },
        `${t.runId}.${t.stepId}.approval.timeout`,
      );
      return;
    }
    const next = await this.look(t);
    if (next) await this.deps.watches.add(t.jobId, next.data, next.delayMs);
  }

  /** One look at a watched attempt: it goes on (when, with what), or it is over (the job completed, or was reported). */
  async look(t: WatchStep): Promise<WatchOutcome<WatchStep>> {
    const { state, processedOn } = await this.deps.queues.jobState(t.role, t.jobId);
    if (state === 'completed') return undefined; // its final report is stored before a step job completes
    if (state === 'failed' || state === 'unknown') {
      await this.report(t, 'MUSE_ERR_STEP_LOST', `the worker lost attempt ${t.attempt} of step "${t.stepId}" (job ${state === 'unknown' ? 'missing' : state})`, 'lost');
      return undefined;
    }
    if (state === 'active' && processedOn !== undefined && this.now() - processedOn > t.timeoutMs + this.deps.watchMs) {
      await this.report(t, 'MUSE_ERR_STEP_TIMEOUT', `step "${t.stepId}" attempt ${t.attempt} ran past ${t.timeoutMs} ms without its worker reporting`, 'timeout');
      return undefined;
    }
    // Still waiting, delayed (backoff) or running within its time: its leases live on (the heartbeat), and look again later.
    if (t.leased) await this.deps.leases?.renew(t.project, { runId: t.runId, stepId: t.stepId });
    return { delayMs: this.nextWatchMs(t, state), data: { ...t, n: t.n + 1 } };
  }

  /**
   * When to look again: a running job (or a leased step, whose leases this watch renews) after one period; a job
   * that waits for a worker after 2^n periods (the n-th watch found it waiting), up to `waitingMaxMs`.
   */
  private nextWatchMs(t: WatchStep, state: string): number {
    const { watchMs } = this.deps;
    if (state === 'active' || t.leased) return watchMs;
    return Math.max(watchMs, Math.min(this.deps.waitingMaxMs ?? watchMs, watchMs * 2 ** Math.min(t.n, 30)));
  }

  private async report(t: WatchStep, code: 'MUSE_ERR_STEP_LOST' | 'MUSE_ERR_STEP_TIMEOUT', message: string, tag: string): Promise<void> {
    this.deps.logger.debug({ runId: t.runId, stepId: t.stepId, attempt: t.attempt, code }, 'failing an attempt no worker will finish');
    await this.deps.publish(
      {
        kind: 'step-report',
        runId: t.runId,
        project: t.project,
        stepId: t.stepId,
        attempt: t.attempt,
        agentId: 'coordinator',
        outcome: 'failed',
        at: new Date(this.now()).toISOString(),
        error: { code, message, retryable: true },
        ...(t.index !== undefined ? { index: t.index } : {}),
      },
      // One lost (or timeout) report per attempt; a worker's own final report has another id, and whichever the engine folds first wins.
      `${t.runId}.${stepKey(t.stepId, t.index)}.${t.attempt}.failed.${tag}`,
    );
  }

  async close(): Promise<void> {
    await this.deps.watches.close();
    await this.worker?.close();
    await this.queue.close();
  }
}
