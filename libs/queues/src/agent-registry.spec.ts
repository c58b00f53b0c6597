import { test } from 'node:test';
import assert from 'node:assert/strict';
import { museNames, type AgentHeartbeat } from '@muse/contracts';
import { readAgentHeartbeats } from './agent-registry.js';

const hb: AgentHeartbeat = {
  agentId: 'a', roles: ['reviewer'], pid: 1, host: 'h', concurrency: 2, inFlight: 1, completed: 0, failed: 0,
  startedAt: '2025-01-01T00:00:00.000Z', at: '2025-01-01T00:00:01.000Z', version: '0.1.0',
};

test('heartbeats are parsed; values that are not heartbeats are reported by field, never returned', async () => {
  const names = museNames('t-spec');
  const redis = {
    hgetall: async (key: string) => {
      assert.equal(key, names.agentsKey);
      return { a: JSON.stringify(hb), x: 'not json', y: '{"agentId":"y"}', z: JSON.stringify({ ...hb, agentId: 'z', at: 'yesterday' }) };
    },
  };
  const { heartbeats, invalid } = await readAgentHeartbeats(redis, names);
  assert.deepEqual(heartbeats, [hb]);
  assert.deepEqual(invalid.sort(), ['x', 'y', 'z']);
});
