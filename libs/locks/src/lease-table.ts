/**
 * Leases between steps (`locks:`), in Redis, per project: a hash of holders (`<run>/<step>` -> {locks, since,
 * expiresAt, token}), a sorted set of waiters in arrival order with a hash of what each waits for, and one
 * fencing-token counter. A step takes all of its leases at once or none (so two runs can never each hold what the
 * other waits for: no deadlock), after every earlier waiter it conflicts with (so nobody starves). Giving leases
 * back hands them on in order. Each is one Lua script. Written by hand: lock libraries for Redis lock one key each;
 * here a lease is a path glob that conflicts with any overlapping glob of its kind.
 *
 * Overlap, conservatively: two locks of one kind conflict when the fixed leading segments of their paths (up to the
 * first segment with a glob character) nest; two plain paths only when equal. `repo:web/src/**` and
 * `repo:web/src/app.ts` conflict; `repo:web/src/**` and `repo:web/docs/**` do not; `file:a` and `repo:a` never do.
 */
import type { Redis } from 'ioredis';
import type { LeaseList, MuseNames } from '@muse/contracts';

const OVERLAP_LUA = `
local function split(lock)
  local kind, path = string.match(lock, '^([^:]+):(.*)$')
  local segs = {}
  local exact = true
  for seg in string.gmatch(path, '[^/]+') do
    if string.find(seg, '[%*%?%[%{]') then exact = false; break end
    table.insert(segs, seg)
  end
  return kind, segs, exact
end
local function overlaps(a, b)
  local ka, sa, ea = split(a)
  local kb, sb, eb = split(b)
  if ka ~= kb then return false end
  for i = 1, math.min(#sa, #sb) do if sa[i] ~= sb[i] then return false end end
  if ea and eb then return #sa == #sb end
  if ea then return #sa >= #sb end
  if eb then return #sb >= #sa end
  return true
end
local function conflicts(as, bs)
  for _, a in ipairs(as) do for _, b in ipairs(bs) do if overlaps(a, b) then return true end end end
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Live holders' locks (expired ones are dropped).
local function holders()
  local out = {}
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local rec = cjson.decode(all[i + 1])
    if rec.expiresAt < now then redis.call('HDEL', KEYS[1], all[i]) else out[all[i]] = rec.locks end
  end
  return out
end
local function grant(holder, locks, ttl)
  local token = redis.call('INCR', KEYS[4])
  redis.call('HSET', KEYS[1], holder, cjson.encode({ locks = locks, since = now, expiresAt = now + ttl, token = token }))
  redis.call('ZREM', KEYS[2], holder)
  redis.call('HDEL', KEYS[3], holder)
  return token
end
-- Hands free leases to the waiters, in order: one goes when it conflicts with no holder and no earlier waiter still waiting.
local function handOn(ttl)
  local held = holders()
  local granted = {}
  local waiting = {}
  for _, w in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local raw = redis.call('HGET', KEYS[3], w)
    if raw then
      local locks = cjson.decode(raw)
      local blocked = false
      for _, hl in pairs(held) do if conflicts(hl, locks) then blocked = true; break end end
      if not blocked then for _, wl in ipairs(waiting) do if conflicts(wl, locks) then blocked = true; break end end end
      if blocked then table.insert(waiting, locks) else
        local token = grant(w, locks, ttl)
        held[w] = locks
        table.insert(granted, w)
        table.insert(granted, token)
      end
    else
      redis.call('ZREM', KEYS[2], w)
    end
  end
  return granted
end
`;

// KEYS holders, waiters, wait-locks, token; ARGV holder, locks JSON, arrival score, ttl ms. -> token, or 0 (waits).
const ACQUIRE_LUA = `${OVERLAP_LUA}
local mine = cjson.decode(ARGV[2])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cjson.decode(cur).token end
local blocked = false
for _, hl in pairs(holders()) do if conflicts(hl, mine) then blocked = true; break end end
if not blocked then
  local myScore = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or ARGV[3])
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. myScore)) do
    local raw = redis.call('HGET', KEYS[3], w)
    if w ~= ARGV[1] and raw and conflicts(cjson.decode(raw), mine) then blocked = true; break end
  end
end
if blocked then
  redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  return 0
end
return grant(ARGV[1], mine, tonumber(ARGV[4]))
`;

