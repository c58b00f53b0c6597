/**
 * A run's state is the fold of its event log. `applyEvent` is pure; an event
 * whose `seq` the state has already seen is a no-op, so a redelivered or
 * duplicated event changes nothing.
 */
import {
  compensationId,
  DEFAULT_TOOL_ROLE,
  stepRole,
  type ArtifactRef,
  type AttemptSpend,
  outputSpend,
  type ErrorBody,
  type RunEvent,
  type RunParent,
  type ReplayOf,
  WORKFLOW_ROLE,
  type RunStatus,
  type StepStatus,
  type WorkflowDefinition,
  type WorkflowRef,
} from '@muse/contracts';
import { renderTemplate, type TemplateContext } from './template.js';

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
  /** Attempts spent before the latest re-drive (`run.retried`): the retry policy counts from here. */
  attemptBase?: number;
  /** Seq of the event that completed the step: compensations run in reverse of it. */
  completedSeq?: number;
  /** A `forEach` step's elements, once its list was evaluated (`step.expanded`). */
  items?: ItemState[];
  /**
   * How many of `items` succeeded, are open (queued or running) or wait for budget, and the first still pending, kept
   * as they change so that a wide fan-out's fold and planning do not look at every element at every event. Set with
   * `items`, and only ever with it.
   */
  itemCounts?: ItemCounts;
  /** A keyed concurrency limit on the step: its evaluated key, and whether it holds a slot. */
  gate?: Gate;
  /** A step with `locks`: the leases it asked for, and once granted, their fencing token. */
  lease?: { locks: string[]; granted: boolean; token?: number };
  /** A sub-workflow step: the child run of its latest attempt, once started. */
  childRunId?: string;
  /** Waiting for the run's budget to be raised (`budget.waiting`); it runs again as its next attempt. */
  budgetWait?: boolean;
}

/** One slot of a keyed concurrency limit, asked for (`concurrency.waiting`) and maybe given (`concurrency.admitted`). */
export interface Gate {
  key: string;
  limit: number;
  admitted: boolean;
}

/** See `StepState.itemCounts`. */
export interface ItemCounts {
  succeeded: number;
  open: number;
  /** Elements waiting for the run's budget to be raised (`budget.waiting`). */
  waiting: number;
  /** The lowest index of an element still `pending` (`items.length` when none is): where planning looks for the next to queue. */
  firstPending: number;
}

/** One element of a `forEach` step. */
export interface ItemState {
  value: unknown;
  status: StepStatus;
  attempts: number;
  output?: unknown;
  /** The artifacts of its completion: the step's `artifacts` are its elements', gathered when it ends. */
  artifacts?: ArtifactRef[];
  error?: ErrorBody;
  attemptBase?: number;
  /** Waiting for the run's budget to be raised (`budget.waiting`). */
  budgetWait?: boolean;
}

/** Tokens and cost (USD) spent. */
export interface SpendFigures {
  tokens: number;
  cost: number;
}

/** What a run's model calls spent, in all and per step, agent and provider (replayed calls spend nothing). */
export interface Spend extends SpendFigures {
  byStep: Record<string, SpendFigures>;
  byAgent: Record<string, SpendFigures>;
  byProvider: Record<string, SpendFigures>;
}

export interface RunState {
  runId: string;
  project: string;
  workflow: WorkflowRef;
  definition: WorkflowDefinition;
  input: Record<string, unknown>;
  idempotencyKey?: string;
  traceparent?: string;
  /** 1 (first) to 10 (last) in the step queues; undefined = the default (5). */
  priority?: number;
  /** Set on a rerun: the run it reruns and the step it starts from. */
  rerunOf?: { runId: string; fromStep: string };
  status: RunStatus;
  /** Sequence number of the last event folded in. */
  seq: number;
  createdAt: string;
  updatedAt: string;
  output?: unknown;
  error?: ErrorBody;
  steps: Record<string, StepState>;
  /** Set once the run failed with compensations to run (`run.compensating`): the failure and the order, by step id. */
  compensation?: { error: ErrorBody; order: string[]; end?: 'failed' | 'cancelled' };
  /** Paused: no new step starts until resumed (the run shows as `waiting`). */
  paused?: boolean;
  /** A child run: the run and step that started it. */
  parent?: RunParent;
  /** The workflow's keyed concurrency limit: the run's key, and whether it holds a slot. */
  gate?: Gate;
  /** A replay: the recorded run and its recorded calls by step key. */
  replayOf?: ReplayOf;
  /** The first step whose model request differed from the recording (a replay's `MUSE_ERR_REPLAY_DIVERGED`). */
  divergence?: Record<string, unknown>;
  /** What `POST /v1/runs/{id}/budget` added to the workflow's budget, in all. */
  budgetRaised?: SpendFigures;
  /** Model tokens and cost spent by the completed agent steps. */
  spend?: Spend;
}

