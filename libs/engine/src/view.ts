import { compensationId, type RunView, type StepView } from '@muse/contracts';
import type { Gate, RunState } from './state.js';

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
    if (st.status === 'waiting') v.reason = st.gate && !st.gate.admitted ? concurrencyReason(st.gate) : 'waiting for an approval decision';
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
        : `waiting on ${steps.filter((v) => v.status === 'waiting').map((v) => `step "${v.id}" (${v.reason})`).join(', ')}`;
  }
  if (s.output !== undefined) view.output = s.output;
  if (s.error !== undefined) view.error = s.error;
  return view;
}

/** How a view's `reason` starts when a keyed concurrency limit holds the run or step back. */
export const CONCURRENCY_REASON_PREFIX = 'waiting for a concurrency slot';

function concurrencyReason(g: Gate): string {
  return `${CONCURRENCY_REASON_PREFIX}: key "${g.key}" allows ${g.limit} at once`;
}
