import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentHeartbeat } from '@muse/contracts';
import { WorkStealer, stealTargets, type VictimQueue } from './work-stealer.js';

const now = 1_000_000;
const alive = { at: new Date(now - 1000).toISOString(), concurrency: 2 };
const silent = { at: new Date(now - 60_000).toISOString(), concurrency: 2 };
const q = (owner: string, waiting: number, active: number, heartbeat?: VictimQueue['heartbeat']): VictimQueue => ({ queueRole: `executor@${owner}`, owner, waiting, active, ...(heartbeat ? { heartbeat } : {}) });
const base = { self: 'me', freeSlots: 1, ownWaiting: 0, nowMs: now, agentTtlMs: 6000 };

test('an agent with a free slot steals from a backlog behind a full worker, never from one that keeps up', () => {
  const queues = [q('busy', 3, 2, alive), q('coping', 1, 1, alive), q('idle', 0, 0, alive), q('me', 5, 2, alive)];
  assert.deepEqual(stealTargets({ ...base, queues }), { steal: [{ queueRole: 'executor@busy', reason: 'overloaded' }], forget: [] });
});

test('a silent agent\'s queue is adopted while it holds work (its stuck active job included) and forgotten once empty', () => {
  const queues = [q('dead', 0, 1, silent), q('gone', 2, 0), q('empty', 0, 0, silent)];
  assert.deepEqual(stealTargets({ ...base, queues }), {
    steal: [{ queueRole: 'executor@dead', reason: 'silent' }, { queueRole: 'executor@gone', reason: 'silent' }],
    forget: ['executor@empty'],
  });
});

test('no stealing without a free slot, or while work waits on the agent\'s own queue', () => {
  const queues = [q('busy', 3, 2, alive), q('dead', 1, 0, silent)];
  assert.deepEqual(stealTargets({ ...base, freeSlots: 0, queues }).steal, []);
  assert.deepEqual(stealTargets({ ...base, ownWaiting: 1, queues }).steal, []);
});

test('a tick reads heartbeats only when a role has other agents\' queues to judge (never under shared dispatch)', async () => {
  const reads = { sets: 0, heartbeats: 0, depth: 0 };
  const queuesOf: Record<string, string[]> = { planner: [], executor: [] };
  const stealer = new WorkStealer({
    agentId: 'me',
    roles: ['planner', 'executor'],
    intervalMs: 0,
    agentTtlMs: 6000,
    freeSlots: () => 1,
    agentQueues: async (roles) => (reads.sets++, roles.map((role) => queuesOf[role]!)),
    forgetQueue: async () => undefined,
    depth: async () => (reads.depth++, { waiting: 0, active: 0 }),
    heartbeats: async () => (reads.heartbeats++, [{ agentId: 'other', at: new Date().toISOString(), concurrency: 1 } as AgentHeartbeat]),
    startWorker: () => assert.fail('nothing to steal'),
    logger: { info: () => undefined, warn: (o: unknown) => assert.fail(JSON.stringify(o)), debug: () => undefined },
  });
  await stealer.tick();
  assert.deepEqual(reads, { sets: 1, heartbeats: 0, depth: 0 }, 'one read of the sets for both roles');
  queuesOf.planner = ['planner@other'];
  queuesOf.executor = ['executor@other'];
  await stealer.tick();
  assert.deepEqual(reads, { sets: 2, heartbeats: 1, depth: 4 }, 'one read of the sets and one of the heartbeats per tick, however many roles; own and victim depth per role');
});
