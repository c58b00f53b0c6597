/**
 * The live view behind `/v1/snapshot`, as plain functions over one state
 * object: run events, seeded read-model runs, heartbeats and queue depths go
 * in; a bounded snapshot comes out.
 *
 * The functions mutate the state in place (one event costs O(1), not a copy of
 * ten thousand runs) and never read a clock: the caller passes `now`, so the
 * spec drives time by hand. Nothing here does I/O.
 *
 * Run and step statuses follow the engine's fold (`@muse/engine` state.ts):
 * a non-final `step.failed` puts the step back to `pending`, and a failed or
 * cancelled run cancels its open steps. This view cannot use that fold
 * itself: it starts mid-stream (new events only, plus read-model views that
 * carry no definition), where the engine's fold rejects anything before
 * `run.created`.
 */
import { LRUCache } from 'lru-cache';
import {
  DEFAULT_ROLES,
  toAgentView,
  ROLE_PATTERN,
  RUN_STATUSES,
  TERMINAL_RUN_STATUSES,
  isTerminalRunStatus,
  outputSpend,
  stepNeeds,
  stepRole,
  type AgentHeartbeat,
  type AttemptSpend,
  type RunEvent,
  type RunStatus,
  type RunView,
  type StepStatus,
  type WorkflowRef,
} from '@muse/contracts';
import type { QueueDepth, Snapshot, SnapshotEvent, SnapshotRun, SnapshotSpend, SnapshotStep, SnapshotTotals } from './snapshot.schema.js';

export interface LiveStateOptions {
  /** Runs listed in the snapshot. @default 50 */
  recentRuns: number;
  /** Events listed in the snapshot. @default 200 */
  recentEvents: number;
  /**
   * Runs held in memory. Past it, the least recently updated terminal runs are
   * forgotten; their status still counts in `byStatus`. Active runs are never
   * dropped. @default 10_000
   */
  maxTrackedRuns: number;
  /** Event ids remembered for dedupe (JetStream redelivers; publishers retry). @default 10_000 */
  seenEventIds: number;
  /** An agent silent for longer than this is dropped, in ms. @default 10_000 */
  agentTtlMs: number;
  /** Roles whose queues are polled; a cap so a flood of bogus roles cannot grow it without bound. @default 64 */
  maxRoles: number;
  /**
   * Steps listed per run in the snapshot; the rest are counted in `stepsOmitted`.
   * A workflow may have 5000 steps, and the dashboard fetches 50 runs every second. @default 100
   */
  maxStepsPerRun: number;
  /** Models counted apart in `spend.byModel`; the rest add up under `other`. @default 32 */
  maxSpendModels: number;
}

export const DEFAULT_LIVE_STATE_OPTIONS: LiveStateOptions = {
  recentRuns: 50,
  recentEvents: 200,
  maxTrackedRuns: 10_000,
  seenEventIds: 10_000,
  agentTtlMs: 10_000,
  maxRoles: 64,
  maxStepsPerRun: 100,
  maxSpendModels: 32,
};

interface RunEntry {
  id: string;
  project: string;
  workflow: WorkflowRef | null;
  status: RunStatus;
  createdAt?: string;
  updatedAt: string;
  updatedAtMs: number;
  seq: number;
  steps: Map<string, SnapshotStep>;
  tokens?: { input: number; output: number };
}

type Totals = Omit<SnapshotTotals, 'since'>;

