import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PoolList } from '@muse/contracts';
import { formatPools } from './pools.format.js';

test('shows each pool: sizes, bounds, policy, why, and the last decisions', () => {
  const list: PoolList = {
    evaluatedAt: '2026-01-01T00:00:00.000Z',
    leader: 'host-1-abc',
    driver: 'local',
    items: [
      {
        role: 'executor',
        min: 1,
        max: 8,
        policy: { kind: 'queueDepth', min: 1, max: 8, scaleUpThreshold: 10, scaleDownThreshold: 2, cooldownMs: 30_000, idleTimeoutMs: 300_000, cpu: 0.8, memory: 0.8, targetPerMinute: 60 },
        desired: 5,
        actual: 4,
        driverActual: 5,
        busy: 4,
        queue: { waiting: 35, active: 4, delayed: 0 },
        lastDecision: { at: 't1', from: 1, to: 5, direction: 'up', reason: '35 waiting, 1 of 1 agents busy: need 5' },
        decisions: [{ at: 't1', from: 1, to: 5, direction: 'up', reason: '35 waiting, 1 of 1 agents busy: need 5' }],
        lastCheck: { at: 't2', need: 5, reason: '35 waiting, 4 of 4 agents busy: need 8' },
      },
    ],
  };
  const text = formatPools(list);
  assert.match(text, /by host-1-abc \(driver local\)/);
  assert.match(text, /executor +desired 5 live 4 \(busy 4\) running 5 +\[1\.\.8\] +queueDepth up 10 down 2, cooldown 30 s, idle 300 s +queue 35 waiting 4 active/);
  assert.match(text, /t1 up 1 -> 5: 35 waiting/);
  assert.equal(formatPools({ evaluatedAt: null, leader: null, driver: null, items: [] }), 'no scaler has evaluated the pools yet');
});
