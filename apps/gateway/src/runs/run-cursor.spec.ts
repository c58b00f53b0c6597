import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { decodeCursor, encodeCursor, isAfterCursor } from './run-cursor.js';

test('a cursor round-trips and is URL-safe', () => {
  const c = { score: '1732185600123', runId: 'run_01jd0000000000000000000000' };
  const raw = encodeCursor(c);
  assert.match(raw, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeCursor(raw), c);
});

test('garbage cursors are MUSE_ERR_REQUEST_INVALID', () => {
  for (const bad of ['', 'abc', Buffer.from('{"v":2,"s":"1","id":"x"}').toString('base64url'), Buffer.from('{"v":1,"s":"NaN","id":"x"}').toString('base64url')]) {
    assert.throws(() => decodeCursor(bad), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_REQUEST_INVALID');
  }
});

test('isAfterCursor: newest first, ties by id descending', () => {
  const cur = { score: '100', runId: 'run_m' };
  assert.equal(isAfterCursor({ score: '99', runId: 'run_z' }, cur), true);
  assert.equal(isAfterCursor({ score: '101', runId: 'run_a' }, cur), false);
  assert.equal(isAfterCursor({ score: '100', runId: 'run_a' }, cur), true);
  assert.equal(isAfterCursor({ score: '100', runId: 'run_m' }, cur), false);
  assert.equal(isAfterCursor({ score: '100', runId: 'run_z' }, cur), false);
  assert.equal(isAfterCursor({ score: '1', runId: 'x' }, undefined), true);
});
