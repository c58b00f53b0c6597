import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentHeartbeat } from '@muse/contracts';
import { agentsByRole, poolRoles } from './pool-observation.js';

const NOW = Date.parse('2025-01-01T00:01:00.000Z');
const hb = (agentId: string, roles: string[], inFlight: number, ageMs: number): AgentHeartbeat => ({
  agentId,
  roles,
  pid: 1,
  host: 'h',
  concurrency: 4,
  inFlight,
  completed: 0,
  failed: 0,
  startedAt: new Date(NOW - 60_000).toISOString(),
  at: new Date(NOW - ageMs).toISOString(),
  version: 'x',
});

test('counts live and busy agents per role; stale and duplicate heartbeats are ignored', () => {
  const byRole = agentsByRole(
    [
      hb('a', ['executor'], 2, 1_000),
      hb('b', ['executor', 'reviewer'], 0, 9_000),
      hb('c', ['executor'], 1, 10_001), // silent too long
      hb('a', ['executor'], 0, 500), // same agent twice: the first entry counts
      { ...hb('d', ['reviewer'], 1, 0), at: 'not a time' },
    ],
    NOW,
    10_000,
  );
  assert.deepEqual(Object.fromEntries(byRole), { executor: { agents: 2, busy: 1 }, reviewer: { agents: 1, busy: 0 } });
});

test('pool roles: defaults first, then known and live valid roles by name, capped', () => {
  assert.deepEqual(poolRoles([], []), ['orchestrator', 'optimizer', 'reviewer', 'executor']);
  assert.deepEqual(poolRoles(['zz'], ['gpu', 'bad:role', 'Nope', 'executor']), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'gpu', 'zz']);
  assert.deepEqual(poolRoles([], ['a', 'b', 'c'], 5), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'a']);
});
