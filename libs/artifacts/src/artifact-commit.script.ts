/**
 * The fenced, idempotent commit of a step's artifacts, as one Lua script so
 * that the fencing check, the If-Match checks, the GC check and every write
 * happen atomically: no stale writer can slip a write in between another's
 * check and its writes, and GC cannot delete a blob between "it is there"
 * and "an artifact references it".
 *
 * KEYS[1]  fence key of the run (the highest fencing token seen)
 * KEYS[2]  ZSET of the run's artifact ids, scored by creation time
 * KEYS[3]  HASH digest -> reference count (GC frees blobs at 0)
 * KEYS[4]  ZSET of digests GC is deleting, scored by when it started (ms)
 * KEYS[5]  ZSET of artifact ids scored by expiry time (ms), for retention
 * then, per artifact i (0-based), KEYS[6+3i..8+3i]:
 *          version counter of (run, name), commit key of (run, step, attempt, name), metadata key of the new id
 * then     ZSET of digests uploaded lately (pending marks), scored by upload time (ms),
 *          HASH digest -> bytes of the blobs kept in Redis, ZSET of those digests scored by when they were stored (ms)
 *          (the artifact store's redis-blob-tier.ts)
 * ARGV[1]  fencing token of the request
 * ARGV[2]  creation time, epoch ms (the ZSET score)
 * ARGV[3]  expiry time, epoch ms (0 = kept forever)
 * ARGV[4]  how long a GC claim holds, ms (an older one is from a GC that died)
 * ARGV[5]  the prefix of the metadata keys (the metadata of artifact id X is at ARGV[5] .. X: a key the script
 *          learns from a commit key, so not one of KEYS; Muse runs on one Redis, not a Redis Cluster)
 * then, per artifact i, ARGV[6+5i..10+5i]:
 *          new artifact id, metadata JSON up to the version, the rest of the JSON after it, digest, If-Match version (-1 = none)
 * then, per small blob j that came inside the request (its digest already checked by the caller), a digest and the
 *          bytes: written to the Redis blob tier in the same script, marked pending as an upload would be (one round
 *          trip for the whole commit instead of a mark, a write and a commit one after another)
 *
 * Returns `{0, highestToken}` when the token is stale, `{2, i, latest}`
 * when the If-Match of artifact i (0-based) does not hold, `{3, digest}` when GC is deleting a blob,
 * `{4, digest}` when GC is deleting a blob that came inside the request (nothing was written: the caller waits for
 * GC's claim to end, as an upload does, and commits again),
 * else `{1, stored, created_1, meta_1, created_2, meta_2, ...}` where `stored` has a `1` for each blob of the
 * request that was new to Redis and a `0` for one already there, and `created_i` is 1
 * for a new artifact and 0 when the same (run, step, attempt, name) was
 * committed before, in which case `meta_i` is that first artifact's metadata
 * (a replay is answered as before, without re-checking If-Match).
 *
 * The drawing variant (`evalArtifactCommitDrawing`) is the same commit under a fencing token it draws itself, for a
 * coordinator whose first try at a run's lock goes out in the same write: KEYS end with the run lock's key and the
 * run's fencing counter, ARGV[1] is the value a won try wrote into the lock (its holder) instead of a token. Unless
 * the lock holds that value it returns `{-1}` and touches nothing (the try lost, no token is drawn); else it bumps the
 * counter and returns the token drawn followed by the reply above.
 *
 * A commit key holds the id of the artifact it made, and its metadata is read
 * from the artifact's own key: one copy of the metadata, not two. A commit key
 * holding the metadata itself (as every one did before) is still read as such.
 * One whose artifact is gone (not by retention, which removes both) is taken
 * as never committed.
 *
 * The metadata JSON is built in TypeScript and split around the version,
 * which only the script knows; that avoids cjson (its number formatting and
 * its escaping of `/`).
 */
import type { Redis } from 'ioredis';
import { evalCached } from '@muse/queues/redis';

/**
 * Lua: `putRedisBlob(blobsKey, timesKey, digest, bytes, now)` stores a blob in the tier unless it is there, with its
 * time for GC; returns 1 when it was new. Shared with the Redis blob tier of the artifact store (apps/artifact-store/src/redis-blob-tier.ts).
 */
export const PUT_REDIS_BLOB_FN = `
local function putRedisBlob(blobsKey, timesKey, digest, bytes, now)
  if redis.call('HSETNX', blobsKey, digest, bytes) == 0 then return 0 end
  redis.call('ZADD', timesKey, now, digest)
  return 1
end
`;

