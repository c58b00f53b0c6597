/**
 * How big each agent pool should be: the one pure function the scaler's
 * drivers (local processes, Kubernetes; a later issue) call every interval.
 * It reads an observation of one role (its queue and its live agents) and the
 * pool's last state, and returns the next desired size with the reason.
 *
 * The rule, per role: `need` comes from the pool's policy kind,
 *
 *     queueDepth  need = busyAgents + ceil(waiting / scaleUpThreshold)
 *     resource    need = ceil(agents × max(cpu / cpuTarget, memory / memoryTarget))
 *                        (the HPA formula; at least 1 while jobs wait)
 *     throughput  need = ceil((completedPerMinute + waiting) / targetPerMinute)
 *                        (keep up with the arrivals and clear the backlog within a minute)
 *
 *     target = clamp(need, min, max)
 *
 * - Grow at once when `target` is above the current desired size: work is
 *   waiting and every agent counted busy is keeping its own slot.
 * - Shrink to `target` only when the queue is nearly empty
 *   (`waiting <= scaleDownThreshold`), the pool has wanted to shrink for
 *   `idleTimeoutMs` without a break, and no change happened in the last
 *   `cooldownMs`; otherwise hold. The cooldown is what keeps a bursty queue
 *   from flapping the pool up and down every interval.
 * - A desired size above `max` (a policy lowered at run time) drops to `max`
 *   at once: max is a hard limit, the cooldown does not defer it.
 *
 * Delayed jobs (retries waiting out their backoff) are not counted: they are
 * not runnable yet, and when they are they show up as waiting.
 *
 * No clock, no I/O: `nowMs` comes in, so the spec drives time by hand.
 */
import { z } from 'zod';

export const PoolPolicySchema = z
  .strictObject({
    /** Fewest workers the pool keeps, even idle. @default 1 */
    min: z.number().int().min(0),
    /** Most workers the pool may have. @default 8 */
    max: z.number().int().min(1),
    /** Waiting jobs per extra worker: 10 means one more worker for every 10 jobs in the queue. @default 10 */
    scaleUpThreshold: z.number().int().min(1),
    /** The pool shrinks only while at most this many jobs wait. @default 2 */
    scaleDownThreshold: z.number().int().min(0),
    /** After a change, the pool does not shrink for this long, in ms. @default 30_000 */
    cooldownMs: z.number().int().min(0),
    /** The pool shrinks only after wanting to for this long without a break, in ms (0: as soon as the cooldown allows). @default 0 */
    idleTimeoutMs: z.number().int().min(0),
    /** Which signal sizes the pool. @default 'queueDepth' */
    kind: z.enum(['queueDepth', 'resource', 'throughput']),
    /** `resource`: target mean CPU of the pool's agents, as a share of one core (0.8 = 80 %). @default 0.8 */
    cpu: z.number().gt(0).max(64),
    /** `resource`: target mean memory of the pool's agents, as a share of the memory available to each (0.8 = 80 %). @default 0.8 */
    memory: z.number().gt(0).max(1),
    /** `throughput`: step attempts one worker is expected to finish per minute. @default 60 */
    targetPerMinute: z.number().gt(0),
  })
  .refine((p) => p.min <= p.max, { message: 'min must not exceed max', path: ['min'] });
export type PoolPolicy = z.infer<typeof PoolPolicySchema>;

export const DEFAULT_POOL_POLICY: PoolPolicy = Object.freeze({
  min: 1,
  max: 8,
  scaleUpThreshold: 10,
  scaleDownThreshold: 2,
  cooldownMs: 30_000,
  idleTimeoutMs: 0,
  kind: 'queueDepth',
  cpu: 0.8,
  memory: 0.8,
  targetPerMinute: 60,
});

/**
 * Per-role overrides of the default policy, with `*` for every role:
 * `{"*": {"max": 4}, "executor": {"max": 16}}`, read from the file named by
 * `MUSE_SCALER_CONFIG` (see `scaler-config.ts`); merged field by field over the defaults.
 */
export const PoolPolicyOverridesSchema = z.record(
  z.string(),
  z.strictObject({
    min: z.number().int().min(0).optional(),
    max: z.number().int().min(1).optional(),
    scaleUpThreshold: z.number().int().min(1).optional(),
    scaleDownThreshold: z.number().int().min(0).optional(),
    cooldownMs: z.number().int().min(0).optional(),
    idleTimeoutMs: z.number().int().min(0).optional(),
    kind: z.enum(['queueDepth', 'resource', 'throughput']).optional(),
    cpu: z.number().gt(0).max(64).optional(),
    memory: z.number().gt(0).max(1).optional(),
    targetPerMinute: z.number().gt(0).optional(),
  }),
);
export type PoolPolicyOverrides = z.infer<typeof PoolPolicyOverridesSchema>;

/** The policy of one role: defaults, then `*`, then the role's own overrides. Throws if the result is inconsistent (min > max). */
export function policyFor(role: string, overrides: PoolPolicyOverrides = {}): PoolPolicy {
  return PoolPolicySchema.parse({ ...DEFAULT_POOL_POLICY, ...overrides['*'], ...overrides[role] });
}

export interface PoolObservation {
  /** Jobs ready to run and not taken (BullMQ waiting + prioritized). */
  waiting: number;
  active: number;
  delayed: number;
  /** Agents serving the role whose heartbeat is fresh. */
  agents: number;
  /** Of those, the ones with at least one job in flight. */
  busyAgents: number;
  /** Mean CPU of those agents, share of one core; absent when no heartbeat says. */
  cpu?: number;
  /** Mean memory of those agents, share of what each may use; absent when no heartbeat says. */
  memory?: number;
  /** Step attempts the role's agents finished in the last minute (rate from heartbeat counters); absent on the first look. */
  completedPerMinute?: number;
}

