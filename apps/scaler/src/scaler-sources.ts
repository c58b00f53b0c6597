/**
 * What the scaler reads each interval, behind the narrow interface its
 * service needs (the spec feeds it by hand). Payloads are parsed here.
 */
import type { Redis } from 'ioredis';
import { AgentHeartbeatSchema, type AgentHeartbeat, type MuseNames } from '@muse/contracts';
import type { StepQueues } from '@muse/queues';

export const SCALER_SOURCES = Symbol('scaler.sources');

export interface ScalerSources {
  /** The latest heartbeat of every agent that wrote one (the Redis hash, refreshed by workers every 2 s); bad entries are dropped. */
  readHeartbeats(): Promise<AgentHeartbeat[]>;
  queueDepth(role: string): Promise<{ waiting: number; active: number; delayed: number }>;
}

export function createScalerSources(deps: { redis: Redis; queues: StepQueues; names: MuseNames }): ScalerSources {
  const { redis, queues, names } = deps;
  return {
    readHeartbeats: async () => {
      const all = await redis.hgetall(names.agentsKey);
      const out: AgentHeartbeat[] = [];
      for (const raw of Object.values(all)) {
        const hb = AgentHeartbeatSchema.safeParse(parseJson(raw));
        if (hb.success) out.push(hb.data);
      }
      return out;
    },
    queueDepth: (role) => queues.depth(role),
  };
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
