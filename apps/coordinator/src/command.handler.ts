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
  childRunId,
  DEFAULT_RUN_PRIORITY,
  MuseError,
  isTerminalStepStatus,
  stepJobId,
  stepKey,
  WORKFLOW_ROLE,
  type ArtifactCommitRequest,
  type ArtifactRef,
  type AuditRecord,
  type Command,
  type MuseErrorCode as ErrorCode,
  type MuseNames,
  type RunEvent,
  type StepReport,
  type StoredWorkflow,
} from '@muse/contracts';
import { buildStepJob, runAgent, stepQueueRole, foldEvents, isFinished, missingInputs, RunTransition, toRunView, type EngineDefaults, type Gate, type RunState } from '@muse/engine';
import { CommandTooLargeError, EventTooLargeError, isWrongLastSequence, sendStepReport, type CommandContext, type JetStreamBus } from '@muse/messaging';
import type { StepJobOptions, StepQueues } from '@muse/queues';
import type { LeaseTable, RunLockDraw, RunLocks } from '@muse/locks';
import { withSpan, type Logger, type MuseMetrics } from '@muse/telemetry';
import { KeyedSerial } from './keyed-serial.js';
import { RunCache, type CachedRun } from './run-cache.js';
import type { RunViewStore } from './run-view.store.js';
import type { StepTimers } from './step-timers.js';
import type { DeadLetters } from './dead-letters.js';
import type { ConcurrencyGates, GateHolder } from './concurrency-gates.js';
import type { InlineArtifactCommits } from './inline-artifact-commits.js';

/** How deep sub-workflows nest when the deployment does not say (MUSE_MAX_WORKFLOW_DEPTH). */
export const DEFAULT_MAX_WORKFLOW_DEPTH = 5;

/** Artifact-commit refusals that redelivering the report cannot change. */
const UNCOMMITTABLE: ReadonlySet<string> = new Set(['MUSE_ERR_ARTIFACT_BLOB_COLLECTING', 'MUSE_ERR_ARTIFACT_NOT_FOUND', 'MUSE_ERR_REQUEST_INVALID', 'MUSE_ERR_ARTIFACT_VERSION_CONFLICT']);

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
  timers?: Pick<StepTimers, 'watchStep' | 'runDeadline' | 'approvalTimeout'> & Partial<Pick<StepTimers, 'forgetWatch'>>;
  /** Where steps that failed for good are listed (`GET /v1/dead-letters`). */
  deadLetters?: Pick<DeadLetters, 'apply'>;
  /** How often a handler tells JetStream it is still working on a command, in ms (below the consumer's ack wait). */
  progressMs?: number;
  /** Keyed concurrency limits (`concurrency: {key, limit}`); without them a gated run or step waits for ever. */
  gates?: ConcurrencyGates;
  /** The registered workflow a sub-workflow step starts (the latest version unless one is named); null when none. */
  workflows?: (project: string, name: string, version?: number) => Promise<StoredWorkflow | null>;
  /** Deepest nesting of sub-workflows (a child of a top-level run is depth 1). @default 5 */
  maxWorkflowDepth?: number;
  /** Leases of steps with `locks:`; without them such a step waits for ever. */
  leases?: LeaseTable;
  /**
   * Commits of small outputs made here instead of by the artifact store; without them every commit is the store's.
   * With `drawing`, the commit of the report a hold of the run's lock opens for goes out with the lock's first try.
   */
  inlineCommits?: Pick<InlineArtifactCommits, 'commit'> & Partial<Pick<InlineArtifactCommits, 'drawing'>>;
  now?: () => string;
}

export class CommandHandler {
  private readonly cache = new RunCache();
  /** Commands of one run, one at a time; those that queued up share one hold of the run's lock. */
  private readonly serial: KeyedSerial<{ token: number; signal: AbortSignal }, Command>;
  /** Artifact commits started early for a waiting report, under the hold (fencing token) that started them. */
  private readonly precommits = new WeakMap<StepReport, { token: number; result: Promise<ArtifactRef[]> }>();
  /** Reports an earlier command of the same hold folded into its own append and effects: their turn has nothing left to do. */
  private readonly folded = new WeakSet<Command>();
  /** Each command's delivery, while it waits or runs. */
  private readonly contexts = new WeakMap<Command, CommandContext>();
  private readonly now: () => string;
  private readonly handled;
  private readonly appended;
  private readonly duration;
  private readonly runsFinished;

  constructor(private readonly deps: CommandHandlerDeps) {
    this.serial = new KeyedSerial(
      (runId, body) => deps.locks.withRunLock(runId, (token, signal) => body({ token, signal }), this.drawWithCommit(runId)),
      { lost: (held) => held.signal.aborted },
    );
    this.now = deps.now ?? (() => new Date().toISOString());
    const m = deps.metrics;
    this.handled = m.counter('muse_coordinator_commands_total', 'Commands handled, by kind and outcome', ['kind', 'outcome']);
    this.appended = m.counter('muse_coordinator_events_appended_total', 'Run events appended to the log, by type', ['type']);
    this.duration = m.histogram('muse_event_persist_seconds', 'Time to handle one command: lock, fold, append, effects', ['kind']);
    this.runsFinished = m.counter('muse_coordinator_runs_finished_total', 'Runs that reached a terminal state, by status and project', ['status', 'project']);
  }

