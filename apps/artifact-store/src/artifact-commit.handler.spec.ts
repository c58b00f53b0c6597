/** The commit handler over a real blob store (temp dir) and the real Redis (own namespace). */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { museNames, type ArtifactCommitRequest, type MuseNames } from '@muse/contracts';
import { MuseMetrics } from '@muse/telemetry';
import { ArtifactCommitHandler } from './artifact-commit.handler.js';
import { ArtifactRepository } from '@muse/artifacts';
import { ArtifactStoreMetrics } from './artifact-store.metrics.js';
import { BlobGc } from './blob-gc.service.js';
import { BlobStore } from './blob.store.js';
import { RedisBlobTier } from './redis-blob-tier.js';

describe('ArtifactCommitHandler', () => {
  let redis: Redis;
  let names: MuseNames;
  let dir: string;
  let blobs: BlobStore;
  let handler: ArtifactCommitHandler;
  let metrics: ArtifactStoreMetrics;
  let stored: { digest: string; size: number };
  let put: (source: Readable) => Promise<{ digest: string; size: number }>;

  const req = (over: Partial<ArtifactCommitRequest> = {}): ArtifactCommitRequest => ({
    runId: 'run_h',
    project: 'default',
    stepId: 'say',
    attempt: 1,
    agentId: 'agent-1',
    fencingToken: 1,
    artifacts: [{ name: 'response.md', digest: stored.digest, size: stored.size, mediaType: 'text/markdown' }],
    ...over,
  });

  before(async () => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    names = museNames(`t-spec-${randomBytes(4).toString('hex')}`);
    dir = await mkdtemp(join(tmpdir(), 'muse-commit-spec-'));
    blobs = new BlobStore(dir, { maxBytes: 1 << 20 });
    await blobs.init();
    // Uploads mark their digest pending, as the service's upload route does (see blob-gc.service.ts).
    const gc = new BlobGc({ redis, names, backend: blobs, repo: new ArtifactRepository(redis, names), graceMs: 3_600_000 });
    put = (source) => blobs.put(source, { onDigest: (d) => gc.markPending(d) });
    stored = await put(Readable.from([Buffer.from('# hello\n')]));
    metrics = new ArtifactStoreMetrics(new MuseMetrics('artifact-store-spec'));
    handler = new ArtifactCommitHandler({ blobs, repo: new ArtifactRepository(redis, names), metrics });
  });

  after(async () => {
    const keys = await redis.keys(`${names.namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  test('commits stored blobs and answers ArtifactRefs in request order', async () => {
    const res = await handler.handle(req());
    assert.ok(res.ok);
    assert.equal(res.artifacts.length, 1);
    const ref = res.artifacts[0]!;
    assert.deepEqual(Object.keys(ref).sort(), ['digest', 'id', 'mediaType', 'name', 'size', 'version']);
    assert.equal(ref.version, 1);
    assert.equal(ref.digest, stored.digest);
  });

  test('a retried commit returns the same artifact', async () => {
    const a = await handler.handle(req({ runId: 'run_retry' }));
    const b = await handler.handle(req({ runId: 'run_retry' }));
    assert.ok(a.ok && b.ok);
    assert.deepEqual(b.artifacts, a.artifacts);
    assert.equal((await metrics.commits.get()).values.find((v) => v.labels.outcome === 'replayed')?.value, 1);
  });

  test('a stale token is rejected with MUSE_ERR_ARTIFACT_STALE_TOKEN and counted, before any blob check', async () => {
    assert.ok((await handler.handle(req({ runId: 'run_stale', fencingToken: 2 }))).ok);
    const res = await handler.handle(
      req({ runId: 'run_stale', fencingToken: 1, attempt: 2, artifacts: [{ name: 'x', digest: `sha256:${'0'.repeat(64)}`, size: 1, mediaType: 'text/plain' }] }),
    );
    assert.equal(res.ok, false);
    assert.ok(!res.ok);
    assert.equal(res.error.code, 'MUSE_ERR_ARTIFACT_STALE_TOKEN');
    assert.equal(res.error.retryable, false);
    assert.equal((await metrics.staleTokenRejections.get()).values[0]?.value, 1);
  });

  test('a stale writer whose inline content is also bad hears MUSE_ERR_ARTIFACT_STALE_TOKEN, not the content error', async () => {
    assert.ok((await handler.handle(req({ runId: 'run_stale_inline', fencingToken: 3 }))).ok);
    const before = await redis.zcard(names.runArtifactsKey('run_stale_inline'));
    const bytes = Buffer.from('late and wrong\n');
    const res = await handler.handle(
      req({ runId: 'run_stale_inline', fencingToken: 2, attempt: 2, artifacts: [{ name: 'x', digest: `sha256:${'1'.repeat(64)}`, size: bytes.length, mediaType: 'text/plain', content: bytes.toString('base64') }] }),
    );
    assert.ok(!res.ok);
    assert.equal(res.error.code, 'MUSE_ERR_ARTIFACT_STALE_TOKEN');
    assert.equal(await redis.zcard(names.runArtifactsKey('run_stale_inline')), before, 'nothing committed');
  });

  test('a small artifact inside the request (content, base64) is written, marked pending for GC, and committed', async () => {
    const inlineHandler = new ArtifactCommitHandler({ blobs, repo: new ArtifactRepository(redis, names), metrics, markPending: (d) => redis.zadd(names.artifactBlobPendingKey, Date.now(), d).then(() => undefined) });
    const bytes = Buffer.from(`inline ${randomBytes(8).toString('hex')}\n`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    assert.equal(await blobs.size(digest), null);
    const res = await inlineHandler.handle(req({ runId: 'run_inline', artifacts: [{ name: 'stdout.txt', digest, size: bytes.length, mediaType: 'text/plain', content: bytes.toString('base64') }] }));
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual([res.artifacts[0]!.digest, res.artifacts[0]!.size, res.artifacts[0]!.version], [digest, bytes.length, 1]);
    assert.equal(await blobs.size(digest), bytes.length);
    assert.deepEqual(Buffer.concat(await (await blobs.openVerified(digest, bytes.length)).toArray()), bytes);
    assert.notEqual(await redis.zscore(names.artifactBlobPendingKey, digest), null, 'pending mark set');
    // What the repository stored is the metadata, not the bytes.
    const meta = (await redis.get(names.artifactKey(res.artifacts[0]!.id)))!;
    assert.ok(!meta.includes(bytes.toString('base64')), meta);
  });

  test('content that does not match its digest or size is refused (MUSE_ERR_REQUEST_INVALID) and nothing is written', async () => {
    const bytes = Buffer.from('what the worker sent\n');
    const other = `sha256:${createHash('sha256').update('something else').digest('hex')}`;
    for (const [digest, size] of [[other, bytes.length], [`sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes.length + 1]] as const) {
      const res = await handler.handle(req({ runId: 'run_bad_inline', artifacts: [{ name: 'x', digest, size, mediaType: 'text/plain', content: bytes.toString('base64') }] }));
      assert.ok(!res.ok);
      assert.equal(res.error.code, 'MUSE_ERR_REQUEST_INVALID');
    }
    assert.equal(await blobs.size(`sha256:${createHash('sha256').update(bytes).digest('hex')}`), null);
    assert.equal(await redis.zcard(names.runArtifactsKey('run_bad_inline')), 0);
  });

  describe('behind the Redis blob tier', () => {
    let tier: RedisBlobTier;
    let gc: BlobGc;
    let tiered: ArtifactCommitHandler;
    const inline = (bytes: Buffer, name = 'response.md') => ({ name, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, mediaType: 'text/plain', content: bytes.toString('base64') });
    const written = async (dedup: boolean) => (await metrics.blobsWritten.get()).values.find((v) => v.labels.dedup === String(dedup))?.value ?? 0;

    before(() => {
      tier = new RedisBlobTier(blobs, redis, names, 64);
      gc = new BlobGc({ redis, names, backend: tier, repo: new ArtifactRepository(redis, names), graceMs: 3_600_000, claimWaitMs: 400 });
      tiered = new ArtifactCommitHandler({ blobs: tier, repo: new ArtifactRepository(redis, names), metrics, markPending: (d) => gc.markPending(d) });
    });

    test('small blobs inside the request are written by the commit itself: in Redis, marked pending, counted once; larger ones go to the backend first', async () => {
      const small = Buffer.from(`small ${randomBytes(8).toString('hex')}\n`);
      const large = Buffer.from(`large ${randomBytes(64).toString('hex')}\n`);
      const [newBefore, dedupBefore] = [await written(false), await written(true)];
      const res = await tiered.handle(req({ runId: 'run_tier', artifacts: [inline(small), inline(large, 'llm-call.json')] }));
      assert.ok(res.ok, JSON.stringify(res));
      assert.deepEqual(res.artifacts.map((a) => [a.name, a.size, a.version]), [['response.md', small.length, 1], ['llm-call.json', large.length, 1]]);
      const [s, l] = [inline(small).digest, inline(large).digest];
      assert.deepEqual(await redis.hgetBuffer(names.artifactRedisBlobsKey, s), small, 'the small blob is in Redis');
      assert.notEqual(await redis.zscore(names.artifactRedisBlobTimesKey, s), null, 'with its stored time, for GC');
      assert.notEqual(await redis.zscore(names.artifactBlobPendingKey, s), null, 'and its pending mark');
      assert.equal(await blobs.size(s), null, 'not on disk');
      assert.equal(await redis.hexists(names.artifactRedisBlobsKey, l), 0);
      assert.equal(await blobs.size(l), large.length, 'the large one is on disk');
      assert.deepEqual(Buffer.concat(await (await tier.openVerified(s, small.length)).toArray()), small);
      assert.equal(await redis.hget(names.artifactBlobRefsKey, s), '1');
      assert.equal(await written(false), newBefore + 2);
      // The same small bytes again, from another step: one reference more, no second copy.
      const again = await tiered.handle(req({ runId: 'run_tier', stepId: 'again', artifacts: [inline(small)] }));
      assert.ok(again.ok);
      assert.equal(await redis.hget(names.artifactBlobRefsKey, s), '2');
      assert.equal(await written(true), dedupBefore + 1);
    });

    test('a stale writer\'s small blob is not written at all', async () => {
      assert.ok((await tiered.handle(req({ runId: 'run_tier_stale', fencingToken: 5, artifacts: [] }))).ok);
      const bytes = Buffer.from(`stale ${randomBytes(8).toString('hex')}\n`);
      const res = await tiered.handle(req({ runId: 'run_tier_stale', fencingToken: 4, artifacts: [inline(bytes)] }));
      assert.ok(!res.ok);
      assert.equal(res.error.code, 'MUSE_ERR_ARTIFACT_STALE_TOKEN');
      assert.equal(await redis.hexists(names.artifactRedisBlobsKey, inline(bytes).digest), 0);
      assert.equal(await redis.zcard(names.runArtifactsKey('run_tier_stale')), 0);
    });

    test('a small blob GC is deleting: the commit waits for the claim to end, then commits; a claim that outlasts the wait: MUSE_ERR_ARTIFACT_BLOB_COLLECTING', async () => {
      const bytes = Buffer.from(`claimed ${randomBytes(8).toString('hex')}\n`);
      const { digest } = inline(bytes);
      await redis.zadd(names.artifactBlobDeletingKey, Date.now(), digest);
      const pending = tiered.handle(req({ runId: 'run_tier_claim', artifacts: [inline(bytes)] }));
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await redis.hexists(names.artifactRedisBlobsKey, digest), 0, 'nothing written while GC holds its claim');
      await redis.zrem(names.artifactBlobDeletingKey, digest);
      const res = await pending;
      assert.ok(res.ok, JSON.stringify(res));
      assert.deepEqual(await redis.hgetBuffer(names.artifactRedisBlobsKey, digest), bytes);

      const other = Buffer.from(`held ${randomBytes(8).toString('hex')}\n`);
      await redis.zadd(names.artifactBlobDeletingKey, Date.now(), inline(other).digest);
      const refused = await tiered.handle(req({ runId: 'run_tier_held', artifacts: [inline(other)] }));
      assert.ok(!refused.ok);
      assert.equal(refused.error.code, 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING');
      assert.equal(await redis.hexists(names.artifactRedisBlobsKey, inline(other).digest), 0);
      assert.equal(await redis.zcard(names.runArtifactsKey('run_tier_held')), 0);
    });
  });

  test('a blob that is not stored: MUSE_ERR_ARTIFACT_NOT_FOUND, nothing committed', async () => {
    const res = await handler.handle(
      req({ runId: 'run_missing', artifacts: [{ name: 'x', digest: `sha256:${'1'.repeat(64)}`, size: 1, mediaType: 'text/plain' }] }),
    );
    assert.ok(!res.ok);
    assert.equal(res.error.code, 'MUSE_ERR_ARTIFACT_NOT_FOUND');
    assert.equal(await redis.zcard(names.runArtifactsKey('run_missing')), 0);
  });

  test('If-Match on a stale version: MUSE_ERR_ARTIFACT_VERSION_CONFLICT (412), counted as a conflict', async () => {
    const item = (ifMatch: number) => [{ name: 'plan.md', digest: stored.digest, size: stored.size, mediaType: 'text/markdown', ifMatch }];
    assert.ok((await handler.handle(req({ runId: 'run_im', stepId: 'a', artifacts: item(0) }))).ok);
    const res = await handler.handle(req({ runId: 'run_im', stepId: 'b', artifacts: item(0) }));
    assert.ok(!res.ok);
    assert.equal(res.error.code, 'MUSE_ERR_ARTIFACT_VERSION_CONFLICT');
    assert.deepEqual(res.error.details, { runId: 'run_im', name: 'plan.md', latestVersion: 1 });
    assert.equal((await metrics.commits.get()).values.find((v) => v.labels.outcome === 'conflict')?.value, 1);
  });

  test('retention: the request\'s ttlSeconds, else the store default, sets expiresAt', async () => {
    const withTtl = new ArtifactCommitHandler({ blobs, repo: new ArtifactRepository(redis, names), defaultTtlMs: 60_000 });
    const a = await withTtl.handle(req({ runId: 'run_ttl_default' }));
    const b = await withTtl.handle(req({ runId: 'run_ttl_wf', ttlSeconds: 86_400 }));
    assert.ok(a.ok && b.ok);
    const meta = async (id: string) => new ArtifactRepository(redis, names).get(id);
    const ma = (await meta(a.artifacts[0]!.id))!;
    const mb = (await meta(b.artifacts[0]!.id))!;
    assert.equal(Date.parse(ma.expiresAt!) - Date.parse(ma.createdAt), 60_000);
    assert.equal(Date.parse(mb.expiresAt!) - Date.parse(mb.createdAt), 86_400_000);
    const forever = await withTtl.handle(req({ runId: 'run_ttl_forever', ttlSeconds: 0 }));
    assert.ok(forever.ok);
    assert.equal((await meta(forever.artifacts[0]!.id))!.expiresAt, undefined);
  });

  test('invalid requests: MUSE_ERR_REQUEST_INVALID', async () => {
    const bad: unknown[] = [
      { nope: true },
      req({ artifacts: [{ name: 'x', digest: 'md5:abc', size: 1, mediaType: 'text/plain' }] }),
      req({ artifacts: [{ name: 'x', digest: stored.digest, size: stored.size + 1, mediaType: 'text/plain' }] }),
      req({
        artifacts: [
          { name: 'x', digest: stored.digest, size: stored.size, mediaType: 'text/plain' },
          { name: 'x', digest: stored.digest, size: stored.size, mediaType: 'text/plain' },
        ],
      }),
    ];
    for (const payload of bad) {
      const res = await handler.handle(payload);
      assert.ok(!res.ok, JSON.stringify(payload));
      assert.equal(res.error.code, 'MUSE_ERR_REQUEST_INVALID');
    }
  });
});
