import { z } from 'zod';
import type { AgentViewSchema } from './api.schema.js';

export const AgentHeartbeatSchema = z.object({
  agentId: z.string(),
  roles: z.array(z.string()),
  pid: z.number().int(),
  host: z.string(),
  /** Jobs taken at once per role (MUSE_AGENT_CONCURRENCY); total slots = concurrency × roles.length. */
  concurrency: z.number().int(),
  inFlight: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  /** Mean time of the agent's finished step attempts since it started, in ms; absent before the first (and from remote agents). */
  avgStepMs: z.number().min(0).optional(),
  /** CPU the process used since its previous heartbeat, as a share of one core (1.5 = one and a half cores); absent from older workers. */
  cpu: z.number().min(0).optional(),
  /** Resident memory as a share of what the process may use (its cgroup limit, else the host's memory), 0..1; absent from older workers. */
  memory: z.number().min(0).max(1).optional(),
  startedAt: z.string(),
  at: z.string(),
  version: z.string(),
  /** A remote agent (WebSocket `/v1/agents/connect`): the gateway beats for it while it is connected. */
  remote: z.boolean().optional(),
  /** What a remote agent declared it can do (free-form labels). */
  capabilities: z.array(z.string()).optional(),
});
export type AgentHeartbeat = z.infer<typeof AgentHeartbeatSchema>;

/**
 * Share of an agent's job slots in use, 0..1 (3 decimals). `concurrency` is
 * per role (one BullMQ worker per role), so an agent serving four roles has
 * four times that many slots. The gateway and the dashboard both show this.
 */
export function agentLoad(hb: Pick<AgentHeartbeat, 'inFlight' | 'concurrency' | 'roles'>): number {
  const slots = hb.concurrency * Math.max(1, hb.roles.length);
  if (slots <= 0) return 0;
  return Math.round((hb.inFlight / slots) * 1000) / 1000;
}

/** How `GET /v1/agents` and the dashboard show an agent. */
export function toAgentView(hb: AgentHeartbeat): z.infer<typeof AgentViewSchema> {
  return {
    agentId: hb.agentId,
    roles: [...hb.roles],
    pid: hb.pid,
    host: hb.host,
    concurrency: hb.concurrency,
    inFlight: hb.inFlight,
    load: agentLoad(hb),
    completed: hb.completed,
    failed: hb.failed,
    ...(hb.completed + hb.failed > 0 ? { successRate: Math.round((hb.completed / (hb.completed + hb.failed)) * 1000) / 1000 } : {}),
    ...(hb.avgStepMs !== undefined ? { avgStepMs: hb.avgStepMs } : {}),
    startedAt: hb.startedAt,
    lastSeenAt: hb.at,
    version: hb.version,
    ...(hb.remote ? { remote: true } : {}),
    ...(hb.capabilities ? { capabilities: [...hb.capabilities] } : {}),
  };
}
