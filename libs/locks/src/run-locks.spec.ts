/** Run locks against the real Redis (own namespace, removed after): one holder at a time, tokens that only grow. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { museNames } from '@muse/contracts';
import { RunLocks, mutexKey, type RunLockDraw } from './run-locks.js';

const ns = `t-${randomBytes(4).toString('hex')}`;
const names = museNames(ns);
// As in the coordinator: the lock's connection sends the commands of one tick as one write.
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });

after(async () => {
  const keys = await redis.keys(`*${ns}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

/** The key redis-semaphore's Mutex keeps a lock under (`mutexKey`: the 'a draw' test checks it is the library's). */
const lockKey = (runId: string) => mutexKey(names.runLockKey(runId));
const tick = () => new Promise((r) => setTimeout(r, 1));

test('holders of one run take turns, and each hold gets a token above every earlier holder’s', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000, acquireTimeoutMs: 10_000 });
  let inside = 0;
  let most = 0;
  const tokens: number[] = [];
  await Promise.all(
    Array.from({ length: 12 }, () =>
      locks.withRunLock('run-a', async (token) => {
        inside++;
        most = Math.max(most, inside);
        tokens.push(token);
        await tick();
        inside--;
      }),
    ),
  );
  assert.equal(most, 1, 'never two holders at once');
  assert.equal(tokens.length, 12);
  for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `token ${tokens[i]} after ${tokens[i - 1]}`);
  // A waiter's lost first try drew a token too: gaps are allowed, going back is not.
  assert.ok(Number(await redis.get(names.runFenceKey('run-a'))) >= tokens.at(-1)!);
});

test('a run held elsewhere is waited for, then taken with a newer token; other runs are not held up', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000, acquireTimeoutMs: 10_000 });
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let first = 0;
  const holding = locks.withRunLock('run-b', async (token) => {
    first = token;
    await held;
  });
  await tick();
  let second = 0;
  const waiting = locks.withRunLock('run-b', async (token) => {
    second = token;
  });
  let other = 0;
  await locks.withRunLock('run-c', async (token) => {
    other = token;
  });
  assert.equal(other, 1, 'another run has its own counter');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(second, 0, 'still waiting');
  release();
  await Promise.all([holding, waiting]);
  assert.ok(second > first, `${second} > ${first}`);
});

test('the lock is released after the body, also when it throws', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000 });
  await assert.rejects(locks.withRunLock('run-d', async () => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(await redis.exists(lockKey('run-d')), 0);
  assert.equal(await locks.withRunLock('run-d', async (t) => t), 2);
});

test('a lock that cannot be had within acquireTimeoutMs fails the caller', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000, acquireTimeoutMs: 50 });
  await redis.set(lockKey('run-e'), 'someone-else', 'PX', 5_000);
  await assert.rejects(locks.withRunLock('run-e', async () => 'never'), /timeout/i);
});

/** A draw as the coordinator's commit makes it: the counter bumped only while the lock holds the try's value. */
const DRAW_LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
return redis.call('INCR', KEYS[2])`;

test('a draw given with the first try gets the lock\'s key, the value a won try wrote there and the counter, and its token is the hold\'s; a lost try draws none', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000, acquireTimeoutMs: 10_000 });
  const asked: Array<{ key: string; holder: string; fence: string }> = [];
  const draw: RunLockDraw = async (lock) => {
    asked.push(lock);
    const t = Number(await redis.eval(DRAW_LUA, 2, lock.key, lock.fence, lock.holder));
    return t < 0 ? null : t;
  };
  const first = await locks.withRunLock('run-f', async (token) => {
    assert.equal(await redis.get(asked[0]!.key), asked[0]!.holder, 'the key redis-semaphore keeps the lock under holds the try\'s value');
    return token;
  }, draw);
  assert.equal(asked[0]!.key, lockKey('run-f'));
  assert.equal(asked[0]!.fence, names.runFenceKey('run-f'));
  assert.equal(first, 1);
  assert.equal(await redis.get(names.runFenceKey('run-f')), '1', 'one draw: the plain bump did not run beside it');

  // Held elsewhere: the draw finds the lock another's and draws nothing; the hold waits, then draws once it has it.
  await redis.set(lockKey('run-f'), 'someone-else', 'PX', 5_000);
  const waiting = locks.withRunLock('run-f', async (token) => token, draw);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(asked.length, 2);
  assert.equal(await redis.get(names.runFenceKey('run-f')), '1', 'a lost try drew no token');
  await redis.del(lockKey('run-f'));
  assert.equal(await waiting, 2);
});

test('a won try whose draw finds the lock not its own fails the hold, which lets the lock go', async () => {
  const locks = new RunLocks(redis, names, { ttlMs: 5_000 });
  await assert.rejects(locks.withRunLock('run-g', async () => assert.fail('no hold without a token'), async () => null), /fencing draw found it held by another/);
  assert.equal(await redis.exists(lockKey('run-g')), 0);
});