  get cachedRuns(): number {
    return this.cache.size;
  }

  async handle(cmd: Command, ctx: CommandContext): Promise<void> {
    const end = this.duration.startTimer({ kind: cmd.kind });
    // A slow command (a reload, an artifact commit) must not be redelivered to another replica while this one works on it.
    const progress = setInterval(() => ctx.working(), this.deps.progressMs ?? 2_000);
    progress.unref();
    this.contexts.set(cmd, ctx);
    try {
      await this.serial.run(cmd.runId, ({ token }) => this.handleLocked(cmd, ctx, token), cmd);
      this.handled.inc({ kind: cmd.kind, outcome: 'ok' });
    } catch (err) {
      this.handled.inc({ kind: cmd.kind, outcome: 'error' });
      throw err;
    } finally {
      clearInterval(progress);
      end();
    }
  }

  /**
   * Starts the artifact commits of the completed reports this hold of the run's lock will handle (this command's
   * and those queued behind it), under the hold's fencing token, so that their commits (each a round trip to Redis,
   * or a request to the artifact store) overlap instead of running one after another inside the run's critical
   * section. A report then folds with its commit already done.
   * Only for attempts still open in the current state; should an earlier command of the queue close one (a failed
   * run cancels its open steps), that commit stays unused, as when a crash falls between a commit and its append.
   */
  private precommit(runId: string, state: RunState | undefined, token: number): void {
    if (!state) return;
    let started = 0;
    for (const c of this.serial.upcoming(runId)) {
      if (started >= PRECOMMIT_MAX) break;
      if (c.kind !== 'step-report' || c.outcome !== 'completed' || !c.artifacts?.length) continue;
      if (this.precommits.get(c)?.token === token || !openAttempt(state, c)) continue;
      const result = this.commitArtifacts(state, c, token);
      result.catch(() => undefined); // seen (and handled) when the report folds; dropped if it never does
      this.precommits.set(c, { token, result });
      started++;
    }
  }

  /**
   * A draw of the fencing token for the hold about to open on `runId` that also commits the outputs of the report at
   * the head of the run's queue (the first command the hold runs), when the coordinator makes that commit itself: the
   * try at the lock, the token and the commit then go out in one write, one round trip to Redis instead of two one
   * after the other (RunLockDraw, ArtifactRepository.commitDrawing). The commit made is that report's early commit
   * under the hold's token, as `precommit` starts for the reports queued behind it. Undefined (a plain draw) for any
   * other command, a run whose state is not cached, or a commit that is the artifact store's.
   */
  private drawWithCommit(runId: string): RunLockDraw | undefined {
    const head = this.serial.head(runId);
    const inline = this.deps.inlineCommits;
    if (!inline?.drawing || head?.kind !== 'step-report') return undefined;
    const req = commitRequest(this.cache.get(runId)?.state, head);
    const commit = req && inline.drawing(req);
    if (!req || !commit) return undefined;
    return (lock) =>
      withSpan('muse.artifact.commit', { attributes: { 'muse.run_id': runId, 'muse.step_id': req.stepId, 'muse.attempt': req.attempt, 'muse.run_lock.drawn': true } }, async (span) => {
        const drawn = await commit(lock);
        // Nothing committed here: the lock was another's (the hold waits for it, and commits then), or the script did
        // not take the commit (the hold's own commit of the report goes to the artifact store).
        const committed = drawn.held && drawn.response?.ok ? drawn.response.artifacts : undefined;
        span.setAttribute('muse.artifact.committed_by', committed ? 'coordinator' : 'none');
        if (!drawn.held) return null;
        if (committed) this.precommits.set(head, { token: drawn.token, result: Promise.resolve(committed) });
        return drawn.token;
      });
  }

  /** The artifacts of a completed report, committed under `token`: by its early commit when one was started under it. */
  private committed(state: RunState | undefined, r: StepReport, token: number): Promise<ArtifactRef[]> {
    const pre = this.precommits.get(r);
    this.precommits.delete(r);
    if (pre && pre.token === token) return pre.result;
    return this.commitArtifacts(state, r, token);
  }

  /**
   * The commands one fold takes: `cmd`, and when it is a step report, the step reports queued right behind it in
   * this hold (at most FOLD_MAX). Reports of a run's parallel steps or forEach elements then cost one append to the
   * run log, one round of effects and one view write together, instead of one each, one after another.
   */
  private foldable(cmd: Command): Command[] {
    if (cmd.kind !== 'step-report') return [cmd];
    const upcoming = this.serial.upcoming(cmd.runId);
    if (upcoming[0] !== cmd) return [cmd];
    const batch: Command[] = [cmd];
    for (const c of upcoming.slice(1)) {
      if (c.kind !== 'step-report' || batch.length >= FOLD_MAX) break;
      batch.push(c);
    }
    return batch;
  }

