/** Keyed concurrency limits and sub-workflow steps in the pure engine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childRunId, type RunEvent, type StepReport, type WorkflowDefinition } from '@muse/contracts';
import { RunTransition, buildStepJob, type EngineDefaults } from './transition.js';
import type { RunState } from './state.js';
import { validateWorkflow } from './dag.js';
import { toRunView } from './view.js';
import { missingInputs } from './inputs.js';

const defaults: EngineDefaults = { maxAttempts: 3, timeoutMs: 1000 };
const now = () => '2026-01-01T00:00:00.000Z';
type Run = { state: RunState | undefined; log: RunEvent[] };

function start(def: WorkflowDefinition, input: Record<string, unknown> = {}): Run {
  const tx = new RunTransition(undefined, now, () => 0.5);
  tx.submit({ kind: 'run-submit', runId: 'r', project: 'p', workflow: { name: def.name, version: 1 }, definition: def, input, submittedAt: now() }, defaults);
  return { state: tx.state, log: [...tx.events] };
}

function step(run: Run, fn: (tx: RunTransition) => void): RunEvent[] {
  const tx = new RunTransition(run.state, now, () => 0.5);
  fn(tx);
  run.state = tx.state;
  run.log.push(...tx.events);
  return tx.events;
}

const report = (run: Run, stepId: string, attempt: number, outcome: StepReport['outcome'], extra: Partial<StepReport> = {}) =>
  step(run, (tx) => tx.report({ kind: 'step-report', runId: 'r', project: 'p', stepId, attempt, agentId: 'w', outcome, at: now(), ...extra }, defaults));
const grant = (run: Run, stepId?: string) => step(run, (tx) => tx.admit({ kind: 'concurrency-grant', runId: 'r', project: 'p', ...(stepId ? { stepId } : {}) }, defaults));
const shell = (id: string, extra: Record<string, unknown> = {}) => ({ id, tool: 'shell' as const, command: `echo ${id}`, ...extra });
const types = (evs: RunEvent[]) => evs.map((e) => ('stepId' in e.data && e.data.stepId !== undefined ? `${e.type}:${e.data.stepId}` : e.type));

test('a workflow-level limit holds the whole run waiting, with its key and the reason, until a slot is granted', () => {
  const run = start({ name: 'w', concurrency: { key: '"repo:" + input.repo', limit: 1 }, steps: [shell('a')] }, { repo: 'muse' });
  assert.deepEqual(types(run.log), ['run.created', 'run.started', 'concurrency.waiting']);
  const w = run.log.at(-1)!;
  assert.ok(w.type === 'concurrency.waiting');
  assert.deepEqual(w.data, { key: 'repo:muse', limit: 1 });
  assert.equal(run.state!.status, 'waiting');
  assert.match(toRunView(run.state!).reason ?? '', /concurrency slot: key "repo:muse" allows 1/);
  // A report or a decision on a run still waiting starts nothing.
  assert.deepEqual(types(report(run, 'a', 1, 'completed')), []);
  assert.deepEqual(types(grant(run)), ['concurrency.admitted', 'step.queued:a']);
  assert.equal(run.state!.status, 'running');
  // A second grant is a no-op.
  assert.deepEqual(types(grant(run)), []);
});

test('a step-level limit makes only that step wait (visibly), then it runs and its retries keep the slot', () => {
  const run = start({ name: 'w', steps: [shell('a'), shell('b', { needs: ['a'], concurrency: { key: 'input.env', limit: 2 }, retry: { maxAttempts: 2, backoff: { initialMs: 0 } } })] }, { env: 'prod' });
  assert.deepEqual(types(report(run, 'a', 1, 'completed')), ['step.completed:a', 'concurrency.waiting:b']);
  assert.equal(run.state!.steps.b!.status, 'waiting');
  const view = toRunView(run.state!);
  assert.match(view.steps[1]!.reason ?? '', /key "prod" allows 2/);
  assert.match(view.reason ?? '', /step "b"/);
  // An approval decision cannot release a step that waits for a slot.
  assert.deepEqual(types(step(run, (tx) => tx.decide({ kind: 'approval-decision', runId: 'r', project: 'p', stepId: 'b', decision: 'approve', by: 'x', at: now() }, defaults))), []);
  assert.deepEqual(types(grant(run, 'b')), ['concurrency.admitted:b', 'step.queued:b']);
  assert.deepEqual(types(report(run, 'b', 1, 'failed', { error: { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'x', retryable: true } })), ['step.failed:b', 'step.queued:b']);
  assert.deepEqual(types(report(run, 'b', 2, 'completed')), ['step.completed:b', 'run.completed']);
});

test('a key that does not evaluate fails the step (or run) with MUSE_ERR_STEP_CONDITION; registration checks the key', () => {
  const run = start({ name: 'w', steps: [shell('a', { concurrency: { key: 'input.missing', limit: 1 } })] }, {});
  const failed = run.log.find((e) => e.type === 'step.failed');
  assert.ok(failed?.type === 'step.failed');
  assert.equal(failed.data.error.code, 'MUSE_ERR_STEP_CONDITION');
  assert.equal(run.state!.status, 'failed');
  const bad = validateWorkflow({ name: 'w', concurrency: { key: '[1, 2]', limit: 1 }, steps: [shell('a', { concurrency: { key: 'input.x ==', limit: 1 } })] });
  assert.equal(bad.ok, false);
  assert.deepEqual(!bad.ok && bad.issues.map((i) => i.path).sort(), ['concurrency.key', 'steps.0.concurrency.key']);
  const numberCap = validateWorkflow({ name: 'w', steps: [shell('a', { concurrency: 3 })] });
  assert.equal(numberCap.ok, false, 'a numeric concurrency still needs forEach');
});

test('a re-driven run asks for its slot again (the failure gave it back)', () => {
  const run = start({ name: 'w', concurrency: { key: 'input.k', limit: 1 }, steps: [shell('a', { retry: { maxAttempts: 1 } })] }, { k: 'x' });
  grant(run);
  assert.deepEqual(types(report(run, 'a', 1, 'failed', { error: { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'x', retryable: true } })), ['step.failed:a', 'run.failed']);
  const evs = step(run, (tx) => tx.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'retry' }, defaults));
  assert.deepEqual(types(evs), ['run.retried', 'concurrency.waiting']);
  assert.deepEqual(types(grant(run)), ['concurrency.admitted', 'step.queued:a']);
});

test('a sub-workflow step is queued as its child run (a derived id) with its input rendered, and completes with the child output', () => {
  const def: WorkflowDefinition = {
    name: 'parent',
    steps: [shell('plan'), { id: 'build', workflow: { name: 'child', version: 2 }, input: { repo: '{{ input.repo }}', plan: '{{ steps.plan.output }}', label: 'for {{ input.repo }}' }, needs: ['plan'] }, shell('after', { needs: ['build'], command: 'echo {{ steps.build.output.result }}' })],
  };
  assert.equal(validateWorkflow(def).ok, true);
  const run = start(def, { repo: 'muse' });
  const queued = report(run, 'plan', 1, 'completed', { output: { exitCode: 0, stdout: 'p' } }).find((e) => e.type === 'step.queued');
  assert.ok(queued?.type === 'step.queued');
  assert.equal(queued.data.role, 'workflow');
  assert.equal(queued.data.jobId, childRunId('r', 'build', 1));
  assert.match(queued.data.jobId, /^run_[0-9a-f]{26}$/);
  assert.equal(run.state!.steps.build!.childRunId, undefined, 'no child run until the coordinator started one');
  const job = buildStepJob(run.state!, 'build', 1, defaults);
  assert.ok(job.ok);
  assert.equal(job.job.kind, 'workflow');
  assert.deepEqual(job.job.workflow, { name: 'child', version: 2 });
  // A whole tag passes the value as it is; a tag inside text renders as text.
  assert.deepEqual(job.job.input, { repo: 'muse', plan: { exitCode: 0, stdout: 'p' }, label: 'for muse' });
  report(run, 'build', 1, 'started', { agentId: queued.data.jobId });
  assert.equal(toRunView(run.state!).steps[1]!.childRunId, queued.data.jobId);
  assert.deepEqual(types(report(run, 'build', 1, 'completed', { agentId: queued.data.jobId, output: { result: 42 } })), ['step.completed:build', 'step.queued:after']);
  const after = buildStepJob(run.state!, 'after', 1, defaults);
  assert.ok(after.ok && after.job.command === 'echo 42');
});

test('a child run records its parent; sub-workflow fields are checked at registration', () => {
  const tx = new RunTransition(undefined, now);
  tx.submit({ kind: 'run-submit', runId: 'c', project: 'p', workflow: { name: 'child', version: 1 }, definition: { name: 'child', steps: [shell('x')] }, input: {}, parent: { runId: 'r', stepId: 'build', attempt: 1, depth: 1 }, submittedAt: now() }, defaults);
  assert.deepEqual(toRunView(tx.state!).parent, { runId: 'r', stepId: 'build' });
  const bad = validateWorkflow({
    name: 'w',
    steps: [
      { id: 'a', workflow: { name: 'Bad Name' } },
      { id: 'b', workflow: { name: 'child' }, prompt: 'x', agent: 'reviewer' },
      { id: 'c', workflow: { name: 'child' }, input: { x: '{{ steps.nope.output }}' } },
      shell('d', { input: { x: 1 } }),
    ],
  });
  assert.equal(bad.ok, false);
  const paths = !bad.ok ? bad.issues.map((i) => i.path) : [];
  assert.ok(paths.includes('steps.0.workflow.name'), paths.join());
  assert.ok(paths.some((p) => p.startsWith('steps.1.')), paths.join());
  assert.ok(paths.includes('steps.3.input'), paths.join());
  const graph = validateWorkflow({ name: 'w', steps: [{ id: 'c', workflow: { name: 'child' }, input: { x: '{{ steps.nope.output }}' } }] });
  assert.equal(graph.ok, false);
  assert.deepEqual(!graph.ok && graph.issues.map((i) => i.path), ['steps.0.input.x']);
  // What a sub-workflow step's input reads from the run's input is required at submission.
  assert.deepEqual(missingInputs({ name: 'w', steps: [{ id: 'c', workflow: { name: 'child' }, input: { x: '{{ input.repo }}' } }] }, {}).map((i) => i.path), ['input.repo']);
});

test('a step with locks waits for its leases after any concurrency slot, then runs; a re-driven step asks again', () => {
  const run = start({ name: 'w', steps: [shell('edit', { locks: ['repo:web/src/**', 'file:README.md'], concurrency: { key: '"k"', limit: 1 }, retry: { maxAttempts: 1 } })] });
  assert.deepEqual(types(run.log.slice(2)), ['concurrency.waiting:edit']);
  assert.deepEqual(types(grant(run, 'edit')), ['concurrency.admitted:edit', 'lease.waiting:edit']);
  assert.equal(run.state!.steps.edit!.status, 'waiting');
  assert.match(toRunView(run.state!).steps[0]!.reason ?? '', /waiting for leases on repo:web\/src\/\*\*, file:README.md/);
  const lease = (token: number) => step(run, (tx) => tx.grantLease({ kind: 'lease-grant', runId: 'r', project: 'p', stepId: 'edit', token }, defaults));
  assert.deepEqual(types(lease(7)), ['lease.granted:edit', 'step.queued:edit']);
  assert.equal(run.state!.steps.edit!.lease?.token, 7);
  assert.deepEqual(types(lease(8)), [], 'a second grant changes nothing');
  report(run, 'edit', 1, 'failed', { error: { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'x', retryable: true } });
  assert.equal(run.state!.status, 'failed');
  const evs = step(run, (tx) => tx.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'retry' }, defaults));
  assert.deepEqual(types(evs), ['run.retried', 'concurrency.waiting:edit']);
  assert.equal(validateWorkflow({ name: 'w', steps: [shell('a', { locks: ['no-kind'] })] }).ok, false);
  assert.equal(validateWorkflow({ name: 'w', steps: [{ id: 'g', type: 'approval', locks: ['file:a'] }] }).ok, false);
});
