/**
 * The BullMQ side: one worker per role on `stepQueue(role)`, each running
 * the StepProcessor, and the drain on shutdown.
 *
 * Drain: stop taking jobs and let the running ones finish. If they are not
 * done within the budget, hand them back instead: abort them (killing their
 * shells), never settle their BullMQ promise (so the job is neither completed
 * nor failed), and close without waiting. Their locks then lapse and the
 * stalled-job check of another worker runs them again.
 */
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { AGENT_QUEUE_ID_PATTERN, agentQueueRole, queueRolesFor, type MuseNames, type StepJob } from '@muse/contracts';
import { createStepWorker, type Job } from '@muse/queues';
import { SpanKind, contextFromTraceparent, withSpan, type Logger } from '@muse/telemetry';
import { isStepHandedBack, StepHandedBackError } from './step.errors.js';
import type { StepProcessor } from './step.processor.js';
import type { WorkerMetrics } from './worker.metrics.js';
import type { WorkerCounts } from './heartbeat.service.js';
import { WorkStealer, type StealReason, type WorkStealerDeps } from './work-stealer.js';

export interface StepWorkersDeps {
  connection: Redis;
  names: MuseNames;
  roles: string[];
  /** This agent's id: it also takes the jobs sent to its own queues `<role>@<agentId>` (targeted dispatch). */
  agentId?: string;
  /** Work stealing from other agents' own queues; absent = none. */
  stealing?: Omit<WorkStealerDeps, 'agentId' | 'roles' | 'freeSlots' | 'startWorker' | 'onSteal' | 'logger'>;
  /** Capabilities this worker declares (MUSE_AGENT_CAPABILITIES): it also takes the steps that require some of them. */
  capabilities?: string[];
  /** Jobs at once, per role. */
  concurrency: number;
  lockDurationMs: number;
  processor: Pick<StepProcessor, 'process'>;
  /** Aborted by `drain` when the budget runs out; the processor's executors listen to it. */
  handBack: AbortController;
  /** Kills every running shell group at once (hand-back). */
  killShells: () => void;
  metrics?: WorkerMetrics;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export class StepWorkers {
  private readonly workers: Worker<StepJob>[] = [];
  private readonly counts: WorkerCounts = { inFlight: 0, completed: 0, failed: 0 };
  private readonly roleInFlight = new Map<string, number>();
  private stealer: WorkStealer | undefined;
  /** Time of the finished attempts counted in `counts`, in ms. */
  private finishedMs = 0;

  constructor(private readonly deps: StepWorkersDeps) {}

  /** Counters for the heartbeat. */
  snapshot(): WorkerCounts {
    const finished = this.counts.completed + this.counts.failed;
    return { ...this.counts, ...(finished > 0 ? { avgStepMs: Math.round(this.finishedMs / finished) } : {}) };
  }

  start(): void {
    for (const role of this.deps.roles) {
      this.deps.metrics?.inFlight.set({ role }, 0); // a series per role from the start, not from its first job
      this.deps.metrics?.utilization.set({ role }, 0);
      // The role's queue, one per subset of this worker's capabilities (steps that require them), and this agent's own.
      const queues = queueRolesFor(role, this.deps.capabilities ?? []);
      const own = this.ownQueue(role);
      if (own !== undefined) queues.push(own);
      for (const queue of queues) this.workers.push(this.startWorker(queue, role, this.deps.concurrency));
    }
    if (this.deps.stealing && this.deps.agentId !== undefined && this.ownQueue(this.deps.roles[0]!) !== undefined) {
      this.stealer = new WorkStealer({
        ...this.deps.stealing,
        agentId: this.deps.agentId,
        roles: this.deps.roles,
        freeSlots: (role) => this.deps.concurrency - (this.roleInFlight.get(role) ?? 0),
        startWorker: (queue, role) => this.startWorker(queue, role, 1),
        onSteal: (role: string, reason: StealReason) => this.deps.metrics?.steals.inc({ role, reason }),
        logger: this.deps.logger as WorkStealerDeps['logger'],
      });
      this.stealer.start();
    }
    this.deps.logger.info({ roles: this.deps.roles, capabilities: this.deps.capabilities ?? [], concurrency: this.deps.concurrency, stealing: this.stealer !== undefined }, 'taking step jobs');
  }

  /** This agent's own queue of `role`, when its id can name one. */
  private ownQueue(role: string): string | undefined {
    const id = this.deps.agentId;
    return id !== undefined && AGENT_QUEUE_ID_PATTERN.test(id) ? agentQueueRole(role, id) : undefined;
  }

  private startWorker(queue: string, role: string, concurrency: number): Worker<StepJob> {
    const worker = createStepWorker(this.deps.connection, this.deps.names, queue, (job) => this.run(role, job), {
      concurrency,
      lockDurationMs: this.deps.lockDurationMs,
    });
    worker.on('failed', (job, err) => {
      this.deps.logger.error({ role, queue, jobId: job?.id, err: err.message }, 'step job failed (no final report stored)');
    });
    // An 'error' without a listener would crash the process; these are connection hiccups BullMQ recovers from.
    worker.on('error', (err) => this.deps.logger.warn({ role, queue, err: err.message }, 'step worker error'));
    return worker;
  }

  /**
   * Stops taking jobs and waits for the running ones up to `budgetMs`, then
   * hands back whatever still runs. @returns how many jobs were handed back
   */
  async drain(budgetMs: number): Promise<number> {
    const finished = Promise.all([...this.workers.map((w) => w.pause()), this.stealer?.pause()]).then(() => true);
    const inTime = await Promise.race([finished, sleep(budgetMs).then(() => false)]);
    const handedBack = inTime ? 0 : this.counts.inFlight;
    if (!inTime) {
      this.deps.logger.warn({ inFlight: handedBack, budgetMs }, 'in-flight steps did not finish in time; handing them back');
      this.deps.handBack.abort(new StepHandedBackError());
      this.deps.killShells();
    }
    await Promise.all([
      ...this.workers.map((w) => w.close(!inTime).catch((err: unknown) => {
        this.deps.logger.warn({ err: (err as Error).message }, 'closing step worker');
      })),
      this.stealer?.stop(!inTime),
    ]);
    return handedBack;
  }

  /** `muse_worker_utilization`: a role's running jobs over its concurrency (each role has its own BullMQ worker). */
  private busy(role: string, delta: number): void {
    const n = (this.roleInFlight.get(role) ?? 0) + delta;
    this.roleInFlight.set(role, n);
    this.deps.metrics?.utilization.set({ role }, n / this.deps.concurrency);
  }

  private async run(role: string, job: Job<StepJob>): Promise<unknown> {
    const started = Date.now();
    // Time in the queue: from enqueue (or the end of a retry's delay) to a worker taking the job.
    const waitMs = Math.max(0, started - job.timestamp - (job.opts.delay ?? 0));
    this.deps.metrics?.queueWait.observe({ role }, waitMs / 1000);
    this.counts.inFlight++;
    this.deps.metrics?.inFlight.inc({ role });
    this.busy(role, +1);
    const d = job.data as Partial<StepJob> | undefined;
    // The attempt's span continues the trace the coordinator put in the job (its enqueue span).
    const attributes = { 'muse.run_id': String(d?.runId), 'muse.step_id': String(d?.stepId), 'muse.attempt': Number(d?.attempt), 'muse.role': role, 'muse.step.kind': String(d?.kind), 'muse.queue.wait_ms': waitMs };
    try {
      const res = await withSpan(`muse.step.attempt ${role}`, { kind: SpanKind.CONSUMER, parent: contextFromTraceparent(typeof d?.traceparent === 'string' ? d.traceparent : undefined), attributes }, async (span) => {
        const r = await this.deps.processor.process(job.data);
        span.setAttribute('muse.step.outcome', r.outcome);
        return r;
      });
      if (res.outcome === 'completed') this.counts.completed++;
      else this.counts.failed++;
      this.finishedMs += Date.now() - started;
      return { outcome: res.outcome };
    } catch (err) {
      const kind = typeof job.data?.kind === 'string' ? job.data.kind : 'unknown';
      const project = typeof job.data?.project === 'string' ? job.data.project : 'unknown';
      if (isStepHandedBack(err)) {
        this.deps.metrics?.finished({ role, kind, outcome: 'handed_back', durationMs: Date.now() - started, project });
        // Never settles (so neither does this function, nor its finally): its lock lapses, BullMQ's stall check fails
        // the job (never re-run under the same attempt), and the coordinator's watch queues the next attempt.
        return await new Promise<never>(() => undefined);
      }
      this.counts.failed++;
      this.finishedMs += Date.now() - started;
      this.deps.metrics?.finished({ role, kind, outcome: 'error', durationMs: Date.now() - started, project });
      throw err;
    } finally {
      this.counts.inFlight--;
      this.deps.metrics?.inFlight.dec({ role });
      this.busy(role, -1);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
