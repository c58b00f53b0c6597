import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, renderTemplate, TemplateError } from './template.js';

const ctx = {
  input: { repo: 'acme/widgets', n: 3, tags: ['a', 'b'] },
  steps: { plan: { status: 'succeeded', output: { text: 'do it', usage: { inputTokens: 1 } } } },
};

test('renders strings as they are and other values as JSON', () => {
  assert.equal(renderTemplate('repo={{ input.repo }} n={{input.n}} tags={{ input.tags }}', ctx), 'repo=acme/widgets n=3 tags=["a","b"]');
  assert.equal(renderTemplate('{{ steps.plan.output.text }}!', ctx), 'do it!');
  assert.equal(renderTemplate('{{ input.tags.1 }}', ctx), 'b');
  assert.equal(renderTemplate('no tags here', ctx), 'no tags here');
});

test('a missing value is an error, not an empty string', () => {
  assert.throws(() => renderTemplate('{{ input.nope }}', ctx), (e: unknown) => e instanceof TemplateError && /"input.nope" is not set/.test(e.message));
  assert.throws(() => renderTemplate('{{ steps.plan.output.text.deeper }}', ctx), TemplateError);
});

test('does not walk the prototype chain', () => {
  assert.throws(() => renderTemplate('{{ input.constructor }}', ctx), TemplateError);
});

test('parse finds refs and reports syntax errors', () => {
  const ok = parseTemplate('a {{ input.x }} b {{ steps.s.output.y }}');
  assert.deepEqual(ok.ok && ok.refs.map((r) => r.path), ['input.x', 'steps.s.output.y']);
  assert.equal(parseTemplate('a }} b').ok, false);
  assert.equal(parseTemplate('{{ a').ok, false);
});
