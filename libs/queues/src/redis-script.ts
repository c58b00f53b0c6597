import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

const SHAS = new Map<string, string>();

/**
 * Runs a Lua script by SHA (EVALSHA), loading it on the first NOSCRIPT (a fresh or flushed Redis). Unlike
 * ioredis's `defineCommand`, it works on a connection with auto-pipelining whatever was queued before its first
 * use (a command defined after a pipeline was opened is missing from that pipeline).
 */
export async function evalCached(redis: Redis, script: string, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
  let sha = SHAS.get(script);
  if (!sha) SHAS.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}
