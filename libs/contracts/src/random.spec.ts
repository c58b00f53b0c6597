import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomIdBytes } from './random.js';

test('randomIdBytes: the asked length, fresh bytes each time across pool refills, and a refusal past the pool size', () => {
  const seen = new Set<string>();
  // 1,000 draws of 10 bytes cross the 4 KiB pool twice.
  for (let i = 0; i < 1_000; i++) {
    const b = randomIdBytes(10);
    assert.equal(b.length, 10);
    seen.add(Buffer.from(b).toString('hex'));
  }
  assert.equal(seen.size, 1_000, 'no draw repeats another');
  const big = randomIdBytes(4096);
  assert.equal(big.length, 4096);
  assert.ok(new Set(big).size > 200, 'spread over the byte values');
  assert.throws(() => randomIdBytes(4097), RangeError);
});
