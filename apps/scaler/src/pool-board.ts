/**
 * The scaler's memory between intervals: one record per role, moved forward
 * by `evaluatePool`, which runs the policy and says whether `desired` changed.
 */
import { applyDecision, decide, initialPoolState, type PoolObservation, type PoolPolicy, type PoolState, type ScalingDecision } from './scaling.policy.js';
import type { PoolDecision, PoolView } from './pools.schema.js';

export interface PoolRecord {
  role: string;
  policy: PoolPolicy;
  state: PoolState;
  obs: PoolObservation;
  lastDecision: PoolDecision;
  lastCheck: { at: string; need: number; reason: string };
}

export interface PoolEvaluation {
  record: PoolRecord;
  /** The decision when it changed `desired`, else null. */
  change: ScalingDecision | null;
}

export function evaluatePool(prev: PoolRecord | undefined, role: string, policy: PoolPolicy, obs: PoolObservation, now: Date): PoolEvaluation {
  const nowMs = now.getTime();
  const at = now.toISOString();
  const state = prev?.state ?? initialPoolState(obs, nowMs);
  const decision = decide(policy, state, obs, nowMs);
  const changed = decision.to !== state.desired;
  const lastDecision: PoolDecision = changed
    ? { at, from: decision.from, to: decision.to, direction: decision.direction, reason: decision.reason }
    : (prev?.lastDecision ?? { at, from: obs.agents, to: state.desired, direction: 'hold', reason: `started watching: ${obs.agents} live agents` });
  return {
    record: {
      role,
      policy,
      state: applyDecision(state, decision, nowMs),
      obs,
      lastDecision,
      lastCheck: { at, need: decision.need, reason: decision.reason },
    },
    change: changed ? decision : null,
  };
}

export function toPoolView(r: PoolRecord): PoolView {
  return {
    role: r.role,
    min: r.policy.min,
    max: r.policy.max,
    desired: r.state.desired,
    actual: r.obs.agents,
    busy: r.obs.busyAgents,
    queue: { waiting: r.obs.waiting, active: r.obs.active, delayed: r.obs.delayed },
    lastDecision: { ...r.lastDecision },
    lastCheck: { ...r.lastCheck },
  };
}
