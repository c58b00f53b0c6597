/**
 * How big each agent pool should be: the one pure function the scaler's
 * drivers (local processes, Kubernetes; a later issue) call every interval.
 * It reads an observation of one role (its queue and its live agents) and the
 * pool's last state, and returns the next desired size with the reason.
 *
 * The rule, per role:
 *
 *     need    = busyAgents + ceil(waiting / scaleUpThreshold)
 *     target  = clamp(need, min, max)
 *
 * - Grow at once when `target` is above the current desired size: work is
 *   waiting and every agent counted busy is keeping its own slot.
 * - Shrink to `target` only when the queue is nearly empty
 *   (`waiting <= scaleDownThreshold`) and no change happened in the last
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
  })
  .refine((p) => p.min <= p.max, { message: 'min must not exceed max', path: ['min'] });
export type PoolPolicy = z.infer<typeof PoolPolicySchema>;

export const DEFAULT_POOL_POLICY: PoolPolicy = Object.freeze({
  min: 1,
  max: 8,
  scaleUpThreshold: 10,
  scaleDownThreshold: 2,
  cooldownMs: 30_000,
});

/**
 * Per-role overrides of the default policy, with `*` for every role:
 * `{"*": {"max": 4}, "executor": {"max": 16}}`. Meant for a future
 * `MUSE_SCALER_POOLS` variable (JSON); merged field by field over the defaults.
 */
export const PoolPolicyOverridesSchema = z.record(
  z.string(),
  z.strictObject({
    min: z.number().int().min(0).optional(),
    max: z.number().int().min(1).optional(),
    scaleUpThreshold: z.number().int().min(1).optional(),
    scaleDownThreshold: z.number().int().min(0).optional(),
    cooldownMs: z.number().int().min(0).optional(),
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
}

export interface PoolState {
  desired: number;
  /** When `desired` last changed (or the scaler started watching the pool), in ms since the epoch. */
  changedAt: number;
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
}

/** Workers the role needs now, before the min/max clamp. */
export function neededWorkers(policy: PoolPolicy, obs: PoolObservation): number {
  return obs.busyAgents + Math.ceil(obs.waiting / policy.scaleUpThreshold);
}

export function decide(policy: PoolPolicy, state: PoolState, obs: PoolObservation, nowMs: number): ScalingDecision {
  const need = neededWorkers(policy, obs);
  const target = clamp(need, policy.min, policy.max);
  const from = state.desired;
  const why = `${obs.waiting} waiting, ${obs.busyAgents} of ${obs.agents} agents busy: need ${need}`;
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
    if (left > 0) return hold(from, need, `${why}; cooling down, ${Math.ceil(left / 1000)} s left`);
    return { from, to: target, direction: 'down', need, reason: `${why}${bound}` };
  }
  return hold(from, need, `${why}${bound}`);
}

/**
 * The state after a decision: a change restarts the cooldown, a hold keeps
 * the old clock.
 */
export function applyDecision(state: PoolState, decision: ScalingDecision, nowMs: number): PoolState {
  if (decision.to === state.desired) return state;
  return { desired: decision.to, changedAt: nowMs };
}

/**
 * The state of a pool the scaler has just started watching: as big as what
 * runs now (so a restarted scaler does not reset pools), with the cooldown
 * clock started, so it shrinks nothing in its first `cooldownMs`.
 */
export function initialPoolState(obs: PoolObservation, nowMs: number): PoolState {
  return { desired: obs.agents, changedAt: nowMs };
}

function hold(at: number, need: number, reason: string): ScalingDecision {
  return { from: at, to: at, direction: 'hold', need, reason };
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
