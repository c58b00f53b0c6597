import { compensationId, queueRole, type RunView, type StepView } from '@muse/contracts';
import type { Gate, RunState } from './state.js';
import { budgetOf } from './transition.js';

/** The REST view of a run (what `GET /v1/runs/{id}` answers). */
export function toRunView(s: RunState): RunView {
  // Definition order, then compensations (`<id>~undo`) in the order they run.
  const ids = [...s.definition.steps.map((d) => d.id), ...(s.compensation?.order ?? []).map(compensationId)];
  const steps: StepView[] = ids.map((id) => {
    const st = s.steps[id]!;
    const v: StepView = { id: st.id, status: st.status, attempts: st.attempts };
    if (st.agentId !== undefined) v.agent = st.agentId;
    if (st.output !== undefined) v.output = st.output;
    if (st.error !== undefined) v.error = st.error;
    if (st.startedAt !== undefined) v.startedAt = st.startedAt;
    if (st.finishedAt !== undefined) v.finishedAt = st.finishedAt;
    if (st.childRunId !== undefined) v.childRunId = st.childRunId;
    const requires = s.definition.steps.find((d) => d.id === id)?.requires;
    if (requires?.length) v.queue = queueRole(st.role, requires);
    if (st.status === 'waiting') {
      v.reason = st.budgetWait
        ? budgetReason(st.error?.message)
        : st.gate && !st.gate.admitted
          ? concurrencyReason(st.gate)
          : st.lease && !st.lease.granted
            ? `${LEASE_REASON_PREFIX} ${st.lease.locks.join(', ')} (GET /v1/leases shows who holds them)`
            : 'waiting for an approval decision';
    }
    // A fan-out whose elements wait on the budget waits too, though the step itself is still running.
    const waitingItems = st.itemCounts?.waiting ?? 0;
    if (waitingItems > 0) v.reason = `${waitingItems} element(s) ${budgetReason(st.items!.find((i) => i.budgetWait)?.error?.message)}`;
    return v;
  });
  const view: RunView = {
    id: s.runId,
    project: s.project,
    workflow: s.workflow,
    status: s.status,
    input: s.input,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    seq: s.seq,
    steps,
  };
  if (s.parent !== undefined) view.parent = { runId: s.parent.runId, stepId: s.parent.stepId };
  if (s.status === 'waiting') {
    view.reason = s.paused
      ? 'paused'
      : s.gate && !s.gate.admitted
        ? concurrencyReason(s.gate)
        : `waiting on ${steps.filter((v) => v.status === 'waiting' || (v.status === 'running' && v.reason !== undefined)).map((v) => `step "${v.id}" (${v.reason})`).join(', ')}`;
  }
  if (s.spend !== undefined || s.definition.budget !== undefined) {
    const limit = budgetOf(s);
    view.spend = {
      ...(s.spend ?? { tokens: 0, cost: 0, byStep: {}, byAgent: {}, byProvider: {} }),
      ...(limit && (limit.maxTokens !== undefined || limit.maxCost !== undefined)
        ? { limit: { ...(limit.maxTokens !== undefined ? { maxTokens: limit.maxTokens } : {}), ...(limit.maxCost !== undefined ? { maxCost: limit.maxCost } : {}) } }
        : {}),
    };
  }
  if (s.replayOf !== undefined) view.replay = { of: s.replayOf.runId, ...(s.divergence !== undefined ? { divergence: s.divergence } : {}) };
  if (s.output !== undefined) view.output = s.output;
  if (s.error !== undefined) view.error = s.error;
  return view;
}

/** How a view's `reason` starts when a step waits for the run's budget to be raised. */
export const BUDGET_REASON_PREFIX = 'waiting for budget';

function budgetReason(message: string | undefined): string {
  return `${BUDGET_REASON_PREFIX} (POST /v1/runs/{id}/budget)${message ? `: ${message}` : ''}`;
}

/** How a step's `reason` starts when it waits for its leases. */
export const LEASE_REASON_PREFIX = 'waiting for leases on';

/** How a view's `reason` starts when a keyed concurrency limit holds the run or step back. */
export const CONCURRENCY_REASON_PREFIX = 'waiting for a concurrency slot';

function concurrencyReason(g: Gate): string {
  return `${CONCURRENCY_REASON_PREFIX}: key "${g.key}" allows ${g.limit} at once`;
}
