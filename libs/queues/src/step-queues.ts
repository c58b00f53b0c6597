/**
 * One BullMQ queue per agent role. The job id is `<run>.<step>.<attempt>`, so
 * enqueueing the same attempt twice is a no-op: the coordinator may re-run a
 * handler after a crash without starting a step twice.
 */
import { Queue, Worker, type Job, type Processor } from './bullmq.js';
import type { Redis } from 'ioredis';
import { ROOT_CONTEXT, SpanKind, context, propagation, trace } from '@opentelemetry/api';
import { AGENT_QUEUE_SEPARATOR, queueRole, stepJobId, type MuseNames, type StepJob } from '@muse/contracts';
import { spanClock } from '@muse/telemetry';
import type { AgentDispatcher } from './agent-dispatcher.js';

export interface StepJobOptions {
  /** 1 (highest) to 10. */
  priority?: number;
  delayMs?: number;
  /** The agent that ran the run's latest step (the `affinity` strategy prefers it). */
  preferAgent?: string;
}

const FORGET_IF_EMPTY = `
if redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[4]) + redis.call('ZCARD', KEYS[5]) > 0 then return 0 end
return redis.call('SREM', KEYS[6], ARGV[1])`;

/** Finished jobs are kept this long so a late duplicate enqueue still finds them, in seconds. */
const KEEP_FINISHED_S = 24 * 3600;

export class StepQueues {
  private readonly queues = new Map<string, Queue<StepJob>>();
  private dispatcher: AgentDispatcher | undefined;

  constructor(
    private readonly connection: Redis,
    private readonly names: MuseNames,
  ) {}

  /** Sends the jobs of roles with a targeted strategy to agents' own queues (the coordinator's `MUSE_DISPATCH`). */
  useDispatcher(dispatcher: AgentDispatcher): void {
    this.dispatcher = dispatcher;
  }

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
      startTime: spanClock(),
      attributes: { 'muse.run_id': job.runId, 'muse.step_id': job.stepId, 'muse.attempt': job.attempt, 'muse.role': job.role },
    }, parent) : undefined;
    if (span) {
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(parent, span), carrier);
      if (carrier.traceparent !== undefined) job = { ...job, traceparent: carrier.traceparent };
    }
    // A step that requires capabilities goes to `<role>+<tags>`, which only agents with all of them take; under a
    // targeted strategy, a step goes to one agent's own queue `<role>@<agentId>`.
    const target = this.dispatcher ? await this.dispatcher.target(job, opts.preferAgent) : queueRole(job.role, job.requires);
    span?.setAttribute('messaging.destination.name', this.names.stepQueue(target));
    await this.queue(target).add(job.stepId, job, {
      jobId,
      // Retries are the coordinator's decision (a new attempt, a new job); BullMQ only re-runs stalled jobs.
      attempts: 1,
      priority: opts.priority,
      delay: opts.delayMs,
      removeOnComplete: { age: KEEP_FINISHED_S },
      removeOnFail: { age: KEEP_FINISHED_S },
    }).finally(() => span?.end(spanClock()));
    // Again after the add: an agent that forgot this (empty) queue between the dispatcher's choice and the add
    // must find it again (see forgetAgentQueue).
    if (target.includes(AGENT_QUEUE_SEPARATOR)) await this.connection.sadd(this.names.dispatchQueuesKey(job.role), target);
    return jobId;
  }

  /**
   * Where the step job `jobId` is (BullMQ's state: `unknown` when it does not exist), and when a running one
   * started. One script for a job that is not running; a running one's hash is read too, for `processedOn`. The
   * coordinator's step watches look at backlogs of waiting jobs this way, without loading each job (its hash,
   * its data and options parsed into a Job) to read its state.
   */
  async jobState(role: string, jobId: string): Promise<{ state: string; processedOn?: number }> {
    const { queue: q, state } = await this.locate(role, jobId);
    if (state !== 'active') return { state };
    const processedOn = (await q.getJob(jobId))?.processedOn;
    return processedOn === undefined ? { state } : { state, processedOn };
  }

  /**
   * The queue the step job went to and the job's state there. The dispatcher's record of where the job went and
   * the job's state on the role's own queue are asked at once (one round trip on an auto-pipelined connection):
   * only a job a targeted strategy sent to an agent's queue costs a second one.
   */
  private async locate(role: string, jobId: string): Promise<{ queue: Queue<StepJob>; state: string }> {
    const [target, state] = await Promise.all([this.dispatcher ? this.dispatcher.queueOf(role, jobId) : role, this.queue(role).getJobState(jobId)]);
    if (target === role) return { queue: this.queue(role), state };
    const queue = this.queue(target);
    return { queue, state: await queue.getJobState(jobId) };
  }

  /** Removes a queued (waiting, prioritized or delayed, not yet running) job; a running job is left to finish. */
  async remove(role: string, jobId: string): Promise<void> {
    const { queue: q, state } = await this.locate(role, jobId);
    // A job a worker took meanwhile is locked: BullMQ's remove leaves it (and says so by throwing).
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') await q.remove(jobId).catch(() => undefined);
  }

  /** Jobs of one queue role. */
  async depth(role: string): Promise<{ waiting: number; active: number; delayed: number }> {
    const c = await this.queue(role).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  /**
   * Drops an agent's own queue from the role's set, only if it holds no job (waiting, prioritized, delayed or
   * active), in one script: a job added meanwhile keeps it, and `enqueue` adds the queue again after each add.
   * @returns whether it was dropped
   */
  async forgetAgentQueue(role: string, agentQueueRole: string): Promise<boolean> {
    const base = `${this.names.bullPrefix}:${this.names.stepQueue(agentQueueRole)}`;
    // BullMQ's own key layout (`<prefix>:<queue>:wait|paused|active` lists, `prioritized|delayed` sorted sets).
    const dropped = await this.connection.eval(FORGET_IF_EMPTY, 6, `${base}:wait`, `${base}:paused`, `${base}:active`, `${base}:prioritized`, `${base}:delayed`, this.names.dispatchQueuesKey(role), agentQueueRole);
    return dropped === 1;
  }

  /** The agents' own queues of each of `roles` (the dispatcher's sets, empty under shared dispatch), in one round trip. */
  async agentQueues(roles: readonly string[]): Promise<string[][]> {
    if (roles.length === 0) return [];
    const read = this.connection.pipeline();
    for (const role of roles) read.smembers(this.names.dispatchQueuesKey(role));
    return ((await read.exec()) ?? []).map(([err, members]) => {
      if (err) throw err;
      return members as string[];
    });
  }

  /** Jobs of a role in all: its queue and the agents' own queues of it (targeted dispatch). */
  async roleDepth(role: string): Promise<{ waiting: number; active: number; delayed: number }> {
    const own = role.includes('+') ? [] : await this.connection.smembers(this.names.dispatchQueuesKey(role));
    const all = await Promise.all([role, ...own].map((q) => this.depth(q)));
    return all.reduce((a, b) => ({ waiting: a.waiting + b.waiting, active: a.active + b.active, delayed: a.delayed + b.delayed }));
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
