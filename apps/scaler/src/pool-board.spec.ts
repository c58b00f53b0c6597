import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePool, toPoolView } from './pool-board.js';
import { PoolViewSchema } from './pools.schema.js';
import { DEFAULT_POOL_POLICY } from './scaling.policy.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const obs = (waiting: number, agents: number, busyAgents = 0) => ({ waiting, active: busyAgents, delayed: 1, agents, busyAgents });

test('first look at a pool with live agents and an empty queue: hold, recorded as the start', () => {
  const { record, change } = evaluatePool(undefined, 'executor', DEFAULT_POOL_POLICY, obs(0, 3), at(0));
  assert.equal(change, null);
  const view = PoolViewSchema.parse(toPoolView(record));
  assert.deepEqual(view.lastDecision, { at: at(0).toISOString(), from: 3, to: 3, direction: 'hold', reason: 'started watching: 3 running, 3 live agents' });
  assert.equal(view.desired, 3);
  assert.equal(view.actual, 3);
  assert.deepEqual(view.queue, { waiting: 0, active: 0, delayed: 1 });
  assert.match(view.lastCheck.reason, /cooling down/);
});

test('first look at an empty pool: up to min, reported as a change from 0', () => {
  const { record, change } = evaluatePool(undefined, 'reviewer', DEFAULT_POOL_POLICY, obs(0, 0), at(0));
  assert.deepEqual([change?.from, change?.to, change?.direction], [0, 1, 'up']);
  assert.deepEqual([record.lastDecision.from, record.lastDecision.to], [0, 1]);
});

test('the record carries the last change across holds', () => {
  let ev = evaluatePool(undefined, 'executor', DEFAULT_POOL_POLICY, obs(0, 1), at(0));
  ev = evaluatePool(ev.record, 'executor', DEFAULT_POOL_POLICY, obs(35, 1, 1), at(1_000));
  assert.deepEqual([ev.change?.from, ev.change?.to], [1, 5]);
  ev = evaluatePool(ev.record, 'executor', DEFAULT_POOL_POLICY, obs(0, 5), at(2_000));
  assert.equal(ev.change, null);
  const view = PoolViewSchema.parse(toPoolView(ev.record));
  assert.deepEqual([view.desired, view.lastDecision.from, view.lastDecision.to, view.lastDecision.at], [5, 1, 5, at(1_000).toISOString()]);
  assert.equal(view.lastCheck.at, at(2_000).toISOString());
  ev = evaluatePool(ev.record, 'executor', DEFAULT_POOL_POLICY, obs(0, 5), at(31_000));
  assert.deepEqual([ev.change?.direction, ev.record.state.desired], ['down', 1]);
});
