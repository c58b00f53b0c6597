/**
 * The fenced, idempotent commit of a step's artifacts, as one Lua script so
 * that the fencing check and every write happen atomically: no stale writer
 * can slip a write in between another's check and its writes.
 *
 * KEYS[1]  fence key of the run (the highest fencing token seen)
 * KEYS[2]  ZSET of the run's artifact ids, scored by creation time
 * then, per artifact i (0-based), KEYS[3+3i..5+3i]:
 *          version counter of (run, name), commit key of (run, step, attempt, name), metadata key of the new id
 * ARGV[1]  fencing token of the request
 * ARGV[2]  creation time, epoch ms (the ZSET score)
 * then, per artifact i, ARGV[3+3i..5+3i]:
 *          new artifact id, metadata JSON up to the version, the rest of the JSON after it
 *
 * Returns `{0, highestToken}` when the token is stale, else
 * `{1, created_1, meta_1, created_2, meta_2, ...}` where `created_i` is 1 for
 * a new artifact and 0 when the same (run, step, attempt, name) was committed
 * before, in which case `meta_i` is that first artifact's metadata.
 *
 * The metadata JSON is built in TypeScript and split around the version,
 * which only the script knows; that avoids cjson (its number formatting and
 * its escaping of `/`).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const ARTIFACT_COMMIT_LUA = `
local token = tonumber(ARGV[1])
local highest = tonumber(redis.call('GET', KEYS[1]) or '0')
if token < highest then
  return {0, highest}
end
if token > highest then
  redis.call('SET', KEYS[1], ARGV[1])
end
local out = {1}
local n = (#KEYS - 2) / 3
for i = 0, n - 1 do
  local versionKey, commitKey, metaKey = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local id, head, tail = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local existing = redis.call('GET', commitKey)
  if existing then
    out[#out + 1] = 0
    out[#out + 1] = existing
  else
    local version = redis.call('INCR', versionKey)
    local meta = head .. version .. tail
    redis.call('SET', metaKey, meta)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    redis.call('SET', commitKey, meta)
    out[#out + 1] = 1
    out[#out + 1] = meta
  end
end
return out
`;

const SHA = createHash('sha1').update(ARTIFACT_COMMIT_LUA).digest('hex');

/** Runs the script by SHA, loading it on the first NOSCRIPT (a fresh or flushed Redis). */
export async function evalArtifactCommit(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
  try {
    return await redis.evalsha(SHA, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(ARTIFACT_COMMIT_LUA, keys.length, ...keys, ...args);
  }
}