export interface LiveState {
  readonly opts: LiveStateOptions;
  readonly namespace: string;
  readonly since: string;
  /** In least-recently-updated order: an update moves a run to the end. */
  readonly runs: Map<string, RunEntry>;
  /** The ids of the terminal runs in `runs`, in the same order: the ones eviction may forget, oldest first. */
  readonly terminal: Set<string>;
  readonly byStatus: Record<RunStatus, number>;
  /** Oldest first; capped at `opts.recentEvents`. */
  readonly events: SnapshotEvent[];
  /**
   * Event ids seen lately, the oldest forgotten first. An LRU cache rather than a Set trimmed from its front: V8 leaves
   * a Set's deleted entries in place until it rehashes, so finding the oldest live id skipped up to `seenEventIds`
   * holes, about 3 µs an event at 10,000.
   */
  readonly seenIds: LRUCache<string, true>;
  readonly agents: Map<string, AgentHeartbeat>;
  readonly roles: Set<string>;
  readonly queues: Map<string, { depth: QueueDepth; readAt: string }>;
  readonly totals: Totals;
  /** Tokens by model, from completed agent steps seen live. */
  readonly spend: Map<string, { inputTokens: number; outputTokens: number; steps: number }>;
}

export function createLiveState(namespace: string, now: Date, opts: Partial<LiveStateOptions> = {}): LiveState {
  const byStatus = Object.fromEntries(RUN_STATUSES.map((s) => [s, 0])) as Record<RunStatus, number>;
  const o = { ...DEFAULT_LIVE_STATE_OPTIONS, ...opts };
  return {
    opts: o,
    namespace,
    since: now.toISOString(),
    runs: new Map(),
    terminal: new Set(),
    byStatus,
    events: [],
    seenIds: new LRUCache<string, true>({ max: o.seenEventIds }),
    agents: new Map(),
    roles: new Set(DEFAULT_ROLES),
    queues: new Map(),
    totals: {
      runsStarted: 0,
      runsSucceeded: 0,
      runsFailed: 0,
      runsCancelled: 0,
      stepsCompleted: 0,
      stepsFailed: 0,
      stepsRetried: 0,
      eventsSeen: 0,
      duplicatesIgnored: 0,
    },
    spend: new Map(),
  };
}

