/**
 * Per-run locks with fencing tokens. The lock (redis-semaphore's Mutex, with
 * automatic refresh) makes one coordinator at a time handle a run; the token,
 * a Redis counter bumped on every acquisition, lets downstream stores reject a
 * write from a holder whose lock has since passed to someone else.
 */
import { Mutex } from 'redis-semaphore';
import type { Redis } from 'ioredis';
import type { MuseNames } from '@muse/contracts';

export interface RunLockOptions {
  /** Lock TTL, in ms; refreshed while held. @default 15_000 */
  ttlMs?: number;
  /** How long to wait for the lock, in ms. @default 30_000 */
  acquireTimeoutMs?: number;
}

export class LockLostError extends Error {
  constructor(runId: string) {
    super(`lock on run ${runId} was lost while held`);
    this.name = 'LockLostError';
  }
}

export class RunLocks {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
    private readonly opts: RunLockOptions = {},
  ) {}

  /** Runs `fn` while holding the run's lock; `fn` receives the fencing token of this hold. */
  async withRunLock<T>(runId: string, fn: (fencingToken: number, signal: AbortSignal) => Promise<T>): Promise<T> {
    const ttl = this.opts.ttlMs ?? 15_000;
    const lost = new AbortController();
    const mutex = new Mutex(this.redis, this.names.runLockKey(runId), {
      lockTimeout: ttl,
      acquireTimeout: this.opts.acquireTimeoutMs ?? 30_000,
      retryInterval: 5,
      refreshInterval: Math.floor(ttl / 3),
      onLockLost: () => lost.abort(new LockLostError(runId)),
    });
    await mutex.acquire();
    try {
      const token = await this.redis.incr(this.names.runFenceKey(runId));
      return await fn(token, lost.signal);
    } finally {
      await mutex.release().catch(() => undefined);
    }
  }
}
