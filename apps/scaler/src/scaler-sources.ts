/**
 * What the scaler reads each interval, behind the narrow interface its
 * service needs (the spec feeds it by hand). Payloads are parsed here.
 */
import type { Redis } from 'ioredis';
import type { AgentHeartbeat, MuseNames } from '@muse/contracts';
import { readAgentHeartbeats, type StepQueues } from '@muse/queues';

export const SCALER_SOURCES = Symbol('scaler.sources');

export interface ScalerSources {
  /** The latest heartbeat of every agent that wrote one (the Redis hash, refreshed by workers every 2 s); bad entries are dropped. */
  readHeartbeats(): Promise<AgentHeartbeat[]>;
  queueDepth(role: string): Promise<{ waiting: number; active: number; delayed: number }>;
}

export function createScalerSources(deps: { redis: Redis; queues: StepQueues; names: MuseNames }): ScalerSources {
  const { redis, queues, names } = deps;
  return {
    readHeartbeats: async () => (await readAgentHeartbeats(redis, names)).heartbeats,
    queueDepth: (role) => queues.depth(role),
  };
}

