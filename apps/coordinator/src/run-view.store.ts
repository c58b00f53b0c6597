/**
 * The run read model in Redis: the REST view of each run, written after every
 * append. A write carries the view's `seq`; the script keeps the newest, so a
 * late write from a slower replica can never move a run backwards.
 */
import type { Redis } from 'ioredis';
import type { MuseNames, RunView } from '@muse/contracts';

const SET_IF_NEWER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and doc.seq and tonumber(doc.seq) >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
`;

export class RunViewStore {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
  ) {}

  /** @returns whether the view was written (false when a newer one is there). */
  async write(view: RunView): Promise<boolean> {
    const res = await this.redis.eval(
      SET_IF_NEWER,
      2,
      this.names.runKey(view.id),
      this.names.runIndexKey(view.project),
      JSON.stringify(view),
      String(view.seq),
      String(Date.parse(view.createdAt)),
      view.id,
    );
    return res === 1;
  }
}
