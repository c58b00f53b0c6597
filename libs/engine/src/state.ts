/**
 * A run's state is the fold of its event log. `applyEvent` is pure; an event
 * whose `seq` the state has already seen is a no-op, so a redelivered or
 * duplicated event changes nothing.
 */
import {
  stepRole,
  type ArtifactRef,
  type ErrorBody,
  type RunEvent,
  type RunStatus,
  type StepStatus,
  type WorkflowDefinition,
  type WorkflowRef,
} from '@muse/contracts';

export interface StepState {
  id: string;
  role: string;
  status: StepStatus;
  /** The latest attempt number (0 before the first is queued). */
  attempts: number;
  agentId?: string;
  output?: unknown;
  error?: ErrorBody;
  queuedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  artifacts: ArtifactRef[];
}

export interface RunState {
  runId: string;
  project: string;
  workflow: WorkflowRef;
  definition: WorkflowDefinition;
  input: Record<string, unknown>;
  idempotencyKey?: string;
  traceparent?: string;
  status: RunStatus;
  /** Sequence number of the last event folded in. */
  seq: number;
  createdAt: string;
  updatedAt: string;
  output?: unknown;
  error?: ErrorBody;
  steps: Record<string, StepState>;
}

export class FoldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FoldError';
  }
}

export function applyEvent(state: RunState | undefined, ev: RunEvent): RunState {
  if (ev.type === 'run.created') {
    if (state) return state; // a second creation is a duplicate
    const steps: Record<string, StepState> = {};
    for (const s of ev.data.definition.steps) steps[s.id] = { id: s.id, role: stepRole(s), status: 'pending', attempts: 0, artifacts: [] };
    return {
      runId: ev.runId,
      project: ev.project,
      workflow: ev.data.workflow,
      definition: ev.data.definition,
      input: ev.data.input,
      ...(ev.data.idempotencyKey !== undefined ? { idempotencyKey: ev.data.idempotencyKey } : {}),
      ...(ev.data.traceparent !== undefined ? { traceparent: ev.data.traceparent } : {}),
      status: 'pending',
      seq: ev.seq,
      createdAt: ev.at,
      updatedAt: ev.at,
      steps,
    };
  }
  if (!state) throw new FoldError(`run ${ev.runId}: ${ev.type} (seq ${ev.seq}) before run.created`);
  if (ev.seq <= state.seq) return state;

  const next: RunState = { ...state, seq: ev.seq, updatedAt: ev.at, steps: { ...state.steps } };
  const step = (id: string): StepState => {
    const s = next.steps[id];
    if (!s) throw new FoldError(`run ${ev.runId}: ${ev.type} names unknown step ${id}`);
    const copy = { ...s };
    next.steps[id] = copy;
    return copy;
  };

  switch (ev.type) {
    case 'run.started':
      next.status = 'running';
      break;
    case 'step.queued': {
      const s = step(ev.data.stepId);
      s.status = 'queued';
      s.attempts = ev.data.attempt;
      s.queuedAt = ev.at;
      delete s.agentId;
      delete s.startedAt;
      delete s.finishedAt;
      break;
    }
    case 'step.started': {
      const s = step(ev.data.stepId);
      if (s.attempts !== ev.data.attempt) break;
      s.status = 'running';
      s.agentId = ev.data.agentId;
      s.startedAt = ev.data.startedAt;
      break;
    }
    case 'step.completed': {
      const s = step(ev.data.stepId);
      s.status = 'succeeded';
      s.agentId = ev.data.agentId;
      s.output = ev.data.output;
      s.artifacts = [...s.artifacts, ...ev.data.artifacts];
      s.finishedAt = ev.data.finishedAt;
      delete s.error;
      break;
    }
    case 'step.failed': {
      const s = step(ev.data.stepId);
      s.status = ev.data.final ? 'failed' : 'pending';
      if (ev.data.agentId !== undefined) s.agentId = ev.data.agentId;
      s.error = ev.data.error;
      s.finishedAt = ev.data.finishedAt;
      break;
    }
    case 'run.completed':
      next.status = 'succeeded';
      next.output = ev.data.output;
      break;
    case 'run.failed':
      next.status = 'failed';
      next.error = ev.data.error;
      cancelOpenSteps(next);
      break;
    case 'run.cancelled':
      next.status = 'cancelled';
      if (ev.data.reason !== undefined) next.error = { code: 'MUSE_ERR_RUN_CANCELLED', message: ev.data.reason, retryable: false };
      cancelOpenSteps(next);
      break;
  }
  return next;
}

function cancelOpenSteps(state: RunState): void {
  for (const [id, s] of Object.entries(state.steps)) {
    if (s.status === 'pending' || s.status === 'queued' || s.status === 'running' || s.status === 'waiting') {
      state.steps[id] = { ...s, status: 'cancelled' };
    }
  }
}

/** Folds a whole log; `undefined` for an empty one. */
export function foldEvents(events: Iterable<RunEvent>, initial?: RunState): RunState | undefined {
  let state = initial;
  for (const ev of events) state = applyEvent(state, ev);
  return state;
}
