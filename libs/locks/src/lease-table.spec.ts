/** Leases against the real Redis (own namespace, removed after): overlap, all-or-nothing, order, hand-on, expiry. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { museNames } from '@muse/contracts';
import { LeaseTable } from './lease-table.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ns = `t-${randomBytes(4).toString('hex')}`;
const names = museNames(ns);

after(async () => {
  const keys = await redis.keys(`${ns}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const h = (runId: string, stepId = 's') => ({ runId, stepId });

test('overlapping globs of one kind conflict; disjoint paths and other kinds do not', async () => {
  const t = new LeaseTable(redis, names, 60_000);
  const p = 'overlap';
  assert.ok(await t.acquire(p, h('r1'), ['repo:web/src/**'], 1));
  assert.ok(await t.acquire(p, h('r4'), ['repo:web/docs/**'], 2), 'a sibling folder');
  assert.ok(await t.acquire(p, h('r5'), ['file:web/src/app.ts'], 3), 'another kind');
  assert.ok(await t.acquire(p, h('r6'), ['repo:web/srcx/a'], 4), 'a longer name is not a sub-path');
  assert.equal(await t.acquire(p, h('r2'), ['repo:web/src/app.ts'], 5), undefined, 'a file under a held glob');
  assert.equal(await t.acquire(p, h('r3'), ['repo:web/**'], 6), undefined, 'a glob around held globs');
  // Free of holders, but behind r3 (which it overlaps): waits its turn.
  assert.equal(await t.acquire(p, h('r8'), ['repo:web/other/x'], 7), undefined, 'behind an earlier waiter it overlaps');
  // Another project's leases never conflict with these.
  assert.ok(await t.acquire('other', h('r7'), ['repo:web/src/**'], 7));
  const list = await LeaseTable.list(redis, names, p);
  assert.deepEqual(list.holders.map((x) => x.runId).sort(), ['r1', 'r4', 'r5', 'r6']);
  assert.deepEqual(list.waiters.map((x) => x.runId), ['r2', 'r3', 'r8']);
  assert.ok(list.holders.every((x) => x.token > 0 && Date.parse(x.expiresAt) > Date.now()));
});

test('all or nothing, in order: crossed lock lists never deadlock, and a released lease goes to the oldest waiter', async () => {
  const t = new LeaseTable(redis, names, 60_000);
  const p = 'order';
  const tokA = await t.acquire(p, h('a'), ['file:x', 'file:y'], 1);
  assert.ok(tokA);
  // b wants the same two in the other order: it takes neither (no hold-and-wait).
  assert.equal(await t.acquire(p, h('b'), ['file:y', 'file:x'], 2), undefined);
  // c wants only y; it arrived after b, with which it conflicts: it waits behind b (no starvation of b).
  assert.equal(await t.acquire(p, h('c'), ['file:y'], 3), undefined);
  // d conflicts with nobody waiting or holding: it goes ahead.
  assert.ok(await t.acquire(p, h('d'), ['file:z'], 4));
  assert.equal((await LeaseTable.list(redis, names, p)).holders.some((x) => x.runId === 'b'), false, 'b holds nothing while it waits');
  const granted = await t.release(p, h('a'));
  assert.deepEqual(granted.map((g) => g.runId), ['b'], 'only b: c still conflicts with b');
  assert.ok(granted[0]!.token > tokA, 'fencing tokens only grow');
  assert.deepEqual((await t.release(p, h('b'))).map((g) => g.runId), ['c']);
  // Asking again while holding returns the same token; releasing twice is harmless.
  const again = await t.acquire(p, h('c'), ['file:y'], 9);
  assert.equal(again, (await LeaseTable.list(redis, names, p)).holders.find((x) => x.runId === 'c')!.token);
  assert.deepEqual(await t.release(p, h('c')), []);
  assert.deepEqual(await t.release(p, h('c')), []);
});

test('a lease not renewed within its TTL lapses; renewing keeps it', async () => {
  const t = new LeaseTable(redis, names, 300);
  const p = 'ttl';
  assert.ok(await t.acquire(p, h('old'), ['file:a'], 1));
  assert.ok(await t.acquire(p, h('kept'), ['file:b'], 2));
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await t.renew(p, h('kept')), true);
  }
  assert.ok(await t.acquire(p, h('new'), ['file:a'], 3), 'the lapsed lease is free');
  assert.equal(await t.acquire(p, h('late'), ['file:b'], 4), undefined, 'the renewed one is not');
  assert.equal(await t.renew(p, h('nobody')), false);
});
