import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createResourceSampler } from './resource-sampler.js';

test('cpu is CPU time over wall time since the last sample; memory is rss over the limit', () => {
  let t = 0;
  let user = 0;
  const sample = createResourceSampler({ cpuUsage: () => ({ user, system: 0 }), rss: () => 256, limit: () => 1024, now: () => t });
  t = 1_000; // ms
  user = 500_000; // µs: half a core over one second
  assert.deepEqual(sample(), { cpu: 0.5, memory: 0.25 });
  t = 2_000;
  user = 2_000_000; // 1.5 s of CPU in 1 s: two threads busy
  assert.deepEqual(sample(), { cpu: 1.5, memory: 0.25 });
});

test('the real process reads sane numbers', () => {
  const sample = createResourceSampler();
  const s = sample();
  assert.ok(s.cpu >= 0 && s.memory > 0 && s.memory <= 1, JSON.stringify(s));
});
