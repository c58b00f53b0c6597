import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { assertSameRequest, bodyDigest, idempotencyMsgId, parseIdempotencyKey } from './idempotency.js';

test('the same body in another key order or format is the same request', () => {
  const a = bodyDigest({ workflow: 'code-review', input: { repo: 'x', n: 1 } });
  const b = bodyDigest({ input: { n: 1, repo: 'x' }, workflow: 'code-review' });
  assert.equal(a, b);
  assertSameRequest({ runId: 'run_1', bodyDigest: a }, b, 'k');
});

test('a different body with the same key is MUSE_ERR_IDEMPOTENCY_CONFLICT naming the first run', () => {
  const first = { runId: 'run_1', bodyDigest: bodyDigest({ workflow: 'a' }) };
  assert.throws(
    () => assertSameRequest(first, bodyDigest({ workflow: 'a', input: { x: 1 } }), 'k'),
    (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_IDEMPOTENCY_CONFLICT' && err.status === 409 && (err.details as { runId: string }).runId === 'run_1',
  );
});

test('msg ids are per project and never contain the raw key', () => {
  const id = idempotencyMsgId('default', 'order 42/x');
  assert.match(id, /^idem\.default\.[0-9a-f]{64}$/);
  assert.notEqual(id, idempotencyMsgId('other', 'order 42/x'));
});

test('parseIdempotencyKey: absent, valid, invalid', () => {
  assert.equal(parseIdempotencyKey(undefined), undefined);
  assert.equal(parseIdempotencyKey('  abc-123 '), 'abc-123');
  for (const bad of ['', '   ', 'x'.repeat(256), 'caf\u00e9', 'a\nb']) {
    assert.throws(() => parseIdempotencyKey(bad), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_REQUEST_INVALID', JSON.stringify(bad));
  }
});
