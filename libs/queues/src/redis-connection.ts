import { Redis, type RedisOptions } from 'ioredis';

/**
 * An ioredis client for BullMQ and friends. BullMQ needs
 * `maxRetriesPerRequest: null` on connections that block (workers).
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...opts });
}
