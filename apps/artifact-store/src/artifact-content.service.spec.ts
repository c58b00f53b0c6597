import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError, type ArtifactMeta } from '@muse/contracts';
import { planContent } from './artifact-content.service.js';

const meta: ArtifactMeta = {
  id: 'art_abc',
  name: 'stdout.txt',
  version: 1,
  digest: `sha256:${'ab'.repeat(32)}`,
  size: 10,
  mediaType: 'text/plain',
  project: 'default',
  runId: 'run_1',
  stepId: 'build',
  attempt: 1,
  producer: { agentId: 'a1' },
  createdAt: '2025-01-01T00:00:00.000Z',
};
const etag = `"${meta.digest}"`;

describe('planContent', () => {
  test('whole blob: 200 with type, length, ETag and Accept-Ranges', () => {
    const p = planContent(meta, 10, {});
    assert.equal(p.status, 200);
    assert.deepEqual(p.body, { kind: 'whole' });
    assert.equal(p.headers['content-type'], 'text/plain');
    assert.equal(p.headers['content-length'], '10');
    assert.equal(p.headers.etag, etag);
    assert.equal(p.headers['accept-ranges'], 'bytes');
  });

  test('one range: 206 with Content-Range and the range length', () => {
    const p = planContent(meta, 10, { range: 'bytes=2-4' });
    assert.equal(p.status, 206);
    assert.deepEqual(p.body, { kind: 'range', start: 2, end: 4 });
    assert.equal(p.headers['content-range'], 'bytes 2-4/10');
    assert.equal(p.headers['content-length'], '3');
  });

  test('unsatisfiable range: 416 with Content-Range bytes */size', () => {
    const p = planContent(meta, 10, { range: 'bytes=10-' });
    assert.equal(p.status, 416);
    assert.equal(p.headers['content-range'], 'bytes */10');
    assert.deepEqual(p.body, { kind: 'none' });
  });

  test('If-None-Match with the digest: 304', () => {
    assert.equal(planContent(meta, 10, { ifNoneMatch: etag }).status, 304);
    assert.equal(planContent(meta, 10, { ifNoneMatch: `"other", W/${etag}` }).status, 304);
    assert.equal(planContent(meta, 10, { ifNoneMatch: '"other"' }).status, 200);
  });

  test('If-Range with another validator ignores the range', () => {
    assert.equal(planContent(meta, 10, { range: 'bytes=0-1', ifRange: '"old"' }).status, 200);
    assert.equal(planContent(meta, 10, { range: 'bytes=0-1', ifRange: etag }).status, 206);
  });

  test('a stored size that differs from the metadata is a digest mismatch', () => {
    assert.throws(() => planContent(meta, 9, {}), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_ARTIFACT_DIGEST_MISMATCH');
  });
});
