/**
 * Decisions: given a run's state and something that happened (a submission, a
 * worker's report, a cancellation), which events to append next. Pure: the
 * coordinator appends what comes out and carries out the effects.
 */
import {
  childRunId,
  queueRole,
  compensatedStep,
  compensationId,
  keyedConcurrency,
  WORKFLOW_ROLE,
  type ConcurrencyGrantCommand,
  type LeaseGrantCommand,
  needsAny,
  stepJobId,
  stepNeeds,
  type Backoff,
  type ErrorBody,
  type RunTimeoutCommand,
  type ApprovalDecisionCommand,
  type RunControlCommand,
  type RunBudgetCommand,
  promptTemplateHash,
  stepKey,
  type StepDefinition,
  type NewRunEvent,
  type RunCancelCommand,
  type RunEvent,
  type RunSubmitCommand,
  type StepJob,
  type StepReport,
  type AttemptSpend,
  type ArtifactRef,
} from '@muse/contracts';
import { applyEvent, runOutput, templateContext, type RunState } from './state.js';
import { renderTemplate, renderValue, TemplateError } from './template.js';
import { agentToolExtras, renderHttpRequest } from './tool-jobs.js';
import { ConditionError, evaluateCondition, evaluateKey, evaluateList } from './condition.js';

/** Elements of a `forEach` step running at once when it does not say. */
export const DEFAULT_FOREACH_CONCURRENCY = 10;

/** Backoff used when neither the step nor the workflow sets one. */
export const DEFAULT_BACKOFF: Required<Backoff> = { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 0 };

export interface EngineDefaults {
  /** Attempts per step when the step does not say. */
  maxAttempts: number;
  /** Start-to-close timeout of one attempt, in ms, when the step does not say. */
  timeoutMs: number;
}

/** Accumulates new events, folding each into the state as it is emitted. */
export class RunTransition {
  readonly events: RunEvent[] = [];
  /** What this transition's folds copied, theirs to change again (see `applyEvent`). */
  private readonly owned = new WeakSet<object>();

  constructor(
    public state: RunState | undefined,
    private readonly now: () => string,
    /** Source of backoff jitter in [0, 1); the delay drawn is recorded in the event, so folding stays deterministic. */
    private readonly random: () => number = Math.random,
  ) {}

  emit(runId: string, project: string, ev: NewRunEvent): RunEvent {
    const seq = (this.state?.seq ?? 0) + 1;
    const full = { id: `${runId}.${seq}`, runId, project, seq, at: this.now(), ...ev } as RunEvent;
    this.state = applyEvent(this.state, full, this.owned);
    this.events.push(full);
    return full;
  }

  private emitFor(ev: NewRunEvent): RunEvent {
    const s = this.state!;
    return this.emit(s.runId, s.project, ev);
  }

  /** A new run: created, started, and its first steps queued. A submission seen before is a no-op. */
  submit(cmd: RunSubmitCommand, defaults: EngineDefaults): void {
    // Seen before: finish what a crash between appends may have left undone (each step below is idempotent).
    if (this.state) return this.resume(cmd, defaults);
    this.emit(cmd.runId, cmd.project, {
      type: 'run.created',
      data: {
        workflow: cmd.workflow,
        definition: cmd.definition,
        input: cmd.input,
        ...(cmd.idempotencyKey !== undefined ? { idempotencyKey: cmd.idempotencyKey } : {}),
        ...(cmd.traceparent !== undefined ? { traceparent: cmd.traceparent } : {}),
        ...(cmd.priority !== undefined ? { priority: cmd.priority } : {}),
        ...(cmd.rerunOf !== undefined ? { rerunOf: { runId: cmd.rerunOf.runId, fromStep: cmd.rerunOf.fromStep } } : {}),
        ...(cmd.parent !== undefined ? { parent: cmd.parent } : {}),
        ...(cmd.replayOf !== undefined ? { replayOf: cmd.replayOf } : {}),
      },
    });
    this.resume(cmd, defaults);
  }

