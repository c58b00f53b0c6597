/**
 * Retention and garbage collection.
 *
 * Artifacts expire (per-workflow `retention.ttlDays`, default
 * MUSE_ARTIFACT_TTL_DAYS); each removed artifact drops one reference from its
 * blob. The collector then deletes blobs that no artifact references — never
 * one that an upload may still be about to commit. The protocol, all in
 * Redis so it holds across replicas and backends:
 *
 * 1. An upload, once it knows the digest and before it decides whether the
 *    stored copy will do, marks the digest pending (`markPending`, score =
 *    now). If GC holds a claim on the digest, the upload marks nothing, waits
 *    for the claim to end, marks, and then stores its own copy. (The window
 *    left between that mark and the copy being in place: another upload's
 *    commit of the digest later than the grace period after its own upload.)
 *    A commit that carries a small blob for the Redis tier marks and writes it
 *    inside its own script (artifact-commit.script.ts), which refuses while a
 *    claim holds; the commit then waits here for the claim to end and tries
 *    again.
 * 2. A commit (artifact-commit.script.ts) refuses a digest GC has claimed,
 *    and otherwise adds the reference atomically.
 * 3. GC claims a digest (`claim`) only if it has no references and no
 *    pending mark younger than the grace period (MUSE_ARTIFACT_GC_GRACE_MS),
 *    atomically with those checks; deletes the blob; releases the claim.
 *
 * So an uploaded-but-uncommitted blob survives for the grace period, and no
 * interleaving lets GC delete a blob that a commit has referenced or is
 * about to reference. The grace is counted from the moment the upload knew
 * its digest: a commit later than that (or an upload to NATS or S3 slower
 * than that) finds the mark gone and is refused with
 * MUSE_ERR_ARTIFACT_BLOB_COLLECTING — upload again — rather than risk a
 * reference to a deleted blob. @default grace 1 h (MUSE_ARTIFACT_GC_GRACE_MS)
 */
import type { Redis } from 'ioredis';
import { MuseError, type MuseNames } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import { evalCached } from '@muse/queues/redis';
import { GC_CLAIM_HOLD_MS, type ArtifactRepository } from '@muse/artifacts';
import type { BlobBackend } from './blob.backend.js';
import type { ArtifactStoreMetrics } from './artifact-store.metrics.js';

/**
 * KEYS: pending ZSET, deleting ZSET; ARGV: digest, now, claim hold. Marks pending; returns 1, marking nothing, while GC
 * holds a live claim: a mark made then would make the blob GC is deleting look live to a commit (another upload's
 * commit of the same digest) until this upload has stored its own copy.
 */
const MARK_PENDING_LUA = `
local claimed = redis.call('ZSCORE', KEYS[2], ARGV[1])
if claimed and tonumber(ARGV[2]) - tonumber(claimed) < tonumber(ARGV[3]) then return 1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 0
`;

/** KEYS: refs HASH, pending ZSET, deleting ZSET; ARGV: digest, now, grace cutoff. Claims the digest for deletion; 1 when claimed. */
const CLAIM_LUA = `
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') > 0 then return 0 end
local pending = redis.call('ZSCORE', KEYS[2], ARGV[1])
if pending and tonumber(pending) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

export interface BlobGcOptions {
  redis: Redis;
  names: MuseNames;
  backend: BlobBackend;
  repo: Pick<ArtifactRepository, 'expireDue'>;
  /** A blob uploaded (or re-uploaded) within this time is kept even without references, in ms. */
  graceMs: number;
  metrics?: Pick<ArtifactStoreMetrics, 'gcRuns' | 'gcDeletedBlobs' | 'gcDeletedBytes' | 'expiredArtifacts'>;
  logger?: Pick<Logger, 'info' | 'warn'>;
  now?: () => number;
  /** How long an upload waits for a GC claim on its digest to end before giving up, in ms. @default 10_000 */
  claimWaitMs?: number;
}

export interface GcReport {
  expired: number;
  deletedBlobs: number;
  deletedBytes: number;
  keptBlobs: number;
}

export class BlobGc {
  private readonly now: () => number;
  private running: Promise<GcReport> | undefined;

  constructor(private readonly o: BlobGcOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The upload hook (see the protocol above). Throws MUSE_ERR_ARTIFACT_BLOB_COLLECTING if a claim outlasts `claimWaitMs`. */
  async markPending(digest: string): Promise<void> {
    const deadline = this.now() + (this.o.claimWaitMs ?? 10_000);
    for (;;) {
      const keys = [this.o.names.artifactBlobPendingKey, this.o.names.artifactBlobDeletingKey];
      if ((await evalCached(this.o.redis, MARK_PENDING_LUA, keys, [digest, this.now(), GC_CLAIM_HOLD_MS])) === 0) return;
      if (this.now() > deadline) throw new MuseError('MUSE_ERR_ARTIFACT_BLOB_COLLECTING', undefined, { details: { digest } });
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One pass: expire due artifacts, then collect unreferenced blobs. Concurrent calls share one pass. */
  run(): Promise<GcReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<GcReport> {
    const { redis, names, backend } = this.o;
    const report: GcReport = { expired: 0, deletedBlobs: 0, deletedBytes: 0, keptBlobs: 0 };
    try {
      for (;;) {
        const batch = await this.o.repo.expireDue(this.now());
        report.expired += batch.length;
        if (batch.length < 500) break;
      }
      this.o.metrics?.expiredArtifacts.inc(report.expired);

      const cutoff = this.now() - this.o.graceMs;
      for await (const blob of backend.list()) {
        // A blob younger than the grace period may be an upload whose pending mark is being written.
        if (blob.storedAt > cutoff) {
          report.keptBlobs++;
          continue;
        }
        const keys = [names.artifactBlobRefsKey, names.artifactBlobPendingKey, names.artifactBlobDeletingKey];
        if ((await evalCached(redis, CLAIM_LUA, keys, [blob.digest, this.now(), cutoff])) !== 1) {
          report.keptBlobs++;
          continue;
        }
        try {
          await backend.delete(blob.digest);
          report.deletedBlobs++;
          report.deletedBytes += blob.size;
          this.o.metrics?.gcDeletedBlobs.inc();
          this.o.metrics?.gcDeletedBytes.inc(blob.size);
        } finally {
          await redis.zrem(names.artifactBlobDeletingKey, blob.digest);
        }
      }
      // Pending marks past the grace period protect nothing any more.
      await redis.zremrangebyscore(names.artifactBlobPendingKey, '-inf', cutoff);
      this.o.metrics?.gcRuns.inc({ outcome: 'ok' });
      if (report.expired > 0 || report.deletedBlobs > 0) this.o.logger?.info({ ...report }, 'artifact retention and GC pass');
      return report;
    } catch (err) {
      this.o.metrics?.gcRuns.inc({ outcome: 'error' });
      this.o.logger?.warn({ err }, 'artifact GC pass failed');
      throw err;
    }
  }
}
