/** The run read model against the real Redis, under a namespace of its own that is deleted afterwards. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { museNames, type RunView } from '@muse/contracts';
import { createRedis } from '@muse/queues';
import { RunViewStore } from './run-view.store.js';

const view = (seq: number, status: RunView['status'] = 'running'): RunView =>
  ({ id: 'run_v1', project: 'p', workflow: { name: 'w', version: 1 }, status, input: {}, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', steps: [], seq }) as unknown as RunView;

describe('RunViewStore (real Redis)', () => {
  let redis: Redis;
  const names = museNames(`t-spec-${randomBytes(4).toString('hex')}`);

  before(() => {
    redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  after(async () => {
    await redis.del(names.runKey('run_v1'), names.runIndexKey('p'));
    await redis.quit();
  });

  test('the newest view wins, a late older one is refused, and the index lists the run', async () => {
    const store = new RunViewStore(redis, names);
    assert.equal(await store.write(view(3)), true);
    assert.equal(await store.write(view(2, 'pending')), false);
    assert.equal(await store.write(view(3, 'pending')), false, 'the same seq again is not newer');
    assert.equal(await store.write(view(12, 'succeeded')), true, '12 > 3 as numbers, not as strings');
    const stored = JSON.parse((await redis.get(names.runKey('run_v1')))!) as RunView;
    assert.deepEqual([stored.seq, stored.status], [12, 'succeeded']);
    assert.ok((await redis.get(names.runKey('run_v1')))!.startsWith('{"seq":12,'));
    assert.deepEqual(await redis.zrange(names.runIndexKey('p'), '0', '-1'), ['run_v1']);
    // A second store on the same connection shares the command.
    assert.equal(await new RunViewStore(redis, names).write(view(13)), true);
  });

  test('a view stored without seq first (an older writer) is still compared by its seq', async () => {
    const { seq, ...rest } = view(20);
    await redis.set(names.runKey('run_v1'), JSON.stringify({ ...rest, seq }));
    const store = new RunViewStore(redis, names);
    assert.equal(await store.write(view(19)), false);
    assert.equal(await store.write(view(21)), true);
  });
});