/** What one applied event means for the outcome counters (the adapter mirrors these into Prometheus). */
export const RUN_OUTCOMES = ['started', 'succeeded', 'failed', 'cancelled'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];
export const STEP_OUTCOMES = ['completed', 'failed', 'retried'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

export type EventResult =
  | { applied: true; runOutcome?: RunOutcome; stepOutcome?: StepOutcome }
  | { applied: false; reason: 'duplicate-id' | 'duplicate-seq' };

export function applyRunEvent(state: LiveState, ev: RunEvent): EventResult {
  if (state.seenIds.has(ev.id)) return duplicate(state, 'duplicate-id');
  const existing = state.runs.get(ev.runId);
  if (existing && ev.seq <= existing.seq) {
    rememberId(state, ev.id);
    return duplicate(state, 'duplicate-seq');
  }
  rememberId(state, ev.id);

  const run = existing ?? addRun(state, placeholder(ev));
  run.seq = ev.seq;
  run.updatedAt = ev.at;
  run.updatedAtMs = toMs(ev.at);
  touch(state, run);

  let runOutcome: RunOutcome | undefined;
  let stepOutcome: StepOutcome | undefined;
  const element = (ev.type === 'step.queued' || ev.type === 'step.started' || ev.type === 'step.completed' || ev.type === 'step.failed') && ev.data.index !== undefined;
  // Events of one element of a forEach step: the live view shows the step (running, or failed), not each element.
  if (element) {
    const s = step(run, (ev.data as { stepId: string }).stepId);
    s.status = ev.type === 'step.failed' && ev.data.final ? 'failed' : 'running';
  } else switch (ev.type) {
    case 'step.reused':
      step(run, ev.data.stepId).status = 'succeeded';
      break;
    case 'step.waiting':
      step(run, ev.data.stepId).status = 'waiting';
      setStatus(state, run, 'waiting');
      break;
    case 'run.paused':
      setStatus(state, run, 'waiting');
      break;
    case 'run.resumed':
    case 'run.retried':
      setStatus(state, run, 'running');
      break;
    case 'step.expanded':
      step(run, ev.data.stepId).status = ev.data.items.length === 0 ? 'succeeded' : 'running';
      break;
    case 'run.created':
      run.workflow = ev.data.workflow;
      run.createdAt = ev.at;
      for (const d of ev.data.definition.steps) {
        if (!run.steps.has(d.id)) run.steps.set(d.id, { id: d.id, status: 'pending', attempts: 0, role: stepRole(d) });
        const needs = stepNeeds(d);
        if (needs.length > 0) run.steps.get(d.id)!.needs = needs;
      }
      break;
    case 'run.started':
      setStatus(state, run, 'running');
      runOutcome = 'started';
      break;
    case 'step.queued': {
      const s = step(run, ev.data.stepId);
      s.status = 'queued';
      s.attempts = ev.data.attempt;
      s.role = ev.data.role;
      delete s.agent;
      noteRole(state, ev.data.role);
      break;
    }
    case 'step.started': {
      const s = step(run, ev.data.stepId);
      // A start of an older attempt (a slow worker that lost its job) changes nothing.
      if (s.attempts !== 0 && s.attempts !== ev.data.attempt) break;
      s.status = 'running';
      s.attempts = ev.data.attempt;
      s.agent = ev.data.agentId;
      break;
    }
    case 'step.completed': {
      const s = step(run, ev.data.stepId);
      s.status = 'succeeded';
      s.agent = ev.data.agentId;
      if (s.attempts === 0) s.attempts = ev.data.attempt;
      stepOutcome = 'completed';
      break;
    }
    case 'step.failed': {
      const s = step(run, ev.data.stepId);
      s.status = ev.data.final ? 'failed' : 'pending';
      if (ev.data.agentId !== undefined) s.agent = ev.data.agentId;
      if (s.attempts === 0) s.attempts = ev.data.attempt;
      stepOutcome = ev.data.final ? 'failed' : 'retried';
      break;
    }
    case 'step.skipped':
      step(run, ev.data.stepId).status = 'skipped';
      break;
    case 'run.completed':
      setStatus(state, run, 'succeeded');
      runOutcome = 'succeeded';
      break;
    case 'run.failed':
      setStatus(state, run, 'failed');
      cancelOpenSteps(run);
      runOutcome = 'failed';
      break;
    case 'run.cancelled':
      setStatus(state, run, 'cancelled');
      cancelOpenSteps(run);
      runOutcome = 'cancelled';
      break;
  }
  // What the run's `spend` counts (outputSpend): a step answered from a recording (a replay's) spent nothing.
  if (ev.type === 'step.completed') {
    const spent = outputSpend(ev.data.output);
    if (spent) countUsage(state, run, spent, true);
  }
  // A failed attempt's calls were spent all the same (its `spent`); it counts no step.
  if ((ev.type === 'step.failed' || ev.type === 'budget.waiting') && ev.data.spent) countUsage(state, run, ev.data.spent, false);
  countOutcomes(state.totals, runOutcome, stepOutcome);
  state.totals.eventsSeen++;
  pushEvent(state, summarize(ev));
  evictRuns(state);

  const result: EventResult = { applied: true };
  if (runOutcome) result.runOutcome = runOutcome;
  if (stepOutcome) result.stepOutcome = stepOutcome;
  return result;
}

/**
 * Folds in a run from the Redis read model (written by the coordinator). A
 * view no newer than what the state holds is ignored, so seeding after
 * live events have started flowing never moves a run backwards.
 * @returns whether the view was taken
 */
export function seedRun(state: LiveState, view: RunView): boolean {
  const existing = state.runs.get(view.id);
  if (existing && existing.seq >= view.seq) {
    // Live events got here first, but may have started mid-run: keep what the view knows and they don't.
    existing.workflow ??= view.workflow;
    existing.createdAt ??= view.createdAt;
    return false;
  }
  const steps = new Map<string, SnapshotStep>();
  for (const s of view.steps) {
    const prev = existing?.steps.get(s.id);
    const step: SnapshotStep = { id: s.id, status: s.status, attempts: s.attempts };
    if (prev?.role !== undefined) step.role = prev.role;
    if (s.agent !== undefined) step.agent = s.agent;
    steps.set(s.id, step);
  }
  const fields = {
    project: view.project,
    workflow: view.workflow,
    createdAt: view.createdAt,
    updatedAt: view.updatedAt,
    updatedAtMs: toMs(view.updatedAt),
    seq: view.seq,
    steps,
  };
  if (existing) {
    setStatus(state, existing, view.status);
    Object.assign(existing, fields);
    touch(state, existing);
  } else {
    addRun(state, { id: view.id, status: view.status, ...fields });
  }
  evictRuns(state);
  return true;
}

/**
 * Takes a heartbeat (from NATS or the Redis hash): keeps the newest per agent
 * and ignores one already older than the TTL, so a dead agent's stale hash
 * entry does not come back to life on every poll.
 * @returns whether the heartbeat was taken
 */
export function applyHeartbeat(state: LiveState, hb: AgentHeartbeat, nowMs: number): boolean {
  const at = toMs(hb.at);
  if (nowMs - at > state.opts.agentTtlMs) return false;
  const prev = state.agents.get(hb.agentId);
  if (prev && toMs(prev.at) > at) return false;
  state.agents.set(hb.agentId, hb);
  for (const role of hb.roles) noteRole(state, role);
  return true;
}

/** Drops agents silent for longer than the TTL. @returns how many were dropped */
export function pruneAgents(state: LiveState, nowMs: number): number {
  let dropped = 0;
  for (const [id, hb] of state.agents) {
    if (nowMs - toMs(hb.at) > state.opts.agentTtlMs) {
      state.agents.delete(id);
      dropped++;
    }
  }
  return dropped;
}

export function recordQueueDepth(state: LiveState, role: string, depth: QueueDepth, at: Date): void {
  state.queues.set(role, { depth: { waiting: depth.waiting, active: depth.active, delayed: depth.delayed }, readAt: at.toISOString() });
}

/**
 * Adds a role to the polled set. Only names that are valid roles get in (they
 * become BullMQ queue names, which forbid `:`), and at most `opts.maxRoles`.
 */
export function noteRole(state: LiveState, role: string): void {
  if (state.roles.has(role) || state.roles.size >= state.opts.maxRoles) return;
  if (!ROLE_PATTERN.test(role) || role.length > 64) return;
  state.roles.add(role);
}

/** The default roles in their usual order, then the others by name. */
export function knownRoles(state: LiveState): string[] {
  const defaults: string[] = DEFAULT_ROLES.filter((r) => state.roles.has(r));
  const others = [...state.roles].filter((r) => !defaults.includes(r)).sort();
  return [...defaults, ...others];
}

export function activeRunCount(state: LiveState): number {
  let n = 0;
  for (const s of RUN_STATUSES) if (!TERMINAL_RUN_STATUSES.includes(s)) n += state.byStatus[s];
  return n;
}

export function liveAgentCount(state: LiveState, nowMs: number): number {
  let n = 0;
  for (const hb of state.agents.values()) if (nowMs - toMs(hb.at) <= state.opts.agentTtlMs) n++;
  return n;
}

/** Seconds between an event's append and `nowMs`; 0 when clocks disagree the other way, undefined for an unreadable time. */
export function eventLagSeconds(ev: RunEvent, nowMs: number): number | undefined {
  const at = Date.parse(ev.at);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (nowMs - at) / 1000);
}

