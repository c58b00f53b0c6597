import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ArtifactMeta, RunEvent } from '@muse/contracts';
import { buildLineage, runFacts } from './artifact-lineage.service.js';

const meta = (id: string, stepId: string): ArtifactMeta => ({
  id, name: `${stepId}.txt`, version: 1, digest: `sha256:${'a'.repeat(64)}`, size: 1, mediaType: 'text/plain',
  project: 'p', runId: 'run_1', stepId, attempt: 1, producer: { agentId: 'w' }, createdAt: 't',
});

let seq = 0;
const ev = (type: string, data: unknown) => ({ id: `e${++seq}`, runId: 'run_1', project: 'p', seq, at: 't', type, data }) as unknown as RunEvent;
const queued = (stepId: string, attempt = 1) => ev('step.queued', { stepId, attempt, role: 'r', jobId: `j-${stepId}-${attempt}` });
const completed = (stepId: string, ids: string[], attempt = 1) =>
  ev('step.completed', { stepId, attempt, agentId: 'w', output: null, artifacts: ids.map((id) => ({ ...meta(id, stepId), id })), finishedAt: 't' });

// plan -> build -> test, and docs (needs plan) never reached; lint (needs build) retried once.
const definition = {
  name: 'wf',
  steps: [
    { id: 'plan', agent: 'a', prompt: 'p' },
    { id: 'build', agent: 'a', prompt: 'p', needs: ['plan'] },
    { id: 'test', agent: 'a', prompt: 'p', needs: ['build'] },
    { id: 'lint', agent: 'a', prompt: 'p', needs: ['build'] },
    { id: 'docs', agent: 'a', prompt: 'p', needs: ['plan', 'test'] },
  ],
};
const events = [
  ev('run.created', { workflow: { name: 'wf', version: 1 }, definition, input: {} }),
  queued('plan'), completed('plan', ['art_plan']),
  queued('build'), completed('build', ['art_build']),
  queued('test'), queued('lint'), queued('lint', 2), completed('test', ['art_test']), completed('lint', ['art_lint'], 2),
];
const metas = new Map(['plan', 'build', 'test', 'lint'].map((s) => [`art_${s}`, meta(`art_${s}`, s)]));

test('lineage of the middle artifact: its producers upstream, its consumers (every queued attempt) downstream', () => {
  const l = buildLineage(meta('art_build', 'build'), runFacts('run_1', events), metas);
  assert.deepEqual(l.artifact.consumers, [
    { runId: 'run_1', stepId: 'test', attempt: 1 },
    { runId: 'run_1', stepId: 'lint', attempt: 1 },
    { runId: 'run_1', stepId: 'lint', attempt: 2 },
  ]);
  assert.deepEqual(l.upstream.map((n) => [n.stepId, n.artifacts.map((a) => a.id)]), [['plan', ['art_plan']]]);
  assert.deepEqual(l.downstream.map((n) => [n.stepId, n.attempt, n.inputs, n.artifacts.map((a) => a.id)]), [
    ['test', 1, ['build'], ['art_test']],
    ['lint', 2, ['build'], ['art_lint']],
  ]);
  assert.deepEqual(l.runs, ['run_1']);
});

test('the first artifact reaches every step downstream that ran, transitively, and nothing that never ran', () => {
  const l = buildLineage(meta('art_plan', 'plan'), runFacts('run_1', events), metas);
  assert.deepEqual(l.upstream, []);
  assert.deepEqual(l.downstream.map((n) => n.stepId), ['build', 'test', 'lint']);
  assert.deepEqual(l.artifact.consumers, [{ runId: 'run_1', stepId: 'build', attempt: 1 }]);
});

test('the last artifact has the whole chain upstream, nearest first', () => {
  const l = buildLineage(meta('art_test', 'test'), runFacts('run_1', events), metas);
  assert.deepEqual(l.upstream.map((n) => n.stepId), ['build', 'plan']);
  assert.deepEqual(l.downstream, []);
  assert.deepEqual(l.artifact.consumers, []);
});
