/**
 * Retention and GC against the real Redis (REDIS_URL) and a local blob store
 * in a temp folder, under a namespace of their own removed afterwards.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { specRedis } from '@muse/queues/spec-redis';
import { ArtifactRepository, type CommitInput } from '@muse/artifacts';
import { BlobGc } from './blob-gc.service.js';
import { BlobStore } from './blob.store.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BlobGc (real Redis, local blobs)', () => {
  const { redis, names } = specRedis();
  const repo = new ArtifactRepository(redis, names);
  let store: BlobStore;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muse-gc-spec-'));
    store = new BlobStore(dir, { maxBytes: 1 << 20 });
    await store.init();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const gcWith = (graceMs: number) => new BlobGc({ redis, names, backend: store, repo, graceMs });
  const upload = (gc: BlobGc, bytes: Buffer) => store.put(Readable.from([bytes]), { onDigest: (d) => gc.markPending(d) });
  const commitOf = (runId: string, name: string, digest: string, size: number, extra: Partial<CommitInput> = {}) =>
    repo.commit({ runId, project: 'p', stepId: 's', attempt: 1, agentId: 'a', fencingToken: 1, artifacts: [{ name, digest, size, mediaType: 'application/octet-stream' }], ...extra });
  const age = async (digest: string, ms: number) => {
    const t = new Date(Date.now() - ms);
    await utimes(store.pathOf(digest), t, t);
  };

  test('keeps referenced blobs and uploads within the grace period; collects the rest', async () => {
    const gc = gcWith(60_000);
    const kept = randomBytes(100);
    const fresh = randomBytes(100);
    const orphan = randomBytes(100);
    const k = await upload(gc, kept);
    assert.ok((await commitOf('r1', 'kept', k.digest, k.size)).ok);
    await upload(gc, fresh);
    const o = await upload(gc, orphan);
    await age(k.digest, 3_600_000);
    await age(o.digest, 3_600_000);
    // The orphan's upload is long past: its pending mark is as old as the file.
    await redis.zadd(names.artifactBlobPendingKey, Date.now() - 3_600_000, o.digest);

    const report = await gc.run();
    assert.equal(report.deletedBlobs, 1);
    assert.equal(await store.size(o.digest), null);
    assert.equal(await store.size(k.digest), 100);
    assert.equal(await store.size(sha(fresh)), 100);
  });

  test('retention expires artifacts, then their blobs go once nothing references them', async () => {
    const gc = gcWith(1);
    const bytes = randomBytes(64);
    const b = await upload(gc, bytes);
    const res = await commitOf('r2', 'short-lived', b.digest, b.size, { ttlMs: 1 });
    assert.ok(res.ok);
    await new Promise((r) => setTimeout(r, 20));
    const report = await gc.run();
    assert.equal(report.expired, 1);
    // At least this one (a blob of the test before, past this GC's 1 ms grace, may go too).
    assert.ok(report.deletedBlobs >= 1);
    assert.equal(await store.size(b.digest), null);
    assert.equal(await repo.get(res.artifacts[0]!.meta.id), null);
  });

  test('never deletes a referenced blob while uploads and commits run (grace 0: only the protocol protects them)', async () => {
    const gc = gcWith(1);
    // A few contents uploaded over and over, so dedup, commits and collection of the same digests interleave.
    const contents = Array.from({ length: 16 }, () => randomBytes(2048));
    let lostAtOnce = 0;
    const committed: Array<{ digest: string }> = [];
    let stop = false;
    let passes = 0;
    let refused = 0;
    const collector = (async () => {
      while (!stop) {
        await gc.run();
        passes++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        const bytes = contents[(w * 7 + i * 3) % contents.length]!;
        const b = await upload(gc, bytes);
        // The commit comes a little later, as it does over NATS: GC has a window to act in.
        await new Promise((r) => setTimeout(r, i % 4));
        const res = await commitOf(`r3-${w}`, `n${i}`, b.digest, b.size);
        if (res.ok) {
          committed.push({ digest: b.digest });
          if ((await store.size(b.digest)) === null) lostAtOnce++;
        }
        else {
          assert.ok('collecting' in res, JSON.stringify(res));
          refused++;
        }
        // Some artifacts are dropped again so their blobs become collectable.
        if (res.ok && i % 3 === 0) {
          await redis.zadd(names.artifactExpiryKey, 0, res.artifacts[0]!.meta.id);
          committed.pop();
        }
      }
    });
    await Promise.all(writers);
    stop = true;
    await collector;
    assert.ok(passes > 5, `only ${passes} GC passes ran`);
    assert.ok(committed.length > 50, `only ${committed.length} commits landed (${refused} refused)`);
    // Expire what the writers dropped (no more uploads now), then check every live artifact's blob.
    await gc.run();
    assert.equal(lostAtOnce, 0, 'a committed artifact pointed at a deleted blob');
    for (const c of committed) assert.notEqual(await store.size(c.digest), null, `referenced blob ${c.digest} was deleted`);
  });

  test('an upload of a digest GC has claimed waits for the claim to end, then stores its own copy', async () => {
    const gc = new BlobGc({ redis, names, backend: store, repo, graceMs: 1, claimWaitMs: 2_000 });
    const bytes = randomBytes(32);
    const digest = sha(bytes);
    await redis.zadd(names.artifactBlobDeletingKey, Date.now(), digest);
    setTimeout(() => void redis.zrem(names.artifactBlobDeletingKey, digest), 200);
    const started = Date.now();
    const b = await upload(gc, bytes);
    assert.ok(Date.now() - started >= 150, 'the upload waited for the claim');
    assert.equal(b.digest, digest);
    assert.ok((await commitOf('r4', 'after-claim', digest, b.size)).ok);

    await redis.zadd(names.artifactBlobDeletingKey, Date.now(), digest);
    const short = new BlobGc({ redis, names, backend: store, repo, graceMs: 1, claimWaitMs: 100 });
    await assert.rejects(upload(short, bytes), (err: Error & { code?: string }) => err.code === 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING');
    await redis.zrem(names.artifactBlobDeletingKey, digest);
  });

  test('an upload waiting out a claim marks nothing meanwhile: another upload\'s commit of the digest is refused until this one has its copy', async () => {
    const gc = new BlobGc({ redis, names, backend: store, repo, graceMs: 1, claimWaitMs: 2_000 });
    const digest = sha(randomBytes(32));
    await redis.zadd(names.artifactBlobDeletingKey, Date.now(), digest);
    const marking = gc.markPending(digest);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await redis.zscore(names.artifactBlobPendingKey, digest), null, 'no pending mark while GC deletes the blob');
    // GC is done deleting; the waiting upload has not looked again yet (it polls every 50 ms) and has no copy stored.
    await redis.zrem(names.artifactBlobDeletingKey, digest);
    const early = await commitOf('r5', 'early', digest, 32);
    assert.ok(!early.ok && 'collecting' in early, `a commit relying on the deleted blob is refused: ${JSON.stringify(early)}`);
    await marking;
    assert.notEqual(await redis.zscore(names.artifactBlobPendingKey, digest), null, 'marked once the claim ended');
  });
});
