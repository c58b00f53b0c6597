/** Agent workers as `GET /v1/agents` shows them, from the heartbeats they leave in Redis. */
import type { z } from 'zod';
import { AgentHeartbeatSchema, agentLoad, type AgentViewSchema } from '@muse/contracts';

export type AgentView = z.infer<typeof AgentViewSchema>;

export interface AgentViewResult {
  items: AgentView[];
  /** Fields whose value is not a heartbeat (logged by the caller, never shown). */
  invalid: string[];
}


/**
 * Heartbeats younger than `ttlMs` as views, sorted by agent id. A heartbeat
 * from the future (clock skew between hosts) counts as fresh.
 */
export function toAgentViews(hash: Record<string, string>, nowMs: number, ttlMs: number): AgentViewResult {
  const items: AgentView[] = [];
  const invalid: string[] = [];
  for (const [field, raw] of Object.entries(hash)) {
    let hb;
    try {
      hb = AgentHeartbeatSchema.parse(JSON.parse(raw));
    } catch {
      invalid.push(field);
      continue;
    }
    const at = Date.parse(hb.at);
    if (Number.isNaN(at)) {
      invalid.push(field);
      continue;
    }
    if (nowMs - at > ttlMs) continue;
    items.push({
      agentId: hb.agentId,
      roles: hb.roles,
      pid: hb.pid,
      host: hb.host,
      concurrency: hb.concurrency,
      inFlight: hb.inFlight,
      load: agentLoad(hb),
      completed: hb.completed,
      failed: hb.failed,
      startedAt: hb.startedAt,
      lastSeenAt: hb.at,
      version: hb.version,
    });
  }
  items.sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  return { items, invalid };
}
