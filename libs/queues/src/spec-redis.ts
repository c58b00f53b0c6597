/**
 * For specs against the real Redis: a connection and the names of a namespace of their own (`t-<random>`),
 * whose keys are removed, and the connection closed, after the spec file's tests.
 */
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { museNames, type MuseNames } from '@muse/contracts';

export function specRedis(): { redis: Redis; names: MuseNames } {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const ns = `t-${randomBytes(4).toString('hex')}`;
  after(async () => {
    const keys = await redis.keys(`${ns}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  return { redis, names: museNames(ns) };
}
