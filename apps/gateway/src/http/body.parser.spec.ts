import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { bodyFormatOf, mediaTypeOf, parseBody } from './body.parser.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MuseError, `expected a MuseError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a throw');
};

test('mediaTypeOf strips parameters and case', () => {
  assert.equal(mediaTypeOf('Application/JSON; charset=utf-8'), 'application/json');
  assert.equal(mediaTypeOf(undefined), undefined);
  assert.equal(mediaTypeOf(' ; x=y'), undefined);
});

test('bodyFormatOf knows JSON, the three YAML types and +json/+yaml suffixes', () => {
  assert.equal(bodyFormatOf('application/json'), 'json');
  assert.equal(bodyFormatOf('application/merge-patch+json'), 'json');
  for (const t of ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/vnd.muse+yaml']) assert.equal(bodyFormatOf(t), 'yaml');
  assert.equal(bodyFormatOf('text/plain'), null);
  assert.equal(bodyFormatOf('application/x-www-form-urlencoded'), null);
  assert.equal(bodyFormatOf(undefined), null);
});

test('parseBody reads JSON and YAML to the same value', () => {
  const json = parseBody('application/json', bytes('{"name":"x","steps":[{"id":"a","needs":[]}]}'));
  const yaml = parseBody('application/yaml', bytes('name: x\nsteps:\n  - id: a\n    needs: []\n'));
  assert.deepEqual(json, { name: 'x', steps: [{ id: 'a', needs: [] }] });
  assert.deepEqual(yaml, json);
});

test('parseBody: empty body is undefined, whatever the format', () => {
  assert.equal(parseBody('application/json', bytes('')), undefined);
  assert.equal(parseBody('text/yaml', bytes('  \n')), undefined);
});

test('parseBody: malformed JSON and YAML get their own codes', () => {
  assert.equal(codeOf(() => parseBody('application/json', bytes('{"a":'))), 'MUSE_ERR_REQUEST_MALFORMED_JSON');
  assert.equal(codeOf(() => parseBody('application/yaml', bytes('a: [1, 2\nb: }'))), 'MUSE_ERR_REQUEST_MALFORMED_YAML');
  assert.equal(codeOf(() => parseBody('application/yaml', bytes('a: 1\na: 2\n'))), 'MUSE_ERR_REQUEST_MALFORMED_YAML');
  assert.equal(codeOf(() => parseBody('application/yaml', bytes('---\na: 1\n---\nb: 2\n'))), 'MUSE_ERR_REQUEST_MALFORMED_YAML');
  assert.equal(codeOf(() => parseBody('application/json', new Uint8Array([0x7b, 0xff, 0x7d]))), 'MUSE_ERR_REQUEST_MALFORMED_JSON');
});

test('parseBody: other media types and a missing Content-Type are 415', () => {
  assert.equal(codeOf(() => parseBody('text/plain', bytes('hi'))), 'MUSE_ERR_REQUEST_MEDIA_TYPE');
  assert.equal(codeOf(() => parseBody(undefined, bytes('{}'))), 'MUSE_ERR_REQUEST_MEDIA_TYPE');
});

test('parseBody refuses __proto__ keys at any depth', () => {
  assert.equal(codeOf(() => parseBody('application/json', bytes('{"input":{"__proto__":{"x":1}}}'))), 'MUSE_ERR_REQUEST_INVALID');
  assert.equal(codeOf(() => parseBody('application/yaml', bytes('a:\n  __proto__:\n    x: 1\n'))), 'MUSE_ERR_REQUEST_INVALID');
});

test('parseBody: YAML alias bombs are refused', () => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  assert.equal(codeOf(() => parseBody('application/yaml', bytes(lines.join('\n')))), 'MUSE_ERR_REQUEST_MALFORMED_YAML');
});

test('bodies deeper or with longer arrays than the limits are refused with MUSE_ERR_REQUEST_TOO_COMPLEX', () => {
  const limits = { maxDepth: 4, maxArrayLength: 3 };
  assert.deepEqual(parseBody('application/json', bytes('{"a":{"b":{"c":1}}}'), limits), { a: { b: { c: 1 } } });
  assert.equal(codeOf(() => parseBody('application/json', bytes('{"a":{"b":{"c":{"d":{}}}}}'), limits)), 'MUSE_ERR_REQUEST_TOO_COMPLEX');
  assert.equal(codeOf(() => parseBody('application/json', bytes('[[[[[1]]]]]'), limits)), 'MUSE_ERR_REQUEST_TOO_COMPLEX');
  assert.deepEqual(parseBody('application/json', bytes('[1,2,3]'), limits), [1, 2, 3]);
  assert.equal(codeOf(() => parseBody('application/json', bytes('{"x":[1,2,3,4]}'), limits)), 'MUSE_ERR_REQUEST_TOO_COMPLEX');
  assert.equal(codeOf(() => parseBody('application/yaml', bytes('a:\n  b:\n    c:\n      d:\n        e: 1\n'), limits)), 'MUSE_ERR_REQUEST_TOO_COMPLEX');
  // Depth far beyond the limit: refused without overflowing the stack.
  assert.equal(codeOf(() => parseBody('application/json', bytes(`${'['.repeat(5000)}${']'.repeat(5000)}`))), 'MUSE_ERR_REQUEST_TOO_COMPLEX');
});
