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
  MuseError,
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
    try {
      await this.serial.run(cmd.runId, () =>
        this.deps.locks.withRunLock(cmd.runId, (token) => this.handleLocked(cmd, ctx, token)),
      );
      this.handled.inc({ kind: cmd.kind, outcome: 'ok' });
    } catch (err) {
      this.handled.inc({ kind: cmd.kind, outcome: 'error' });
      throw err;
    } finally {
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
      if (tx.events.length === 0) break;
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
        return;
      case 'run-cancel':
        tx.cancel(cmd);
        return;
      case 'step-report': {
        const artifacts = await this.commitArtifacts(tx.state, cmd, token);
        tx.report(cmd, defaults, artifacts);
      }
    }
  }

  /** Binds the blobs a worker uploaded to the run, under this hold's fencing token. */
  private async commitArtifacts(state: RunState | undefined, r: StepReport, token: number): Promise<ArtifactRef[]> {
    if (r.outcome !== 'completed' || !r.artifacts?.length || !state) return [];
    const st = state.steps[r.stepId];
    if (!st || st.attempts !== r.attempt || (st.status !== 'queued' && st.status !== 'running')) return [];
    const raw = await this.deps.bus.request(this.deps.names.artifactCommitSubject, {
      runId: r.runId,
      project: r.project,
      stepId: r.stepId,
      attempt: r.attempt,
      agentId: r.agentId,
      fencingToken: token,
      artifacts: r.artifacts,
    });
    const res = ArtifactCommitResponseSchema.parse(raw);
    if (!res.ok) throw MuseError.fromWire(res.error);
    return res.artifacts;
  }

  private async effects(events: RunEvent[], state: RunState): Promise<void> {
    const { queues, defaults } = this.deps;
    for (const ev of events) {
      if (ev.type === 'step.queued') {
        const built = buildStepJob(state, ev.data.stepId, ev.data.attempt, defaults);
        // The engine only queues a step whose job it could build.
        if (built.ok) await queues.enqueue(built.job);
      } else if (ev.type === 'run.completed' || ev.type === 'run.failed' || ev.type === 'run.cancelled') {
        this.runsFinished.inc({ status: state.status });
        await this.dropQueuedJobs(state, events);
      }
    }
    await this.deps.views.write(toRunView(state));
  }

  /** Re-enqueues every queued step (a no-op for jobs that exist) and rewrites the view. */
  private async ensureEffects(state: RunState): Promise<void> {
    if (state.status === 'running') {
      for (const st of Object.values(state.steps)) {
        if (st.status !== 'queued') continue;
        const built = buildStepJob(state, st.id, st.attempts, this.deps.defaults);
        if (built.ok) await this.deps.queues.enqueue(built.job);
      }
    }
    await this.deps.views.write(toRunView(state));
  }

  /** A finished run's steps that were still waiting in a queue need not run. */
  private async dropQueuedJobs(state: RunState, events: RunEvent[]): Promise<void> {
    for (const ev of events) {
      if (ev.type !== 'step.queued') continue;
      await this.deps.queues.remove(state.steps[ev.data.stepId]!.role, ev.data.jobId);
    }
    for (const st of Object.values(state.steps)) {
      if (st.status === 'cancelled' && st.attempts > 0) {
        await this.deps.queues.remove(st.role, `${state.runId}.${st.id}.${st.attempts}`);
      }
    }
  }

  private async load(runId: string): Promise<CachedRun> {
    const { events, lastStreamSeq } = await this.deps.bus.readRunEvents(runId);
    return { state: foldEvents(events), lastStreamSeq };
  }
}
