import { compensationId, type RunView, type StepView } from '@muse/contracts';
import type { RunState } from './state.js';

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
  if (s.output !== undefined) view.output = s.output;
  if (s.error !== undefined) view.error = s.error;
  return view;
}
