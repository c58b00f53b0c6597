/**
 * The `nats` backend: blobs in a JetStream Object Store bucket, replicated
 * with the NATS cluster (MUSE_ARTIFACT_NATS_REPLICAS). An object is named by
 * the digest's hex; its metadata entry is written after its last chunk, so a
 * reader sees a whole object or none. Uploads are staged on the local disk
 * first (see blob-spool.ts) because the name is only known at the end.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BlobBackend, BlobInfo } from './blob.backend.js';
import { SpooledBackend, type BlobSpool } from './blob-spool.js';
import { DigestVerifier, digestHex, isDigest } from './blob.store.js';

export interface NatsObjectBackendOptions {
  bucket: string;
  /** Stream replicas of the bucket. @default 1 */
  replicas?: number;
  spool: BlobSpool;
}

export class NatsObjectBackend extends SpooledBackend implements BlobBackend {
  readonly kind = 'nats' as const;

  private constructor(
    private readonly os: ObjectStore,
    spool: BlobSpool,
  ) {
    super(spool);
  }

  /** Opens the bucket, creating it when missing (idempotent, so replicas may race). */
  static async open(nc: NatsConnection, opts: NatsObjectBackendOptions): Promise<NatsObjectBackend> {
    const os = await new Objm(nc).create(opts.bucket, { replicas: opts.replicas ?? 1 });
    return new NatsObjectBackend(os, opts.spool);
  }

  protected async upload(digest: string, path: string): Promise<void> {
    const body = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    await this.os.put({ name: digestHex(digest) }, body);
  }

  override async size(digest: string): Promise<number | null> {
    const info = await this.os.info(digestHex(digest));
    return info && !info.deleted ? info.size : null;
  }

  /**
   * The Object Store reads whole objects only: the bytes before `start` are
   * read and dropped (chunk by chunk, never held), and reading stops after `end`.
   */
  async openRange(digest: string, start: number, end: number): Promise<Readable> {
    return (await this.open(digest)).pipe(new ByteWindow(start, end));
  }

  async openVerified(digest: string, expectedSize: number): Promise<Readable> {
    return (await this.open(digest)).pipe(new DigestVerifier(digest, expectedSize));
  }

  async delete(digest: string): Promise<void> {
    const name = digestHex(digest);
    if (await this.os.info(name)) await this.os.delete(name);
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const info of await this.os.list()) {
      const digest = `sha256:${info.name}`;
      if (info.deleted || !isDigest(digest)) continue;
      yield { digest, size: info.size, storedAt: Date.parse(info.mtime) };
    }
  }

  async checkWritable(): Promise<void> {
    await this.os.status();
  }

  private async open(digest: string): Promise<Readable> {
    const res = await this.os.get(digestHex(digest));
    if (!res) throw new Error(`object ${digest} is not in the bucket`);
    const stream = Readable.fromWeb(res.data as unknown as WebReadableStream<Uint8Array>);
    // The library reports a broken object (missing chunk, bad digest) on a side promise.
    void res.error.then((err) => {
      if (err) stream.destroy(err);
    });
    return stream;
  }
}

/** Passes only bytes `start..end` (inclusive) of what flows through. */
export class ByteWindow extends Transform {
  private pos = 0;

  constructor(
    private readonly first: number,
    private readonly last: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const from = Math.max(0, this.first - this.pos);
    const to = Math.min(chunk.length, this.last + 1 - this.pos);
    this.pos += chunk.length;
    cb(null, to > from ? chunk.subarray(from, to) : undefined);
  }
}
