/**
 * Runs tasks one at a time per key, concurrently across keys, and lets tasks that queued up behind each other for
 * one key share one `hold` (the run's Redis lock): the first task of a key opens a hold, and while it is open every
 * task queued for that key runs inside it, up to `maxPerHold`, before it is released. The 8 reports of a step's
 * siblings arriving together then cost one lock acquisition, one fencing token and one release instead of 8 of
 * each, and none of them polls Redis for a lock its own process holds.
 *
 * A task that fails ends its hold (the next one queued opens a fresh one), and so does a hold that reports itself
 * lost (`lost()`); a hold that cannot be opened fails the task at the head of the queue only.
 */
export interface Hold<H> {
  /** Opens a hold on `key`, runs `body` inside it, and releases it. */
  (key: string, body: (held: H) => Promise<void>): Promise<void>;
}

interface Queued<H, T> {
  task: (held: H) => Promise<unknown>;
  tag: T | undefined;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

export class KeyedSerial<H, T = unknown> {
  private readonly queues = new Map<string, Array<Queued<H, T>>>();
  /** Per key with an open hold: how many more tasks (the running one included) it will run before it is released. */
  private readonly room = new Map<string, number>();

  constructor(
    private readonly hold: Hold<H>,
    private readonly opts: { maxPerHold?: number; lost?: (held: H) => boolean } = {},
  ) {}

  /** Queues `task` for `key`; `tag` is what `upcoming` shows of it. */
  run<R>(key: string, task: (held: H) => Promise<R>, tag?: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const item: Queued<H, T> = { task, tag, resolve: resolve as (v: unknown) => void, reject };
      const queue = this.queues.get(key);
      if (queue) {
        queue.push(item);
        return;
      }
      const fresh = [item];
      this.queues.set(key, fresh);
      void this.drain(key, fresh);
    });
  }

  /** Tasks waiting or running for `key` (0 when none). */
  pending(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }

  /** The tag of the task at the head of `key`'s queue: the one running, or the first an opening hold will run. */
  head(key: string): T | undefined {
    return this.queues.get(key)?.[0]?.tag;
  }

  /** Tags of the tasks the open hold on `key` will run, the running one first; none when no hold is open. */
  upcoming(key: string): T[] {
    const room = this.room.get(key) ?? 0;
    return (this.queues.get(key) ?? []).slice(0, room).flatMap((q) => (q.tag === undefined ? [] : [q.tag]));
  }

  private async drain(key: string, queue: Array<Queued<H, T>>): Promise<void> {
    const max = this.opts.maxPerHold ?? 64;
    while (queue.length > 0) {
      let started = false;
      try {
        await this.hold(key, async (held) => {
          started = true;
          for (let n = 0; n < max && queue.length > 0; n++) {
            const item = queue[0]!;
            this.room.set(key, max - n);
            try {
              item.resolve(await item.task(held));
            } catch (err) {
              item.reject(err);
              return;
            } finally {
              queue.shift();
            }
            if (this.opts.lost?.(held)) return;
          }
        }).finally(() => this.room.delete(key));
      } catch (err) {
        // The hold could not be opened (or its body never ran): the task that asked for it fails, the next one tries again.
        if (!started) queue.shift()?.reject(err);
      }
    }
    this.queues.delete(key);
  }
}
