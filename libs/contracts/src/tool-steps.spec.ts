import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowDefinitionSchema } from './workflow.schema.js';

const wf = (step: Record<string, unknown>) => ({ name: 'w', steps: [{ id: 's', ...step }] });
const issues = (v: unknown) => {
  const r = WorkflowDefinitionSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('an http step takes a request: GET or POST, an http(s) URL or a template, headers, a POST body', () => {
  assert.deepEqual(issues(wf({ tool: 'http', request: { method: 'GET', url: 'https://api.example.com/v1/{{ input.id }}' } })), []);
  assert.deepEqual(issues(wf({ tool: 'http', request: { method: 'POST', url: '{{ input.url }}', headers: { 'content-type': 'application/json', 'X-Id': '{{ input.id }}' }, body: '{"a":1}' } })), []);
});

test('http step mistakes are named precisely', () => {
  const one = (step: Record<string, unknown>) => issues(wf(step)).join('\n');
  assert.match(one({ tool: 'http' }), /steps\.0\.request: http step "s" needs a request/);
  assert.match(one({ tool: 'http', request: { method: 'PUT', url: 'https://x' } }), /steps\.0\.request\.method: request\.method is GET or POST/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'ftp://x' } }), /steps\.0\.request\.url: request\.url must start with http:\/\/ or https:\/\//);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x', body: 'b' } }), /steps\.0\.request\.body: a GET request takes no body/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x', headers: { Host: 'evil' } } }), /steps\.0\.request\.headers\.Host: this header is set by the http tool itself/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x', headers: { 'bad header': 'v' } } }), /header names are RFC 9110 tokens/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x', headers: { a: 'x\r\nInjected: 1' } } }), /header values may not contain CR, LF or NUL/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x', extra: 1 } }), /steps\.0\.request: Unrecognized key/i);
  assert.match(one({ tool: 'http', command: 'curl x', request: { method: 'GET', url: 'https://x' } }), /steps\.0\.command: http step "s" takes no command/);
  assert.match(one({ tool: 'http', request: { method: 'GET', url: 'https://x' }, secrets: ['X'] }), /steps\.0\.secrets: http step "s" takes no secrets/);
  assert.match(one({ tool: 'shell', command: 'true', request: { method: 'GET', url: 'https://x' } }), /steps\.0\.request: shell step "s" takes no request/);
  assert.match(one({ agent: 'reviewer', prompt: 'p', request: { method: 'GET', url: 'https://x' } }), /steps\.0\.tool: step "s" has a request but no tool: http/);
  assert.match(one({ tool: 'ftp', command: 'x' }), /steps\.0\.tool: tool is one of: shell, http/);
});

test('agent steps may offer tools (http, shell) with a maxToolCalls; other steps may not', () => {
  assert.deepEqual(issues(wf({ agent: 'reviewer', prompt: 'p', tools: ['http', 'shell'], maxToolCalls: 3 })), []);
  const one = (step: Record<string, unknown>) => issues(wf(step)).join('\n');
  assert.match(one({ agent: 'reviewer', prompt: 'p', tools: ['email'] }), /steps\.0\.tools\.0: agent tools are: http, shell/);
  assert.match(one({ agent: 'reviewer', prompt: 'p', tools: [] }), /steps\.0\.tools/);
  assert.match(one({ agent: 'reviewer', prompt: 'p', maxToolCalls: 3 }), /steps\.0\.maxToolCalls: step "s": maxToolCalls applies to an agent step with tools/);
  assert.match(one({ agent: 'reviewer', prompt: 'p', tools: ['http'], maxToolCalls: 0 }), /steps\.0\.maxToolCalls/);
  assert.match(one({ tool: 'shell', command: 'true', tools: ['http'] }), /steps\.0\.tools: shell step "s" takes no tools/);
  assert.match(one({ type: 'approval', tools: ['http'] }), /steps\.0\.tools: approval step "s" takes no tools/);
});

test('a compensation may be an http request', () => {
  assert.deepEqual(issues(wf({ tool: 'shell', command: 'true', compensate: { tool: 'http', request: { method: 'POST', url: 'https://x/undo', body: '{{ steps.s.output.stdout }}' } } })), []);
  assert.match(issues(wf({ tool: 'shell', command: 'true', compensate: { tool: 'http' } })).join('\n'), /steps\.0\.compensate\.request: an http compensation needs a request/);
  assert.match(issues(wf({ tool: 'shell', command: 'true', compensate: { agent: 'reviewer', prompt: 'p', request: { method: 'GET', url: 'https://x' } } })).join('\n'), /compensate\.tool: a compensation with a request needs tool: http/);
});
