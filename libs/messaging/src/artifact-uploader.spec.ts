import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MuseError } from '@muse/contracts';
import { ArtifactUploader } from './artifact-uploader.js';

const bytes = Buffer.from('# hello\n');
const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const noSleep = { sleep: async () => undefined };

function fakeFetch(responses: Array<() => Response>) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const next = responses.shift();
    if (!next) throw new Error('no more responses');
    return next();
  }) as unknown as typeof fetch;
  return { f, calls };
}
const json = (status: number, body: unknown) => () => new Response(JSON.stringify(body), { status });

describe('ArtifactUploader', () => {
  test('PUTs the bytes with the media type to /internal/v1/blobs', async () => {
    const { f, calls } = fakeFetch([json(201, { digest, size: bytes.length })]);
    const up = new ArtifactUploader('http://store:3003/', { fetch: f });
    assert.deepEqual(await up.upload(bytes, 'text/markdown'), { digest, size: bytes.length });
    assert.equal(calls[0]!.url, 'http://store:3003/internal/v1/blobs');
    assert.equal(calls[0]!.init.method, 'PUT');
    assert.deepEqual(calls[0]!.init.headers, { 'content-type': 'text/markdown' });
  });

  test('retries network errors and 5xx, then succeeds', async () => {
    const { f, calls } = fakeFetch([
      () => {
        throw new TypeError('fetch failed');
      },
      json(503, { error: {} }),
      json(201, { digest, size: bytes.length }),
    ]);
    const up = new ArtifactUploader('http://store', { fetch: f, retry: noSleep });
    await up.upload(bytes, 'text/plain');
    assert.equal(calls.length, 3);
  });

  test('a 4xx is not retried and is not retryable', async () => {
    const { f, calls } = fakeFetch([json(413, { error: { code: 'MUSE_ERR_REQUEST_TOO_LARGE' } })]);
    const up = new ArtifactUploader('http://store', { fetch: f, retry: noSleep });
    await assert.rejects(up.upload(bytes, 'text/plain'), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_UNAVAILABLE' && !err.retryable);
    assert.equal(calls.length, 1);
  });

  test('a digest that differs from the bytes sent is an error (retried, then MUSE_ERR_UNAVAILABLE)', async () => {
    const wrong = json(201, { digest: `sha256:${'0'.repeat(64)}`, size: bytes.length });
    const { f, calls } = fakeFetch([wrong, wrong, wrong, wrong]);
    const up = new ArtifactUploader('http://store', { fetch: f, retry: noSleep });
    await assert.rejects(up.upload(bytes, 'text/plain'), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_UNAVAILABLE' && err.retryable);
    assert.equal(calls.length, 4);
  });
});
