/** Agent workers as `GET /v1/agents` shows them, from the heartbeats they leave in Redis. */
import { toAgentView, type AgentHeartbeat, type AgentViewSchema } from '@muse/contracts';
import type { z } from 'zod';

export type AgentView = z.infer<typeof AgentViewSchema>;

/**
 * Heartbeats younger than `ttlMs` as views, sorted by agent id. A heartbeat
 * from the future (clock skew between hosts) counts as fresh.
 */
export function toAgentViews(heartbeats: AgentHeartbeat[], nowMs: number, ttlMs: number): AgentView[] {
  return heartbeats
    .filter((hb) => nowMs - Date.parse(hb.at) <= ttlMs)
    .map(toAgentView)
    .sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
}
