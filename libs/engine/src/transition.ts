/**
 * Decisions: given a run's state and something that happened (a submission, a
 * worker's report, a cancellation), which events to append next. Pure: the
 * coordinator appends what comes out and carries out the effects.
 */
import {
  stepJobId,
  type ErrorBody,
  type NewRunEvent,
  type RunCancelCommand,
  type RunEvent,
  type RunSubmitCommand,
  type StepJob,
  type StepReport,
  type ArtifactRef,
} from '@muse/contracts';
import { applyEvent, type RunState } from './state.js';
import { renderTemplate, TemplateError, type TemplateContext } from './template.js';

export interface EngineDefaults {
  /** Attempts per step when the step does not say. */
  maxAttempts: number;
  /** Start-to-close timeout of one attempt, in ms, when the step does not say. */
  timeoutMs: number;
}

/** Accumulates new events, folding each into the state as it is emitted. */
export class RunTransition {
  readonly events: RunEvent[] = [];

  constructor(
    public state: RunState | undefined,
    private readonly now: () => string,
  ) {}

  emit(runId: string, project: string, ev: NewRunEvent): RunEvent {
    const seq = (this.state?.seq ?? 0) + 1;
    const full = { id: `${runId}.${seq}`, runId, project, seq, at: this.now(), ...ev } as RunEvent;
    this.state = applyEvent(this.state, full);
    this.events.push(full);
    return full;
  }

  private emitFor(ev: NewRunEvent): RunEvent {
    const s = this.state!;
    return this.emit(s.runId, s.project, ev);
  }

  /** A new run: created, started, and its first steps queued. A submission seen before is a no-op. */
  submit(cmd: RunSubmitCommand, defaults: EngineDefaults): void {
    if (this.state) return;
    this.emit(cmd.runId, cmd.project, {
      type: 'run.created',
      data: {
        workflow: cmd.workflow,
        definition: cmd.definition,
        input: cmd.input,
        ...(cmd.idempotencyKey !== undefined ? { idempotencyKey: cmd.idempotencyKey } : {}),
        ...(cmd.traceparent !== undefined ? { traceparent: cmd.traceparent } : {}),
      },
    });
    this.emitFor({ type: 'run.started', data: {} });
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
    if (!step || step.attempts !== r.attempt) return;
    const open = step.status === 'queued' || step.status === 'running';
    if (!open) return;
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
        const final = !error.retryable || r.attempt >= maxAttemptsOf(s, r.stepId, defaults);
        this.emitFor({
          type: 'step.failed',
          data: { stepId: r.stepId, attempt: r.attempt, agentId: r.agentId, error, final, finishedAt: r.at },
        });
        break;
      }
    }
    this.plan(defaults);
  }

  /** A step whose job was lost (no worker will report on it): counts as a failed attempt. */
  lost(stepId: string, attempt: number, error: ErrorBody, defaults: EngineDefaults): void {
    this.report(
      { kind: 'step-report', runId: this.state?.runId ?? '', project: this.state?.project ?? '', stepId, attempt, agentId: 'coordinator', outcome: 'failed', at: this.now(), error },
      defaults,
    );
  }

  cancel(cmd: RunCancelCommand): void {
    const s = this.state;
    if (!s || isFinished(s)) return;
    this.emitFor({ type: 'run.cancelled', data: cmd.reason !== undefined ? { reason: cmd.reason } : {} });
  }

  /** Queues every step that became ready and ends the run when nothing is left to do. */
  plan(defaults: EngineDefaults): void {
    let s = this.state;
    if (!s || s.status !== 'running') return;
    const failed = Object.values(s.steps).find((st) => st.status === 'failed');
    if (failed) {
      this.emitFor({
        type: 'run.failed',
        data: { error: { code: failed.error?.code ?? 'MUSE_ERR_INTERNAL', message: `step "${failed.id}" failed: ${failed.error?.message ?? 'unknown error'}`, retryable: false, details: { stepId: failed.id, error: failed.error } } },
      });
      return;
    }
    for (const def of s.definition.steps) {
      s = this.state!;
      const st = s.steps[def.id]!;
      if (st.status !== 'pending') continue;
      if (!(def.needs ?? []).every((n) => s!.steps[n]?.status === 'succeeded')) continue;
      const attempt = st.attempts + 1;
      const job = buildStepJob(s, def.id, attempt, defaults);
      if (!job.ok) {
        this.emitFor({ type: 'step.failed', data: { stepId: def.id, attempt, error: job.error, final: true, finishedAt: this.now() } });
        return this.plan(defaults);
      }
      this.emitFor({ type: 'step.queued', data: { stepId: def.id, attempt, role: st.role, jobId: stepJobId(s.runId, def.id, attempt) } });
    }
    s = this.state!;
    if (Object.values(s.steps).every((st) => st.status === 'succeeded')) {
      try {
        this.emitFor({ type: 'run.completed', data: { output: runOutput(s) } });
      } catch (err) {
        this.emitFor({ type: 'run.failed', data: { error: { code: 'MUSE_ERR_STEP_TEMPLATE', message: `output: ${(err as Error).message}`, retryable: false } } });
      }
    }
  }
}

export function isFinished(s: RunState): boolean {
  return s.status === 'succeeded' || s.status === 'failed' || s.status === 'cancelled';
}

function maxAttemptsOf(s: RunState, stepId: string, defaults: EngineDefaults): number {
  return s.definition.steps.find((d) => d.id === stepId)?.maxAttempts ?? defaults.maxAttempts;
}

export function templateContext(s: RunState): TemplateContext {
  const steps: TemplateContext['steps'] = {};
  for (const [id, st] of Object.entries(s.steps)) steps[id] = { status: st.status, ...(st.status === 'succeeded' ? { output: st.output } : {}) };
  return { input: s.input, steps };
}

/** The workflow's output: its `output` template rendered, or every step's output by id. */
export function runOutput(s: RunState): unknown {
  if (s.definition.output !== undefined) return renderTemplate(s.definition.output, templateContext(s));
  return Object.fromEntries(Object.values(s.steps).map((st) => [st.id, st.output]));
}

/** The job for one attempt of a step, with its templates rendered against the state. */
export function buildStepJob(
  s: RunState,
  stepId: string,
  attempt: number,
  defaults: EngineDefaults,
): { ok: true; job: StepJob } | { ok: false; error: ErrorBody } {
  const def = s.definition.steps.find((d) => d.id === stepId);
  if (!def) return { ok: false, error: { code: 'MUSE_ERR_INTERNAL', message: `no step ${stepId}`, retryable: false } };
  const ctx = templateContext(s);
  try {
    const base = {
      runId: s.runId,
      project: s.project,
      stepId,
      attempt,
      role: s.steps[stepId]!.role,
      timeoutMs: def.timeoutMs ?? defaults.timeoutMs,
      ...(s.traceparent !== undefined ? { traceparent: s.traceparent } : {}),
    };
    const job: StepJob =
      def.tool !== undefined
        ? { ...base, kind: 'shell', command: renderTemplate(def.command!, ctx) }
        : { ...base, kind: 'agent', prompt: renderTemplate(def.prompt!, ctx), model: def.model ?? 'muse-local', seed: def.seed ?? 0 };
    return { ok: true, job };
  } catch (err) {
    if (err instanceof TemplateError) {
      return { ok: false, error: { code: 'MUSE_ERR_STEP_TEMPLATE', message: `step "${stepId}": ${err.message}`, retryable: false } };
    }
    throw err;
  }
}
