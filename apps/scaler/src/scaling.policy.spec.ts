import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_POOL_POLICY,
  applyDecision,
  decide,
  initialPoolState,
  neededWorkers,
  policyFor,
  type PoolObservation,
  type PoolPolicy,
  type PoolState,
} from './scaling.policy.js';

const policy: PoolPolicy = { ...DEFAULT_POOL_POLICY }; // min 1, max 8, up 10, down 2, cooldown 30 s
const obs = (waiting: number, busyAgents = 0, agents = busyAgents): PoolObservation => ({ waiting, active: busyAgents, delayed: 0, agents, busyAgents });
const at = (desired: number, changedAt = 0): PoolState => ({ desired, changedAt });
const LATER = 1_000_000; // well past any cooldown

test('defaults are the documented ones', () => {
  assert.deepEqual(DEFAULT_POOL_POLICY, {
    min: 1,
    max: 8,
    scaleUpThreshold: 10,
    scaleDownThreshold: 2,
    cooldownMs: 30_000,
    idleTimeoutMs: 0,
    kind: 'queueDepth',
    cpu: 0.8,
    memory: 0.8,
    targetPerMinute: 60,
  });
});

test('need: busy agents plus one per scaleUpThreshold waiting jobs, rounded up', () => {
  assert.equal(neededWorkers(policy, obs(0)), 0);
  assert.equal(neededWorkers(policy, obs(1)), 1);
  assert.equal(neededWorkers(policy, obs(10)), 1);
  assert.equal(neededWorkers(policy, obs(11)), 2);
  assert.equal(neededWorkers(policy, obs(25, 3)), 6);
});

test('scales up at once when the queue needs more', () => {
  const d = decide(policy, at(1, LATER), obs(25, 1), LATER); // cooldown has no say on growth
  assert.equal(d.direction, 'up');
  assert.equal(d.from, 1);
  assert.equal(d.to, 4);
  assert.equal(d.need, 4);
  assert.match(d.reason, /25 waiting, 1 of 1 agents busy: need 4/);
});

test('clamps to max and to min', () => {
  const up = decide(policy, at(2), obs(500, 2), LATER);
  assert.deepEqual([up.direction, up.to, up.need], ['up', 8, 52]);
  assert.match(up.reason, /clamped to 8/);

  const atMax = decide(policy, at(8), obs(500, 8), LATER);
  assert.deepEqual([atMax.direction, atMax.to], ['hold', 8]);

  const empty = decide(policy, at(0), obs(0), LATER);
  assert.deepEqual([empty.direction, empty.to], ['up', 1], 'an empty pool still gets its minimum');

  const idle = decide(policy, at(5), obs(0), LATER);
  assert.deepEqual([idle.direction, idle.to], ['down', 1], 'never below min');

  const zero = decide({ ...policy, min: 0 }, at(3), obs(0), LATER);
  assert.deepEqual([zero.direction, zero.to], ['down', 0], 'min 0 lets a pool scale to zero');
  const wake = decide({ ...policy, min: 0 }, at(0), obs(1), LATER);
  assert.deepEqual([wake.direction, wake.to], ['up', 1], 'and back from zero on the first job');
});

test('a desired size above max drops to max at once, cooldown or not', () => {
  const d = decide({ ...policy, max: 3 }, at(6, LATER), obs(100, 6), LATER);
  assert.deepEqual([d.direction, d.from, d.to], ['down', 6, 3]);
});

test('scales down only once the queue is at or below scaleDownThreshold', () => {
  // 5 busy agents keep their slots; the queue drains from 12 to 3 to 2.
  assert.equal(decide(policy, at(7), obs(12, 5), LATER).direction, 'hold');
  const three = decide(policy, at(7), obs(3, 5), LATER);
  assert.equal(three.direction, 'hold');
  assert.match(three.reason, /above the scale-down threshold \(3 > 2\)/);
  const two = decide(policy, at(7), obs(2, 5), LATER);
  assert.deepEqual([two.direction, two.to], ['down', 6]);
});

test('does not scale down within the cooldown after a change', () => {
  const changedAt = 100_000;
  const during = decide(policy, at(6, changedAt), obs(0), changedAt + 29_999);
  assert.equal(during.direction, 'hold');
  assert.match(during.reason, /cooling down, 1 s left/);
  const after = decide(policy, at(6, changedAt), obs(0), changedAt + 30_000);
  assert.deepEqual([after.direction, after.to], ['down', 1]);
});

test('no flapping: a burst, a lull inside the cooldown, and the pool holds', () => {
  let state = initialPoolState(obs(0, 0, 1), 0);
  const steps: Array<[number, PoolObservation, number]> = [
    [0, obs(0, 0, 1), 1],
    [5_000, obs(40, 1, 1), 5], // burst: up at once
    [10_000, obs(0, 0, 5), 5], // drained 5 s after the change: hold
    [20_000, obs(15, 2, 5), 5], // another burst: need 4 < 5, hold
    [30_000, obs(0, 0, 5), 5], // 25 s after the change: still cooling
    [35_000, obs(0, 0, 5), 1], // 30 s after: down to min
    [36_000, obs(0, 0, 1), 1],
  ];
  const seen: number[] = [];
  for (const [t, o, expect] of steps) {
    const d = decide(policy, state, o, t);
    state = applyDecision(state, d, t);
    seen.push(state.desired);
    assert.equal(state.desired, expect, `at ${t} ms: ${d.reason}`);
  }
  assert.deepEqual(seen, [1, 5, 5, 5, 5, 1, 1]);
});