  /** The rest of a submission after `run.created`: started, reused outputs, first steps. */
  private resume(cmd: RunSubmitCommand, defaults: EngineDefaults): void {
    const s = this.state!;
    if (isFinished(s)) return;
    if (s.status === 'pending') this.emitFor({ type: 'run.started', data: {} });
    // A rerun reuses the outputs of the steps before its start step: no paid step runs twice.
    for (const [stepId, output] of Object.entries(cmd.rerunOf?.outputs ?? {})) {
      const st = this.state!.steps[stepId];
      if (st?.status === 'pending' && st.attempts === 0) this.emitFor({ type: 'step.reused', data: { stepId, fromRun: cmd.rerunOf!.runId, output } });
    }
    this.plan(defaults);
  }

  /**
   * A worker's report. Stale reports (an older attempt, a finished step, a
   * finished run) change nothing; that is what makes redelivery safe.
   * `artifacts` are the refs the artifact store committed for a completion.
   */
  report(r: StepReport, defaults: EngineDefaults, artifacts: ArtifactRef[] = []): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    const step = s.steps[r.stepId];
    if (r.index !== undefined) return this.reportItem(r, defaults, artifacts);
    // A stale or repeated report changes nothing itself, but the decisions that followed it may not
    // all have been appended (a crash between appends): planning again completes them.
    if (!step || step.attempts !== r.attempt) return this.plan(defaults);
    const open = step.status === 'queued' || step.status === 'running';
    if (!open) return this.plan(defaults);
    // A final report that stands for its `started` too (a step quicker than the worker's report delay).
    if (r.outcome !== 'started' && r.startedAt !== undefined && step.status === 'queued') {
      this.emitFor({ type: 'step.started', data: { stepId: r.stepId, attempt: r.attempt, agentId: r.agentId, startedAt: r.startedAt } });
    }
    switch (r.outcome) {
      case 'started':
        if (step.status === 'running' && step.agentId === r.agentId) return;
        this.emitFor({ type: 'step.started', data: { stepId: r.stepId, attempt: r.attempt, agentId: r.agentId, startedAt: r.at } });
        break;
      case 'completed':
        this.emitFor({
          type: 'step.completed',
          data: { stepId: r.stepId, attempt: r.attempt, agentId: r.agentId, output: r.output ?? null, artifacts, finishedAt: r.at },
        });
        break;
      case 'failed': {
        const error: ErrorBody = r.error ?? { code: 'MUSE_ERR_INTERNAL', message: 'step failed without an error', retryable: true };
        if (waitsForBudget(s, error)) {
          this.emitFor({ type: 'budget.waiting', data: { stepId: r.stepId, attempt: r.attempt, error, agentId: r.agentId, ...spentOf(r) } });
          break;
        }
        const final = !error.retryable || r.attempt - (step.attemptBase ?? 0) >= maxAttemptsOf(s, r.stepId, defaults);
        this.emitFor({
          type: 'step.failed',
          data: { stepId: r.stepId, attempt: r.attempt, agentId: r.agentId, error, final, finishedAt: r.at, ...spentOf(r) },
        });
        break;
      }
    }
    this.plan(defaults);
  }

  /** A report on one element of a `forEach` step: the same rules, per element. */
  private reportItem(r: StepReport, defaults: EngineDefaults, artifacts: ArtifactRef[]): void {
    const s = this.state!;
    const index = r.index!;
    const step = s.steps[r.stepId];
    const it = step?.status === 'running' ? step.items?.[index] : undefined;
    if (!it || it.attempts !== r.attempt || (it.status !== 'queued' && it.status !== 'running')) return this.plan(defaults);
    const at = { stepId: r.stepId, attempt: r.attempt, index };
    if (r.outcome !== 'started' && r.startedAt !== undefined && it.status === 'queued') {
      this.emitFor({ type: 'step.started', data: { ...at, agentId: r.agentId, startedAt: r.startedAt } });
    }
    switch (r.outcome) {
      case 'started':
        if (it.status === 'running') return;
        this.emitFor({ type: 'step.started', data: { ...at, agentId: r.agentId, startedAt: r.at } });
        break;
      case 'completed':
        this.emitFor({ type: 'step.completed', data: { ...at, agentId: r.agentId, output: r.output ?? null, artifacts, finishedAt: r.at } });
        break;
      case 'failed': {
        const error: ErrorBody = r.error ?? { code: 'MUSE_ERR_INTERNAL', message: 'step failed without an error', retryable: true };
        if (waitsForBudget(s, error)) {
          this.emitFor({ type: 'budget.waiting', data: { ...at, error, agentId: r.agentId, ...spentOf(r) } });
          break;
        }
        const final = !error.retryable || r.attempt - (it.attemptBase ?? 0) >= maxAttemptsOf(s, r.stepId, defaults);
        this.emitFor({ type: 'step.failed', data: { ...at, agentId: r.agentId, error, final, finishedAt: r.at, ...spentOf(r) } });
        break;
      }
    }
    this.plan(defaults);
  }

  /** A step whose job was lost (no worker will report on it): counts as a failed attempt. */
  lost(stepId: string, attempt: number, error: ErrorBody, defaults: EngineDefaults, index?: number): void {
    this.report(
      { kind: 'step-report', runId: this.state?.runId ?? '', project: this.state?.project ?? '', stepId, attempt, agentId: 'coordinator', outcome: 'failed', at: this.now(), error, ...(index !== undefined ? { index } : {}) },
      defaults,
    );
  }

  /** A decision on an approval gate: approve completes the step, reject fails it for good. Only a waiting gate takes one. */
  decide(cmd: ApprovalDecisionCommand, defaults: EngineDefaults): void {
    const s = this.state;
    if (!s || isFinished(s) || s.steps[cmd.stepId]?.status !== 'waiting') return;
    // A step waiting for a concurrency slot is not a gate a person decides.
    if (s.definition.steps.find((d) => d.id === cmd.stepId)?.type !== 'approval') return;
    const record = { decision: cmd.decision, by: cmd.by, at: cmd.at, ...(cmd.comment !== undefined ? { comment: cmd.comment } : {}) };
    if (cmd.decision === 'approve') {
      this.emitFor({ type: 'step.completed', data: { stepId: cmd.stepId, attempt: 1, agentId: cmd.by, output: record, artifacts: [], finishedAt: cmd.at } });
    } else {
      const error: ErrorBody = { code: 'MUSE_ERR_APPROVAL_REJECTED', message: `step "${cmd.stepId}" was rejected by ${cmd.by}${cmd.comment ? `: ${cmd.comment}` : ''}`, retryable: false, details: record };
      this.emitFor({ type: 'step.failed', data: { stepId: cmd.stepId, attempt: 1, agentId: cmd.by, error, final: true, finishedAt: cmd.at } });
    }
    this.plan(defaults);
  }

  /**
   * A keyed concurrency slot is now the run's (no `stepId`) or the step's. A grant nobody waits for (a duplicate, a
   * finished run) changes nothing; the coordinator gives back a slot a finished run was granted.
   */
  admit(cmd: ConcurrencyGrantCommand, defaults: EngineDefaults): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    if (cmd.stepId === undefined) {
      if (s.gate && !s.gate.admitted) this.emitFor({ type: 'concurrency.admitted', data: {} });
    } else {
      const st = s.steps[cmd.stepId];
      if (st?.gate && !st.gate.admitted && st.status === 'waiting') this.emitFor({ type: 'concurrency.admitted', data: { stepId: cmd.stepId } });
    }
    this.plan(defaults);
  }

  /** A step's leases were granted (fencing token `token`); a grant nobody waits for changes nothing (the coordinator gives it back). */
  grantLease(cmd: LeaseGrantCommand, defaults: EngineDefaults): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    const st = s.steps[cmd.stepId];
    if (st?.lease && !st.lease.granted && st.status === 'waiting') this.emitFor({ type: 'lease.granted', data: { stepId: cmd.stepId, token: cmd.token } });
    this.plan(defaults);
  }

  /** Pause, resume, or re-drive a failed run from its failed (and cancelled) steps; anything else is a no-op. */
  control(cmd: RunControlCommand, defaults: EngineDefaults): void {
    const s = this.state;
    if (!s) return;
    if (cmd.action === 'pause' && !isFinished(s) && !s.paused) {
      this.emitFor({ type: 'run.paused', data: cmd.reason !== undefined ? { reason: cmd.reason } : {} });
    } else if (cmd.action === 'resume' && !isFinished(s) && s.paused) {
      this.emitFor({ type: 'run.resumed', data: {} });
      this.plan(defaults);
    } else if (cmd.action === 'retry' && s.status === 'failed' && !s.compensation) {
      const steps = s.definition.steps.map((d) => d.id).filter((id) => s.steps[id]!.status === 'failed' || s.steps[id]!.status === 'cancelled');
      if (steps.length === 0) return;
      this.emitFor({ type: 'run.retried', data: { steps } });
      this.plan(defaults);
    }
  }

  /** `POST /v1/runs/{id}/budget`: the limits grow and whatever waited on the budget is queued again. */
  raiseBudget(cmd: RunBudgetCommand, defaults: EngineDefaults): void {
    const s = this.state;
    if (!s || isFinished(s) || ((cmd.addTokens ?? 0) <= 0 && (cmd.addCost ?? 0) <= 0)) return;
    this.emitFor({ type: 'budget.raised', data: { ...(cmd.addTokens ? { addTokens: cmd.addTokens } : {}), ...(cmd.addCost ? { addCost: cmd.addCost } : {}) } });
    this.plan(defaults);
  }

  /** The run's own deadline passed: a run still going fails. */
  timeout(cmd: RunTimeoutCommand): void {
    this.fail({ code: 'MUSE_ERR_RUN_TIMEOUT', message: `the run ran past its timeout of ${cmd.timeoutMs} ms`, retryable: false });
  }

  /** A run still going fails with `error`, whatever its steps are doing (the effects of its end stop them). */
  fail(error: ErrorBody): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    this.emitFor({ type: 'run.failed', data: { error } });
  }

  cancel(cmd: RunCancelCommand, defaults?: EngineDefaults): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    const order = cmd.compensate && !s.compensation && defaults ? compensationOrder(s) : [];
    if (order.length > 0) {
      const error: ErrorBody = { code: 'MUSE_ERR_RUN_CANCELLED', message: cmd.reason ?? 'cancelled', retryable: false };
      this.emitFor({ type: 'run.compensating', data: { error, order, end: 'cancelled' } });
      return this.planCompensation(defaults!);
    }
    this.emitFor({ type: 'run.cancelled', data: cmd.reason !== undefined ? { reason: cmd.reason } : {} });
  }

  /**
   * Skips, fails or queues every step that became ready, and ends the run when
   * nothing is left to do. Loops until nothing changes, since a skip can make
   * a later step ready.
   */
  plan(defaults: EngineDefaults): void {
    for (let changed = true; changed; ) {
      changed = false;
      const s = this.state;
      if (!s || (s.status !== 'running' && s.status !== 'waiting')) return;
      if (s.compensation) return this.planCompensation(defaults);
      if (s.paused) return;
      // A workflow-level keyed limit: nothing starts before the run holds a slot of its key.
      const runLimit = s.definition.concurrency;
      if (runLimit && !s.gate) {
        let key: string;
        try {
          key = evaluateKey(runLimit.key, conditionContext(s));
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          this.emitFor({ type: 'run.failed', data: { error: { code: 'MUSE_ERR_STEP_CONDITION', message: `concurrency.key: ${err.message}`, retryable: false } } });
          return;
        }
        this.emitFor({ type: 'concurrency.waiting', data: { key, limit: runLimit.limit } });
        return;
      }
      if (s.gate && !s.gate.admitted) return;
      const blocking = s.definition.steps.find((d) => s.steps[d.id]!.status === 'failed' && !d.continueOnFailure);
      if (blocking) {
        const failed = s.steps[blocking.id]!;
        const error: ErrorBody = { code: failed.error?.code ?? 'MUSE_ERR_INTERNAL', message: `step "${failed.id}" failed: ${failed.error?.message ?? 'unknown error'}`, retryable: false, details: { stepId: failed.id, error: failed.error } };
        const order = compensationOrder(s);
        if (order.length > 0) {
          this.emitFor({ type: 'run.compensating', data: { error, order } });
          return this.planCompensation(defaults);
        }
        this.emitFor({ type: 'run.failed', data: { error } });
        return;
      }
      for (const def of s.definition.steps) {
        const st = this.state!.steps[def.id]!;
        if (st.status === 'running' && st.items) {
          if (this.fillItems(def, defaults)) {
            changed = true;
            break;
          }
          continue;
        }
        if (st.status !== 'pending') continue;
        const decision = this.readiness(def);
        if (decision === 'wait') continue;
        changed = true;
        if (decision !== 'run') {
          this.emitFor({ type: 'step.skipped', data: { stepId: def.id, reason: decision.skip } });
          continue;
        }
        const attempt = st.attempts + 1;
        if (st.attempts === 0 && def.when !== undefined) {
          let go: boolean;
          try {
            go = evaluateCondition(def.when, conditionContext(this.state!));
          } catch (err) {
            if (!(err instanceof ConditionError)) throw err;
            this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, error: { code: 'MUSE_ERR_STEP_CONDITION', message: `step "${def.id}" when: ${err.message}`, retryable: false }, final: true, finishedAt: this.now() } });
            break;
          }
          if (!go) {
            this.emitFor({ type: 'step.skipped', data: { stepId: def.id, reason: `when is false: ${def.when}` } });
            continue;
          }
        }
        // A step-level keyed limit: the step waits (visibly) until it holds a slot of its key.
        const stepLimit = keyedConcurrency(def);
        const gated = this.state!.steps[def.id]!;
        if (stepLimit && !gated.gate?.admitted) {
          if (!gated.gate) {
            let key: string;
            try {
              key = evaluateKey(stepLimit.key, conditionContext(this.state!));
            } catch (err) {
              if (!(err instanceof ConditionError)) throw err;
              this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, error: { code: 'MUSE_ERR_STEP_CONDITION', message: `step "${def.id}" concurrency.key: ${err.message}`, retryable: false }, final: true, finishedAt: this.now() } });
              break;
            }
            this.emitFor({ type: 'concurrency.waiting', data: { stepId: def.id, key, limit: stepLimit.limit } });
          }
          continue;
        }
        // Leases (`locks`): taken all at once after any concurrency slot, so a step never holds some and waits for others.
        if (def.locks?.length && !this.state!.steps[def.id]!.lease?.granted) {
          if (!this.state!.steps[def.id]!.lease) this.emitFor({ type: 'lease.waiting', data: { stepId: def.id, locks: def.locks } });
          continue;
        }
        if (def.type === 'approval') {
          this.emitFor({
            type: 'step.waiting',
            data: { stepId: def.id, ...(def.timeoutMs !== undefined ? { timeoutMs: def.timeoutMs, onTimeout: def.onTimeout ?? 'reject' } : {}) },
          });
          continue;
        }
        if (def.forEach !== undefined) {
          let items: unknown[];
          try {
            items = evaluateList(def.forEach, conditionContext(this.state!));
          } catch (err) {
            if (!(err instanceof ConditionError)) throw err;
            this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, error: { code: 'MUSE_ERR_STEP_CONDITION', message: `step "${def.id}" forEach: ${err.message}`, retryable: false }, final: true, finishedAt: this.now() } });
            break;
          }
          this.emitFor({ type: 'step.expanded', data: { stepId: def.id, items } });
          continue;
        }
        const job = buildStepJob(this.state!, def.id, attempt, defaults);
        if (!job.ok) {
          this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, error: job.error, final: true, finishedAt: this.now() } });
          break;
        }
        const failures = attempt - 1 - (st.attemptBase ?? 0);
        const delayMs = failures > 0 ? backoffDelay(backoffOf(this.state!, def), failures, this.random) : 0;
        this.emitFor({
          type: 'step.queued',
          data: { stepId: def.id, attempt, role: st.role, jobId: st.role === WORKFLOW_ROLE ? childRunId(s.runId, def.id, attempt) : stepJobId(s.runId, def.id, attempt), ...(delayMs > 0 ? { delayMs } : {}) },
        });
      }
    }
    const s = this.state!;
    if (s.status !== 'running' && s.status !== 'waiting') return;
    const done = s.definition.steps.every((d) => {
      const st = s.steps[d.id]!.status;
      return st === 'succeeded' || st === 'skipped' || (st === 'failed' && d.continueOnFailure === true);
    });
    if (done) {
      try {
        this.emitFor({ type: 'run.completed', data: { output: runOutput(s) } });
      } catch (err) {
        this.emitFor({ type: 'run.failed', data: { error: { code: 'MUSE_ERR_STEP_TEMPLATE', message: `output: ${(err as Error).message}`, retryable: false } } });
      }
    }
  }

  /**
   * Runs compensations one at a time in their order; each is retried under
   * its own policy, and one that fails for good is reported, not dropped: the
   * next one still runs. When all are done the run fails with the original
   * error and every compensation's outcome in `details.compensations`.
   */
  private planCompensation(defaults: EngineDefaults): void {
    for (;;) {
      const s = this.state!;
      const comp = s.compensation!;
      const next = comp.order.map(compensationId).find((cid) => {
        const st = s.steps[cid]!.status;
        return st === 'pending' || st === 'queued' || st === 'running';
      });
      if (next === undefined) {
        const compensations = comp.order.map((id) => {
          const st = s.steps[compensationId(id)]!;
          return { stepId: id, status: st.status, attempts: st.attempts, ...(st.error ? { error: st.error } : {}) };
        });
        const details = { ...((comp.error.details as Record<string, unknown> | undefined) ?? {}), compensations };
        const failedComps = compensations.filter((c) => c.status !== 'succeeded').length;
        if (comp.end === 'cancelled') {
          this.emitFor({ type: 'run.cancelled', data: { reason: `${comp.error.message} (compensated ${compensations.length - failedComps} of ${compensations.length} steps)` } });
          return;
        }
        this.emitFor({
          type: 'run.failed',
          data: { error: { ...comp.error, message: `${comp.error.message} (compensated ${compensations.length - failedComps} of ${compensations.length} steps${failedComps ? `; ${failedComps} compensation(s) failed` : ''})`, details } },
        });
        return;
      }
      const st = s.steps[next]!;
      if (st.status !== 'pending') return; // the current one is still going
      const attempt = st.attempts + 1;
      const job = buildStepJob(s, next, attempt, defaults);
      if (!job.ok) {
        this.emitFor({ type: 'step.failed', data: { stepId: next, attempt, error: job.error, final: true, finishedAt: this.now() } });
        continue;
      }
      const spec = compensationSpec(s, next)!;
      const backoff = { ...DEFAULT_BACKOFF, ...(s.definition.retry?.backoff ?? {}), ...(spec.retry?.backoff ?? {}) };
      const delayMs = attempt > 1 ? backoffDelay(backoff, attempt - 1, this.random) : 0;
      this.emitFor({ type: 'step.queued', data: { stepId: next, attempt, role: st.role, jobId: stepJobId(s.runId, next, attempt), ...(delayMs > 0 ? { delayMs } : {}) } });
      return;
    }
  }

  /**
   * Queues elements of a `forEach` step, in order, until `concurrency` are
   * open. @returns true when an element failed for good (the step with it).
   */
  private fillItems(def: StepDefinition, defaults: EngineDefaults): boolean {
    const limit = typeof def.concurrency === 'number' ? def.concurrency : DEFAULT_FOREACH_CONCURRENCY;
    const items = this.state!.steps[def.id]!.items!;
    const counts = this.state!.steps[def.id]!.itemCounts!;
    let open = counts.open;
    // No element before the first pending one can be queued: the search starts there, not at element 0.
    for (let index = counts.firstPending; index < items.length && open < limit; index++) {
      const it = this.state!.steps[def.id]!.items![index]!;
      if (it.status !== 'pending') continue;
      const attempt = it.attempts + 1;
      const job = buildStepJob(this.state!, def.id, attempt, defaults, index);
      if (!job.ok) {
        this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, index, error: job.error, final: true, finishedAt: this.now() } });
        return true;
      }
      const failures = attempt - 1 - (it.attemptBase ?? 0);
      const delayMs = failures > 0 ? backoffDelay(backoffOf(this.state!, def), failures, this.random) : 0;
      this.emitFor({
        type: 'step.queued',
        data: { stepId: def.id, attempt, index, role: this.state!.steps[def.id]!.role, jobId: stepJobId(this.state!.runId, def.id, attempt, index), ...(delayMs > 0 ? { delayMs } : {}) },
      });
      open++;
    }
    return false;
  }

  /**
   * Whether a pending step can start: `wait` while a step it needs is still
   * going; a skip when every step it needs was skipped (unless `needs: {any}`).
   * A need that failed with `continueOnFailure` counts as finished.
   */
  private readiness(def: StepDefinition): 'wait' | 'run' | { skip: string } {
    const s = this.state!;
    const needs = stepNeeds(def);
    let skipped = 0;
    for (const n of needs) {
      const st = s.steps[n]!.status;
      if (st === 'skipped') skipped++;
      else if (st !== 'succeeded' && st !== 'failed') return 'wait';
    }
    if (needs.length > 0 && skipped === needs.length && !needsAny(def)) return { skip: `every step it needs was skipped (${needs.join(', ')})` };
    return 'run';
  }
}

