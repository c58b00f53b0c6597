import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateWorkflow } from './dag.js';
import { missingInputs } from './inputs.js';
import { agentToolExtras, renderHttpRequest } from './tool-jobs.js';

test('an http request renders url, header values and body against the run', () => {
  const ctx = { input: { id: 7, token: 'abc' }, steps: { plan: { output: { text: 'hello' } } } } as never;
  assert.deepEqual(
    renderHttpRequest({ method: 'POST', url: 'https://api.example.com/items/{{ input.id }}', headers: { authorization: 'Bearer {{ input.token }}' }, body: '{"note":"{{ steps.plan.output.text }}"}' }, ctx),
    { method: 'POST', url: 'https://api.example.com/items/7', headers: { authorization: 'Bearer abc' }, body: '{"note":"hello"}' },
  );
  assert.deepEqual(renderHttpRequest({ method: 'GET', url: 'https://x/{{ input.id }}' }, ctx), { method: 'GET', url: 'https://x/7' });
});

test('agent tool extras are present only with tools', () => {
  assert.deepEqual(agentToolExtras({}), {});
  assert.deepEqual(agentToolExtras({ tools: ['http', 'http', 'shell'], maxToolCalls: 2 }), { tools: ['http', 'shell'], maxToolCalls: 2 });
});

test('request templates are checked at registration: a step it does not need, a missing input', () => {
  const bad = validateWorkflow({
    name: 'w',
    steps: [
      { id: 'a', agent: 'reviewer', prompt: 'p' },
      { id: 'b', tool: 'http', request: { method: 'POST', url: 'https://x/{{ steps.a.output.text }}', body: '{{ steps.a.output.text }}' } },
    ],
  });
  assert.equal(bad.ok, false);
  const text = JSON.stringify(bad);
  assert.match(text, /steps\.1\.request\.url/);
  assert.match(text, /steps\.1\.request\.body/);
  assert.match(text, /reads step \\"a\\", which is not in its needs/);

  const good = validateWorkflow({
    name: 'w',
    steps: [
      { id: 'a', agent: 'reviewer', prompt: 'p' },
      { id: 'b', tool: 'http', needs: ['a'], request: { method: 'GET', url: 'https://x/{{ input.q }}', headers: { 'x-a': '{{ steps.a.output.text }}' } } },
    ],
  });
  assert.equal(good.ok, true, JSON.stringify(good));
  if (good.ok) assert.deepEqual(missingInputs(good.definition, {}).map((i) => [i.stepId, i.field, i.path]), [['b', 'request', 'input.q']]);
});
