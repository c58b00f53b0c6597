/** Reading registered workflows against the real Redis (own namespace, removed after). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { specRedis } from './spec-redis.js';
import { parseWorkflowDefinition, resolveWorkflow } from './workflow-store.js';

const { redis, names } = specRedis();

const def = (prompt: string) => ({ name: 'wf', steps: [{ id: 'a', agent: 'executor', prompt }] });
const meta = (n: number) => JSON.stringify({ digest: `sha256:${n}`, createdAt: `2026-01-0${n}T00:00:00.000Z` });

test('the latest version, a named one, and none: the latest in one round trip, as stored', async () => {
  const key = names.workflowKey('p', 'wf');
  await redis.hset(key, 'latest', '2', 'meta:1', meta(1), 'def:1', JSON.stringify(def('one')), 'meta:2', meta(2), 'def:2', JSON.stringify(def('two')));
  const latest = await resolveWorkflow(redis, names, 'p', 'wf');
  assert.deepEqual([latest?.version, latest?.digest, latest?.createdAt, latest?.definition.steps[0]?.prompt], [2, 'sha256:2', '2026-01-02T00:00:00.000Z', 'two']);
  const first = await resolveWorkflow(redis, names, 'p', 'wf', 1);
  assert.deepEqual([first?.version, first?.definition.steps[0]?.prompt], [1, 'one']);
  assert.equal(await resolveWorkflow(redis, names, 'p', 'other'), null, 'no such workflow');
  assert.equal(await resolveWorkflow(redis, names, 'p', 'wf', 3), null, 'no such version');
  assert.equal(await resolveWorkflow(redis, names, 'p', 'Not A Name!'), null, 'not a workflow name');
  await redis.hset(key, 'latest', '3');
  assert.equal(await resolveWorkflow(redis, names, 'p', 'wf'), null, 'a latest pointing at a missing version');
  await redis.hset(key, 'def:3', '{"name":"wf","steps":"nope"}', 'meta:3', meta(3));
  await assert.rejects(resolveWorkflow(redis, names, 'p', 'wf'), 'a bad stored definition is an error, never an answer');
});

test('a definition parsed again is a copy of its own: one caller\'s change never reaches the next', () => {
  const raw = JSON.stringify(def('memo'));
  const a = parseWorkflowDefinition(raw);
  a.steps[0]!.prompt = 'changed';
  const b = parseWorkflowDefinition(raw);
  assert.equal(b.steps[0]!.prompt, 'memo');
  assert.notEqual(a, b);
});