export function isFinished(s: RunState): boolean {
  return s.status === 'succeeded' || s.status === 'failed' || s.status === 'cancelled';
}

/** Attempts allowed: the step's `retry.maxAttempts`, its `maxAttempts`, the workflow's `retry.maxAttempts`, then the default. */
export function maxAttemptsOf(s: RunState, stepId: string, defaults: EngineDefaults): number {
  const comp = compensationSpec(s, stepId);
  if (comp) return comp.retry?.maxAttempts ?? s.definition.retry?.maxAttempts ?? defaults.maxAttempts;
  const def = s.definition.steps.find((d) => d.id === stepId);
  return def?.retry?.maxAttempts ?? def?.maxAttempts ?? s.definition.retry?.maxAttempts ?? defaults.maxAttempts;
}

/** Saga order: the succeeded steps that have a `compensate`, newest completion first. */
function compensationOrder(s: RunState): string[] {
  return s.definition.steps
    .filter((d) => d.compensate !== undefined && s.steps[d.id]!.status === 'succeeded')
    .sort((a, b) => (s.steps[b.id]!.completedSeq ?? 0) - (s.steps[a.id]!.completedSeq ?? 0))
    .map((d) => d.id);
}

/** The `compensate` spec behind a compensation id (`<step>~undo`), or undefined for an ordinary step. */
function compensationSpec(s: RunState, id: string): StepDefinition['compensate'] {
  const of = compensatedStep(id);
  return of === undefined ? undefined : s.definition.steps.find((d) => d.id === of)?.compensate;
}

