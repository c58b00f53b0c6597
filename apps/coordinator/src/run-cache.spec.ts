import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunCache } from './run-cache.js';

const entry = (seq: number) => ({ state: undefined, lastStreamSeq: seq });

test('the run cache keeps the most recently used runs: a read counts as a use, the least recently used goes first', () => {
  const cache = new RunCache(3);
  for (const id of ['a', 'b', 'c']) cache.set(id, entry(1));
  assert.equal(cache.get('a')?.lastStreamSeq, 1, 'a read of a makes b the oldest');
  cache.set('d', entry(1));
  assert.equal(cache.get('b'), undefined);
  assert.deepEqual(['a', 'c', 'd'].map((id) => cache.get(id)?.lastStreamSeq), [1, 1, 1]);
  cache.set('c', entry(7));
  assert.equal(cache.get('c')?.lastStreamSeq, 7, 'set replaces');
  cache.delete('c');
  assert.equal(cache.get('c'), undefined);
  assert.equal(cache.size, 2);
  // Many more runs than it keeps: the size stays at its bound.
  for (let i = 0; i < 10_000; i++) cache.set(`r${i}`, entry(i));
  assert.equal(cache.size, 3);
  assert.equal(cache.get('r9999')?.lastStreamSeq, 9999);
});
