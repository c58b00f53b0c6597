import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { MuseError } from '@muse/contracts';
import { requireValidWorkflow } from './workflow-definition.js';

const codeReview = parse(`
name: code-review
steps:
  - id: plan
    agent: orchestrator
    prompt: "Plan a change to {{ input.repo }}"
  - id: lint
    tool: shell
    command: "echo linting {{ input.repo }}"
    needs: [plan]
  - id: review
    agent: reviewer
    needs: [plan, lint]
    prompt: "Review the plan: {{ steps.plan.output.text }} / lint said {{ steps.lint.output.stdout }}"
output: "{{ steps.review.output.text }}"
`);

function issuesOf(raw: unknown, prefix?: string): Array<{ path: string; stepId?: string; field?: string; message: string }> {
  try {
    requireValidWorkflow(raw, prefix);
  } catch (err) {
    assert.ok(err instanceof MuseError);
    assert.equal(err.code, 'MUSE_ERR_WORKFLOW_INVALID');
    return (err.details as { issues: Array<{ path: string; stepId?: string; field?: string; message: string }> }).issues;
  }
  assert.fail('expected invalid');
}

test('the code-review example is valid', () => {
  assert.equal(requireValidWorkflow(codeReview).steps.length, 3);
});

test('a cycle names the step and the needs field', () => {
  const def = structuredClone(codeReview);
  def.steps[0].needs = ['review'];
  const [issue] = issuesOf(def);
  assert.equal(issue?.field, 'needs');
  assert.ok(issue?.stepId);
  assert.match(issue!.message, /cycle/);
});

test('a schema issue names step and field, and the prefix places it in the body', () => {
  const def = structuredClone(codeReview);
  delete def.steps[1].command;
  const [issue] = issuesOf(def, 'definition.');
  assert.equal(issue?.stepId, 'lint');
  assert.equal(issue?.field, 'command');
  assert.equal(issue?.path, 'definition.steps.1.command');
});

test('a missing definition is invalid, not a crash', () => {
  assert.equal(issuesOf(undefined).length, 1);
});

test('a version in a path is a positive integer, else MUSE_ERR_REQUEST_INVALID', async () => {
  const { parseVersionParam } = await import('./workflows.controller.js');
  assert.equal(parseVersionParam('1'), 1);
  assert.equal(parseVersionParam('42'), 42);
  for (const bad of ['0', '-1', '1.5', 'abc', '01', '1e3', '9'.repeat(20)]) {
    assert.throws(() => parseVersionParam(bad), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_REQUEST_INVALID', bad);
  }
});
