import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRunId, newRunId } from './run-id.js';

test('run ids are run_ + 26 chars of [0-9a-z] and safe in subjects and job ids', () => {
  for (let i = 0; i < 1000; i++) {
    const id = newRunId();
    assert.match(id, /^run_[0-9a-z]{26}$/);
    assert.ok(isRunId(id));
    assert.ok(!/[.:*>\s]/.test(id));
  }
});

test('run ids sort by creation time', () => {
  const a = newRunId(1_700_000_000_000);
  const b = newRunId(1_700_000_000_001);
  const c = newRunId(2_000_000_000_000);
  assert.ok(a < b && b < c);
});

test('the random part uses all 80 bits', () => {
  assert.equal(newRunId(0, (n) => new Uint8Array(n)), 'run_' + '0'.repeat(26));
  assert.equal(newRunId(0, (n) => new Uint8Array(n).fill(255)).slice(-16), 'z'.repeat(16));
});

test('isRunId refuses wildcards, dots and colons', () => {
  for (const bad of ['', '*', '>', 'run.x', 'run:x', 'RUN_X', 'a b', 'x'.repeat(129)]) assert.equal(isRunId(bad), false, bad);
});
