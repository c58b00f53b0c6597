import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowDefinitionSchema } from './workflow.schema.js';

const wf = (step: Record<string, unknown>) => ({ name: 'w', steps: [{ id: 's', ...step }] });
const issues = (v: unknown) => {
  const r = WorkflowDefinitionSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('a shell step may name secrets ([A-Z][A-Z0-9_]*) and ask for the network', () => {
  assert.deepEqual(issues(wf({ tool: 'shell', command: 'true', secrets: ['GITHUB_TOKEN', 'A1'], network: true })), []);
});

test('bad secret names, and secrets or network on an agent step, are rejected naming the field', () => {
  assert.match(issues(wf({ tool: 'shell', command: 'true', secrets: ['github_token'] })).join('\n'), /steps\.0\.secrets\.0: secret names use/);
  assert.match(issues(wf({ tool: 'shell', command: 'true', secrets: ['1X'] })).join('\n'), /secrets\.0/);
  assert.match(issues(wf({ agent: 'reviewer', prompt: 'p', secrets: ['X'] })).join('\n'), /steps\.0\.secrets: step "s": only tool steps take secrets/);
  assert.match(issues(wf({ agent: 'reviewer', prompt: 'p', network: true })).join('\n'), /steps\.0\.network/);
});