test('a hold keeps the cooldown clock; a change restarts it', () => {
  const s = at(3, 1_000);
  assert.equal(applyDecision(s, decide(policy, s, obs(0, 3), 2_000), 2_000), s);
  const grown = applyDecision(s, decide(policy, s, obs(30, 3), 5_000), 5_000);
  assert.deepEqual(grown, { desired: 6, changedAt: 5_000, lowSince: null });
});

test('a new pool starts at its live size and shrinks nothing during the first cooldown', () => {
  const s = initialPoolState(obs(0, 0, 4), 50_000);
  assert.deepEqual(s, { desired: 4, changedAt: 50_000, lowSince: null });
  assert.equal(decide(policy, s, obs(0, 0, 4), 60_000).direction, 'hold');
  assert.equal(decide(policy, s, obs(0, 0, 4), 80_000).direction, 'down');
});

test('policyFor merges defaults, * and the role, and rejects min > max', () => {
  assert.deepEqual(policyFor('executor'), DEFAULT_POOL_POLICY);
  const overrides = { '*': { max: 4 }, optimizer: { max: 3, cooldownMs: 0 }, executor: { min: 2, max: 16 } };
  assert.equal(policyFor('reviewer', overrides).max, 4);
  assert.deepEqual(policyFor('optimizer', overrides), { ...DEFAULT_POOL_POLICY, max: 3, cooldownMs: 0 });
  assert.deepEqual([policyFor('executor', overrides).min, policyFor('executor', overrides).max], [2, 16]);
  assert.throws(() => policyFor('x', { x: { min: 9 } }), /min must not exceed max/);
});

test('idleTimeout: the pool shrinks only after wanting to for that long without a break', () => {
  const p: PoolPolicy = { ...policy, cooldownMs: 1_000, idleTimeoutMs: 10_000 };
  let state: PoolState = { desired: 4, changedAt: 0, lowSince: null };
  const step = (t: number, o: PoolObservation) => {
    const d = decide(p, state, o, t);
    state = applyDecision(state, d, t);
    return d;
  };
  assert.equal(step(2_000, obs(0)).direction, 'hold'); // idle clock starts
  assert.match(step(8_000, obs(0)).reason, /idle 6 s of 10 s/);
  assert.equal(step(9_000, obs(5, 3)).direction, 'hold'); // work again: the idle clock stops
  assert.equal(state.lowSince, null);
  assert.equal(step(10_000, obs(0)).direction, 'hold'); // starts again
  assert.equal(step(19_999, obs(0)).direction, 'hold');
  const down = step(20_000, obs(0));
  assert.deepEqual([down.direction, down.to], ['down', 1]);
  assert.match(down.reason, /idle 10 s/);
});

test('resource policy: the HPA formula over mean CPU and memory, at least one while work waits', () => {
  const p: PoolPolicy = { ...policy, kind: 'resource', cpu: 0.5, memory: 0.8, cooldownMs: 0 };
  const o = (agents: number, cpu: number, memory: number, waiting = 0): PoolObservation => ({ waiting, active: 0, delayed: 0, agents, busyAgents: agents, cpu, memory });
  assert.equal(neededWorkers(p, o(2, 1.0, 0.1)), 4, 'cpu at twice the target doubles the pool');
  assert.equal(neededWorkers(p, o(2, 0.2, 0.8)), 2, 'memory exactly at the target holds');
  assert.equal(neededWorkers(p, o(4, 0.1, 0.1)), 1, 'a cold pool shrinks');
  assert.equal(neededWorkers(p, { waiting: 3, active: 0, delayed: 0, agents: 0, busyAgents: 0 }), 1, 'no agents, work waiting: one');
  const d = decide(p, at(2), o(2, 1.0, 0.1), LATER);
  assert.deepEqual([d.direction, d.to], ['up', 4]);
  assert.match(d.reason, /cpu 100% \(target 50%\)/);
});

test('throughput policy: arrivals plus backlog over the per-worker rate', () => {
  const p: PoolPolicy = { ...policy, kind: 'throughput', targetPerMinute: 30 };
  const o = (completedPerMinute: number, waiting: number): PoolObservation => ({ waiting, active: 0, delayed: 0, agents: 2, busyAgents: 2, completedPerMinute });
  assert.equal(neededWorkers(p, o(60, 0)), 2);
  assert.equal(neededWorkers(p, o(60, 45)), 4);
  assert.equal(neededWorkers(p, o(0, 0)), 0);
  assert.match(decide(p, at(2), o(60, 45), LATER).reason, /60\/min done \+ 45 waiting at 30\/min per agent: need 4/);
});

test('policyFor rejects a bad kind and out-of-range targets', () => {
  assert.throws(() => policyFor('x', { x: { kind: 'magic' as never } }));
  assert.throws(() => policyFor('x', { x: { memory: 1.5 } }));
});