  /**
   * Appends a fold's events after `before`. An event too large for one run-log message never fits, however often it
   * is tried, so it is not left to redelivery: a `run.completed` goes without its output (`outputBytes` in its place;
   * the fold gives the same output from the steps), any other fails the run with MUSE_ERR_EVENT_TOO_LARGE instead of
   * the whole fold.
   * @returns the stream sequence of the last event appended, and the events and state that append stands for
   */
  private async append(runId: string, events: RunEvent[], state: RunState | undefined, before: CachedRun): Promise<{ last: number; events: RunEvent[]; state: RunState | undefined }> {
    try {
      return { last: await this.deps.bus.appendRunEvents(runId, events, before.lastStreamSeq), events, state };
    } catch (err) {
      if (!(err instanceof EventTooLargeError)) throw err;
      const big = events.find((e) => e.id === err.event.id);
      if (big?.type === 'run.completed' && big.data.outputBytes === undefined) {
        const outputBytes = Buffer.byteLength(JSON.stringify(big.data.output ?? null));
        this.deps.logger.warn({ runId, outputBytes, limitBytes: err.limitBytes }, 'run output too large for its run.completed event; the event carries its size, the view the output');
        const slim: RunEvent = { ...big, data: { outputBytes } };
        return this.append(runId, events.map((e) => (e === big ? slim : e)), state, before);
      }
      const tx = new RunTransition(before.state, this.now);
      tx.fail(new MuseError('MUSE_ERR_EVENT_TOO_LARGE', err.message, { details: { event: err.event.type, bytes: err.bytes, limitBytes: err.limitBytes } }).toWire());
      // A run not begun (a run.created too large) or already ended has nothing to fail.
      if (tx.events.length === 0) throw err;
      this.deps.logger.error({ runId, event: err.event.type, bytes: err.bytes, limitBytes: err.limitBytes }, 'event too large for the run log; the run fails');
      return this.append(runId, tx.events, tx.state, before);
    }
  }