export class FoldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FoldError';
  }
}

/**
 * The state after `ev`. States are shared, so nothing of `state` is changed: what the event changes is copied first.
 * `owned` holds the fan-out element arrays and elements a caller's earlier calls copied and nobody else holds (a
 * `RunTransition`'s own, since only its latest state is ever read): those are changed in place, so that a wide
 * fan-out's array is copied once per transition instead of once per event.
 */
export function applyEvent(state: RunState | undefined, ev: RunEvent, owned?: WeakSet<object>): RunState {
  const next = applyOne(state, ev, owned);
  // A run that is going is `waiting` while a gate waits for a person or it is paused, else `running`.
  if (next !== state && (next.status === 'running' || next.status === 'waiting')) {
    next.status = next.paused || (next.gate && !next.gate.admitted) || Object.values(next.steps).some((s) => s.status === 'waiting' || (s.itemCounts?.waiting ?? 0) > 0) ? 'waiting' : 'running';
  }
  return next;
}

function applyOne(state: RunState | undefined, ev: RunEvent, owned: WeakSet<object> | undefined): RunState {
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
      ...(ev.data.priority !== undefined ? { priority: ev.data.priority } : {}),
      ...(ev.data.rerunOf !== undefined ? { rerunOf: ev.data.rerunOf } : {}),
      ...(ev.data.parent !== undefined ? { parent: ev.data.parent } : {}),
      ...(ev.data.replayOf !== undefined ? { replayOf: ev.data.replayOf } : {}),
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

  /** A copy of element `index` of a step, made writable in `next`; undefined when there is none. */
  const item = (id: string, index: number): ItemState | undefined => {
    const s = step(id);
    const it = s.items?.[index];
    if (!it) return undefined;
    if (!owned?.has(s.items!)) {
      s.items = [...s.items!];
      owned?.add(s.items);
    }
    if (owned?.has(it)) return it;
    const copy = { ...it };
    s.items![index] = copy;
    owned?.add(copy);
    return copy;
  };

  if (ev.type === 'step.completed') addSpend(next, ev.data.stepId, ev.data.agentId, outputSpend(ev.data.output));
  if ((ev.type === 'step.failed' || ev.type === 'budget.waiting') && ev.data.spent) addSpend(next, ev.data.stepId, ev.data.agentId ?? 'unknown', ev.data.spent);
  if (ev.type === 'step.failed' && ev.data.error.code === 'MUSE_ERR_REPLAY_DIVERGED' && !next.divergence) {
    next.divergence = { stepId: ev.data.stepId, ...(ev.data.index !== undefined ? { index: ev.data.index } : {}), ...((ev.data.error.details as Record<string, unknown> | undefined) ?? {}) };
  }
  if (ev.type === 'budget.waiting' && ev.data.index !== undefined) {
    const it = item(ev.data.stepId, ev.data.index);
    if (it && next.steps[ev.data.stepId]!.status === 'running' && it.attempts === ev.data.attempt) {
      countChange(next.steps[ev.data.stepId]!, ev.data.index, it.status, 'waiting');
      it.status = 'waiting';
      it.budgetWait = true;
      it.error = ev.data.error;
    }
    return next;
  }
  if ((ev.type === 'step.queued' || ev.type === 'step.started' || ev.type === 'step.completed' || ev.type === 'step.failed') && ev.data.index !== undefined) {
    const it = item(ev.data.stepId, ev.data.index); // copies the step too
    const s = next.steps[ev.data.stepId]!;
    const before = it?.status;
    applyItemEvent(ev, s, it);
    if (it && before !== undefined) countChange(s, ev.data.index, before, it.status);
    return next;
  }

  switch (ev.type) {
    case 'step.expanded': {
      const s = step(ev.data.stepId);
      if (s.items) break;
      s.items = ev.data.items.map((value) => ({ value, status: 'pending', attempts: 0 }));
      s.itemCounts = { succeeded: 0, open: 0, waiting: 0, firstPending: 0 };
      s.status = 'running';
      s.attempts = 1;
      s.startedAt = ev.at;
      if (s.items.length === 0) {
        s.status = 'succeeded';
        s.output = [];
        s.finishedAt = ev.at;
      }
      break;
    }
    case 'run.started':
      next.status = 'running';
      break;
    case 'step.queued': {
      const s = step(ev.data.stepId);
      // A queued event for an attempt already superseded (or a step already finished) changes nothing.
      if (ev.data.attempt < s.attempts || s.status === 'succeeded' || s.status === 'skipped') break;
      s.status = 'queued';
      s.attempts = ev.data.attempt;
      s.queuedAt = ev.at;
      delete s.childRunId;
      delete s.agentId;
      delete s.startedAt;
      delete s.finishedAt;
      break;
    }
    case 'step.skipped': {
      const s = step(ev.data.stepId);
      s.status = 'skipped';
      s.finishedAt = ev.at;
      break;
    }
    case 'step.started': {
      const s = step(ev.data.stepId);
      if (s.attempts !== ev.data.attempt) break;
      s.status = 'running';
      s.agentId = ev.data.agentId;
      s.startedAt = ev.data.startedAt;
      // A sub-workflow step "runs on" its child run, once the coordinator started it.
      if (s.role === WORKFLOW_ROLE) s.childRunId = ev.data.agentId;
      break;
    }
    case 'step.completed': {
      const s = step(ev.data.stepId);
      if (s.attempts !== ev.data.attempt) break;
      s.status = 'succeeded';
      s.completedSeq = ev.seq;
      s.agentId = ev.data.agentId;
      s.output = ev.data.output;
      s.artifacts = [...s.artifacts, ...ev.data.artifacts];
      s.finishedAt = ev.data.finishedAt;
      delete s.error;
      break;
    }
    case 'step.failed': {
      const s = step(ev.data.stepId);
      // A failure found before any attempt was queued (a template or condition error) names attempt 1.
      if (ev.data.attempt < s.attempts) break;
      s.attempts = ev.data.attempt;
      s.status = ev.data.final ? 'failed' : 'pending';
      if (ev.data.agentId !== undefined) s.agentId = ev.data.agentId;
      s.error = ev.data.error;
      s.finishedAt = ev.data.finishedAt;
      break;
    }
    case 'step.reused': {
      const s = step(ev.data.stepId);
      if (s.status !== 'pending') break;
      s.status = 'succeeded';
      s.output = ev.data.output;
      s.completedSeq = ev.seq;
      s.finishedAt = ev.at;
      break;
    }
    case 'step.waiting': {
      const s = step(ev.data.stepId);
      s.status = 'waiting';
      s.attempts = 1;
      s.startedAt = ev.at;
      break;
    }
    case 'concurrency.waiting': {
      const gate = { key: ev.data.key, limit: ev.data.limit, admitted: false };
      if (ev.data.stepId === undefined) {
        if (!next.gate) next.gate = gate;
        break;
      }
      const s = step(ev.data.stepId);
      if (s.status !== 'pending' || s.gate) break;
      s.gate = gate;
      s.status = 'waiting';
      break;
    }
    case 'concurrency.admitted': {
      if (ev.data.stepId === undefined) {
        if (next.gate) next.gate = { ...next.gate, admitted: true };
        break;
      }
      const s = step(ev.data.stepId);
      if (!s.gate || s.gate.admitted) break;
      s.gate = { ...s.gate, admitted: true };
      if (s.status === 'waiting') s.status = 'pending';
      break;
    }
    case 'lease.waiting': {
      const s = step(ev.data.stepId);
      if (s.status !== 'pending' || s.lease) break;
      s.lease = { locks: ev.data.locks, granted: false };
      s.status = 'waiting';
      break;
    }
    case 'lease.granted': {
      const s = step(ev.data.stepId);
      if (!s.lease || s.lease.granted) break;
      s.lease = { ...s.lease, granted: true, token: ev.data.token };
      if (s.status === 'waiting') s.status = 'pending';
      break;
    }
    case 'budget.waiting': {
      const s = step(ev.data.stepId);
      if (s.attempts !== ev.data.attempt) break;
      s.status = 'waiting';
      s.budgetWait = true;
      s.error = ev.data.error;
      break;
    }
    case 'budget.raised': {
      const r = next.budgetRaised ?? { tokens: 0, cost: 0 };
      next.budgetRaised = { tokens: r.tokens + (ev.data.addTokens ?? 0), cost: r.cost + (ev.data.addCost ?? 0) };
      // Whatever waits on the budget runs again, as its next attempt; the retry policy counts afresh (no backoff).
      for (const id of Object.keys(next.steps)) {
        const cur = next.steps[id]!;
        if (cur.budgetWait) {
          const s = step(id);
          delete s.budgetWait;
          delete s.error;
          s.status = 'pending';
          s.attemptBase = s.attempts;
        }
        if (cur.items?.some((i) => i.budgetWait)) {
          const s = step(id);
          s.items = s.items!.map((it) => {
            if (!it.budgetWait) return it;
            const { budgetWait: _w, error: _e, ...rest } = it;
            return { ...rest, status: 'pending', attemptBase: it.attempts };
          });
          s.itemCounts = countItems(s.items);
        }
      }
      break;
    }
    case 'run.paused':
      next.paused = true;
      break;
    case 'run.resumed':
      delete next.paused;
      break;
    case 'run.retried': {
      next.status = 'running';
      delete next.error;
      // The run's slots were given back when it failed: a re-driven run (and step) asks again.
      delete next.gate;
      for (const id of ev.data.steps) {
        const s = step(id);
        delete s.gate;
        delete s.lease;
        s.attemptBase = s.attempts;
        delete s.error;
        delete s.finishedAt;
        if (s.items) {
          // A fan-out keeps the elements that succeeded; the others run again.
          s.status = 'running';
          s.items = s.items.map((it) => (it.status === 'succeeded' ? it : { value: it.value, status: 'pending', attempts: it.attempts, attemptBase: it.attempts }));
          s.itemCounts = countItems(s.items);
        } else {
          s.status = 'pending';
        }
      }
      break;
    }
    case 'run.compensating': {
      if (next.compensation) break;
      next.compensation = { error: ev.data.error, order: ev.data.order, ...(ev.data.end ? { end: ev.data.end } : {}) };
      // Steps still going will not be waited for: their late reports are stale.
      cancelOpenSteps(next);
      for (const id of ev.data.order) {
        const c = next.definition.steps.find((d) => d.id === id)?.compensate;
        if (!c) throw new FoldError(`run ${ev.runId}: run.compensating names step ${id}, which has no compensate`);
        const cid = compensationId(id);
        next.steps[cid] = { id: cid, role: c.agent ?? DEFAULT_TOOL_ROLE, status: 'pending', attempts: 0, artifacts: [] };
      }
      break;
    }
    case 'run.completed':
      next.status = 'succeeded';
      // An output too large for the event (`outputBytes` instead) is the one the state it ends gives.
      next.output = ev.data.outputBytes !== undefined && ev.data.output === undefined ? runOutput(next) : ev.data.output;
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

/** An event about one element of a `forEach` step; the step succeeds when every element has, and fails when one fails for good. */
function applyItemEvent(ev: RunEvent, s: StepState, it: ItemState | undefined): void {
  if (!it || s.status !== 'running') return;
  switch (ev.type) {
    case 'step.queued':
      if (ev.data.attempt < it.attempts) return;
      it.status = 'queued';
      it.attempts = ev.data.attempt;
      return;
    case 'step.started':
      if (it.attempts === ev.data.attempt && it.status === 'queued') it.status = 'running';
      return;
    case 'step.completed':
      if (it.attempts !== ev.data.attempt) return;
      it.output = ev.data.output;
      delete it.error;
      it.artifacts = ev.data.artifacts;
      // The last element to succeed (this one, counted as it does) ends the step.
      if (it.status !== 'succeeded' && s.itemCounts!.succeeded + 1 === s.items!.length) {
        s.status = 'succeeded';
        s.completedSeq = ev.seq;
        s.output = s.items!.map((i) => i.output);
        s.artifacts = itemArtifacts(s.items!);
        s.finishedAt = ev.data.finishedAt;
      }
      it.status = 'succeeded';
      return;
    case 'step.failed':
      if (ev.data.attempt < it.attempts) return;
      it.attempts = ev.data.attempt;
      it.status = ev.data.final ? 'failed' : 'pending';
      it.error = ev.data.error;
      if (ev.data.final) {
        s.status = 'failed';
        s.error = { ...ev.data.error, message: `element ${ev.data.index}: ${ev.data.error.message}` };
        s.artifacts = itemArtifacts(s.items!);
        s.finishedAt = ev.data.finishedAt;
      }
      return;
    default:
      return;
  }
}

const isOpen = (status: StepStatus): boolean => status === 'queued' || status === 'running';

/** A fan-out's element counts, counted. */
export function countItems(items: readonly ItemState[]): ItemCounts {
  let succeeded = 0;
  let open = 0;
  let waiting = 0;
  let firstPending = items.length;
  items.forEach((i, index) => {
    if (i.status === 'succeeded') succeeded++;
    else if (isOpen(i.status)) open++;
    else if (i.status === 'waiting') waiting++;
    else if (i.status === 'pending' && firstPending === items.length) firstPending = index;
  });
  return { succeeded, open, waiting, firstPending };
}

/**
 * Keeps a fan-out's counts right as element `index` goes from one status to another (a new object: states are
 * shared). `s.items` already holds the element's new status. The first pending element moves back when an element
 * before it becomes pending again (a retry), and on past elements no longer pending when it stops being so: elements
 * are queued in order, so that is usually the next one, and each element is passed over about once.
 */
function countChange(s: StepState, index: number, before: StepStatus, after: StepStatus): void {
  const c = s.itemCounts;
  if (before === after || !c) return;
  let firstPending = c.firstPending;
  if (after === 'pending' && index < firstPending) firstPending = index;
  else if (before === 'pending' && index === firstPending) {
    const items = s.items!;
    do firstPending++;
    while (firstPending < items.length && items[firstPending]!.status !== 'pending');
  }
  s.itemCounts = {
    succeeded: c.succeeded + (after === 'succeeded' ? 1 : 0) - (before === 'succeeded' ? 1 : 0),
    open: c.open + (isOpen(after) ? 1 : 0) - (isOpen(before) ? 1 : 0),
    waiting: c.waiting + (after === 'waiting' ? 1 : 0) - (before === 'waiting' ? 1 : 0),
    firstPending,
  };
}

/** A fan-out's artifacts: its elements', in element order. */
function itemArtifacts(items: readonly ItemState[]): ArtifactRef[] {
  return items.flatMap((i) => i.artifacts ?? []);
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
  // Only the last state is returned: what the folds copy is theirs to change again (`initial` is never changed).
  const owned = new WeakSet<object>();
  for (const ev of events) state = applyEvent(state, ev, owned);
  return state;
}

/** Adds what an attempt spent (a completed one's output, a failed one's `spent`) to the run's spend. */
function addSpend(next: RunState, stepId: string, agentId: string, spent: AttemptSpend | undefined): void {
  if (!spent) return;
  const tokens = spent.inputTokens + spent.outputTokens;
  const cost = spent.cost ?? 0;
  if (tokens === 0 && cost === 0) return;
  const add = (m: Record<string, SpendFigures>, k: string): Record<string, SpendFigures> => {
    const cur = m[k] ?? { tokens: 0, cost: 0 };
    return { ...m, [k]: { tokens: cur.tokens + tokens, cost: cur.cost + cost } };
  };
  const sp = next.spend ?? { tokens: 0, cost: 0, byStep: {}, byAgent: {}, byProvider: {} };
  next.spend = {
    tokens: sp.tokens + tokens,
    cost: sp.cost + cost,
    byStep: add(sp.byStep, stepId),
    byAgent: add(sp.byAgent, agentId),
    byProvider: add(sp.byProvider, spent.provider ?? 'unknown'),
  };
}

/** What a template sees: `input`, and `steps.<id>.status` (with `.output` once succeeded). */
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