function backoffOf(s: RunState, def: StepDefinition): Required<Backoff> {
  return { ...DEFAULT_BACKOFF, ...(s.definition.retry?.backoff ?? {}), ...(def.retry?.backoff ?? {}) };
}

/**
 * The wait before the attempt after `failures` failed ones, in ms:
 * `min(maxMs, initialMs * factor^(failures-1))`, less a random share of up to `jitter`.
 */
export function backoffDelay(b: Required<Backoff>, failures: number, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, failures - 1));
  return Math.max(0, Math.round(base * (1 - b.jitter * random())));
}

/** What a CEL expression sees: `input`, and `steps.<id>.status` (with `.output` once succeeded). */
export function conditionContext(s: RunState): { input: unknown; steps: Record<string, unknown> } {
  const ctx = templateContext(s);
  return { input: ctx.input, steps: ctx.steps };
}

/** The job for one attempt of a step, with its templates rendered against the state. */
export function buildStepJob(
  s: RunState,
  stepId: string,
  attempt: number,
  defaults: EngineDefaults,
  /** The element of a `forEach` step. */
  index?: number,
): { ok: true; job: StepJob } | { ok: false; error: ErrorBody } {
  const comp = compensationSpec(s, stepId);
  const def: StepDefinition | undefined = comp ? { id: stepId, ...comp } : s.definition.steps.find((d) => d.id === stepId);
  if (!def) return { ok: false, error: { code: 'MUSE_ERR_INTERNAL', message: `no step ${stepId}`, retryable: false } };
  const ctx = templateContext(s);
  if (index !== undefined) {
    const it = s.steps[stepId]!.items?.[index];
    if (!it) return { ok: false, error: { code: 'MUSE_ERR_INTERNAL', message: `step ${stepId} has no element ${index}`, retryable: false } };
    ctx.item = it.value;
    ctx.index = index;
  }
  try {
    const base = {
      runId: s.runId,
      project: s.project,
      stepId,
      attempt,
      ...(index !== undefined ? { index } : {}),
      role: s.steps[stepId]!.role,
      timeoutMs: def.timeoutMs ?? defaults.timeoutMs,
      ...(def.requires?.length ? { requires: def.requires } : {}),
      ...(s.traceparent !== undefined ? { traceparent: s.traceparent } : {}),
    };
    const job: StepJob =
      def.workflow !== undefined
        ? { ...base, kind: 'workflow', workflow: def.workflow, input: renderValue(def.input ?? {}, ctx) as Record<string, unknown> }
        : def.tool === 'http'
        ? { ...base, kind: 'http', request: renderHttpRequest(def.request!, ctx) }
        : def.tool !== undefined
        ? { ...base, kind: 'shell', command: renderTemplate(def.command!, ctx), ...shellExtras(def as Pick<StepDefinition, 'secrets' | 'network'>) }
        : { ...base, kind: 'agent', prompt: renderTemplate(def.prompt!, ctx), model: def.model ?? 'muse-local', ...agentExtras(s, def, stepId, index), ...agentToolExtras(def) };
    return { ok: true, job };
  } catch (err) {
    if (err instanceof TemplateError) {
      return { ok: false, error: { code: 'MUSE_ERR_STEP_TEMPLATE', message: `step "${stepId}": ${err.message}`, retryable: false } };
    }
    throw err;
  }
}

