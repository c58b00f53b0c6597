import { Pipeline, Redis, type RedisOptions } from 'ioredis';

/**
 * An ioredis client for BullMQ and friends. BullMQ needs
 * `maxRetriesPerRequest: null` on connections that block (workers). An auto-pipelined one makes its pipelines with
 * `leanPipelines`.
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...opts });
  if (opts.enableAutoPipelining) leanPipelines(redis);
  return redis;
}

type Methods = Record<string, unknown>;

/**
 * Makes `redis`'s pipelines find the scripts and commands defined on it on a prototype of their own instead of
 * copying them. ioredis's Pipeline copies every one onto each pipeline it makes (two properties a script), and an
 * auto-pipelined connection makes one for each turn of the event loop that sends commands while none is in flight
 * (ioredis keeps one in flight a connection; commands sent meanwhile wait for it to be answered): with BullMQ's 64
 * scripts, 26 µs a pipeline against 2 µs this way, and 159 against 101 µs for a round trip of two auto-pipelined
 * commands (in one process on the local Redis). A script defined later goes onto the prototype as it is defined, so
 * a pipeline already open has it too. `multi()` transactions still make ioredis's own.
 */
export function leanPipelines(redis: Redis): void {
  // What Pipeline's constructor reads from its connection, less the definitions it would copy.
  const bare = Object.create(redis, { scriptsSet: { value: {} }, addedBuiltinSet: { value: new Set() } }) as Redis;
  class LeanPipeline extends Pipeline {
    constructor() {
      super(bare);
      this.redis = redis;
    }
  }
  const shared = LeanPipeline.prototype as unknown as Methods;
  const own = redis as unknown as Methods;
  const share = (name: string) => {
    shared[name] = own[name];
    shared[`${name}Buffer`] = own[`${name}Buffer`];
  };
  Object.keys(redis.scriptsSet).forEach(share);
  redis.addedBuiltinSet.forEach(share);
  const defineCommand = redis.defineCommand.bind(redis);
  redis.defineCommand = (name, definition) => {
    defineCommand(name, definition);
    share(name);
  };
  const addBuiltinCommand = redis.addBuiltinCommand.bind(redis);
  redis.addBuiltinCommand = (name) => {
    addBuiltinCommand(name);
    share(name);
  };
  redis.pipeline = (commands?: unknown[][]) => {
    const pipeline = new LeanPipeline();
    if (Array.isArray(commands)) pipeline.addBatch(commands);
    return pipeline as unknown as ReturnType<Redis['pipeline']>;
  };
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
   * Scripts run with `evalCached` or `defineCommand` (`leanPipelines` puts
   * a command defined later on the auto-pipeline already open too; one of
   * ioredis's own would lack it, and its reply handling would then throw).
   * BullMQ gets a duplicate without auto-pipelining.
   * @default 'blocking'
   */
  mode?: 'blocking' | 'request';
  /**
   * Send the commands issued in the same tick as one write (ioredis
   * auto-pipelining), whatever the mode: on a busy service every separate
   * write wakes Redis and costs a context switch. BullMQ may share such a
   * connection: it defines its scripts when one of its objects first
   * connects. An auto-pipeline finds the connection's scripts on a shared
   * prototype (`leanPipelines`: 2 µs a pipeline with BullMQ's 64 scripts,
   * where ioredis's own copy took 26). Every command waits for the
   * pipeline's turn of the event loop, and for the pipeline in flight, if
   * any, to be answered: ioredis keeps one in flight a connection, so a busy
   * connection sends fewer, larger pipelines (the coordinator's made 481 for
   * 5,000 DAG steps). The coordinator's state connection (with its step
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
