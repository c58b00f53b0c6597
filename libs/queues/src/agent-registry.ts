/** The live agent registry: one Redis hash, agent id → its latest heartbeat (JSON). */
import type { Redis } from 'ioredis';
import { AgentHeartbeatSchema, type AgentHeartbeat, type MuseNames } from '@muse/contracts';

export interface AgentHeartbeats {
  heartbeats: AgentHeartbeat[];
  /** Hash fields whose value is not a heartbeat (for the caller to log; never shown). */
  invalid: string[];
}

/** Every heartbeat in the registry, parsed; stale ones included (freshness is the reader's rule). */
export async function readAgentHeartbeats(redis: Pick<Redis, 'hgetall'>, names: MuseNames): Promise<AgentHeartbeats> {
  const hash = await redis.hgetall(names.agentsKey);
  const heartbeats: AgentHeartbeat[] = [];
  const invalid: string[] = [];
  for (const [field, raw] of Object.entries(hash)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      invalid.push(field);
      continue;
    }
    const hb = AgentHeartbeatSchema.safeParse(parsed);
    if (hb.success && !Number.isNaN(Date.parse(hb.data.at))) heartbeats.push(hb.data);
    else invalid.push(field);
  }
  return { heartbeats, invalid };
}