/** One run as the snapshot lists it (the live push sends it with each of the run's events); undefined for a run not held. */
export function snapshotRun(state: LiveState, runId: string): SnapshotRun | undefined {
  const r = state.runs.get(runId);
  return r ? toSnapshotRun(state, r) : undefined;
}

function toSnapshotRun(state: LiveState, r: RunEntry): SnapshotRun {
  const run: SnapshotRun = {
    id: r.id,
    project: r.project,
    workflow: r.workflow,
    status: r.status,
    updatedAt: r.updatedAt,
    seq: r.seq,
    steps: [...r.steps.values()].slice(0, state.opts.maxStepsPerRun).map((s) => (s.needs ? { ...s, needs: [...s.needs] } : { ...s })),
  };
  if (r.createdAt !== undefined) run.createdAt = r.createdAt;
  if (r.steps.size > state.opts.maxStepsPerRun) run.stepsOmitted = r.steps.size - state.opts.maxStepsPerRun;
  if (r.tokens) run.tokens = { ...r.tokens };
  return run;
}

/** Tokens by model, the biggest spender first. */
export function buildSpend(state: LiveState): SnapshotSpend {
  const byModel = [...state.spend.entries()]
    .map(([model, t]) => ({ model, ...t }))
    .sort((a, b) => b.inputTokens + b.outputTokens - (a.inputTokens + a.outputTokens) || a.model.localeCompare(b.model));
  return {
    inputTokens: byModel.reduce((n, m) => n + m.inputTokens, 0),
    outputTokens: byModel.reduce((n, m) => n + m.outputTokens, 0),
    byModel,
  };
}

