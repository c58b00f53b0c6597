/**
 * Handles one command for one run: take the run's lock (and with it a fresh
 * fencing token), fold the command into the run's state with the engine,
 * append the resulting events to the run's log, then carry out the effects
 * (enqueue step jobs, update the read model). The command is acked only after
 * all of that, so a crash anywhere means redelivery, and redelivery is safe:
 * the engine turns a command it has already seen into no events, and
 * enqueueing is idempotent by job id.
 */
import {
  ArtifactCommitResponseSchema,
  DEFAULT_RUN_PRIORITY,
  MuseError,
  stepJobId,
  stepKey,
  type ArtifactRef,
  type Command,
  type MuseNames,
  type RunEvent,
  type StepReport,
} from '@muse/contracts';
import { buildStepJob, foldEvents, RunTransition, toRunView, type EngineDefaults, type RunState } from '@muse/engine';
import { isWrongLastSequence, type CommandContext, type JetStreamBus } from '@muse/messaging';
import type { StepQueues } from '@muse/queues';
import type { RunLocks } from '@muse/locks';
import type { Logger, MuseMetrics } from '@muse/telemetry';
import { KeyedSerial } from './keyed-serial.js';
import { RunCache, type CachedRun } from './run-cache.js';
import type { RunViewStore } from './run-view.store.js';
import type { StepTimers } from './step-timers.js';
import type { DeadLetters } from './dead-letters.js';

/** Appends retried after a concurrent writer moved the log on. */
const MAX_APPEND_RETRIES = 5;

export interface CommandHandlerDeps {
  bus: JetStreamBus;
  queues: StepQueues;
  locks: RunLocks;
  views: RunViewStore;
  names: MuseNames;
  defaults: EngineDefaults;
  logger: Logger;
  metrics: MuseMetrics;
  /** Durable timers (step watches, run deadlines); without them nothing notices a lost step. */
  timers?: Pick<StepTimers, 'watchStep' | 'runDeadline' | 'approvalTimeout'>;
  /** Where steps that failed for good are listed (`GET /v1/dead-letters`). */
  deadLetters?: Pick<DeadLetters, 'apply'>;
  /** How often a handler tells JetStream it is still working on a command, in ms (below the consumer's ack wait). */
  progressMs?: number;
  now?: () => string;
}

export class CommandHandler {
  private readonly cache = new RunCache();
  private readonly serial = new KeyedSerial();
  private readonly now: () => string;
  private readonly handled;
  private readonly appended;
  private readonly duration;
  private readonly runsFinished;

  constructor(private readonly deps: CommandHandlerDeps) {
    this.now = deps.now ?? (() => new Date().toISOString());
    const m = deps.metrics;
    this.handled = m.counter('muse_coordinator_commands_total', 'Commands handled, by kind and outcome', ['kind', 'outcome']);
    this.appended = m.counter('muse_coordinator_events_appended_total', 'Run events appended to the log, by type', ['type']);
    this.duration = m.histogram('muse_event_persist_seconds', 'Time to handle one command: lock, fold, append, effects', ['kind']);
    this.runsFinished = m.counter('muse_coordinator_runs_finished_total', 'Runs that reached a terminal state, by status', ['status']);
  }

  get cachedRuns(): number {
    return this.cache.size;
  }

  async handle(cmd: Command, ctx: CommandContext): Promise<void> {
    const end = this.duration.startTimer({ kind: cmd.kind });
    // A slow command (a reload, an artifact commit) must not be redelivered to another replica while this one works on it.
    const progress = setInterval(() => ctx.working(), this.deps.progressMs ?? 2_000);
    progress.unref();
    try {
      await this.serial.run(cmd.runId, () =>
        this.deps.locks.withRunLock(cmd.runId, (token) => this.handleLocked(cmd, ctx, token)),
      );
      this.handled.inc({ kind: cmd.kind, outcome: 'ok' });
    } catch (err) {
      this.handled.inc({ kind: cmd.kind, outcome: 'error' });
      throw err;
    } finally {
      clearInterval(progress);
      end();
    }
  }