/**
 * What an agent job carries beyond its prompt: the pinned seed (unset = the worker derives one), sampling
 * parameters, what the recorded call names (template hash, definition version), the replay's recording, and the
 * run's budget as it stands now.
 */
function agentExtras(s: RunState, def: StepDefinition, stepId: string, index: number | undefined): Partial<StepJob> {
  const budget = budgetOf(s);
  const recording = s.replayOf?.recordings[stepKey(stepId, index)];
  return {
    ...(def.seed !== undefined ? { seed: def.seed } : {}),
    ...(def.temperature !== undefined ? { temperature: def.temperature } : {}),
    ...(def.topP !== undefined ? { topP: def.topP } : {}),
    promptTemplateHash: promptTemplateHash(def.prompt!),
    definitionVersion: s.workflow.version,
    ...(s.replayOf ? { replay: { runId: s.replayOf.runId, ...(recording !== undefined ? { recording } : {}) } } : {}),
    ...(budget ? { budget } : {}),
  };
}

/** The run's limits in force: the workflow's budget plus what `POST /v1/runs/{id}/budget` added; undefined without a budget. */
export function budgetOf(s: RunState): { maxTokens?: number; maxCost?: number; onBudgetExceeded?: 'fail' | 'wait' } | undefined {
  const b = s.definition.budget;
  if (!b) return undefined;
  const r = s.budgetRaised ?? { tokens: 0, cost: 0 };
  return {
    ...(b.maxTokens !== undefined ? { maxTokens: b.maxTokens + r.tokens } : {}),
    ...(b.maxCost !== undefined ? { maxCost: b.maxCost + r.cost } : {}),
    ...(b.onBudgetExceeded !== undefined ? { onBudgetExceeded: b.onBudgetExceeded } : {}),
  };
}

