import { Redis, type RedisOptions } from 'ioredis';

/**
 * An ioredis client for BullMQ and friends. BullMQ needs
 * `maxRetriesPerRequest: null` on connections that block (workers).
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...opts });
}

/** The slice of a service's kit that a connection registers itself with. */
export interface ConnectionHost {
  logger: { warn(obj: object, msg: string): void };
  readiness: { add(name: string, check: () => Promise<void>): void };
  onShutdown(fn: () => Promise<void> | void): void;
}

export interface OpenRedisOptions {
  /** Shown by `CLIENT LIST`. */
  connectionName: string;
  /**
   * `blocking` waits out a Redis outage (BullMQ workers, background loops);
   * `request` fails a command within about two seconds, so an HTTP request
   * answers 503 instead of hanging, and sends the commands that concurrent
   * requests issue in the same tick as one write (ioredis auto-pipelining).
   * On such a connection run scripts with `evalCached`, or `defineCommand`
   * only before any command is sent: ioredis's pending auto-pipeline lacks a
   * command defined after it opened, and the reply handling then throws.
   * BullMQ gets a duplicate without auto-pipelining.
   * @default 'blocking'
   */
  mode?: 'blocking' | 'request';
  /**
   * Send the commands issued in the same tick as one write (ioredis
   * auto-pipelining), whatever the mode: on a busy service every separate
   * write wakes Redis and costs a context switch. The same rules for scripts
   * as in `request` mode apply. BullMQ keeps them: it defines its scripts
   * when one of its objects first connects, then asks Redis's version (a
   * round trip) before it runs any, so none of its scripts is ever called on
   * an auto-pipeline opened before it was defined (never set BullMQ's
   * `skipVersionCheck` on such a connection). Each auto-pipeline copies the
   * scripts defined on its connection (BullMQ's 64: about 30 µs a pipeline
   * against 1.5 with none), and every command waits for the pipeline's turn
   * of the event loop. The coordinator's state connection (with its step
   * queues' adds) gains from it under load. An agent worker's BullMQ
   * connection did not: half the writes, no more steps/s, and about 1 ms
   * more a chain step (6.87 -> 7.92 ms, 12 rounds side by side).
   * @default true in `request` mode, false in `blocking` mode
   */
  autoPipelining?: boolean;
  /** The readiness check's name (a second connection of one service needs its own). @default 'redis' */
  readinessName?: string;
}

/** Logged at most this often while Redis is unreachable (ioredis keeps reconnecting), in ms. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * A Redis connection that belongs to a service: errors logged as JSON (without
 * a listener ioredis prints every failed reconnect to stderr), a `redis`
 * readiness check, and a clean close on shutdown.
 */
export function openRedis(host: ConnectionHost, url: string, opts: OpenRedisOptions): Redis {
  const redis = createRedis(url, {
    connectionName: opts.connectionName,
    ...(opts.mode === 'request' ? { maxRetriesPerRequest: 2, retryStrategy: (times: number) => Math.min(times * 100, 1_000) } : {}),
    enableAutoPipelining: opts.autoPipelining ?? opts.mode === 'request',
  });
  logConnectionErrors(redis, host, 'redis connection error (reconnecting)');
  host.readiness.add(opts.readinessName ?? 'redis', async () => {
    await redis.ping();
  });
  host.onShutdown(async () => {
    // QUIT waits for a reply, which never comes while Redis is unreachable: then just drop the socket.
    if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
    else redis.disconnect();
  });
  return redis;
}

/** Logs a connection's errors as JSON, at most once per ERROR_LOG_INTERVAL_MS while it keeps reconnecting. */
export function logConnectionErrors(redis: Redis, host: Pick<ConnectionHost, 'logger'>, message: string): void {
  let lastError = 0;
  redis.on('error', (err: Error) => {
    if (Date.now() - lastError < ERROR_LOG_INTERVAL_MS) return;
    lastError = Date.now();
    host.logger.warn({ err: err.message }, message);
  });
}
