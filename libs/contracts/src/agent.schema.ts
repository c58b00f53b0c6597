import { z } from 'zod';

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
  startedAt: z.string(),
  at: z.string(),
  version: z.string(),
});
export type AgentHeartbeat = z.infer<typeof AgentHeartbeatSchema>;
