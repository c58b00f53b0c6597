import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateWorkflow, topologicalOrder } from './dag.js';

const review = {
  name: 'code-review',
  steps: [
    { id: 'plan', agent: 'orchestrator', prompt: 'Plan a change to {{ input.repo }}' },
    { id: 'lint', tool: 'shell', command: 'echo linting {{ input.repo }}', needs: ['plan'] },
    { id: 'review', agent: 'reviewer', needs: ['plan', 'lint'], prompt: 'Review {{ steps.plan.output.text }} / {{ steps.lint.output.stdout }}' },
  ],
  output: '{{ steps.review.output.text }}',
};

function issuesOf(raw: unknown) {
  const res = validateWorkflow(raw);
  assert.equal(res.ok, false, 'expected the definition to be rejected');
  return (res as { issues: Array<{ stepId?: string; field?: string; message: string; path: string }> }).issues;
}

test('accepts the code-review workflow', () => {
  const res = validateWorkflow(review);
  assert.equal(res.ok, true);
});

test('rejects a cycle and names a step on it', () => {
  const raw = structuredClone(review);
  raw.steps[0]!.needs = ['review'];
  const issues = issuesOf(raw);
  assert.equal(issues.length, 1);
  assert.equal(issues[0]!.field, 'needs');
  assert.match(issues[0]!.message, /cycle: (plan|lint|review) -> .* -> \1/);
});

test('rejects unknown needs, naming step and field', () => {
  const raw = structuredClone(review);
  raw.steps[1]!.needs = ['plan', 'nope'];
  const issues = issuesOf(raw);
  assert.deepEqual(issues.map((i) => [i.stepId, i.field, i.path]), [['lint', 'needs', 'steps.1.needs.1']]);
  assert.match(issues[0]!.message, /unknown step "nope"/);
});

test('rejects duplicate ids', () => {
  const raw = structuredClone(review);
  raw.steps[2]!.id = 'lint';
  const issues = issuesOf(raw);
  assert.ok(issues.some((i) => i.field === 'id' && /duplicate step id "lint"/.test(i.message)));
});

test('rejects unknown fields with the step and field named', () => {
  const raw = structuredClone(review) as { steps: Array<Record<string, unknown>> };
  raw.steps[1]!.comand = 'typo';
  const issues = issuesOf(raw);
  assert.deepEqual(issues.map((i) => [i.stepId, i.field]), [['lint', 'comand']]);
});

test('rejects bad templates: syntax, unknown roots, unknown steps, steps not needed', () => {
  const cases: Array<[string, RegExp]> = [
    ['Plan {{ input.repo', /unclosed/],
    ['Plan {{ }}', /empty template/],
    ['Plan {{ env.HOME }}', /must start with input\. or steps\./],
    ['Plan {{ steps.ghost.output.text }}', /unknown step "ghost"/],
    ['Plan {{ steps.review.output.text }}', /not in its needs/],
    ['Plan {{ input.a b }}', /is not a path/],
  ];
  for (const [prompt, re] of cases) {
    const raw = structuredClone(review);
    raw.steps[0]!.prompt = prompt;
    const issues = issuesOf(raw);
    assert.equal(issues[0]!.stepId, 'plan', prompt);
    assert.equal(issues[0]!.field, 'prompt', prompt);
    assert.match(issues[0]!.message, re, prompt);
  }
});

test('an agent step needs agent and prompt; a tool step needs a command', () => {
  const issues = issuesOf({ name: 'x', steps: [{ id: 'a', prompt: 'hi' }, { id: 'b', tool: 'shell' }] });
  assert.deepEqual(issues.map((i) => [i.stepId, i.field]).sort(), [['a', 'agent'], ['b', 'command']]);
});

test('rejects bad names and ids', () => {
  const issues = issuesOf({ name: 'Bad Name', steps: [{ id: 'A!', agent: 'reviewer', prompt: 'x' }] });
  assert.deepEqual(issues.map((i) => i.path).sort(), ['name', 'steps.0.id']);
});

test('topological order puts every step after its needs', () => {
  const order = topologicalOrder({
    name: 'w',
    steps: [
      { id: 'd', agent: 'a', prompt: 'x', needs: ['b', 'c'] },
      { id: 'b', agent: 'a', prompt: 'x', needs: ['a'] },
      { id: 'c', agent: 'a', prompt: 'x', needs: ['a'] },
      { id: 'a', agent: 'a', prompt: 'x' },
    ],
  });
  for (const [step, need] of [['d', 'b'], ['d', 'c'], ['b', 'a'], ['c', 'a']] as const) {
    assert.ok(order.indexOf(step) > order.indexOf(need), `${step} after ${need} in ${order}`);
  }
});
