/** The step watches' sorted set against the real Redis (REDIS_URL), under a namespace of its own removed afterwards. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { museNames, type MuseNames } from '@muse/contracts';
import { StepWatchList, type WatchOutcome } from './step-watch-list.js';

type W = { id: string; n: number };

describe('StepWatchList (real Redis)', () => {
  let redis: Redis;
  let names: MuseNames;
  let clock = 1_000_000;
  const warned: string[] = [];
  const list = (o: { claimMs?: number; batch?: number } = {}) =>
    new StepWatchList<W>(redis, names, { claimMs: o.claimMs ?? 5_000, tickMs: 20, batch: o.batch ?? 200, logger: { warn: ((_o: object, msg: string) => void warned.push(msg)) as never }, now: () => clock });

  before(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, enableAutoPipelining: true });
    names = museNames(`t-swl-${randomBytes(4).toString('hex')}`);
  });
  after(async () => {
    const keys = await redis.keys(`${names.namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  test('a watch fires once due, not before; adding it again is a no-op; its look decides the next look or the end', async () => {
    const l = list();
    await l.add('a', { id: 'a', n: 1 }, 1_000);
    await l.add('a', { id: 'a', n: 99 }, 10);
    const seen: W[] = [];
    const look = async (w: W): Promise<WatchOutcome<W>> => (seen.push(w), w.n < 3 ? { delayMs: 500, data: { ...w, n: w.n + 1 } } : undefined);
    assert.equal(await l.sweep(look), 0, 'not due yet (the second add did not move it)');
    clock += 1_000;
    assert.equal(await l.sweep(look), 1);
    assert.deepEqual(seen, [{ id: 'a', n: 1 }]);
    assert.equal(Number(await redis.zscore(names.stepWatchesKey, 'a')), clock + 500, 'rescheduled by its look');
    clock += 500;
    await l.sweep(look);
    clock += 500;
    await l.sweep(look);
    assert.deepEqual(seen.map((w) => w.n), [1, 2, 3]);
    assert.equal(await redis.zscore(names.stepWatchesKey, 'a'), null, 'over: removed');
    assert.equal(await redis.hexists(names.stepWatchDataKey, 'a'), 0);
  });

  test('a claimed watch is nobody else\'s until its claim runs out; a look that fails is tried again then', async () => {
    const l = list({ claimMs: 2_000 });
    await l.add('b', { id: 'b', n: 1 }, 0);
    let calls = 0;
    const failing = async (): Promise<WatchOutcome<W>> => {
      calls++;
      throw new Error('nats down');
    };
    assert.equal(await l.sweep(failing), 1);
    assert.equal(calls, 1);
    assert.ok(warned.includes('step watch failed; it is looked at again once its claim runs out'));
    clock += 1_999;
    assert.equal(await l.sweep(failing), 0, 'still claimed');
    clock += 1;
    assert.equal(await l.sweep(async () => undefined), 1, 'the claim ran out: looked at again');
    assert.equal(await redis.zscore(names.stepWatchesKey, 'b'), null);
  });

  test('a watch removed while its look runs stays removed (the look\'s next time does not bring it back)', async () => {
    const l = list();
    await l.add('c', { id: 'c', n: 1 }, 0);
    await l.sweep(async (w) => {
      await l.remove('c');
      return { delayMs: 100, data: { ...w, n: 2 } };
    });
    assert.equal(await redis.zscore(names.stepWatchesKey, 'c'), null);
    assert.equal(await redis.hexists(names.stepWatchDataKey, 'c'), 0);
  });

  test('a backlog larger than a batch is swept in batches in one pass; start() sweeps by itself until closed', async () => {
    const l = list({ batch: 7 });
    for (let i = 0; i < 30; i++) await l.add(`d${i}`, { id: `d${i}`, n: 1 }, 0);
    const looked = new Set<string>();
    assert.equal(await l.sweep(async (w) => void looked.add(w.id)), 30);
    assert.equal(looked.size, 30);

    const fired: string[] = [];
    await l.add('e', { id: 'e', n: 1 }, 0);
    l.start(async (w) => void fired.push(w.id));
    for (let i = 0; i < 100 && fired.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await l.close();
    assert.deepEqual(fired, ['e']);
    await l.add('f', { id: 'f', n: 1 }, 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(fired, ['e'], 'closed: no more sweeps');
  });
});
