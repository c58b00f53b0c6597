/**
 * Small blobs kept in Redis beside their artifacts' metadata, in front of the
 * blob backend that keeps the rest.
 *
 * Most artifacts are a step's output and its model-call recording, a few
 * hundred bytes to a couple of kilobytes each. On the `local` backend each
 * costs a temp file, a write, two fsyncs (file and folder), a rename and a
 * stat: about nine file-system calls, which made the artifact store the
 * busiest process per step. A blob of 1 to `maxBytes` bytes that arrives whole
 * (`putBytes`: the content a step report carries) goes instead into one Redis
 * hash by digest, with its time in a sorted set for GC, by one script; it is
 * then exactly as durable as the metadata that names it (Redis's own
 * persistence, `appendonly yes` in docker-compose.yml). A commit that carries
 * such a blob writes it the same way inside its own script
 * (artifact-commit.script.ts), so a step's small outputs cost the store one
 * round trip to Redis in all. Streamed uploads and larger blobs go to the
 * backend as before.
 *
 * Reads look in Redis first, then at the backend, so blobs stored before the
 * tier (or under a smaller limit) stay readable; `delete` removes both copies
 * and `list` yields both, so GC's protocol (blob-gc.service.ts) is unchanged.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { MuseNames } from '@muse/contracts';
import { PUT_REDIS_BLOB_FN } from '@muse/artifacts';
import { evalCached } from '@muse/queues/redis';
import type { BlobBackend, BlobInfo, PutHooks, PutResult } from './blob.backend.js';
import { DigestVerifier } from './blob.store.js';

/** KEYS: blobs HASH, times ZSET; ARGV: digest, bytes, now. Stores the blob unless it is there; returns 1 when it was (dedup). */
const PUT_LUA = `${PUT_REDIS_BLOB_FN}
return 1 - putRedisBlob(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
`;

/** How many blobs `list` asks Redis for at a time. */
const LIST_BATCH = 500;

export class RedisBlobTier implements BlobBackend {
  readonly kind: BlobBackend['kind'];
  readonly openFile?: (digest: string) => Promise<FileHandle | undefined>;
  private readonly blobsKey: string;
  private readonly timesKey: string;

  constructor(
    private readonly inner: BlobBackend,
    private readonly redis: Redis,
    names: Pick<MuseNames, 'artifactRedisBlobsKey' | 'artifactRedisBlobTimesKey'>,
    /** The largest blob kept in Redis, in bytes. */
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    this.kind = inner.kind;
    this.blobsKey = names.artifactRedisBlobsKey;
    this.timesKey = names.artifactRedisBlobTimesKey;
    // A blob kept in Redis is no file: the reader streams it instead (undefined).
    if (inner.openFile) {
      const openFile = inner.openFile.bind(inner);
      this.openFile = async (digest) => ((await this.redisSize(digest)) === null ? openFile(digest) : undefined);
    }
  }

  keepsInRedis(size: number): boolean {
    return size > 0 && size <= this.maxBytes;
  }

  async putBytes(bytes: Uint8Array, hooks: PutHooks = {}): Promise<PutResult> {
    if (!this.keepsInRedis(bytes.length)) {
      return this.inner.putBytes ? this.inner.putBytes(bytes, hooks) : this.inner.put(Readable.from([bytes]), hooks);
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await hooks.onDigest?.(digest);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const dedup = (await evalCached(this.redis, PUT_LUA, [this.blobsKey, this.timesKey], [digest, buf, this.now()])) === 1;
    return { digest, size: bytes.length, dedup };
  }

  async size(digest: string): Promise<number | null> {
    return (await this.redisSize(digest)) ?? this.inner.size(digest);
  }

  async openRange(digest: string, start: number, end: number): Promise<Readable> {
    const bytes = await this.redis.hgetBuffer(this.blobsKey, digest);
    return bytes ? Readable.from([bytes.subarray(start, end + 1)]) : this.inner.openRange(digest, start, end);
  }

  async openVerified(digest: string, expectedSize: number): Promise<Readable> {
    const bytes = await this.redis.hgetBuffer(this.blobsKey, digest);
    return bytes ? Readable.from([bytes]).pipe(new DigestVerifier(digest, expectedSize)) : this.inner.openVerified(digest, expectedSize);
  }

  async delete(digest: string): Promise<void> {
    await this.redis.multi().hdel(this.blobsKey, digest).zrem(this.timesKey, digest).exec();
    await this.inner.delete(digest);
  }

  /** The blobs in Redis (sizes read in batches), then the backend's. */
  async *list(): AsyncIterable<BlobInfo> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(this.timesKey, cursor, 'COUNT', LIST_BATCH);
      cursor = next;
      const digests = flat.filter((_, i) => i % 2 === 0);
      if (digests.length === 0) continue;
      const pipeline = this.redis.pipeline();
      for (const d of digests) pipeline.hstrlen(this.blobsKey, d);
      const sizes = (await pipeline.exec()) ?? [];
      for (let i = 0; i < digests.length; i++) {
        const [err, size] = sizes[i] ?? [null, 0];
        if (err) throw err;
        yield { digest: digests[i]!, size: Number(size), storedAt: Number(flat[i * 2 + 1]) };
      }
    } while (cursor !== '0');
    yield* this.inner.list();
  }

  put(source: Readable | AsyncIterable<Uint8Array | string>, hooks?: PutHooks): Promise<PutResult> {
    return this.inner.put(source, hooks);
  }
  init(): Promise<number> {
    return this.inner.init();
  }
  sweepTemps(): Promise<number> {
    return this.inner.sweepTemps();
  }
  checkWritable(): Promise<void> {
    return this.inner.checkWritable();
  }

  /** The size of the blob's copy in Redis, or null when it has none (no blob kept there is empty). */
  private async redisSize(digest: string): Promise<number | null> {
    const n = await this.redis.hstrlen(this.blobsKey, digest);
    return n > 0 ? n : null;
  }
}

