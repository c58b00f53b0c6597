import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { MuseError, RunSubmitCommandSchema, RunViewSchema, type WorkflowDefinition } from '@muse/contracts';
import { checkRunInput, initialRunView, parseSubmitBody, submitCommand, traceparentOf } from './submit-run.js';

const def: WorkflowDefinition = parse(`
name: code-review
steps:
  - id: plan
    agent: orchestrator
    prompt: "Plan a change to {{ input.repo }}"
  - id: lint
    tool: shell
    command: "echo linting {{ input.repo }} {{ input.opts.level }}"
    needs: [plan]
output: "{{ steps.lint.output.stdout }}"
`);

const errorOf = (fn: () => unknown): MuseError => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MuseError);
    return err;
  }
  assert.fail('expected a throw');
};

test('parseSubmitBody: by name, with or without version and input', () => {
  assert.deepEqual(parseSubmitBody({ workflow: 'code-review' }), { kind: 'registered', workflow: 'code-review', input: {} });
  assert.deepEqual(parseSubmitBody({ workflow: 'code-review', version: 2, input: { repo: 'r' } }), {
    kind: 'registered',
    workflow: 'code-review',
    version: 2,
    input: { repo: 'r' },
  });
});

test('parseSubmitBody: inline definitions are validated like registrations', () => {
  const ok = parseSubmitBody({ definition: def, input: { repo: 'r' } });
  assert.equal(ok.kind, 'inline');
  const bad = structuredClone(def);
  bad.steps[0]!.needs = ['lint'];
  const err = errorOf(() => parseSubmitBody({ definition: bad }));
  assert.equal(err.code, 'MUSE_ERR_WORKFLOW_INVALID');
  assert.match((err.details as { issues: Array<{ path: string }> }).issues[0]!.path, /^definition\.steps\./);
});

test('parseSubmitBody: unknown fields, mixed variants, wrong types and no body are MUSE_ERR_REQUEST_INVALID', () => {
  for (const body of [
    { workflow: 'x', extra: 1 },
    { workflow: 'x', definition: def },
    { definition: def, version: 1 },
    { workflow: 'x', version: 0 },
    { workflow: 'x', input: [] },
    { workflow: '' },
    [],
    'text',
    undefined,
  ]) {
    const err = errorOf(() => parseSubmitBody(body));
    assert.equal(err.code, 'MUSE_ERR_REQUEST_INVALID', JSON.stringify(body));
    assert.ok(Array.isArray((err.details as { issues: unknown[] }).issues));
  }
});

test('checkRunInput: every input path the templates read must be given', () => {
  checkRunInput(def, { repo: 'r', opts: { level: 0 } });
  const err = errorOf(() => checkRunInput(def, { opts: {} }));
  assert.equal(err.code, 'MUSE_ERR_RUN_INPUT_INVALID');
  const issues = (err.details as { issues: Array<{ path: string; stepId?: string; field?: string }> }).issues;
  assert.deepEqual(
    issues.map((i) => [i.path, i.stepId, i.field]),
    [
      ['input.repo', 'plan', 'prompt'],
      ['input.opts.level', 'lint', 'command'],
    ],
  );
});

test('the initial view and the command fit the contracts', () => {
  const run = { runId: 'run_x', project: 'p', workflow: { name: 'code-review', version: 3 }, definition: def, input: { repo: 'r' }, at: '2025-01-01T00:00:00.000Z' };
  const view = RunViewSchema.parse(initialRunView(run));
  assert.equal(view.status, 'pending');
  assert.equal(view.seq, 0);
  assert.deepEqual(view.steps, [
    { id: 'plan', status: 'pending', attempts: 0 },
    { id: 'lint', status: 'pending', attempts: 0 },
  ]);
  const cmd = RunSubmitCommandSchema.parse(submitCommand({ ...run, idempotencyKey: 'k' }));
  assert.equal(cmd.idempotencyKey, 'k');
  assert.equal(cmd.traceparent, undefined);
});

test('traceparentOf keeps only well-formed W3C headers', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  assert.equal(traceparentOf(tp), tp);
  assert.equal(traceparentOf('garbage'), undefined);
  assert.equal(traceparentOf(undefined), undefined);
});