export function buildSnapshot(state: LiveState, now: Date): Snapshot {
  const nowMs = now.getTime();
  const recent = [...state.runs.values()]
    .sort((a, b) => b.updatedAtMs - a.updatedAtMs)
    .slice(0, state.opts.recentRuns)
    .map((r) => toSnapshotRun(state, r));
  const agents = [...state.agents.values()]
    .filter((hb) => nowMs - toMs(hb.at) <= state.opts.agentTtlMs)
    .sort((a, b) => a.agentId.localeCompare(b.agentId))
    .map(toAgentView);
  const queues = knownRoles(state).map((role) => {
    const q = state.queues.get(role);
    return q ? { role, ...q.depth, readAt: q.readAt } : { role, waiting: 0, active: 0, delayed: 0 };
  });
  return {
    generatedAt: now.toISOString(),
    namespace: state.namespace,
    runs: { byStatus: { ...state.byStatus }, active: activeRunCount(state), recent },
    events: [...state.events].reverse(),
    agents,
    queues,
    totals: { since: state.since, ...state.totals },
    spend: buildSpend(state),
  };
}

/**
 * Adds what an attempt's model calls spent (`outputSpend` of a completed agent step's output, or a failed attempt's
 * `spent`) to the run and to the per-model spend; `completed` counts the step.
 */
function countUsage(state: LiveState, run: RunEntry, spent: AttemptSpend, completed: boolean): void {
  const input = tokenCount(spent.inputTokens);
  const out = tokenCount(spent.outputTokens);
  if (input === 0 && out === 0) return;
  run.tokens ??= { input: 0, output: 0 };
  run.tokens.input += input;
  run.tokens.output += out;
  const model = spent.model;
  let name = typeof model === 'string' && model.length > 0 && model.length <= 128 ? model : 'unknown';
  if (!state.spend.has(name) && state.spend.size >= state.opts.maxSpendModels) name = 'other';
  const m = state.spend.get(name) ?? { inputTokens: 0, outputTokens: 0, steps: 0 };
  m.inputTokens += input;
  m.outputTokens += out;
  if (completed) m.steps++;
  state.spend.set(name, m);
}

function tokenCount(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}


function duplicate(state: LiveState, reason: 'duplicate-id' | 'duplicate-seq'): EventResult {
  state.totals.duplicatesIgnored++;
  return { applied: false, reason };
}

function rememberId(state: LiveState, id: string): void {
  state.seenIds.set(id, true);
}

/** A run first seen through an event other than `run.created`: we know only what the event says. */
function placeholder(ev: RunEvent): RunEntry {
  const status: RunStatus = ev.type === 'run.created' ? 'pending' : 'running';
  return { id: ev.runId, project: ev.project, workflow: null, status, updatedAt: ev.at, updatedAtMs: toMs(ev.at), seq: 0, steps: new Map() };
}

