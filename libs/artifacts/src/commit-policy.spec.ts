/** The artifact store's published commit policy and its reader, against the real Redis (REDIS_URL, default localhost). */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { specRedis } from '@muse/queues/spec-redis';
import { CommitPolicyReader, publishCommitPolicy } from './commit-policy.js';

describe('commit policy (real Redis)', () => {
  const { redis, names } = specRedis();

  test('a reader sees none until one is published, then the newest, read again only once refreshMs has passed', async () => {
    let clock = 0;
    const reader = new CommitPolicyReader(redis, names, 1_000, () => clock);
    assert.equal(await reader.current(), undefined);
    await publishCommitPolicy(redis, names, { redisBlobBytes: 2048, defaultTtlMs: 0 });
    assert.equal(await reader.current(), undefined, 'not read again within refreshMs');
    clock = 1_000;
    assert.deepEqual(await reader.current(), { redisBlobBytes: 2048, defaultTtlMs: 0 });
    await publishCommitPolicy(redis, names, { redisBlobBytes: 0, defaultTtlMs: 5 });
    clock = 1_500;
    assert.deepEqual(reader.current(), { redisBlobBytes: 2048, defaultTtlMs: 0 }, 'a cached answer needs no await');
    clock = 2_000;
    assert.deepEqual(await reader.current(), { redisBlobBytes: 0, defaultTtlMs: 5 });
  });

  test('a policy that is not one reads as none; publishing one that is not one is refused', async () => {
    const reader = new CommitPolicyReader(redis, names, 0);
    await redis.set(names.artifactCommitPolicyKey, '{"redisBlobBytes":-1}');
    assert.equal(await reader.current(), undefined);
    await redis.set(names.artifactCommitPolicyKey, 'not json');
    assert.equal(await reader.current(), undefined);
    await assert.rejects(publishCommitPolicy(redis, names, { redisBlobBytes: 1.5, defaultTtlMs: 0 }));
  });

  test('concurrent callers share one read', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 10, defaultTtlMs: 0 });
    const reader = new CommitPolicyReader(redis, names, 60_000);
    let gets = 0;
    const get = redis.get.bind(redis);
    const counting = Object.assign(Object.create(redis) as Redis, { get: (key: string) => (gets++, get(key)) });
    const shared = new CommitPolicyReader(counting, names, 60_000);
    const all = await Promise.all([shared.current(), shared.current(), shared.current()]);
    assert.equal(gets, 1);
    assert.deepEqual(all, [{ redisBlobBytes: 10, defaultTtlMs: 0 }, { redisBlobBytes: 10, defaultTtlMs: 0 }, { redisBlobBytes: 10, defaultTtlMs: 0 }]);
    assert.deepEqual(await reader.current(), { redisBlobBytes: 10, defaultTtlMs: 0 });
  });
});
