/**
 * The Redis tier for small blobs against the real Redis (REDIS_URL), in front of a local blob store in a temp
 * folder, under a namespace of its own removed afterwards; and a GC pass over both tiers.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { Redis } from 'ioredis';
import { museNames, type MuseNames } from '@muse/contracts';
import { ArtifactRepository } from '@muse/artifacts';
import { ArtifactContentService } from './artifact-content.service.js';
import { BlobGc } from './blob-gc.service.js';
import { BlobStore } from './blob.store.js';
import { RedisBlobTier } from './redis-blob-tier.js';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MAX = 64;

describe('RedisBlobTier (real Redis, local blobs behind it)', () => {
  let redis: Redis;
  let names: MuseNames;
  let store: BlobStore;
  let tier: RedisBlobTier;
  let dir: string;
  let clock = 1_000_000;

  before(async () => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    names = museNames(`t-rbt-${randomBytes(4).toString('hex')}`);
    dir = await mkdtemp(join(tmpdir(), 'muse-rbt-spec-'));
    store = new BlobStore(dir, { maxBytes: 1 << 20 });
    await store.init();
    tier = new RedisBlobTier(store, redis, names, MAX, () => clock);
  });
  after(async () => {
    const keys = await redis.keys(`${names.namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  const filesOnDisk = async () => (await readdir(join(dir, 'blobs'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;

  test('a small blob goes to Redis, not to disk, once (the same bytes again are a dedup), after its GC mark', async () => {
    const bytes = randomBytes(MAX);
    const before = await filesOnDisk();
    const marked: string[] = [];
    const first = await tier.putBytes(bytes, { onDigest: async (d) => void marked.push(d) });
    assert.deepEqual(first, { digest: sha(bytes), size: MAX, dedup: false });
    assert.deepEqual(marked, [sha(bytes)], 'the pending mark comes with the digest');
    assert.deepEqual(await tier.putBytes(bytes), { digest: sha(bytes), size: MAX, dedup: true });
    assert.equal(await filesOnDisk(), before, 'no file written');
    assert.deepEqual(await redis.hgetBuffer(names.artifactRedisBlobsKey, sha(bytes)), bytes);
    assert.equal(Number(await redis.zscore(names.artifactRedisBlobTimesKey, sha(bytes))), clock);
    assert.equal(await tier.size(sha(bytes)), MAX);
    assert.equal(await store.size(sha(bytes)), null);
  });

  test('a blob over the limit, an empty one and a streamed upload go to the backend', async () => {
    const big = randomBytes(MAX + 1);
    const empty = new Uint8Array(0);
    const streamed = randomBytes(10);
    assert.equal((await tier.putBytes(big)).dedup, false);
    assert.equal((await tier.putBytes(empty)).size, 0);
    await tier.put(Readable.from([streamed]));
    for (const b of [big, empty, streamed]) {
      assert.equal(await store.size(sha(b)), b.length, 'on disk');
      assert.equal(await redis.hexists(names.artifactRedisBlobsKey, sha(b)), 0, 'not in Redis');
      assert.equal(await tier.size(sha(b)), b.length);
    }
    assert.equal(await tier.size(sha(randomBytes(8))), null, 'a blob stored nowhere has no size');
  });

  test('reads: ranges, verified whole reads (a corrupted copy errors), and no file handle for a blob in Redis', async () => {
    const bytes = Buffer.from('0123456789abcdef');
    const { digest } = await tier.putBytes(bytes);
    assert.equal(await text(await tier.openRange(digest, 2, 5)), '2345');
    assert.equal(await text(await tier.openVerified(digest, bytes.length)), '0123456789abcdef');
    assert.equal(await tier.openFile!(digest), undefined);
    const onDisk = randomBytes(MAX * 2);
    const big = await tier.putBytes(onDisk);
    const handle = await tier.openFile!(big.digest);
    assert.ok(handle, 'a blob on disk is still sent as a file');
    await handle.close();

    await redis.hset(names.artifactRedisBlobsKey, digest, 'tampered-bytes!!');
    await assert.rejects(text(await tier.openVerified(digest, bytes.length)), /DIGEST_MISMATCH|digest/i);
  });

  test('the content service streams a blob kept in Redis, whole and by range', async () => {
    const bytes = Buffer.from('{"text":"hello"}');
    const { digest } = await tier.putBytes(bytes);
    const meta = { id: 'art_1', digest, size: bytes.length, mediaType: 'application/json' } as Parameters<ArtifactContentService['open']>[0];
    const content = new ArtifactContentService(tier);
    const whole = await content.open(meta, {});
    assert.equal(whole.file, undefined);
    assert.equal(await text(whole.stream!), '{"text":"hello"}');
    const part = await content.open(meta, { range: 'bytes=2-5' });
    assert.equal(part.plan.status, 206);
    assert.equal(await text(part.stream!), 'text');
  });

  test('list yields both tiers with their times; GC collects unreferenced blobs from either and keeps referenced ones', async () => {
    const repo = new ArtifactRepository(redis, names);
    const gc = new BlobGc({ redis, names, backend: tier, repo, graceMs: 60_000, now: () => clock });
    const kept = randomBytes(20);
    const orphanSmall = randomBytes(20);
    const orphanBig = randomBytes(MAX + 10);
    const k = await tier.putBytes(kept, { onDigest: (d) => gc.markPending(d) });
    await tier.putBytes(orphanSmall, { onDigest: (d) => gc.markPending(d) });
    await tier.putBytes(orphanBig, { onDigest: (d) => gc.markPending(d) });
    const commit = await repo.commit({ runId: 'r1', project: 'p', stepId: 's', attempt: 1, agentId: 'a', fencingToken: 1, artifacts: [{ name: 'out', digest: k.digest, size: k.size, mediaType: 'application/octet-stream' }] });
    assert.ok(commit.ok);

    const listed = new Map<string, { size: number; storedAt: number }>();
    for await (const b of tier.list()) listed.set(b.digest, b);
    assert.deepEqual(listed.get(sha(orphanSmall)), { digest: sha(orphanSmall), size: 20, storedAt: clock });
    assert.equal(listed.get(sha(orphanBig))?.size, MAX + 10);

    const young = await gc.run();
    assert.equal(young.deletedBlobs, 0, 'inside the grace period nothing goes');
    clock += 3_600_000;
    // The disk copy's time is the file's: its mtime is now, so the GC's clock must pass it too.
    const report = await new BlobGc({ redis, names, backend: tier, repo, graceMs: 60_000, now: () => Date.now() + 3_600_000 }).run();
    assert.ok(report.deletedBlobs >= 2, `deleted ${report.deletedBlobs}`);
    assert.equal(await tier.size(sha(orphanSmall)), null);
    assert.equal(await tier.size(sha(orphanBig)), null);
    assert.equal(await tier.size(k.digest), 20, 'a referenced blob stays');
    assert.equal(await redis.zscore(names.artifactRedisBlobTimesKey, sha(orphanSmall)), null, 'its time goes with it');
  });
});
