import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentListSchema, type AgentHeartbeat } from '@muse/contracts';
import { agentLoad } from '@muse/contracts';
import { toAgentViews } from './agent-view.js';

const now = Date.parse('2025-01-01T00:00:10.000Z');
const hb = (agentId: string, at: string, inFlight = 1, concurrency = 4): AgentHeartbeat => ({
  agentId,
  roles: ['reviewer'],
  pid: 42,
  host: 'h',
  concurrency,
  inFlight,
  completed: 3,
  failed: 1,
  startedAt: '2025-01-01T00:00:00.000Z',
  at,
  version: '0.1.0',
});

test('fresh heartbeats become views with load and lastSeenAt, sorted; stale ones are dropped', () => {
  const items = toAgentViews(
    [hb('b', '2025-01-01T00:00:09.000Z', 3, 4), hb('a', '2025-01-01T00:00:05.000Z', 0, 2), hb('old', '2024-12-31T23:59:59.000Z')],
    now,
    10_000,
  );
  AgentListSchema.parse({ items });
  assert.deepEqual(items.map((i) => [i.agentId, i.load, i.lastSeenAt]), [
    ['a', 0, '2025-01-01T00:00:05.000Z'],
    ['b', 0.75, '2025-01-01T00:00:09.000Z'],
  ]);
});

test('agent load counts the slots of every role; zero concurrency is load 0', () => {
  assert.equal(agentLoad({ inFlight: 3, concurrency: 4, roles: ['reviewer'] }), 0.75);
  assert.equal(agentLoad({ inFlight: 8, concurrency: 4, roles: ['a', 'b', 'c', 'd'] }), 0.5);
  assert.equal(agentLoad({ inFlight: 1, concurrency: 3, roles: [] }), 0.333);
  assert.equal(agentLoad({ inFlight: 0, concurrency: 0, roles: ['a'] }), 0);
});