  private async handleLocked(cmd: Command, ctx: CommandContext, token: number): Promise<void> {
    let entry = this.cache.get(cmd.runId);
    let reloaded = false;
    if (!entry) {
      entry = await this.load(cmd.runId);
      reloaded = true;
    }
    for (let attempt = 0; ; attempt++) {
      const tx = new RunTransition(entry.state, this.now);
      await this.decide(tx, cmd, token);
      if (tx.events.length === 0) {
        // Nothing to do, by the state this replica has. With several replicas a
        // cached state can be behind the log (another replica appended since),
        // and a report about a step queued there would look stale here and be
        // dropped: check the log's head before accepting "nothing to do".
        if (!reloaded && (await this.deps.bus.lastRunMessage(cmd.runId))?.seq !== (entry.lastStreamSeq || undefined)) {
          entry = await this.load(cmd.runId);
          reloaded = true;
          continue;
        }
        break;
      }
      try {
        const last = await this.deps.bus.appendRunEvents(cmd.runId, tx.events, entry.lastStreamSeq);
        entry = { state: tx.state, lastStreamSeq: last };
        this.cache.set(cmd.runId, entry);
      } catch (err) {
        if (!isWrongLastSequence(err) || attempt >= MAX_APPEND_RETRIES) throw err;
        this.deps.logger.debug({ runId: cmd.runId }, 'run log moved on; reloading');
        entry = await this.load(cmd.runId);
        reloaded = true;
        continue;
      }
      for (const ev of tx.events) this.appended.inc({ type: ev.type });
      await this.effects(tx.events, entry.state!);
      break;
    }
    // After a crash between append and effects, the redelivered command (or a
    // replica that had to read the log) finds nothing new to append: make sure
    // the effects of the state it found happened anyway.
    if ((reloaded || ctx.deliveryCount > 1) && entry.state) await this.ensureEffects(entry.state);
  }

  private async decide(tx: RunTransition, cmd: Command, token: number): Promise<void> {
    const { defaults } = this.deps;
    switch (cmd.kind) {
      case 'run-submit':
        tx.submit(cmd, defaults);
        break;
      case 'run-cancel':
        tx.cancel(cmd, defaults);
        break;
      case 'run-timeout':
        tx.timeout(cmd);
        break;
      case 'approval-decision':
        tx.decide(cmd, defaults);
        break;
      case 'run-control':
        tx.control(cmd, defaults);
        break;
      case 'step-report': {
        const artifacts = await this.commitArtifacts(tx.state, cmd, token);
        tx.report(cmd, defaults, artifacts);
      }
    }
    // Whatever the command: if a crash cut an earlier handler off between two appends, the
    // decisions it had not yet appended are made again now (planning a settled run emits nothing).
    tx.plan(defaults);
  }

  /** Binds the blobs a worker uploaded to the run, under this hold's fencing token. */
  private async commitArtifacts(state: RunState | undefined, r: StepReport, token: number): Promise<ArtifactRef[]> {
    if (r.outcome !== 'completed' || !r.artifacts?.length || !state) return [];
    const st = state.steps[r.stepId];
    const open = r.index === undefined ? st : st?.status === 'running' ? st.items?.[r.index] : undefined;
    if (!open || open.attempts !== r.attempt || (open.status !== 'queued' && open.status !== 'running')) return [];
    const raw = await this.deps.bus.request(this.deps.names.artifactCommitSubject, {
      runId: r.runId,
      project: r.project,
      // Elements of a forEach step each commit under their own name.
      stepId: stepKey(r.stepId, r.index),
      attempt: r.attempt,
      agentId: r.agentId,
      fencingToken: token,
      artifacts: r.artifacts,
      // The workflow's retention; without it the artifact store applies its default.
      ...(state.definition.retention ? { ttlSeconds: state.definition.retention.ttlDays * 86_400 } : {}),
    });
    const res = ArtifactCommitResponseSchema.parse(raw);
    if (!res.ok) throw MuseError.fromWire(res.error);
    return res.artifacts;
  }

  private async effects(events: RunEvent[], state: RunState): Promise<void> {
    const { queues, defaults } = this.deps;
    for (const ev of events) {
      if (ev.type === 'step.queued') {
        const built = buildStepJob(state, ev.data.stepId, ev.data.attempt, defaults, ev.data.index);
        // The engine only queues a step whose job it could build.
        if (built.ok) {
          await queues.enqueue(built.job, { priority: state.priority ?? DEFAULT_RUN_PRIORITY, ...(ev.data.delayMs !== undefined ? { delayMs: ev.data.delayMs } : {}) });
          await this.watch(state, ev.data.stepId, ev.data.attempt, built.job.timeoutMs, ev.data.index);
        }
      } else if (ev.type === 'run.started') {
        await this.deadline(state);
      } else if (ev.type === 'step.waiting' && ev.data.timeoutMs !== undefined) {
        await this.deps.timers?.approvalTimeout(state.runId, state.project, ev.data.stepId, ev.data.timeoutMs, ev.data.onTimeout ?? 'reject', Date.parse(ev.at));
      } else if (ev.type === 'run.compensating') {
        // The steps it cancelled need not run; their compensations come next.
        await this.dropQueuedJobs(state, []);
        this.stopRunningSteps(state);
      } else if (ev.type === 'run.completed' || ev.type === 'run.failed' || ev.type === 'run.cancelled') {
        this.runsFinished.inc({ status: state.status });
        await this.dropQueuedJobs(state, events);
        this.stopRunningSteps(state);
      }
    }
    await this.deps.deadLetters?.apply(events, state);
    await this.deps.views.write(toRunView(state));
  }

