/**
 * Keyed concurrency limits across runs, in Redis: per (project, key) a set of holders (`<run>` for a workflow-level
 * limit, `<run>/<step>` for a step-level one) and a sorted set of those waiting, scored by arrival. Taking a slot
 * and giving one back (which hands it to the longest waiting) are one Lua script each, so two coordinators never
 * give out more than `limit` slots or skip a waiter. Written by hand: the semaphore libraries for Redis (e.g.
 * redis-semaphore) lease slots with a TTL to a live process and poll; here a slot belongs to a run for as long as
 * it lasts (hours, across coordinator restarts), and waiters are told by a command when it is theirs.
 */
import type { Redis } from 'ioredis';
import type { MuseNames } from '@muse/contracts';

// KEYS[1] holders, KEYS[2] waiters; ARGV holder, limit, score. -> 1 when the holder has a slot, 0 when it waits.
const ACQUIRE_LUA = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
local limit = tonumber(ARGV[2])
if redis.call('SCARD', KEYS[1]) < limit then
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)
  if head[1] == nil or head[1] == ARGV[1] then
    redis.call('SADD', KEYS[1], ARGV[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    return 1
  end
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 0
`;

// KEYS[1] holders, KEYS[2] waiters; ARGV holder, limit. -> the holders that got a slot now, oldest first.
const RELEASE_LUA = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local limit = tonumber(ARGV[2])
local granted = {}
while redis.call('SCARD', KEYS[1]) < limit do
  local head = redis.call('ZPOPMIN', KEYS[2])
  if head[1] == nil then break end
  redis.call('SADD', KEYS[1], head[1])
  table.insert(granted, head[1])
end
return granted
`;

/** Who holds a slot: a run (workflow-level limit) or one of its steps. */
export interface GateHolder {
  runId: string;
  stepId?: string;
}

export function holderId(h: GateHolder): string {
  return h.stepId === undefined ? h.runId : `${h.runId}/${h.stepId}`;
}

export function parseHolder(id: string): GateHolder {
  const slash = id.indexOf('/');
  return slash < 0 ? { runId: id } : { runId: id.slice(0, slash), stepId: id.slice(slash + 1) };
}

export class ConcurrencyGates {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
  ) {}

  /** Takes a slot of `key`, or joins its queue (first come, first served; `arrivedMs` orders the queue). */
  async acquire(project: string, key: string, limit: number, holder: GateHolder, arrivedMs: number): Promise<boolean> {
    const res = await this.redis.eval(ACQUIRE_LUA, 2, this.names.concurrencyHoldersKey(project, key), this.names.concurrencyWaitersKey(project, key), holderId(holder), limit, arrivedMs);
    return Number(res) === 1;
  }

  /** Gives back a slot (or a place in the queue); @returns the holders the freed slots went to, to be told. */
  async release(project: string, key: string, limit: number, holder: GateHolder): Promise<GateHolder[]> {
    const res = (await this.redis.eval(RELEASE_LUA, 2, this.names.concurrencyHoldersKey(project, key), this.names.concurrencyWaitersKey(project, key), holderId(holder), limit)) as string[];
    return res.map(parseHolder);
  }

  /** Every current holder of `key` (to tell them again after a crash may have lost a grant). */
  async holders(project: string, key: string): Promise<GateHolder[]> {
    return (await this.redis.smembers(this.names.concurrencyHoldersKey(project, key))).map(parseHolder);
  }
}
