/**
 * `@muse/queues/redis`: the Redis connection helpers alone. A service that needs
 * only a Redis client (the artifact store) imports this instead of the package's
 * root, which also loads BullMQ (about 170 modules and 10 MB of heap).
 */
export { createRedis, openRedis } from './redis-connection.js';
export type { ConnectionHost, OpenRedisOptions } from './redis-connection.js';
export { evalCached } from './redis-script.js';
