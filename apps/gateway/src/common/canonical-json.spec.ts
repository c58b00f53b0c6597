import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, contentDigest } from './canonical-json.js';

test('canonicalJson sorts keys at every level and keeps array order', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: null } }), '{"a":{"c":null,"d":[2,1]},"b":1}');
});

test('canonicalJson drops undefined members like JSON.stringify', () => {
  assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
});

test('contentDigest is the same for the same meaning and differs otherwise', () => {
  assert.equal(contentDigest({ x: 1, y: 'a' }), contentDigest({ y: 'a', x: 1 }));
  assert.notEqual(contentDigest({ x: 1 }), contentDigest({ x: 2 }));
  assert.match(contentDigest({}), /^sha256:[0-9a-f]{64}$/);
});
