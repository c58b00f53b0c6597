/** Real Redis: an auto-pipelined connection's lean pipelines run BullMQ's scripts and later-defined commands alike. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from './bullmq.js';
import { createRedis } from './redis-connection.js';
import { specRedis } from './spec-redis.js';

const { names } = specRedis();
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = createRedis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
after(() => redis.disconnect());
const key = (k: string) => `${names.bullPrefix}:spec:${k}`;

test("an auto-pipelined connection's pipelines carry none of its scripts themselves, and run BullMQ's all the same", async () => {
  const queue = new Queue('lean', { connection: redis, prefix: names.bullPrefix });
  try {
    await queue.waitUntilReady();
    const scripts = Object.keys(redis.scriptsSet);
    assert.ok(scripts.length >= 30, `BullMQ defined its scripts (${scripts.length})`);
    const pipeline = redis.pipeline();
    for (const name of scripts) {
      assert.equal(Object.hasOwn(pipeline, name), false, `${name} is not copied`);
      assert.equal(typeof (pipeline as unknown as Record<string, unknown>)[name], 'function', `${name} is there`);
    }
    // Commands of one turn share a pipeline: BullMQ's scripts and a plain command, answered each in turn.
    const [job, state, missing, counts] = await Promise.all([queue.add('j', { n: 1 }, { jobId: 'a' }), queue.getJobState('a'), queue.getJobState('b'), queue.getJobCounts('waiting')]);
    assert.equal(job.id, 'a');
    assert.deepEqual([state, missing], ['waiting', 'unknown']);
    assert.deepEqual(counts, { waiting: 1 });
    assert.equal(await queue.getJobState('a'), 'waiting');
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

test('a command defined while an auto-pipeline is open is on that pipeline too; an explicit pipeline and multi still work', async () => {
  const set = redis.set(key('x'), '1');
  assert.ok(redis.autoPipelineQueueSize > 0, 'a pipeline is open');
  redis.defineCommand('specDouble', { numberOfKeys: 1, lua: "return tonumber(redis.call('GET', KEYS[1])) * 2" });
  const double = (redis as unknown as { specDouble(k: string): Promise<number> }).specDouble(key('x'));
  const doubleBuffer = (redis as unknown as { specDoubleBuffer(k: string): Promise<unknown> }).specDoubleBuffer(key('x'));
  assert.deepEqual(await Promise.all([set, double, doubleBuffer]), ['OK', 2, 2]);
  assert.deepEqual(await redis.pipeline([['set', key('y'), '3'], ['get', key('y')]]).exec(), [[null, 'OK'], [null, '3']]);
  assert.deepEqual(await redis.multi().incr(key('y')).get(key('y')).exec(), [[null, 4], [null, '4']]);
});

test('a connection without auto-pipelining keeps ioredis pipelines', () => {
  const plain = createRedis(url, { lazyConnect: true });
  try {
    assert.equal(Object.hasOwn(plain, 'pipeline'), false);
  } finally {
    plain.disconnect();
  }
});
