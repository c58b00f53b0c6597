/**
 * The `s3` backend: blobs as objects `<prefix>sha256/<64 hex>` in an
 * S3-compatible bucket, through the AWS SDK. A PutObject is atomic (an
 * object is visible whole or not at all) and carries the SHA-256 checksum,
 * so the server rejects bytes damaged on the way. Uploads are staged on the
 * local disk first (see blob-spool.ts): the key is only known at the end,
 * and S3 has no rename.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { BlobBackend, BlobInfo } from './blob.backend.js';
import { SpooledBackend, type BlobSpool } from './blob-spool.js';
import { DigestVerifier, digestHex, isDigest } from './blob.store.js';

export interface S3BackendOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix, e.g. `muse/`. @default '' */
  prefix?: string;
  spool: BlobSpool;
}

export class S3Backend extends SpooledBackend implements BlobBackend {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(opts: S3BackendOptions) {
    super(opts.spool);
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
  }

  keyOf(digest: string): string {
    return `${this.prefix}sha256/${digestHex(digest)}`;
  }

  protected async upload(digest: string, path: string, size: number): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.keyOf(digest),
        Body: createReadStream(path),
        ContentLength: size,
        ChecksumSHA256: Buffer.from(digestHex(digest), 'hex').toString('base64'),
        ContentType: 'application/octet-stream',
      }),
    );
  }

  override async size(digest: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest) }));
      return head.ContentLength ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async openRange(digest: string, start: number, end: number): Promise<Readable> {
    return this.get(digest, `bytes=${start}-${end}`);
  }

  async openVerified(digest: string, expectedSize: number): Promise<Readable> {
    return (await this.get(digest)).pipe(new DigestVerifier(digest, expectedSize));
  }

  async delete(digest: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest) }));
  }

  async *list(): AsyncIterable<BlobInfo> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}sha256/`, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        const digest = `sha256:${(o.Key ?? '').slice(this.prefix.length + 'sha256/'.length)}`;
        if (!isDigest(digest)) continue;
        yield { digest, size: o.Size ?? 0, storedAt: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async checkWritable(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  private async get(digest: string, range?: string): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(digest), ...(range ? { Range: range } : {}) }));
    if (!res.Body) throw new Error(`object ${this.keyOf(digest)} has no body`);
    // In Node the SDK's body is an http.IncomingMessage: a Readable.
    return res.Body as Readable;
  }
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}
