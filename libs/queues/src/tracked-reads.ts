import type { Redis } from 'ioredis';
import { createRedis, logConnectionErrors, type ConnectionHost } from './redis-connection.js';

/** Where Redis sends a tracking connection's invalidations under RESP2. */
const INVALIDATE_CHANNEL = '__redis__:invalidate';

export interface TrackedReadsOptions {
  /** Shown by `CLIENT LIST` for the connection that receives the invalidations. */
  connectionName: string;
  /** The key prefixes whose keys may be kept; a write to any key under them drops what was kept of that key. */
  prefixes: readonly string[];
  /**
   * What was kept is read again after this long even without an invalidation: a bound on any invalidation that
   * could go missing, not the way changes normally arrive (those drop the value at once).
   * @default 30_000
   */
  maxAgeMs?: number;
}

interface Kept {
  value: unknown;
  at: number;
}

/**
 * Values read from Redis kept in process memory and dropped as soon as Redis says their key changed: Redis's
 * server-assisted client-side caching, `CLIENT TRACKING` in broadcast mode over a few key prefixes, with the
 * invalidations delivered to a connection of its own (RESP2 redirect to itself, channel `__redis__:invalidate`).
 * A change made by any process (another gateway, an admin with `redis-cli`, a namespace purge, `FLUSHALL`) is seen
 * by every process, a few hundred microseconds after Redis applies it.
 *
 * Written here because ioredis, the client every service uses, ignores invalidation pushes and has no such cache;
 * node-redis has one, but only for its own clients. Nothing is kept while that connection is not tracking
 * (connecting, reconnecting, closed): every read then goes to Redis, as without the cache.
 *
 * A read that was in flight while an invalidation arrived is not kept (the value may be the old one): every
 * invalidation, and every change of the tracking state, starts a new generation, and only a read that began and
 * ended in the same generation is kept.
 */
export class TrackedReads {
  private readonly kept = new Map<string, Map<string, Kept>>();
  private generation = 0;
  private tracking = false;
  private readonly maxAgeMs: number;
  private readonly onTrackingError: (err: Error) => void;

  constructor(
    private readonly connection: Redis,
    private readonly prefixes: readonly string[],
    opts: { maxAgeMs?: number; onTrackingError?: (err: Error) => void } = {},
  ) {
    this.maxAgeMs = opts.maxAgeMs ?? 30_000;
    this.onTrackingError = opts.onTrackingError ?? (() => undefined);
    connection.on('ready', () => void this.startTracking());
    connection.on('close', () => this.setTracking(false));
    connection.on('messageBuffer', (channel: Buffer, keys: Buffer[] | Buffer | null) => {
      if (channel.toString() !== INVALIDATE_CHANNEL) return;
      this.generation++;
      // null: the whole keyspace was flushed.
      if (keys === null) this.kept.clear();
      else for (const key of Array.isArray(keys) ? keys : [keys]) this.kept.delete(key.toString());
    });
  }

  /** A connection of the service's own for the invalidations, closed on shutdown; errors are logged like the others'. */
  static open(host: ConnectionHost, url: string, opts: TrackedReadsOptions): TrackedReads {
    // RESP2: under RESP3 the invalidations arrive as pushes, which ioredis drops. No automatic resubscription: after a
    // reconnect, tracking must be on before the subscription (a subscribed RESP2 connection takes no other command).
    const connection = createRedis(url, { connectionName: opts.connectionName, protocol: 2, autoResubscribe: false });
    logConnectionErrors(connection, host, 'redis tracking connection error (reconnecting; reads go to Redis meanwhile)');
    host.onShutdown(() => connection.disconnect());
    const onTrackingError = (err: Error) => host.logger.warn({ err: err.message }, 'redis refused client tracking; values are read from Redis every time');
    return new TrackedReads(connection, opts.prefixes, { maxAgeMs: opts.maxAgeMs, onTrackingError });
  }

  /** True while invalidations arrive, so that values are kept. */
  get active(): boolean {
    return this.tracking;
  }

  /**
   * The value kept for `field` of `key`, or what `load` reads from Redis (kept when tracking, for up to `maxAgeMs`).
   * `key` must be under one of the prefixes: a value of any other key would never be dropped, so it is not kept.
   * `keep` chooses which values are kept: keep only what exists, so that reads of made-up names cannot fill memory.
   * Kept values are shared between callers: never change one.
   */
  async read<T>(key: string, field: string, load: () => Promise<T>, keep: (value: T) => boolean = () => true): Promise<T> {
    // Nothing is kept unless tracking: setTracking clears all whenever it changes.
    const hit = this.kept.get(key)?.get(field);
    if (hit && performance.now() - hit.at < this.maxAgeMs) return hit.value as T;
    const generation = this.generation;
    const value = await load();
    if (this.tracking && generation === this.generation && keep(value) && this.prefixes.some((p) => key.startsWith(p))) {
      const fields = this.kept.get(key) ?? new Map<string, Kept>();
      fields.set(field, { value, at: performance.now() });
      this.kept.set(key, fields);
    }
    return value;
  }

  /** Drops what is kept of `key` now, for a write of this process (the invalidation arrives a moment later). */
  forget(key: string): void {
    this.generation++;
    this.kept.delete(key);
  }

  private async startTracking(): Promise<void> {
    try {
      const id = String(await this.connection.client('ID'));
      await this.connection.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', id, 'BCAST', ...this.prefixes.flatMap((p) => ['PREFIX', p]));
      await this.connection.subscribe(INVALIDATE_CHANNEL);
      this.setTracking(true);
    } catch (err) {
      this.setTracking(false);
      // A connection that closed while starting starts again at its next 'ready'; a server that refuses tracking
      // (before Redis 6, or a command disabled by the provider) is said once per connection.
      if (this.connection.status === 'ready') this.onTrackingError(err as Error);
    }
  }

  private setTracking(on: boolean): void {
    this.tracking = on;
    this.generation++;
    this.kept.clear();
  }
}