function addRun(state: LiveState, entry: RunEntry): RunEntry {
  state.runs.set(entry.id, entry);
  state.byStatus[entry.status]++;
  if (isTerminalRunStatus(entry.status)) state.terminal.add(entry.id);
  return entry;
}

/** Moves a run to the most-recently-updated end of the map (and of the terminal runs, when it is one). */
function touch(state: LiveState, run: RunEntry): void {
  state.runs.delete(run.id);
  state.runs.set(run.id, run);
  if (state.terminal.delete(run.id)) state.terminal.add(run.id);
}

function setStatus(state: LiveState, run: RunEntry, status: RunStatus): void {
  if (run.status === status) return;
  state.byStatus[run.status]--;
  state.byStatus[status]++;
  run.status = status;
  // Just updated: the newest of the terminal runs, or none of them.
  state.terminal.delete(run.id);
  if (isTerminalRunStatus(status)) state.terminal.add(run.id);
}


function step(run: RunEntry, id: string): SnapshotStep {
  let s = run.steps.get(id);
  if (!s) {
    s = { id, status: 'pending', attempts: 0 };
    run.steps.set(id, s);
  }
  return s;
}

const OPEN_STEP_STATUSES: readonly StepStatus[] = ['pending', 'queued', 'running', 'waiting'];

function cancelOpenSteps(run: RunEntry): void {
  for (const s of run.steps.values()) if (OPEN_STEP_STATUSES.includes(s.status)) s.status = 'cancelled';
}

function countOutcomes(t: Totals, run: RunOutcome | undefined, step: StepOutcome | undefined): void {
  if (run === 'started') t.runsStarted++;
  else if (run === 'succeeded') t.runsSucceeded++;
  else if (run === 'failed') t.runsFailed++;
  else if (run === 'cancelled') t.runsCancelled++;
  if (step === 'completed') t.stepsCompleted++;
  else if (step === 'failed') t.stepsFailed++;
  else if (step === 'retried') t.stepsRetried++;
}

function pushEvent(state: LiveState, ev: SnapshotEvent): void {
  state.events.push(ev);
  if (state.events.length > state.opts.recentEvents) state.events.splice(0, state.events.length - state.opts.recentEvents);
}

function summarize(ev: RunEvent): SnapshotEvent {
  const out: SnapshotEvent = { id: ev.id, runId: ev.runId, seq: ev.seq, type: ev.type, at: ev.at };
  switch (ev.type) {
    case 'step.queued':
      Object.assign(out, { stepId: ev.data.stepId, attempt: ev.data.attempt, role: ev.data.role });
      break;
    case 'step.started':
    case 'step.completed':
      Object.assign(out, { stepId: ev.data.stepId, attempt: ev.data.attempt, agentId: ev.data.agentId });
      break;
    case 'step.failed':
      Object.assign(out, { stepId: ev.data.stepId, attempt: ev.data.attempt, errorCode: ev.data.error.code, final: ev.data.final });
      if (ev.data.agentId !== undefined) out.agentId = ev.data.agentId;
      break;
    case 'step.skipped':
      out.stepId = ev.data.stepId;
      break;
    case 'run.failed':
      out.errorCode = ev.data.error.code;
      break;
    default:
      break;
  }
  return out;
}

/**
 * Forgets the least recently updated terminal runs once more than
 * `maxTrackedRuns` are held. Their status stays counted in `byStatus`.
 */
function evictRuns(state: LiveState): void {
  let excess = state.runs.size - state.opts.maxTrackedRuns;
  // Not even an iterator when under the limit: its first step skips the deleted entries at the front of the set.
  if (excess <= 0) return;
  // From the terminal runs only, oldest first: with every tracked run still going there is nothing to look through
  // (a scan of all of them on every event cost O(runs) once more than `maxTrackedRuns` were active).
  for (const id of state.terminal) {
    if (excess <= 0) break;
    state.terminal.delete(id);
    state.runs.delete(id);
    excess--;
  }
}

function toMs(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : ms;
}