/** A failed report's spend, for its event (counted in the run's spend). */
function spentOf(r: StepReport): { spent?: AttemptSpend } {
  return r.spent !== undefined ? { spent: r.spent } : {};
}

/** An exhausted budget under `onBudgetExceeded: wait` makes the step wait rather than fail. */
function waitsForBudget(s: RunState, error: ErrorBody): boolean {
  return error.code === 'MUSE_ERR_BUDGET_EXCEEDED' && s.definition.budget?.onBudgetExceeded === 'wait';
}

/** Secret names and the network flag of a shell step, only when set (jobs stay minimal). */
function shellExtras(def: Pick<StepDefinition, 'secrets' | 'network'>): { secrets?: string[]; network?: boolean } {
  return { ...(def.secrets?.length ? { secrets: def.secrets } : {}), ...(def.network ? { network: true } : {}) };
}

/** The queue a step's jobs go to: its role, or `<role>+<tags>` when it requires capabilities (compensations never do). */
export function stepQueueRole(s: RunState, stepId: string): string {
  const def = s.definition.steps.find((d) => d.id === stepId);
  return queueRole(s.steps[stepId]!.role, def?.requires);
}

/**
 * The agent that holds the run's workspace: the one that started or finished
 * the run's latest step (`affinity` dispatch prefers it). Not the coordinator
 * (its reports fail lost attempts) and not a child run.
 */
export function runAgent(s: RunState): string | undefined {
  let best: { at: string; agentId: string } | undefined;
  for (const st of Object.values(s.steps)) {
    if (st.agentId === undefined || st.agentId === 'coordinator' || st.role === WORKFLOW_ROLE) continue;
    const at = st.finishedAt ?? st.startedAt;
    if (at !== undefined && (best === undefined || at > best.at)) best = { at, agentId: st.agentId };
  }
  return best?.agentId;
}
