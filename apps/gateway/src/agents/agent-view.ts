/** Agent workers as `GET /v1/agents` shows them, from the heartbeats they leave in Redis. */
import type { z } from 'zod';
import { AgentHeartbeatSchema, type AgentHeartbeat, type AgentViewSchema } from '@muse/contracts';

export type AgentView = z.infer<typeof AgentViewSchema>;

export interface AgentViewResult {
  items: AgentView[];
  /** Fields whose value is not a heartbeat (logged by the caller, never shown). */
  invalid: string[];
}

/**
 * Share of the agent's job slots in use, 0..1. `concurrency` is per role
 * (one BullMQ worker per role, see AgentHeartbeatSchema), so an agent serving
 * four roles has four times as many slots. The same formula as the
 * observability dashboard's, so both show the same number.
 */
export function agentLoad(hb: Pick<AgentHeartbeat, 'inFlight' | 'concurrency' | 'roles'>): number {
  const slots = hb.concurrency * Math.max(1, hb.roles.length);
  if (slots <= 0) return 0;
  return Math.round((hb.inFlight / slots) * 1000) / 1000;
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