// KEYS as above; ARGV holder, ttl ms. -> flat list of [holder, token] granted now.
const RELEASE_LUA = `${OVERLAP_LUA}
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return handOn(tonumber(ARGV[2]))
`;

// KEYS holders; ARGV holder, ttl ms. -> 1 when renewed, 0 when the holder has no leases.
const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local rec = cjson.decode(cur)
rec.expiresAt = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 1
`;

export interface LeaseHolder {
  runId: string;
  stepId: string;
}

const holderId = (h: LeaseHolder): string => `${h.runId}/${h.stepId}`;
function parseHolder(id: string): LeaseHolder {
  const i = id.indexOf('/');
  return { runId: id.slice(0, i), stepId: id.slice(i + 1) };
}

export class LeaseTable {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
    private readonly ttlMs: number,
  ) {}

  private keys(project: string): string[] {
    return [this.names.leaseHoldersKey(project), this.names.leaseWaitersKey(project), this.names.leaseWaitLocksKey(project), this.names.leaseTokenKey];
  }

  /** Takes every lease or none; @returns the fencing token, or undefined when the step waits (in order). */
  async acquire(project: string, holder: LeaseHolder, locks: string[], arrivedMs: number): Promise<number | undefined> {
    const res = Number(await this.redis.eval(ACQUIRE_LUA, 4, ...this.keys(project), holderId(holder), JSON.stringify(locks), arrivedMs, this.ttlMs));
    return res > 0 ? res : undefined;
  }

  /** Gives a step's leases back (or its place in the queue); @returns the steps that got theirs now, with their tokens. */
  async release(project: string, holder: LeaseHolder): Promise<Array<LeaseHolder & { token: number }>> {
    const flat = (await this.redis.eval(RELEASE_LUA, 4, ...this.keys(project), holderId(holder), this.ttlMs)) as Array<string | number>;
    const out: Array<LeaseHolder & { token: number }> = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ ...parseHolder(String(flat[i])), token: Number(flat[i + 1]) });
    return out;
  }

  /** Extends the leases of a step that is still going (its job is alive). */
  async renew(project: string, holder: LeaseHolder): Promise<boolean> {
    return Number(await this.redis.eval(RENEW_LUA, 1, this.names.leaseHoldersKey(project), holderId(holder), this.ttlMs)) === 1;
  }

  /** Who holds what, and who waits for what, in order (`GET /v1/leases`). */
  static async list(redis: Redis, names: MuseNames, project: string): Promise<LeaseList> {
    const [held, waiters, waitLocks] = await Promise.all([redis.hgetall(names.leaseHoldersKey(project)), redis.zrange(names.leaseWaitersKey(project), '0', '-1', 'WITHSCORES'), redis.hgetall(names.leaseWaitLocksKey(project))]);
    const now = Date.now();
    const holders = Object.entries(held)
      .map(([id, raw]) => ({ id, rec: JSON.parse(raw) as { locks: string[]; since: number; expiresAt: number; token: number } }))
      .filter((h) => h.rec.expiresAt >= now)
      .map(({ id, rec }) => ({ ...parseHolder(id), locks: rec.locks, since: new Date(rec.since).toISOString(), expiresAt: new Date(rec.expiresAt).toISOString(), token: rec.token }))
      .sort((a, b) => a.since.localeCompare(b.since));
    const queue: LeaseList['waiters'] = [];
    for (let i = 0; i < waiters.length; i += 2) {
      const id = waiters[i]!;
      const locks = waitLocks[id];
      if (locks) queue.push({ ...parseHolder(id), locks: JSON.parse(locks) as string[], since: new Date(Number(waiters[i + 1])).toISOString() });
    }
    return { holders, waiters: queue };
  }
}
