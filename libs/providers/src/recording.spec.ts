import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, diffRequests, requestHash, type LlmCallRequest } from './recording.js';

const req: LlmCallRequest = {
  model: 'm',
  role: 'reviewer',
  messages: [{ role: 'user', content: 'Review the plan: step one, step two, step three' }],
  temperature: 0,
  topP: 1,
  seed: 42,
  maxOutputTokens: 0,
  promptTemplateHash: 'abc',
  toolSchemaVersions: {},
};

test('canonical JSON sorts keys at every depth, drops undefined, and keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined, b: 'x' } }), '{"a":{"b":"x","d":[2,1]},"b":1}');
  assert.equal(canonicalJson([undefined, null]), '[null,null]');
});

test('the request hash is the sha256 of the canonical JSON, whatever the key order', () => {
  const shuffled = Object.fromEntries(Object.entries(req).reverse()) as LlmCallRequest;
  assert.equal(requestHash(shuffled), requestHash(req));
  assert.equal(requestHash(req), `sha256:${createHash('sha256').update(canonicalJson(req)).digest('hex')}`);
  assert.notEqual(requestHash({ ...req, seed: 43 }), requestHash(req));
});

test('the diff names each differing field, and cuts long texts near their first difference', () => {
  const changed = { ...req, temperature: 0.5, promptTemplateHash: 'def', messages: [{ role: 'user' as const, content: 'Review the plan: step one, step TWO, step three' }] };
  const diff = diffRequests(req, changed);
  assert.deepEqual(diff.map((d) => d.field), ['messages[0].content', 'promptTemplateHash', 'temperature']);
  assert.equal(diff[0]!.expected, '…lan: step one, step two, step three');
  assert.equal(diff[0]!.actual, '…lan: step one, step TWO, step three');
  assert.deepEqual(diffRequests(req, { ...req }), []);
});
