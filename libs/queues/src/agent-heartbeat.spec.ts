import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AgentHeartbeatSchema, museNames } from '@muse/contracts';
import { HeartbeatService, type HeartbeatDeps } from './agent-heartbeat.js';

const names = museNames('t-hb');

function harness(over: Partial<HeartbeatDeps> = {}) {
  const hash = new Map<string, string>();
  const published: Array<[string, unknown]> = [];
  const deps: HeartbeatDeps = {
    redis: {
      hset: async (key, field, value) => void hash.set(`${key}/${field}`, value),
      hdel: async (key, field) => void hash.delete(`${key}/${field}`),
    },
    bus: { publish: (subject, payload) => void published.push([subject, payload]) },
    names,
    identity: { agentId: 'a-1', roles: ['executor'], pid: 42, host: 'h', concurrency: 4, startedAt: '2025-01-01T00:00:00.000Z', version: '0.1.0' },
    counts: () => ({ inFlight: 1, completed: 5, failed: 2 }),
    intervalMs: 20,
    now: () => new Date('2025-01-01T00:00:10.000Z'),
    ...over,
  };
  return { hb: new HeartbeatService(deps), hash, published };
}

describe('HeartbeatService', () => {
  test('a beat writes the AgentHeartbeat to the agents hash and publishes it', async () => {
    const { hb, hash, published } = harness();
    await hb.beat();
    const stored = JSON.parse(hash.get(`${names.agentsKey}/a-1`)!);
    assert.deepEqual(AgentHeartbeatSchema.parse(stored), {
      agentId: 'a-1', roles: ['executor'], pid: 42, host: 'h', concurrency: 4, inFlight: 1, completed: 5, failed: 2,
      startedAt: '2025-01-01T00:00:00.000Z', at: '2025-01-01T00:00:10.000Z', version: '0.1.0',
    });
    assert.deepEqual(published, [[names.agentHeartbeatSubject, stored]]);
  });

  test('start beats at once and then periodically; stop deregisters', async () => {
    const { hb, hash, published } = harness();
    hb.start();
    await new Promise((r) => setTimeout(r, 75));
    assert.ok(published.length >= 3, `beats: ${published.length}`);
    await hb.stop();
    assert.equal(hash.size, 0);
    const n = published.length;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(published.length, n, 'no beat after stop');
  });

  test('beats do not pile up behind a slow Redis', async () => {
    let calls = 0;
    let release!: () => void;
    const { hb } = harness({
      redis: {
        hset: () => {
          calls++;
          return new Promise<void>((r) => (release = r));
        },
        hdel: async () => undefined,
      },
    });
    hb.start();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(calls, 1);
    release();
    await hb.stop();
  });
});
