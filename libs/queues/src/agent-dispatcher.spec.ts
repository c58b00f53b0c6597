import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDispatchTable, type AgentHeartbeat, type StepJob } from '@muse/contracts';
import { AgentDispatcher, chooseAgent, dispatchCandidates } from './agent-dispatcher.js';
import { StepQueues } from './step-queues.js';
import { specRedis } from './spec-redis.js';

const c = (agentId: string, inFlight = 0, queued = 0) => ({ agentId, inFlight, queued });

test('round-robin takes turns over the agents in id order; least-loaded counts running and queued jobs', () => {
  const agents = [c('b', 3), c('a', 1, 1), c('c', 0, 1)];
  assert.deepEqual([0, 1, 2, 3, 4].map((turn) => chooseAgent('round-robin', agents, { turn })), ['a', 'b', 'c', 'a', 'b']);
  assert.equal(chooseAgent('least-loaded', agents, { turn: 0 }), 'c');
  assert.equal(chooseAgent('least-loaded', [c('b', 1), c('a', 0, 1)], { turn: 0 }), 'a', 'ties go to the smaller id');
  assert.equal(chooseAgent('shared', agents, { turn: 0 }), undefined);
  assert.equal(chooseAgent('least-loaded', [], { turn: 0 }), undefined, 'nobody live: the role queue');
});

test('affinity keeps a run on its agent while that agent is a candidate, else falls back to least-loaded', () => {
  const agents = [c('a', 4), c('b', 0)];
  assert.equal(chooseAgent('affinity', agents, { turn: 0, preferAgent: 'a' }), 'a');
  assert.equal(chooseAgent('affinity', agents, { turn: 0, preferAgent: 'gone' }), 'b');
  assert.equal(chooseAgent('affinity', agents, { turn: 0 }), 'b');
});

test('candidates are live local agents of the role whose id can name a queue', () => {
  const hb = (agentId: string, at: number, extra: Partial<AgentHeartbeat> = {}): AgentHeartbeat => ({
    agentId, roles: ['reviewer'], pid: 1, host: 'h', concurrency: 2, inFlight: 0, completed: 0, failed: 0, startedAt: new Date(0).toISOString(), at: new Date(at).toISOString(), version: '0', ...extra,
  });
  const now = 100_000;
  const all = [hb('ok', now - 1000), hb('stale', now - 7000), hb('remote', now, { remote: true }), hb('other-role', now, { roles: ['executor'] }), hb('bad:id', now)];
  assert.deepEqual(dispatchCandidates(all, 'reviewer', now, 6000).map((h) => h.agentId), ['ok']);
});

test('MUSE_DISPATCH: role=strategy pairs and a default; a bad pair names itself', () => {
  assert.deepEqual(parseDispatchTable(''), { byRole: {}, fallback: 'shared' });
  assert.deepEqual(parseDispatchTable('reviewer=round-robin, *=least-loaded'), { byRole: { reviewer: 'round-robin' }, fallback: 'least-loaded' });
  assert.throws(() => parseDispatchTable('reviewer=fastest'), /"reviewer=fastest": strategy must be one of shared, round-robin, least-loaded, affinity/);
  assert.throws(() => parseDispatchTable('Reviewer=shared'), /expected role=strategy/);
  assert.throws(() => parseDispatchTable('reviewer'), /expected role=strategy/);
});

// Real Redis: the choice is stored once per job, and an agent's queue is forgotten only while it holds nothing.
const { redis, names } = specRedis();

test('a targeted job goes to the chosen agent\'s own queue, and again there when enqueued twice (no copy elsewhere)', async () => {
  const beat = (agentId: string): AgentHeartbeat => ({ agentId, roles: ['executor'], pid: 1, host: 'h', concurrency: 1, inFlight: 0, completed: 0, failed: 0, startedAt: new Date().toISOString(), at: new Date().toISOString(), version: '0' });
  await redis.hset(names.agentsKey, 'w1', JSON.stringify(beat('w1')), 'w2', JSON.stringify(beat('w2')));
  const queues = new StepQueues(redis, names);
  const dispatcher = new AgentDispatcher(redis, names, parseDispatchTable('executor=round-robin'), { agentTtlMs: 6000, registryCacheMs: 0 }, (q) => queues.depth(q));
  queues.useDispatcher(dispatcher);
  try {
    const job = (stepId: string) => ({ runId: 'run_x', project: 'p', stepId, attempt: 1, role: 'executor', kind: 'shell' }) as unknown as StepJob;
    await queues.enqueue(job('s1'));
    await queues.enqueue(job('s2'));
    await queues.enqueue(job('s1')); // a coordinator re-driving after a crash
    const where = (jobId: string) => dispatcher.queueOf('executor', jobId);
    const q1 = await where('run_x.s1.1');
    const q2 = await where('run_x.s2.1');
    assert.ok(q1 && q2 && q1 !== q2, `two agents took turns: ${q1} / ${q2}`);
    assert.deepEqual((await redis.smembers(names.dispatchQueuesKey('executor'))).sort(), ['executor@w1', 'executor@w2']);
    const sets = await queues.agentQueues(['reviewer', 'executor']);
    assert.deepEqual(sets.map((s) => [...s].sort()), [[], ['executor@w1', 'executor@w2']], 'each role\'s set, in the order asked (none for a role nobody targets)');
    const counts = await Promise.all(['executor@w1', 'executor@w2', 'executor'].map((q) => queues.depth(q)));
    assert.deepEqual(counts.map((d) => d.waiting), [1, 1, 0], 'one copy of each job, none on the role queue');
    assert.equal((await queues.roleDepth('executor')).waiting, 2, 'the role depth counts the agents\' queues');

    assert.deepEqual(await queues.jobState('executor', 'run_x.s1.1'), { state: 'waiting' }, "a step watch finds the job on the agent's queue");
    assert.deepEqual(await queues.jobState('executor', 'run_x.nothing.1'), { state: 'unknown' });
    assert.equal(await queues.forgetAgentQueue('executor', 'executor@w1'), false, 'a queue with a job is kept');
    await queues.remove('executor', 'run_x.s1.1');
    await queues.remove('executor', 'run_x.s2.1');
    assert.equal((await queues.roleDepth('executor')).waiting, 0, 'remove finds the job on the agent\'s queue');
    assert.equal(await queues.forgetAgentQueue('executor', 'executor@w1'), true);
    assert.deepEqual(await redis.smembers(names.dispatchQueuesKey('executor')), ['executor@w2']);
  } finally {
    await queues.close();
  }
});
