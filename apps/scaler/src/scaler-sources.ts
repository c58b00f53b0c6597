/**
 * What the scaler reads and writes each interval, behind the narrow
 * interface its service needs (the spec feeds it by hand). Payloads are
 * parsed here.
 */
import type { Redis } from 'ioredis';
import { PoolListSchema, type AgentHeartbeat, type MuseNames, type PoolList, type ScalerDecisionEvent } from '@muse/contracts';
import { readAgentHeartbeats, type StepQueues } from '@muse/queues';

export const SCALER_SOURCES = Symbol('scaler.sources');

export interface ScalerSources {
  /** The latest heartbeat of every agent that wrote one (the Redis hash, refreshed by workers every 2 s); bad entries are dropped. */
  readHeartbeats(): Promise<AgentHeartbeat[]>;
  queueDepth(role: string): Promise<{ waiting: number; active: number; delayed: number }>;
  /** Stores the leader's pool list for `/v1/pools` (gateway and every replica). */
  writeBoard(list: PoolList): Promise<void>;
  readBoard(): Promise<PoolList | null>;
  /** Stores one `scaler.decision` on JetStream. */
  publishDecision(ev: ScalerDecisionEvent): Promise<void>;
}

/** The board outlives its writer by this long, in ms: a list no leader refreshed for an hour is gone, not stale forever. */
const BOARD_TTL_MS = 3_600_000;

export function createScalerSources(deps: {
  redis: Redis;
  queues: StepQueues;
  names: MuseNames;
  publishDecision: (ev: ScalerDecisionEvent) => Promise<unknown>;
}): ScalerSources {
  const { redis, queues, names } = deps;
  return {
    readHeartbeats: async () => (await readAgentHeartbeats(redis, names)).heartbeats,
    queueDepth: (role) => queues.roleDepth(role),
    writeBoard: async (list) => void (await redis.set(names.scalerPoolsKey, JSON.stringify(list), 'PX', BOARD_TTL_MS)),
    readBoard: async () => readPoolBoard(redis, names),
    publishDecision: async (ev) => void (await deps.publishDecision(ev)),
  };
}

/** The pool list the leader scaler last wrote, or null (no scaler yet, or unreadable). */
export async function readPoolBoard(redis: Pick<Redis, 'get'>, names: Pick<MuseNames, 'scalerPoolsKey'>): Promise<PoolList | null> {
  const raw = await redis.get(names.scalerPoolsKey);
  if (!raw) return null;
  try {
    return PoolListSchema.parse(JSON.parse(raw));
  } catch {
    return null;
  }
}
