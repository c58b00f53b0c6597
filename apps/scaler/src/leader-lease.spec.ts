import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRedis } from '@muse/queues';
import { LeaderLease } from './leader-lease.js';

// Against the real Redis (the lease is all Redis semantics), under keys of its own.
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `t-lease-${randomBytes(4).toString('hex')}`;
const keys = { lease: `${prefix}:leader`, term: `${prefix}:term` };
after(async () => {
  await redis.del(keys.lease, keys.term);
  await redis.quit();
});

test('one holder at a time; the other takes over after the TTL; terms grow', async () => {
  const a = new LeaderLease(redis, keys, 'a', 300);
  const b = new LeaderLease(redis, keys, 'b', 300);
  const sa = await a.tick();
  assert.deepEqual(sa, { leader: true, term: 1, holder: 'a' });
  assert.deepEqual(await b.tick(), { leader: false, term: 0, holder: 'a' });
  assert.deepEqual(await a.tick(), { leader: true, term: 1, holder: 'a' }, 'renewal keeps the term');
  // a stops renewing (as if dead): b gets it once the key expires, not before.
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await b.tick()).leader, false);
  await new Promise((r) => setTimeout(r, 250));
  assert.deepEqual(await b.tick(), { leader: true, term: 2, holder: 'b' });
  // a comes back: its renewal fails, it does not act, and b keeps the lease.
  assert.equal(a.isLeader(), false, 'a acts only within its TTL');
  assert.deepEqual(await a.tick(), { leader: false, term: 0, holder: 'b' });
  assert.equal(b.isLeader(), true);
  // b gives up: a takes over at once.
  await b.release();
  assert.deepEqual(await a.tick(), { leader: true, term: 3, holder: 'a' });
  await a.release();
  assert.equal(await redis.get(keys.lease), null);
});

test('release never deletes a lease someone else holds', async () => {
  const a = new LeaderLease(redis, keys, 'a2', 200);
  const c = new LeaderLease(redis, keys, 'c2', 5_000);
  await a.tick();
  await redis.del(keys.lease); // as if it expired
  assert.equal((await c.tick()).leader, true);
  await a.release();
  assert.equal(await redis.get(keys.lease), 'c2');
  await c.release();
});
