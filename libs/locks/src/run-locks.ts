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

/** A first try at a run's lock, as a script that draws its fencing token sees it. */
export interface RunLockTry {
  /** The lock's Redis key. */
  key: string;
  /** The value the try writes there when it wins. */
  holder: string;
  /** The run's fencing counter. */
  fence: string;
}

/**
 * Draws a hold's fencing token in the same write as the first try at the lock, for a caller with work to do under the
 * token at once (the coordinator commits a report's outputs with it). Given the try, it sends its command before its
 * first await, on the locks' own connection (so that Redis runs it after the try), a script that bumps the counter
 * only while the lock holds the try's `holder`, and resolves to the token drawn, or null when the lock was someone
 * else's (nothing drawn).
 */
export type RunLockDraw = (lock: RunLockTry) => Promise<number | null>;

/** The Redis key redis-semaphore's Mutex keeps a lock named `name` under (`run-locks.spec.ts` checks it still is). */
export const mutexKey = (name: string): string => `mutex:${name}`;

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

  /**
   * Runs `fn` while holding the run's lock; `fn` receives the fencing token of this hold.
   *
   * The first try at the lock and the bump of the fencing counter go out together (one round trip, one write on an
   * auto-pipelined connection): a token drawn by a try that lost is never used, and a gap in the tokens is harmless,
   * since a store only compares the tokens it is shown. The token of a try that won was drawn after the lock was
   * taken (Redis runs one client's commands in order), so it is above the token of every earlier holder. A lock
   * held by someone else is then waited for (retried every 5 ms) and the counter bumped once it is taken.
   * `draw`, when given, draws the first try's token in place of the plain bump (see RunLockDraw).
   */
  async withRunLock<T>(runId: string, fn: (fencingToken: number, signal: AbortSignal) => Promise<T>, draw?: RunLockDraw): Promise<T> {
    const ttl = this.opts.ttlMs ?? 15_000;
    const lost = new AbortController();
    const options = {
      lockTimeout: ttl,
      refreshInterval: Math.floor(ttl / 3),
      onLockLost: () => lost.abort(new LockLostError(runId)),
    };
    const key = this.names.runLockKey(runId);
    const fence = this.names.runFenceKey(runId);
    // One attempt only; `tryAcquire` sends its SET before its first await, so the draw below (the INCR, or the
    // caller's script) joins it.
    let mutex = new Mutex(this.redis, key, { ...options, acquireAttemptsLimit: 1, retryInterval: 0 });
    const tried = mutex.tryAcquire();
    let drawing: Promise<number | null>;
    try {
      drawing = draw ? draw({ key: mutexKey(key), holder: mutex.identifier, fence }) : this.redis.incr(fence);
    } catch (err) {
      drawing = Promise.reject(err); // fails the hold below, which lets a won lock go
    }
    const [won, drawn] = await Promise.allSettled([tried, drawing]);
    if (won.status === 'rejected') throw won.reason;
    if (!won.value) {
      if (drawn.status === 'rejected') throw drawn.reason;
      mutex = new Mutex(this.redis, key, { ...options, acquireTimeout: this.opts.acquireTimeoutMs ?? 30_000, retryInterval: 5 });
      await mutex.acquire();
    }
    try {
      // A try that won uses its own draw (a failed draw fails the hold); one that waited draws now.
      const token = won.value ? wonDraw(settled(drawn)) : await this.redis.incr(fence);
      return await fn(token, lost.signal);
    } finally {
      await mutex.release().catch(() => undefined);
    }
  }
}

/** A won try's token: its draw ran after its SET on the same connection, so it found the lock held by the try. */
function wonDraw(token: number | null): number {
  if (token === null) throw new Error('the run lock was won, but its fencing draw found it held by another');
  return token;
}

function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}