export interface PoolState {
  desired: number;
  /** When `desired` last changed (or the scaler started watching the pool), in ms since the epoch. */
  changedAt: number;
  /** Since when the pool has wanted to shrink without a break (for `idleTimeoutMs`), in ms since the epoch; null or absent when it has not. */
  lowSince?: number | null;
}

export const DIRECTIONS = ['up', 'down', 'hold'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export interface ScalingDecision {
  from: number;
  to: number;
  direction: Direction;
  /** `need` before the clamp: what the queue asks for. */
  need: number;
  /** One line a person can read in a log or on `/v1/pools`. */
  reason: string;
  /** True when the policy wants a smaller pool than `from` (held or not): starts or keeps the idle clock. */
  wantsDown?: boolean;
}

/** Workers the role needs now, before the min/max clamp. */
export function neededWorkers(policy: PoolPolicy, obs: PoolObservation): number {
  switch (policy.kind) {
    case 'resource': {
      const anyWork = obs.waiting > 0 || obs.busyAgents > 0 ? 1 : 0;
      if (obs.agents === 0 || (obs.cpu === undefined && obs.memory === undefined)) return Math.max(anyWork, obs.agents);
      const ratio = Math.max((obs.cpu ?? 0) / policy.cpu, (obs.memory ?? 0) / policy.memory);
      // 1e-9: a ratio of exactly 1.0 computed as 1.0000000001 must not add a worker.
      return Math.max(anyWork, Math.ceil(obs.agents * ratio - 1e-9));
    }
    case 'throughput':
      return Math.ceil(((obs.completedPerMinute ?? 0) + obs.waiting) / policy.targetPerMinute);
    default:
      return obs.busyAgents + Math.ceil(obs.waiting / policy.scaleUpThreshold);
  }
}

function describe(policy: PoolPolicy, obs: PoolObservation, need: number): string {
  const pct = (x: number | undefined) => (x === undefined ? '?' : `${Math.round(x * 100)}%`);
  switch (policy.kind) {
    case 'resource':
      return `cpu ${pct(obs.cpu)} (target ${pct(policy.cpu)}), memory ${pct(obs.memory)} (target ${pct(policy.memory)}) over ${obs.agents} agents, ${obs.waiting} waiting: need ${need}`;
    case 'throughput':
      return `${Math.round(obs.completedPerMinute ?? 0)}/min done + ${obs.waiting} waiting at ${policy.targetPerMinute}/min per agent: need ${need}`;
    default:
      return `${obs.waiting} waiting, ${obs.busyAgents} of ${obs.agents} agents busy: need ${need}`;
  }
}

export function decide(policy: PoolPolicy, state: PoolState, obs: PoolObservation, nowMs: number): ScalingDecision {
  const need = neededWorkers(policy, obs);
  const target = clamp(need, policy.min, policy.max);
  const from = state.desired;
  const why = describe(policy, obs, need);
  const bound = need !== target ? ` (clamped to ${target}, min ${policy.min}, max ${policy.max})` : '';

  if (target > from) return { from, to: target, direction: 'up', need, reason: `${why}${bound}` };
  if (from > policy.max) {
    return { from, to: policy.max, direction: 'down', need, reason: `above max ${policy.max}; ${why}` };
  }
  if (target < from) {
    if (obs.waiting > policy.scaleDownThreshold) {
      return hold(from, need, `${why}; queue above the scale-down threshold (${obs.waiting} > ${policy.scaleDownThreshold})`);
    }
    const left = state.changedAt + policy.cooldownMs - nowMs;
    if (left > 0) return { ...hold(from, need, `${why}; cooling down, ${Math.ceil(left / 1000)} s left`), wantsDown: true };
    const idle = nowMs - (state.lowSince ?? nowMs);
    if (idle < policy.idleTimeoutMs) {
      return { ...hold(from, need, `${why}; idle ${Math.floor(idle / 1000)} s of ${Math.ceil(policy.idleTimeoutMs / 1000)} s`), wantsDown: true };
    }
    return { from, to: target, direction: 'down', need, reason: `${why}${bound}${policy.idleTimeoutMs > 0 ? `; idle ${Math.floor(idle / 1000)} s` : ''}` };
  }
  return hold(from, need, `${why}${bound}`);
}

/**
 * The state after a decision: a change restarts the cooldown and the idle
 * clock, a hold keeps the cooldown clock and starts (or keeps) the idle clock
 * while the pool wants to shrink, and clears it as soon as it does not.
 */
export function applyDecision(state: PoolState, decision: ScalingDecision, nowMs: number): PoolState {
  if (decision.to !== state.desired) return { desired: decision.to, changedAt: nowMs, lowSince: null };
  const lowSince = decision.wantsDown ? (state.lowSince ?? nowMs) : null;
  if ((state.lowSince ?? null) === lowSince) return state;
  return { ...state, lowSince };
}

/**
 * The state of a pool the scaler has just started watching: as big as what
 * runs now (so a restarted scaler does not reset pools), with the cooldown
 * clock started, so it shrinks nothing in its first `cooldownMs`.
 */
export function initialPoolState(obs: PoolObservation, nowMs: number): PoolState {
  return { desired: obs.agents, changedAt: nowMs, lowSince: null };
}

function hold(at: number, need: number, reason: string): ScalingDecision {
  return { from: at, to: at, direction: 'hold', need, reason };
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
