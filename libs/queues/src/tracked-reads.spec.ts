import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { specRedis } from './spec-redis.js';
import { TrackedReads } from './tracked-reads.js';
import type { ConnectionHost } from './redis-connection.js';

const { redis, names } = specRedis();
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${names.namespace}:tracked`;
const closers: (() => Promise<void> | void)[] = [];
const warnings: string[] = [];
const host: ConnectionHost = {
  logger: { warn: (_obj, msg) => warnings.push(msg) },
  readiness: { add: () => undefined },
  onShutdown: (fn) => closers.push(fn),
};
after(async () => {
  for (const close of closers) await close();
});

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

/** A TrackedReads over `prefix`, tracking, and a counting loader of one hash field. */
let opened = 0;
async function tracked(opts: { maxAgeMs?: number } = {}) {
  const connectionName = `${names.namespace}-tracking-${++opened}`;
  const reads = TrackedReads.open(host, url, { connectionName, prefixes: [prefix], ...opts });
  await until('tracking', () => reads.active);
  let loads = 0;
  const read = (key: string, field: string) =>
    reads.read(key, field, async () => {
      loads++;
      return redis.hget(key, field);
    });
  return { reads, read, loads: () => loads, connectionName };
}

test('a value is read from Redis once, then kept', async () => {
  const key = `${prefix}:a`;
  await redis.hset(key, 'f', 'one');
  const { read, loads } = await tracked();
  assert.equal(await read(key, 'f'), 'one');
  assert.equal(await read(key, 'f'), 'one');
  assert.equal(await read(key, 'f'), 'one');
  assert.equal(loads(), 1);
});

test('a write by another connection drops the kept value of that key only, within moments', async () => {
  const key = `${prefix}:b`;
  const other = `${prefix}:c`;
  await redis.hset(key, 'f', 'one');
  await redis.hset(other, 'f', 'x');
  const { read, loads } = await tracked();
  await read(key, 'f');
  await read(other, 'f');
  assert.equal(loads(), 2);
  await redis.hset(key, 'f', 'two');
  await until('the new value is read', async () => (await read(key, 'f')) === 'two');
  const afterChange = loads();
  await read(other, 'f');
  assert.equal(loads(), afterChange, 'the other key is still kept');
});

test('a read that was in flight when its key changed is not kept', async () => {
  const key = `${prefix}:d`;
  await redis.hset(key, 'f', 'old');
  const { reads } = await tracked();
  let loads = 0;
  const first = await reads.read(key, 'f', async () => {
    loads++;
    const v = await redis.hget(key, 'f');
    // The change, and its invalidation, arrive before this read ends.
    await redis.hset(key, 'f', 'new');
    await sleep(50);
    return v;
  });
  assert.equal(first, 'old');
  const second = await reads.read(key, 'f', async () => {
    loads++;
    return redis.hget(key, 'f');
  });
  assert.equal(second, 'new');
  assert.equal(loads, 2);
});

test('values refused by keep, keys outside the prefixes, and values past their age are read every time', async () => {
  const key = `${prefix}:e`;
  const outside = `${names.namespace}:untracked`;
  await redis.hset(outside, 'f', 'v');
  const { reads } = await tracked();
  let loads = 0;
  const load = (k: string) => async () => {
    loads++;
    return redis.hget(k, 'f');
  };
  await reads.read(key, 'missing', load(key), (v) => v !== null);
  await reads.read(key, 'missing', load(key), (v) => v !== null);
  assert.equal(loads, 2, 'null refused by keep');
  await reads.read(outside, 'f', load(outside));
  await reads.read(outside, 'f', load(outside));
  assert.equal(loads, 4, 'a key outside the prefixes');

  const aging = await tracked({ maxAgeMs: 0 });
  await redis.hset(key, 'f', 'v');
  await aging.read(key, 'f');
  await aging.read(key, 'f');
  assert.equal(aging.loads(), 2, 'maxAgeMs 0 keeps nothing usable');
});

test('nothing is kept while the connection is down; tracking resumes after a reconnect', async () => {
  const key = `${prefix}:g`;
  await redis.hset(key, 'f', 'one');
  const { reads, read, loads, connectionName } = await tracked();
  await read(key, 'f');
  // Redis drops the tracking connection (as on a Redis restart or a network cut); ioredis reconnects.
  const [line] = (await redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub') as string).split('\n').filter((l) => l.includes(`name=${connectionName} `) && l.includes('sub=1'));
  assert.ok(line, 'the tracking connection is listed');
  await redis.client('KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!);
  await until('the connection is seen closed', () => !reads.active);
  // Changed while nobody listened: the value kept before must not come back.
  await redis.hset(key, 'f', 'two');
  assert.equal(await read(key, 'f'), 'two');
  await until('tracking again', () => reads.active);
  const before = loads();
  assert.equal(await read(key, 'f'), 'two');
  assert.equal(await read(key, 'f'), 'two');
  assert.equal(loads(), before + 1, 'kept again once tracking');
  await redis.hset(key, 'f', 'three');
  await until('the change after the reconnect is seen', async () => (await read(key, 'f')) === 'three');
  assert.deepEqual(warnings, []);
});