  /** Re-enqueues every queued step (a no-op for jobs that exist) and rewrites the view. */
  private async ensureEffects(state: RunState): Promise<void> {
    if (state.status === 'running' || state.status === 'waiting') {
      for (const st of Object.values(state.steps)) {
        if (st.status !== 'queued') continue;
        const built = buildStepJob(state, st.id, st.attempts, this.deps.defaults);
        if (built.ok) await this.deps.queues.enqueue(built.job, { priority: state.priority ?? DEFAULT_RUN_PRIORITY });
      }
      for (const st of Object.values(state.steps)) {
        if (st.status !== 'queued' && st.status !== 'running') continue;
        if (st.items) {
          for (const [index, it] of st.items.entries()) {
            if (it.status !== 'queued' && it.status !== 'running') continue;
            const built = buildStepJob(state, st.id, it.attempts, this.deps.defaults, index);
            if (!built.ok) continue;
            await this.deps.queues.enqueue(built.job, { priority: state.priority ?? DEFAULT_RUN_PRIORITY });
            await this.watch(state, st.id, it.attempts, built.job.timeoutMs, index);
          }
          continue;
        }
        const built = buildStepJob(state, st.id, st.attempts, this.deps.defaults);
        if (built.ok) await this.watch(state, st.id, st.attempts, built.job.timeoutMs);
      }
      await this.deadline(state);
      for (const st of Object.values(state.steps)) {
        const def = state.definition.steps.find((d) => d.id === st.id);
        if (st.status === 'waiting' && def?.timeoutMs !== undefined && st.startedAt !== undefined) {
          await this.deps.timers?.approvalTimeout(state.runId, state.project, st.id, def.timeoutMs, def.onTimeout ?? 'reject', Date.parse(st.startedAt));
        }
      }
    }
    await this.deps.views.write(toRunView(state));
  }

  /**
   * Tells the workers (core NATS, best effort) to stop the run's steps still
   * running: their late reports would be stale anyway. A worker that misses
   * the notice finishes the step, and its report changes nothing.
   */
  private stopRunningSteps(state: RunState): void {
    try {
      this.deps.bus.publish(this.deps.names.runStopSubject(state.runId), { runId: state.runId, status: state.status });
    } catch (err) {
      this.deps.logger.debug({ err, runId: state.runId }, 'run-stop notice not sent');
    }
  }

  /** A finished run's steps that were still waiting in a queue need not run. */
  private async dropQueuedJobs(state: RunState, events: RunEvent[]): Promise<void> {
    for (const ev of events) {
      if (ev.type !== 'step.queued') continue;
      await this.deps.queues.remove(state.steps[ev.data.stepId]!.role, ev.data.jobId);
    }
    for (const st of Object.values(state.steps)) {
      if (st.status === 'cancelled' && st.items) {
        for (const [index, it] of st.items.entries()) {
          if (it.attempts > 0 && (it.status === 'queued' || it.status === 'running')) await this.deps.queues.remove(st.role, stepJobId(state.runId, st.id, it.attempts, index));
        }
      } else if (st.status === 'cancelled' && st.attempts > 0) {
        await this.deps.queues.remove(st.role, `${state.runId}.${st.id}.${st.attempts}`);
      }
    }
  }

  private async watch(state: RunState, stepId: string, attempt: number, timeoutMs: number, index?: number): Promise<void> {
    const role = state.steps[stepId]!.role;
    await this.deps.timers?.watchStep({
      runId: state.runId,
      project: state.project,
      stepId,
      attempt,
      role,
      jobId: stepJobId(state.runId, stepId, attempt, index),
      timeoutMs,
      ...(index !== undefined ? { index } : {}),
    });
  }

  private async deadline(state: RunState): Promise<void> {
    const t = state.definition.timeoutMs;
    if (t !== undefined) await this.deps.timers?.runDeadline(state.runId, state.project, t, Date.parse(state.createdAt));
  }

  private async load(runId: string): Promise<CachedRun> {
    const { events, lastStreamSeq } = await this.deps.bus.readRunEvents(runId);
    return { state: foldEvents(events), lastStreamSeq };
  }
}
