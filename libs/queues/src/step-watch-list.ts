/**
 * The coordinators' step watches, as one Redis sorted set of attempts scored
 * by when each is next due, with each watch's data in a hash beside it; every
 * replica sweeps it.
 *
 * A step attempt has at most one entry (by its job id). Adding one is a no-op
 * when it exists; a sweep claims what is due by pushing it `claimMs` into the
 * future (so a replica that dies while looking only delays the look: another
 * takes it once the claim runs out), then either reschedules it (the next
 * look, only while it is still listed: a finished attempt's removal is not
 * undone) or removes it. Each write is one command or script on a connection
 * whose commands of one tick go out as one write: a step's watch rides with
 * the coordinator's other writes of the same fold. (They were delayed BullMQ
 * jobs once: an add and a remove per step, each a script that writes a job
 * hash, a delayed set and an event stream.)
 */
import type { Redis } from 'ioredis';
import type { MuseNames } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import { evalCached } from './redis-script.js';

/** KEYS: due ZSET, data HASH; ARGV: id, due ms, data. Adds the watch unless the attempt has one. */
const ADD_LUA = `
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 0
`;

/** KEYS: due ZSET, data HASH; ARGV: id, due ms, data. Moves a listed watch to its next look (a removed one stays removed). */
const RESCHEDULE_LUA = `
if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[2], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
return 0
`;

/** KEYS: due ZSET, data HASH; ARGV: id. Drops the watch. */
const REMOVE_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
`;

/** KEYS: due ZSET, data HASH; ARGV: now, claimed until, limit. Claims the due watches; returns [id, data, id, data, ...]. */
const CLAIM_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local data = redis.call('HGET', KEYS[2], id)
  if data then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    out[#out + 1] = id
    out[#out + 1] = data
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`;

export interface StepWatchListOptions {
  /** How long a claimed watch is someone's before another replica may take it, in ms. */
  claimMs: number;
  /** How often the list is looked at for due watches, in ms. */
  tickMs: number;
  /** Watches claimed at a time (a full batch is followed by another at once). @default 200 */
  batch?: number;
  /** Watches looked at side by side. @default 16 */
  concurrency?: number;
  logger: Pick<Logger, 'warn'>;
  now?: () => number;
}

/** What a watch's look decided: its next look (in `delayMs`, with that look's data), or `undefined` when it is over. */
export type WatchOutcome<T> = { delayMs: number; data: T } | undefined;

export class StepWatchList<T extends object> {
  private readonly keys: string[];
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly redis: Redis,
    names: Pick<MuseNames, 'stepWatchesKey' | 'stepWatchDataKey'>,
    private readonly o: StepWatchListOptions,
  ) {
    this.keys = [names.stepWatchesKey, names.stepWatchDataKey];
    this.now = o.now ?? Date.now;
  }

  /** Lists a watch due in `delayMs` (a no-op when the attempt has one). */
  async add(id: string, data: T, delayMs: number): Promise<void> {
    await evalCached(this.redis, ADD_LUA, this.keys, [id, this.now() + delayMs, JSON.stringify(data)]);
  }

  /** Drops the attempt's watch (a script, not MULTI, so it joins the connection's other commands of the tick). */
  async remove(id: string): Promise<void> {
    await evalCached(this.redis, REMOVE_LUA, this.keys, [id]);
  }

  /** Starts sweeping: `look` decides each due watch's fate (a look that throws is retried once its claim runs out). */
  start(look: (data: T) => Promise<WatchOutcome<T>>): void {
    const tick = (): void => {
      this.timer = undefined;
      this.pass = this.sweep(look)
        .then(
          () => undefined,
          (err: unknown) => this.o.logger.warn({ err }, 'step watch sweep failed; trying again'),
        )
        .finally(() => {
          this.pass = undefined;
          if (!this.closed) this.timer = setTimeout(tick, this.o.tickMs);
        });
    };
    this.timer = setTimeout(tick, this.o.tickMs);
  }

  /** Claims and looks at due watches until fewer than a batch are due. @returns how many were looked at */
  async sweep(look: (data: T) => Promise<WatchOutcome<T>>): Promise<number> {
    const batch = this.o.batch ?? 200;
    const concurrency = this.o.concurrency ?? 16;
    let looked = 0;
    for (;;) {
      const now = this.now();
      const flat = (await evalCached(this.redis, CLAIM_LUA, this.keys, [now, now + this.o.claimMs, batch])) as string[];
      const due: Array<[string, T]> = [];
      for (let i = 0; i < flat.length; i += 2) due.push([flat[i]!, JSON.parse(flat[i + 1]!) as T]);
      for (let i = 0; i < due.length; i += concurrency) {
        await Promise.all(due.slice(i, i + concurrency).map(([id, data]) => this.settle(id, data, look)));
      }
      looked += due.length;
      if (due.length < batch || this.closed) return looked;
    }
  }

  private async settle(id: string, data: T, look: (data: T) => Promise<WatchOutcome<T>>): Promise<void> {
    try {
      const next = await look(data);
      if (next === undefined) await this.remove(id);
      else await evalCached(this.redis, RESCHEDULE_LUA, this.keys, [id, this.now() + next.delayMs, JSON.stringify(next.data)]);
    } catch (err) {
      this.o.logger.warn({ err, watch: id }, 'step watch failed; it is looked at again once its claim runs out');
    }
  }

  /** Stops sweeping, after the pass under way. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.pass;
  }
}

