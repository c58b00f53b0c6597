/** Why a step that requires capabilities is still queued: no live agent has them (specialization). */
import { parseQueueRole, type AgentHeartbeat, type RunView } from '@muse/contracts';

/**
 * Sets `reason` on the view's queued steps whose queue (`<role>+<tags>`) no live agent serves: none of the role
 * declares every required capability. The step waits in its queue; an agent that has them takes it when it comes.
 */
export function explainUnservedSteps(view: RunView, heartbeats: readonly AgentHeartbeat[], nowMs: number, ttlMs: number): RunView {
  const waiting = view.steps.filter((s) => s.status === 'queued' && s.queue !== undefined);
  if (waiting.length === 0) return view;
  const live = heartbeats.filter((hb) => nowMs - Date.parse(hb.at) <= ttlMs);
  const steps = view.steps.map((s) => {
    if (s.status !== 'queued' || s.queue === undefined) return s;
    const { role, requires } = parseQueueRole(s.queue);
    const served = live.some((hb) => hb.roles.includes(role) && requires.every((t) => hb.capabilities?.includes(t)));
    return served ? s : { ...s, reason: `no live agent of role "${role}" has the capabilities ${requires.join(', ')}; the step waits for one` };
  });
  return { ...view, steps };
}
