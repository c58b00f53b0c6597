/**
 * One BullMQ queue per agent role. The job id is `<run>.<step>.<attempt>`, so
 * enqueueing the same attempt twice is a no-op: the coordinator may re-run a
 * handler after a crash without starting a step twice.
 */
import { Queue, Worker, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { queueRole, stepJobId, type MuseNames, type StepJob } from '@muse/contracts';

export interface StepJobOptions {
  /** 1 (highest) to 10. */
  priority?: number;
  delayMs?: number;
}

/** Finished jobs are kept this long so a late duplicate enqueue still finds them, in seconds. */
const KEEP_FINISHED_S = 24 * 3600;

export class StepQueues {
  private readonly queues = new Map<string, Queue<StepJob>>();

  constructor(
    private readonly connection: Redis,
    private readonly names: MuseNames,
  ) {}

  queue(role: string): Queue<StepJob> {
    let q = this.queues.get(role);
    if (!q) {
      q = new Queue<StepJob>(this.names.stepQueue(role), { connection: this.connection, prefix: this.names.bullPrefix });
      this.queues.set(role, q);
    }
    return q;
  }

  async enqueue(job: StepJob, opts: StepJobOptions = {}): Promise<string> {
    const jobId = stepJobId(job.runId, job.stepId, job.attempt, job.index);
    // The attempt's producer span: under the trace stored with the run (`job.traceparent`) — under the handler's
    // span when that span is in the same trace — else under the handler's span; the worker's attempt span becomes
    // its child through the job.
    const active = trace.getSpanContext(context.active());
    const stored = job.traceparent !== undefined && job.traceparent.split('-')[1] !== active?.traceId;
    const parent = stored ? propagation.extract(ROOT_CONTEXT, { traceparent: job.traceparent }) : context.active();
    // Never a trace of its own: a job of a run without a trace (tracing off when it was submitted) gets no span.
    const span = trace.getSpanContext(parent) ? trace.getTracer('muse').startSpan(`muse.step.enqueue ${job.role}`, {
      kind: SpanKind.PRODUCER,
      attributes: { 'muse.run_id': job.runId, 'muse.step_id': job.stepId, 'muse.attempt': job.attempt, 'muse.role': job.role, 'messaging.destination.name': this.names.stepQueue(queueRole(job.role, job.requires)) },
    }, parent) : undefined;
    if (span) {
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(parent, span), carrier);
      if (carrier.traceparent !== undefined) job = { ...job, traceparent: carrier.traceparent };
    }
    // A step that requires capabilities goes to `<role>+<tags>`, which only agents with all of them take.
    await this.queue(queueRole(job.role, job.requires)).add(job.stepId, job, {
      jobId,
      // Retries are the coordinator's decision (a new attempt, a new job); BullMQ only re-runs stalled jobs.
      attempts: 1,
      priority: opts.priority,
      delay: opts.delayMs,
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    }).finally(() => span?.end());
    return jobId;
  }

  /** Removes a queued (not yet running) job; a running job is left to finish. */
  async remove(role: string, jobId: string): Promise<void> {
    const job = await this.queue(role).getJob(jobId);
    if (job && (await job.isWaiting() || await job.isDelayed())) await job.remove().catch(() => undefined);
  }

  async depth(role: string): Promise<{ waiting: number; active: number; delayed: number }> {
    const c = await this.queue(role).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

export interface StepWorkerOptions {
  concurrency: number;
  /** A job whose lock is not renewed for this long counts as stalled and runs again elsewhere, in ms. */
  lockDurationMs: number;
}

export function createStepWorker(
  connection: Redis,
  names: MuseNames,
  role: string,
  processor: Processor<StepJob>,
  opts: StepWorkerOptions,
): Worker<StepJob> {
  return new Worker<StepJob>(names.stepQueue(role), processor, {
    connection,
    prefix: names.bullPrefix,
    concurrency: opts.concurrency,
    lockDuration: opts.lockDurationMs,
    stalledInterval: Math.max(1000, Math.floor(opts.lockDurationMs / 2)),
    // A stalled job (its worker died or stopped renewing the lock) is failed, never re-run under
    // the same attempt: a shell step's side effect must happen at most once per attempt. The
    // coordinator's step watch sees the failed job and queues the next attempt under the retry policy.
    maxStalledCount: 0,
    autorun: true,
  });
}

export type { Job };