  private async handleLocked(cmd: Command, ctx: CommandContext, token: number): Promise<void> {
    // Folded into an earlier command's append, effects included, under this run's lock: done.
    if (this.folded.delete(cmd)) return;
    let entry = this.cache.get(cmd.runId);
    let reloaded = false;
    /** Whether the state came from a log with events in it: only then can an earlier handler have left effects undone. */
    let foundLog = false;
    if (!entry && cmd.kind === 'run-submit' && ctx.deliveryCount === 1) {
      // A submission seen for the first time starts a run whose log is empty: no read. The append expects the run's
      // subject to be empty, so should it not be (a submission repeated after the dedupe window), the append fails
      // and the log is read then, as for any log that moved on.
      entry = { state: undefined, lastStreamSeq: 0 };
    } else if (!entry) {
      entry = await this.load(cmd.runId);
      reloaded = true;
      foundLog = entry.lastStreamSeq > 0;
      if (!entry.state && cmd.kind !== 'run-submit') {
        // No run in the log yet: its submission was accepted (the gateway checks the run is there before it sends a
        // pause or a cancel) but not handled yet, as when another replica took the command sent right after it first.
        // Redelivered until it is; a command for a run that never was (or whose log is gone) is dropped after that.
        if (ctx.deliveryCount < EARLY_COMMAND_DELIVERIES) throw new RunNotStartedError(cmd.runId, cmd.kind);
        this.deps.logger.warn({ runId: cmd.runId, kind: cmd.kind, deliveries: ctx.deliveryCount }, 'command for a run that is not in the log; dropped');
        return;
      }
    }
    this.precommit(cmd.runId, entry.state, token);
    /** The commands whose decisions the last append carried (`cmd` first). */
    let taken: Command[] = [];
    for (let attempt = 0; ; attempt++) {
      // Each command decides on the state the one before it left, exactly as if each had its own turn; only the
      // append and the effects are shared. One that fails to decide (behind `cmd`) is left for its own turn.
      let state = entry.state;
      let events: RunEvent[] = [];
      taken = [];
      for (const c of this.foldable(cmd)) {
        const tx = new RunTransition(state, this.now);
        try {
          await this.decide(tx, c, token);
        } catch (err) {
          if (c === cmd) throw err;
          break;
        }
        events.push(...tx.events);
        state = tx.state;
        taken.push(c);
      }
      if (events.length === 0) {
        // Nothing to do, by the state this replica has. With several replicas a
        // cached state can be behind the log (another replica appended since),
        // and a report about a step queued there would look stale here and be
        // dropped: check the log's head before accepting "nothing to do".
        if (!reloaded && (await this.deps.bus.lastRunMessage(cmd.runId))?.seq !== (entry.lastStreamSeq || undefined)) {
          entry = await this.load(cmd.runId);
          reloaded = true;
          foundLog = true;
          continue;
        }
        break;
      }
      try {
        let last: number;
        ({ last, events, state } = await this.append(cmd.runId, events, state, entry));
        entry = { state, lastStreamSeq: last };
        this.cache.set(cmd.runId, entry);
      } catch (err) {
        if (!isWrongLastSequence(err) || attempt >= MAX_APPEND_RETRIES) throw err;
        this.deps.logger.debug({ runId: cmd.runId }, 'run log moved on; reloading');
        entry = await this.load(cmd.runId);
        reloaded = true;
        foundLog = true;
        continue;
      }
      for (const ev of events) this.appended.inc({ type: ev.type });
      // Once the effects' first writes are on their way (they are sent as they are made, before this runs).
      setImmediate(() => this.auditTransitions(events));
      // The reports queued behind this fold start their commits now, while its effects go out.
      this.precommit(cmd.runId, entry.state, token);
      await this.effects(events, entry.state!);
      for (const c of taken) if (c !== cmd) this.folded.add(c);
      break;
    }
    // After a crash between append and effects, the redelivered command (or a
    // replica that had to read the log) finds nothing new to append: make sure
    // the effects of the state it found happened anyway.
    // A brand-new run (its log was empty) has no earlier effects: the ones just carried out are all there are.
    const redelivered = ctx.deliveryCount > 1 || taken.some((c) => (this.contexts.get(c)?.deliveryCount ?? 1) > 1);
    if ((foundLog || redelivered) && entry.state) await this.ensureEffects(entry.state);
    // A slot granted to a run that no longer wants it (it finished, or the step was settled meanwhile) goes to the next.
    if (cmd.kind === 'concurrency-grant' && entry.state && !wantsSlot(entry.state, cmd)) {
      const gate = gateOf(entry.state, cmd);
      if (gate) await this.release(entry.state.project, gate, cmd);
    }
    // Leases granted to a step that no longer wants them go to the next waiter.
    if (cmd.kind === 'lease-grant' && entry.state && !wantsLease(entry.state, cmd.stepId)) await this.releaseLease(entry.state.project, { runId: cmd.runId, stepId: cmd.stepId });
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
      case 'run-budget':
        tx.raiseBudget(cmd, defaults);
        break;
      case 'concurrency-grant':
        tx.admit(cmd, defaults);
        break;
      case 'lease-grant':
        tx.grantLease(cmd, defaults);
        break;
      case 'step-report': {
        let artifacts: ArtifactRef[];
        try {
          artifacts = await this.committed(tx.state, cmd, token);
        } catch (err) {
          // A commit the artifact store will refuse however often the report comes back (the blob is gone, or was
          // uploaded longer ago than the GC grace period; sizes that disagree; a version conflict) fails the attempt
          // instead of redelivering the report for ever: the step then retries (re-uploading) under its policy.
          if (!(err instanceof MuseError) || !UNCOMMITTABLE.has(err.code)) throw err;
          const retryable = err.code === 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING' || err.code === 'MUSE_ERR_ARTIFACT_NOT_FOUND';
          this.deps.logger.warn({ runId: cmd.runId, stepId: cmd.stepId, attempt: cmd.attempt, code: err.code }, 'step outputs could not be committed; failing the attempt');
          const { output: _output, artifacts: _uploads, ...rest } = cmd;
          tx.report({ ...rest, outcome: 'failed', error: { code: err.code, message: `the outputs of attempt ${cmd.attempt} could not be committed: ${err.message}`, retryable, ...(err.details ? { details: err.details } : {}) } }, defaults);
          break;
        }
        tx.report(cmd, defaults, artifacts);
      }
    }
    // Whatever the command: if a crash cut an earlier handler off between two appends, the
    // decisions it had not yet appended are made again now (planning a settled run emits nothing).
    tx.plan(defaults);
  }

  /**
   * Every state transition also goes to the audit stream (`GET /v1/audit`), beside the API's mutations: who (the
   * agent, the approver, or the coordinator), what (the event type), which run or step, and when. Best effort and
   * off the hot path (sent without waiting for an ack, the fold's records in one message): the run's own log, already
   * appended, is the record that counts.
   */
  private auditTransitions(events: readonly RunEvent[]): void {
    const records = events.map((ev): AuditRecord => {
      const data = ev.data as { stepId?: string; agentId?: string; index?: number };
      return {
        time: ev.at,
        principal: data.agentId ?? 'coordinator',
        project: ev.project,
        action: ev.type,
        target: data.stepId !== undefined ? `${ev.runId}/${stepKey(data.stepId, data.index)}` : ev.runId,
        outcome: ev.type.endsWith('.failed') ? 'failed' : 'allowed',
      };
    });
    try {
      this.deps.bus.sendAudit(records);
    } catch (err) {
      this.deps.logger.debug({ err, runId: events[0]?.runId, types: events.map((e) => e.type) }, 'audit records of transitions not sent');
    }
  }

  /** Binds the blobs a worker uploaded to the run, under this hold's fencing token. */
  private async commitArtifacts(state: RunState | undefined, r: StepReport, token: number): Promise<ArtifactRef[]> {
    const unfenced = commitRequest(state, r);
    if (!unfenced) return [];
    const req: ArtifactCommitRequest = { ...unfenced, fencingToken: token };
    return withSpan('muse.artifact.commit', { attributes: { 'muse.run_id': r.runId, 'muse.step_id': req.stepId, 'muse.attempt': r.attempt } }, async (span) => {
      // Small outputs that rode in the report are committed here when they can be; the rest by the artifact store.
      const inline = await this.deps.inlineCommits?.commit(req);
      span.setAttribute('muse.artifact.committed_by', inline ? 'coordinator' : 'artifact-store');
      const res = inline ?? ArtifactCommitResponseSchema.parse(await this.deps.bus.request(this.deps.names.artifactCommitSubject, req));
      if (!res.ok) throw MuseError.fromWire(res.error);
      return res.artifacts;
    });
  }

  private async effects(events: RunEvent[], state: RunState): Promise<void> {
    const { queues, defaults } = this.deps;
    // The view goes out beside the other effects (it keeps the newest seq, so its order among them does not matter),
    // once the first of them are on their way: the next steps' jobs go out first. The command is acked only after all
    // of them, the view included.
    let view: Promise<unknown> | undefined;
    const startView = (): void => {
      if (view) return;
      const write = this.deps.views.write(toRunView(state));
      write.catch(() => undefined); // awaited below; seen there unless an effect failed first
      view = write;
    };
    let settle = false;
    // Jobs of steps queued together (a step's dependents, a forEach's next elements) and their watches go out at once:
    // they are independent of each other. Any other effect waits until they are in.
    let queued: Array<Promise<unknown>> = [];
    const flush = async () => {
      startView();
      if (queued.length === 0) return;
      const batch = queued;
      queued = [];
      await Promise.all(batch);
    };
    for (const ev of events) {
      if (ev.type === 'step.queued' && state.steps[ev.data.stepId]!.role !== WORKFLOW_ROLE) {
        const built = buildStepJob(state, ev.data.stepId, ev.data.attempt, defaults, ev.data.index);
        // The engine only queues a step whose job it could build.
        if (built.ok) {
          queued.push(
            queues.enqueue(built.job, { ...this.placement(state), ...(ev.data.delayMs !== undefined ? { delayMs: ev.data.delayMs } : {}) }),
            this.watch(state, ev.data.stepId, ev.data.attempt, built.job.timeoutMs, ev.data.index),
          );
        }
        continue;
      }
      if (ev.type === 'step.completed' || ev.type === 'step.failed' || ev.type === 'step.skipped') {
        // Nothing here waits: the jobs queued so far need not be in first.
        const st = state.steps[ev.data.stepId];
        if (st?.gate || st?.lease) settle = true;
        // The attempt's job is done with: its first watch need not fire.
        if (ev.type !== 'step.skipped' && st && st.role !== WORKFLOW_ROLE) this.deps.timers?.forgetWatch?.(stepJobId(state.runId, ev.data.stepId, ev.data.attempt, ev.data.index));
        continue;
      }
      // An event with no effect of its own (a step started, a forEach expanded, …) does not wait for the jobs queued
      // so far: the next elements a fold of a fan-out's reports queues then go out together, not one per report.
      const effect = this.orderedEffect(ev, state, events);
      if (!effect) continue;
      await flush();
      if (await effect()) settle = true;
    }
    await flush();
    if (settle) await this.releaseSettled(state, false);
    await this.deps.deadLetters?.apply(events, state);
    await view;
  }

  /**
   * The effect of `ev` that waits for the jobs queued before it (`effects` sends those first), or undefined when it
   * has none; the effect resolves to true when the run's held slots and leases must be settled afterwards.
   */
  private orderedEffect(ev: RunEvent, state: RunState, events: RunEvent[]): (() => Promise<boolean | void>) | undefined {
    switch (ev.type) {
      case 'step.queued':
        return () => this.startChild(state, ev.data.stepId, ev.data.attempt);
      case 'run.started':
        return () => this.deadline(state);
      case 'step.waiting': {
        const timeoutMs = ev.data.timeoutMs;
        if (timeoutMs === undefined) return undefined;
        return async () => {
          await this.deps.timers?.approvalTimeout(state.runId, state.project, ev.data.stepId, timeoutMs, ev.data.onTimeout ?? 'reject', Date.parse(ev.at));
        };
      }
      case 'lease.waiting':
        return () => this.askForLeases(state, ev.data.stepId, ev.data.locks, Date.parse(ev.at));
      case 'concurrency.waiting':
        return () => this.askForSlot(state, { runId: state.runId, ...(ev.data.stepId !== undefined ? { stepId: ev.data.stepId } : {}) }, Date.parse(ev.at));
      case 'run.compensating':
        return async () => {
          // The steps it cancelled need not run; their compensations come next.
          await this.dropQueuedJobs(state, []);
          this.stopRunningSteps(state);
          await this.cancelChildren(state);
          return true;
        };
      case 'run.completed':
      case 'run.failed':
      case 'run.cancelled':
        return async () => {
          this.runsFinished.inc({ status: state.status, project: state.project });
          await this.dropQueuedJobs(state, events);
          // A completed run has every step finished: only an attempt superseded by a retry (lost or timed out, yet still
          // going on its worker) can still run, so without retries no worker needs the notice.
          if (ev.type !== 'run.completed' || retried(state)) this.stopRunningSteps(state);
          await this.cancelChildren(state);
          await this.reportToParent(state);
          return true;
        };
      default:
        return undefined;
    }
  }

  /** Re-enqueues every queued step (a no-op for jobs that exist) and rewrites the view. */
  private async ensureEffects(state: RunState): Promise<void> {
    if (state.status === 'running' || state.status === 'waiting') {
      for (const st of Object.values(state.steps)) {
        if (st.status !== 'queued') continue;
        if (st.role === WORKFLOW_ROLE) {
          await this.startChild(state, st.id, st.attempts);
          continue;
        }
        const built = buildStepJob(state, st.id, st.attempts, this.deps.defaults);
        if (built.ok) await this.deps.queues.enqueue(built.job, this.placement(state));
      }
      // A slot asked for whose grant a crash may have lost: ask again (a holder is told again).
      if (state.gate && !state.gate.admitted) await this.askForSlot(state, { runId: state.runId }, Date.parse(state.updatedAt));
      for (const st of Object.values(state.steps)) {
        if (st.gate && !st.gate.admitted && st.status === 'waiting') await this.askForSlot(state, { runId: state.runId, stepId: st.id }, Date.parse(st.finishedAt ?? state.updatedAt));
        if (st.lease && !st.lease.granted && st.status === 'waiting') await this.askForLeases(state, st.id, st.lease.locks, Date.parse(state.updatedAt));
      }
      for (const st of Object.values(state.steps)) {
        if (st.status !== 'queued' && st.status !== 'running') continue;
        if (st.items) {
          for (const [index, it] of st.items.entries()) {
            if (it.status !== 'queued' && it.status !== 'running') continue;
            const built = buildStepJob(state, st.id, it.attempts, this.deps.defaults, index);
            if (!built.ok) continue;
            await this.deps.queues.enqueue(built.job, this.placement(state));
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
        if (st.status === 'waiting' && def?.type === 'approval' && def.timeoutMs !== undefined && st.startedAt !== undefined) {
          await this.deps.timers?.approvalTimeout(state.runId, state.project, st.id, def.timeoutMs, def.onTimeout ?? 'reject', Date.parse(st.startedAt));
        }
      }
    }
    if (isFinished(state) || state.compensation) {
      await this.cancelChildren(state);
      if (isFinished(state)) await this.reportToParent(state);
      await this.releaseSettled(state, true);
    }
    await this.deps.views.write(toRunView(state));
  }

  /** Takes a slot of the holder's key or joins its queue; a slot taken at once is granted by a command, like any other. */
  private async askForSlot(state: RunState, holder: GateHolder, arrivedMs: number): Promise<void> {
    const gate = gateOf(state, holder);
    if (!gate || !this.deps.gates) return;
    if (await this.deps.gates.acquire(state.project, gate.key, gate.limit, holder, Number.isFinite(arrivedMs) ? arrivedMs : Date.now())) await this.grant(state.project, holder);
  }

  /** Takes a step's leases (all or none) or queues it; leases taken at once are granted by a command, like any other. */
  private async askForLeases(state: RunState, stepId: string, locks: string[], arrivedMs: number): Promise<void> {
    if (!this.deps.leases) return;
    const token = await this.deps.leases.acquire(state.project, { runId: state.runId, stepId }, locks, Number.isFinite(arrivedMs) ? arrivedMs : Date.now());
    if (token !== undefined) await this.deps.bus.publishCommand({ kind: 'lease-grant', runId: state.runId, project: state.project, stepId, token });
  }

  private async releaseLease(project: string, holder: { runId: string; stepId: string }): Promise<void> {
    if (!this.deps.leases) return;
    for (const next of await this.deps.leases.release(project, holder)) {
      await this.deps.bus.publishCommand({ kind: 'lease-grant', runId: next.runId, project, stepId: next.stepId, token: next.token });
    }
  }

  private async grant(project: string, holder: GateHolder): Promise<void> {
    await this.deps.bus.publishCommand({ kind: 'concurrency-grant', runId: holder.runId, project, ...(holder.stepId !== undefined ? { stepId: holder.stepId } : {}) });
  }

  private async release(project: string, gate: Gate, holder: GateHolder): Promise<void> {
    if (!this.deps.gates) return;
    for (const next of await this.deps.gates.release(project, gate.key, gate.limit, holder)) await this.grant(project, next);
  }

  /**
   * Gives back the slots of a finished run, and of its settled steps. After a crash (`regrant`), the key's holders
   * are told again: a grant published by a handler that died may never have been sent (a repeated grant is a no-op).
   */
  private async releaseSettled(state: RunState, regrant: boolean): Promise<void> {
    const done = isFinished(state);
    for (const st of Object.values(state.steps)) {
      if (st.lease && (done || isTerminalStepStatus(st.status))) await this.releaseLease(state.project, { runId: state.runId, stepId: st.id });
    }
    if (!this.deps.gates) return;
    const settled: Array<[Gate, GateHolder]> = [];
    if (state.gate && done) settled.push([state.gate, { runId: state.runId }]);
    for (const st of Object.values(state.steps)) {
      if (st.gate && (done || isTerminalStepStatus(st.status))) settled.push([st.gate, { runId: state.runId, stepId: st.id }]);
    }
    for (const [gate, holder] of settled) {
      await this.release(state.project, gate, holder);
      if (regrant) for (const h of await this.deps.gates.holders(state.project, gate.key)) await this.grant(state.project, h);
    }
  }

  /**
   * Starts the child run of a sub-workflow step's attempt: the registered workflow, its input rendered, linked to
   * this run. The child's id is derived from (run, step, attempt), so starting it again is a no-op. What keeps it
   * from starting (too deep, no such workflow, input that does not fit) fails the step for good.
   */
  private async startChild(state: RunState, stepId: string, attempt: number): Promise<void> {
    const built = buildStepJob(state, stepId, attempt, this.deps.defaults);
    if (!built.ok || built.job.kind !== 'workflow' || !built.job.workflow) return;
    const workflow = built.job.workflow;
    const input = built.job.input ?? {};
    const childId = childRunId(state.runId, stepId, attempt);
    const at = this.now();
    const fail = (code: ErrorCode, message: string, details?: Record<string, unknown>) =>
      this.deps.bus.publishCommand(
        { kind: 'step-report', runId: state.runId, project: state.project, stepId, attempt, agentId: 'coordinator', outcome: 'failed', at, error: { code, message, retryable: false, ...(details ? { details } : {}) } },
        `child-refused.${childId}`,
      );
    const depth = (state.parent?.depth ?? 0) + 1;
    const max = this.deps.maxWorkflowDepth ?? DEFAULT_MAX_WORKFLOW_DEPTH;
    if (depth > max) return void (await fail('MUSE_ERR_WORKFLOW_DEPTH', `step "${stepId}": sub-workflow "${workflow.name}" would nest ${depth} deep; the limit is ${max} (MUSE_MAX_WORKFLOW_DEPTH)`));
    const found = (await this.deps.workflows?.(state.project, workflow.name, workflow.version)) ?? null;
    if (!found) {
      const what = workflow.version === undefined ? `workflow "${workflow.name}"` : `version ${workflow.version} of workflow "${workflow.name}"`;
      return void (await fail('MUSE_ERR_WORKFLOW_NOT_FOUND', `step "${stepId}": no ${what} in project "${state.project}"`, { ...workflow }));
    }
    const missing = missingInputs(found.definition, input);
    if (missing.length > 0) return void (await fail('MUSE_ERR_RUN_INPUT_INVALID', `step "${stepId}": the input of "${workflow.name}" lacks ${missing.map((i) => i.path).join(', ')}`, { issues: missing }));
    const stepTimeout = state.definition.steps.find((d) => d.id === stepId)?.timeoutMs;
    const definition = stepTimeout === undefined ? found.definition : { ...found.definition, timeoutMs: Math.min(found.definition.timeoutMs ?? stepTimeout, stepTimeout) };
    try {
      await this.deps.bus.publishCommand(
        {
          kind: 'run-submit',
          runId: childId,
          project: state.project,
          workflow: { name: found.name, version: found.version },
          definition,
          input,
          parent: { runId: state.runId, stepId, attempt, depth },
          submittedAt: at,
          ...(state.priority !== undefined ? { priority: state.priority } : {}),
          ...(state.traceparent !== undefined ? { traceparent: state.traceparent } : {}),
        },
        `submit.${childId}`,
      );
    } catch (err) {
      // As large on every try: the step fails instead of its parent waiting for a child that cannot start.
      if (!(err instanceof CommandTooLargeError)) throw err;
      const { bytes, limitBytes } = err;
      return void (await fail('MUSE_ERR_RUN_INPUT_TOO_LARGE', `step "${stepId}": the submission of "${workflow.name}" (its input and definition) makes a command of ${bytes} bytes, over the ${limitBytes}-byte limit of one message (the NATS server's max_payload)`, { bytes, limitBytes }));
    }
    await this.deps.bus.publishCommand({ kind: 'step-report', runId: state.runId, project: state.project, stepId, attempt, agentId: childId, outcome: 'started', at }, `child-started.${childId}`);
  }

  /** A finished child run reports to its parent's step, as a worker would: its output, or why it did not succeed. */
  private async reportToParent(state: RunState): Promise<void> {
    const p = state.parent;
    if (!p || !isFinished(state)) return;
    const base = { kind: 'step-report' as const, runId: p.runId, project: state.project, stepId: p.stepId, attempt: p.attempt, agentId: state.runId, at: this.now() };
    const report: StepReport =
      state.status === 'succeeded'
        ? { ...base, outcome: 'completed', output: state.output ?? null }
        : {
            ...base,
            outcome: 'failed',
            error: {
              code: 'MUSE_ERR_CHILD_RUN_FAILED',
              message: `child run ${state.runId} (${state.workflow.name}) ${state.status}: ${state.error?.message ?? 'no reason given'}`,
              retryable: false,
              details: { childRunId: state.runId, status: state.status, ...(state.error ? { error: state.error } : {}) },
            },
          };
    // An output too large for the report fails the parent's step (MUSE_ERR_STEP_OUTPUT_TOO_LARGE) rather than leave it waiting.
    await sendStepReport(report, (r) => this.deps.bus.publishCommand(r, `child-report.${state.runId}`), (err) =>
      this.deps.logger.warn({ runId: state.runId, parent: p.runId, bytes: err.bytes, limitBytes: err.limitBytes }, "child run's output too large to report to its parent; the parent's step fails"),
    );
  }

  /** Cancelling (or failing) a run cancels the child runs of its sub-workflow steps that were still going. */
  private async cancelChildren(state: RunState): Promise<void> {
    for (const st of Object.values(state.steps)) {
      if (st.role !== WORKFLOW_ROLE || st.attempts === 0 || st.status !== 'cancelled') continue;
      // The derived id: the child may have been submitted before its start was recorded here.
      const child = childRunId(state.runId, st.id, st.attempts);
      await this.deps.bus.publishCommand({ kind: 'run-cancel', runId: child, project: state.project, reason: `its parent run ${state.runId} ended ${state.status === 'running' || state.status === 'waiting' ? 'compensating' : state.status}` }, `cancel-child.${child}`);
    }
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
      await this.deps.queues.remove(stepQueueRole(state, ev.data.stepId), ev.data.jobId);
    }
    for (const st of Object.values(state.steps)) {
      if (st.status === 'cancelled' && st.items) {
        for (const [index, it] of st.items.entries()) {
          if (it.attempts > 0 && (it.status === 'queued' || it.status === 'running')) await this.deps.queues.remove(stepQueueRole(state, st.id), stepJobId(state.runId, st.id, it.attempts, index));
        }
      } else if (st.status === 'cancelled' && st.attempts > 0) {
        await this.deps.queues.remove(stepQueueRole(state, st.id), `${state.runId}.${st.id}.${st.attempts}`);
      }
    }
  }

  /** The run's priority, and the agent its next steps prefer (`affinity` dispatch). */
  private placement(state: RunState): StepJobOptions {
    const agent = runAgent(state);
    return { priority: state.priority ?? DEFAULT_RUN_PRIORITY, ...(agent !== undefined ? { preferAgent: agent } : {}) };
  }

  private async watch(state: RunState, stepId: string, attempt: number, timeoutMs: number, index?: number): Promise<void> {
    const role = stepQueueRole(state, stepId);
    // A child run keeps its own time (its run timeout); there is no job to watch.
    if (state.steps[stepId]!.role === WORKFLOW_ROLE) return;
    await this.deps.timers?.watchStep({
      runId: state.runId,
      project: state.project,
      stepId,
      attempt,
      role,
      jobId: stepJobId(state.runId, stepId, attempt, index),
      timeoutMs,
      ...(index !== undefined ? { index } : {}),
      ...(state.steps[stepId]!.lease ? { leased: true } : {}),
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

/** The gate a grant (or holder) names: the run's, or one step's. */
function gateOf(state: RunState, h: { stepId?: string | undefined }): Gate | undefined {
  return h.stepId === undefined ? state.gate : state.steps[h.stepId]?.gate;
}

/** Whether the holder still uses (or waits for) its slot. */
function wantsSlot(state: RunState, h: { stepId?: string | undefined }): boolean {
  if (isFinished(state)) return false;
  if (h.stepId === undefined) return state.gate !== undefined;
  const st = state.steps[h.stepId];
  return st?.gate !== undefined && !isTerminalStepStatus(st.status);
}

/** Whether a step still waits for (or uses) the leases it was granted. */
function wantsLease(state: RunState, stepId: string): boolean {
  if (isFinished(state)) return false;
  const st = state.steps[stepId];
  return st?.lease !== undefined && !isTerminalStepStatus(st.status);
}

/**
 * How often a command for a run not in the log yet is delivered before it is dropped: its submission is handled in
 * the meantime (JetStream redelivers a failed command after `retryDelayMs`, 500 ms: about a minute in all).
 */
export const EARLY_COMMAND_DELIVERIES = 120;

/** A command reached a coordinator before its run's submission was handled: redelivered (see EARLY_COMMAND_DELIVERIES). */
export class RunNotStartedError extends Error {
  constructor(runId: string, kind: string) {
    super(`${kind} for run ${runId}, which is not in the log yet; redelivered until its submission is handled`);
    this.name = 'RunNotStartedError';
  }
}

/** Early artifact commits one hold starts at most (each a round trip to Redis, or a request to the artifact store). */
const PRECOMMIT_MAX = 64;
/** Most step reports one append carries (see `foldable`). */
const FOLD_MAX = 64;

/** Whether any step (or forEach element) of the run took more than one attempt. */
function retried(state: RunState): boolean {
  return Object.values(state.steps).some((st) => st.attempts > 1 || (st.items?.some((it) => it.attempts > 1) ?? false));
}

/** The commit of a completed report's outputs, its fencing token aside; undefined when it has none to commit (or its attempt is not open). */
function commitRequest(state: RunState | undefined, r: StepReport): Omit<ArtifactCommitRequest, 'fencingToken'> | undefined {
  if (r.outcome !== 'completed' || !r.artifacts?.length || !state || !openAttempt(state, r)) return undefined;
  return {
    runId: r.runId,
    project: r.project,
    // Elements of a forEach step each commit under their own name.
    stepId: stepKey(r.stepId, r.index),
    attempt: r.attempt,
    agentId: r.agentId,
    artifacts: r.artifacts,
    // The workflow's retention; without it the artifact store's default applies.
    ...(state.definition.retention ? { ttlSeconds: state.definition.retention.ttlDays * 86_400 } : {}),
  };
}

/** Whether the report's attempt (of a step, or of one forEach element) is still queued or running in `state`. */
function openAttempt(state: RunState, r: StepReport): boolean {
  const st = state.steps[r.stepId];
  const open = r.index === undefined ? st : st?.status === 'running' ? st.items?.[r.index] : undefined;
  return !!open && open.attempts === r.attempt && (open.status === 'queued' || open.status === 'running');
}