/** The commit under `token`, its KEYS the first `keyCount`: shared by the plain and the drawing scripts. */
const COMMIT_FN = `${PUT_REDIS_BLOB_FN}
local function committedMeta(commitKey)
  local v = redis.call('GET', commitKey)
  if not v or string.sub(v, 1, 1) == '{' then return v end
  return redis.call('GET', ARGV[5] .. v)
end
local function commit(token, keyCount)
local highest = tonumber(redis.call('GET', KEYS[1]) or '0')
if token < highest then
  return {0, highest}
end
local now = tonumber(ARGV[2])
local n = (keyCount - 8) / 3
local pendingKey, blobsKey, timesKey = KEYS[6 + 3 * n], KEYS[7 + 3 * n], KEYS[8 + 3 * n]
local first = 6 + 5 * n
for j = first, #ARGV, 2 do
  local claimed = redis.call('ZSCORE', KEYS[4], ARGV[j])
  if claimed and now - tonumber(claimed) < tonumber(ARGV[4]) then
    return {4, ARGV[j]}
  end
end
local stored = ''
for j = first, #ARGV, 2 do
  redis.call('ZADD', pendingKey, now, ARGV[j])
  stored = stored .. putRedisBlob(blobsKey, timesKey, ARGV[j], ARGV[j + 1], now)
end
for i = 0, n - 1 do
  local versionKey, commitKey = KEYS[6 + 3 * i], KEYS[7 + 3 * i]
  local digest, ifMatch = ARGV[9 + 5 * i], tonumber(ARGV[10 + 5 * i])
  if not committedMeta(commitKey) then
    local claimed = redis.call('ZSCORE', KEYS[4], digest)
    if claimed and now - tonumber(claimed) < tonumber(ARGV[4]) then
      return {3, digest}
    end
    -- Live means referenced or marked pending by an upload; GC removes the
    -- pending mark when it claims a blob, so a blob it may have deleted is
    -- never live, whatever the caller saw a moment ago.
    if tonumber(redis.call('HGET', KEYS[3], digest) or '0') <= 0 and not redis.call('ZSCORE', pendingKey, digest) then
      return {3, digest}
    end
    if ifMatch >= 0 then
      local latest = tonumber(redis.call('GET', versionKey) or '0')
      if latest ~= ifMatch then
        return {2, i, latest}
      end
    end
  end
end
if token > highest then
  redis.call('SET', KEYS[1], token)
end
local out = {1, stored}
for i = 0, n - 1 do
  local versionKey, commitKey, metaKey = KEYS[6 + 3 * i], KEYS[7 + 3 * i], KEYS[8 + 3 * i]
  local id, head, tail, digest = ARGV[6 + 5 * i], ARGV[7 + 5 * i], ARGV[8 + 5 * i], ARGV[9 + 5 * i]
  local existing = committedMeta(commitKey)
  if existing then
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    local version = redis.call('INCR', versionKey)
    local meta = head .. version .. tail
    redis.call('SET', metaKey, meta)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('SET', commitKey, id)
    redis.call('HINCRBY', KEYS[3], digest, 1)
    if tonumber(ARGV[3]) > 0 then
      redis.call('ZADD', KEYS[5], ARGV[3], id)
    end
    out[#out + 1] = 1
    out[#out + 1] = meta
  end
end
return out
end
`;

export const ARTIFACT_COMMIT_LUA = `${COMMIT_FN}
return commit(tonumber(ARGV[1]), #KEYS)
`;

/** The commit under a token drawn by the script itself, once it has seen that the run's lock is the caller's. */
export const ARTIFACT_COMMIT_DRAWING_LUA = `${COMMIT_FN}
if redis.call('GET', KEYS[#KEYS - 1]) ~= ARGV[1] then return {-1} end
local token = redis.call('INCR', KEYS[#KEYS])
local out = commit(token, #KEYS - 2)
table.insert(out, 1, token)
return out
`;

export function evalArtifactCommit(redis: Redis, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
  return evalCached(redis, ARTIFACT_COMMIT_LUA, keys, args);
}

/** `keys` end with the run lock's key and the fencing counter's; `args[0]` is the lock's holder. */
export function evalArtifactCommitDrawing(redis: Redis, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
  return evalCached(redis, ARTIFACT_COMMIT_DRAWING_LUA, keys, args);
}
