/**
 * The scaler's memory between intervals: one record per role, moved forward
 * by `evaluatePool`, which runs the policy and says whether `desired` changed.
 */
import { applyDecision, decide, initialPoolState, type PoolObservation, type PoolPolicy, type ScalingDecision, type PoolState } from './scaling.policy.js';
import type { PoolDecision, PoolView } from './pools.schema.js';

/** How many past changes each pool keeps for `/v1/pools`. */
const KEEP_DECISIONS = 10;

export interface PoolRecord {
  role: string;
  policy: PoolPolicy;
  state: PoolState;
  obs: PoolObservation;
  lastDecision: PoolDecision;
  /** Changes of `desired`, newest first. */
  decisions: PoolDecision[];
  lastCheck: { at: string; need: number; reason: string };
  /** What the driver runs for the pool; null when it has no say. */
  driverActual: number | null;
}

export interface PoolEvaluation {
  record: PoolRecord;
  /** The decision when it changed `desired`, else null. */
  change: ScalingDecision | null;
}

/**
 * @param startAt the size a pool the scaler has just started watching is
 *   taken to have (what the driver runs, else the live agents): a new leader
 *   continues from what is there instead of resizing it.
 */
export function evaluatePool(prev: PoolRecord | undefined, role: string, policy: PoolPolicy, obs: PoolObservation, now: Date, startAt = obs.agents): PoolEvaluation {
  const nowMs = now.getTime();
  const at = now.toISOString();
  const state = prev?.state ?? initialPoolState({ ...obs, agents: startAt }, nowMs);
  const decision = decide(policy, state, obs, nowMs);
  const changed = decision.to !== state.desired;
  const change: PoolDecision | null = changed ? { at, from: decision.from, to: decision.to, direction: decision.direction, reason: decision.reason } : null;
  const lastDecision: PoolDecision =
    change ?? prev?.lastDecision ?? { at, from: startAt, to: state.desired, direction: 'hold', reason: `started watching: ${startAt} running, ${obs.agents} live agents` };
  return {
    record: {
      role,
      policy,
      state: applyDecision(state, decision, nowMs),
      obs,
      lastDecision,
      decisions: change ? [change, ...(prev?.decisions ?? [])].slice(0, KEEP_DECISIONS) : (prev?.decisions ?? []),
      lastCheck: { at, need: decision.need, reason: decision.reason },
      driverActual: prev?.driverActual ?? null,
    },
    change: changed ? decision : null,
  };
}

export function toPoolView(r: PoolRecord): PoolView {
  return {
    role: r.role,
    min: r.policy.min,
    max: r.policy.max,
    policy: { ...r.policy },
    desired: r.state.desired,
    actual: r.obs.agents,
    driverActual: r.driverActual,
    busy: r.obs.busyAgents,
    queue: { waiting: r.obs.waiting, active: r.obs.active, delayed: r.obs.delayed },
    lastDecision: { ...r.lastDecision },
    decisions: r.decisions.map((d) => ({ ...d })),
    lastCheck: { ...r.lastCheck },
  };
}
