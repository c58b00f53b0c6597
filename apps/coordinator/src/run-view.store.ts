/**
 * The run read model in Redis: the REST view of each run, written after every
 * append. A write carries the view's `seq`; the script keeps the newest, so a
 * late write from a slower replica can never move a run backwards.
 */
import type { Redis } from 'ioredis';
import type { MuseNames, RunView } from '@muse/contracts';
import { evalCached } from '@muse/queues/redis';

// Views are written with `seq` as their first member, so the stored one's is read off the front of the string
// instead of decoding the whole view (large for a big fan-out); a view written without it is decoded.
const SET_IF_NEWER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local seq = string.match(cur, '^{"seq":(%d+)')
  if not seq then
    local ok, doc = pcall(cjson.decode, cur)
    if ok and doc.seq then seq = doc.seq end
  end
  if seq and tonumber(seq) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`;

/**
 * The script goes by its SHA (EVALSHA, loaded on first use) with `evalCached`, which works on the coordinator's
 * auto-pipelined connection (a `defineCommand` script may not).
 */
export class RunViewStore {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
  ) {}

  /** @returns whether the view was written (false when a newer one is there). */
  async write(view: RunView): Promise<boolean> {
    const res = await evalCached(
      this.redis,
      SET_IF_NEWER,
      [this.names.runKey(view.id), this.names.runIndexKey(view.project)],
      [seqFirst(view), String(view.seq), String(Date.parse(view.createdAt)), view.id],
    );
    return res === 1;
  }
}

/** The view as JSON with `seq` its first member (what the script reads off the front). */
function seqFirst(view: RunView): string {
  const { seq, ...rest } = view;
  return JSON.stringify({ seq, ...rest });
}
