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
  assert.deepEqual(Object.fromEntries(byRole), { executor: { agents: 2, busy: 1, done: 0 }, reviewer: { agents: 1, busy: 0, done: 0 } });
});

test('mean CPU and memory of the agents that report them, and the completion total', () => {
  const byRole = agentsByRole(
    [
      { ...hb('a', ['executor'], 1, 0), cpu: 0.5, memory: 0.1, completed: 3, failed: 1 },
      { ...hb('b', ['executor'], 0, 0), cpu: 0.25, memory: 0.2, completed: 2 },
      hb('c', ['executor'], 0, 0),
    ],
    NOW,
    10_000,
  );
  assert.deepEqual(byRole.get('executor'), { agents: 3, busy: 1, done: 6, cpu: 0.375, memory: 0.15 });
});

test('pool roles: defaults first, then known and live valid roles by name, capped', () => {
  assert.deepEqual(poolRoles([], []), ['orchestrator', 'optimizer', 'reviewer', 'executor']);
  assert.deepEqual(poolRoles(['zz'], ['gpu', 'bad:role', 'Nope', 'executor']), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'gpu', 'zz']);
  assert.deepEqual(poolRoles([], ['a', 'b', 'c'], 5), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'a']);
});
