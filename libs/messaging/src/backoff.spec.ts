import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { retry } from './backoff.js';

describe('retry', () => {
  test('doubles the delay, with up to half taken off by jitter, capped', async () => {
    const delays: number[] = [];
    let n = 0;
    await assert.rejects(
      retry(async () => { n++; throw new Error('x'); }, {
        attempts: 6, baseDelayMs: 100, maxDelayMs: 1000, random: () => 1, sleep: async (ms) => void delays.push(ms),
      }),
    );
    assert.equal(n, 6);
    assert.deepEqual(delays, [100, 200, 400, 800, 1000]);
    const low: number[] = [];
    await assert.rejects(retry(async () => { throw new Error('x'); }, { attempts: 3, baseDelayMs: 100, random: () => 0, sleep: async (ms) => void low.push(ms) }));
    assert.deepEqual(low, [50, 100]);
  });

  test('stops at once on an error that is not retryable', async () => {
    let n = 0;
    await assert.rejects(retry(async () => { n++; throw new Error('fatal'); }, { retryable: () => false, sleep: async () => undefined }));
    assert.equal(n, 1);
  });
});
