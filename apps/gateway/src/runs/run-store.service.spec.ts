/** The gateway's read model against the real Redis (own namespace, removed after): the first view of a run. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { museNames, type RunView } from '@muse/contracts';
import { RunStore } from './run-store.service.js';
import { newRunId } from './run-id.js';

const ns = `t-${randomBytes(4).toString('hex')}`;
const names = museNames(ns);
// As the gateway opens it: commands of one tick go out as one write.
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const store = new RunStore(redis, names, logger as never);

after(async () => {
  const keys = await redis.keys(`${ns}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const view = (id: string, over: Partial<RunView> = {}): RunView => ({
  id,
  project: 'p1',
  workflow: { name: 'w', version: 1 },
  status: 'pending',
  input: {},
  createdAt: '2026-12-06T07:00:00.000Z',
  updatedAt: '2026-12-06T07:00:00.000Z',
  seq: 0,
  steps: [{ id: 'a', status: 'pending', attempts: 0 }],
  ...over,
});

test('writeInitial stores the first view and indexes it; it never replaces a view the coordinator wrote', async () => {
  const [a, b] = [newRunId(), newRunId()];
  // Several at once, as concurrent submissions do: one write on the auto-pipelined connection.
  await Promise.all([store.writeInitial(view(a)), store.writeInitial(view(b, { createdAt: '2026-12-06T07:00:01.000Z' }))]);
  assert.equal((await store.find('p1', a))?.status, 'pending');
  assert.deepEqual(await redis.zrange(names.runIndexKey('p1'), '0', '-1', 'WITHSCORES'), [a, String(Date.parse('2026-12-06T07:00:00.000Z')), b, String(Date.parse('2026-12-06T07:00:01.000Z'))]);
  assert.equal(await store.find('p2', a), null, "another project's run is not found");

  // The coordinator got there first (its view has a higher seq): the gateway's late first view changes nothing.
  const c = newRunId();
  await redis.set(names.runKey(c), JSON.stringify(view(c, { status: 'running', seq: 3 })));
  await store.writeInitial(view(c));
  const found = await store.find('p1', c);
  assert.equal(found?.status, 'running');
  assert.equal(found?.seq, 3);
  assert.equal(await redis.zscore(names.runIndexKey('p1'), c), String(Date.parse('2026-12-06T07:00:00.000Z')), 'indexed all the same');
});
