/**
 * The S3 backend against aws-sdk-client-mock: the SDK's S3Client with its
 * `send` intercepted per command (no HTTP; no S3-compatible server installs
 * from the registries here). The fake keeps objects in a Map and answers
 * like S3 does (404 NotFound on a missing HEAD, Range on GET, pagination).
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { BlobSpool } from './blob-spool.js';
import { S3Backend } from './s3.backend.js';

const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('S3Backend (aws-sdk-client-mock)', () => {
  const s3 = mockClient(S3Client);
  let objects: Map<string, { body: Buffer; at: Date }>;
  let puts: Array<{ Key?: string; ChecksumSHA256?: string; ContentLength?: number }>;
  let dir: string;
  let backend: S3Backend;

  const notFound = () => new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: 'Not Found' });

  beforeEach(async () => {
    s3.reset();
    objects = new Map();
    puts = [];
    s3.on(PutObjectCommand).callsFake(async (input) => {
      puts.push({ Key: input.Key, ChecksumSHA256: input.ChecksumSHA256, ContentLength: input.ContentLength });
      objects.set(input.Key, { body: await buffer(input.Body as Readable), at: new Date() });
      return {};
    });
    s3.on(HeadObjectCommand).callsFake(async (input) => {
      const o = objects.get(input.Key);
      if (!o) throw notFound();
      return { ContentLength: o.body.length };
    });
    s3.on(GetObjectCommand).callsFake(async (input) => {
      const o = objects.get(input.Key);
      if (!o) throw notFound();
      const m = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
      const body = m ? o.body.subarray(Number(m[1]), Number(m[2]) + 1) : o.body;
      return { Body: Readable.from([body]) as never, ContentLength: body.length };
    });
    s3.on(DeleteObjectCommand).callsFake(async (input) => {
      objects.delete(input.Key);
      return {};
    });
    s3.on(ListObjectsV2Command).callsFake(async (input) => {
      // Two keys a page, to exercise continuation.
      const keys = [...objects.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).sort();
      const from = input.ContinuationToken ? Number(input.ContinuationToken) : 0;
      const page = keys.slice(from, from + 2);
      const more = from + 2 < keys.length;
      return {
        Contents: page.map((Key) => ({ Key, Size: objects.get(Key)!.body.length, LastModified: objects.get(Key)!.at })),
        IsTruncated: more,
        ...(more ? { NextContinuationToken: String(from + 2) } : {}),
      };
    });
    s3.on(HeadBucketCommand).resolves({});
    dir = await mkdtemp(join(tmpdir(), 'muse-s3-spec-'));
    const spool = new BlobSpool(join(dir, 'tmp'), 1024, 600_000);
    backend = new S3Backend({ client: new S3Client({ region: 'us-east-1' }), bucket: 'b', prefix: 'ns/', spool });
    await backend.init();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('stores under <prefix>sha256/<hex> with the SHA-256 checksum, once however often it is uploaded', async () => {
    const a = await backend.put(Readable.from([Buffer.from('hello '), Buffer.from('s3')]));
    assert.deepEqual(a, { digest: sha('hello s3'), size: 8, dedup: false });
    const hex = sha('hello s3').slice(7);
    assert.deepEqual(puts, [{ Key: `ns/sha256/${hex}`, ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64'), ContentLength: 8 }]);
    const b = await backend.put(Readable.from([Buffer.from('hello s3')]));
    assert.equal(b.dedup, true);
    assert.equal(puts.length, 1);
    assert.deepEqual(await readdir(join(dir, 'tmp')), [], 'no staged file is left behind');
  });

  test('calls the GC hook with the digest before deciding on dedup', async () => {
    const seen: string[] = [];
    await backend.put(Readable.from([Buffer.from('x')]), { onDigest: async (d) => void seen.push(d) });
    assert.deepEqual(seen, [sha('x')]);
  });

  test('rejects over the limit with 413 and stores nothing', async () => {
    await assert.rejects(backend.put(Readable.from([Buffer.alloc(1025)])), (e: Error & { code?: string }) => e.code === 'MUSE_ERR_REQUEST_TOO_LARGE');
    assert.equal(objects.size, 0);
  });

  test('size, ranged and verified reads, delete, and a paginated list', async () => {
    const { digest } = await backend.put(Readable.from([Buffer.from('0123456789')]));
    assert.equal(await backend.size(digest), 10);
    assert.equal(await text(await backend.openRange(digest, 2, 5)), '2345');
    assert.equal(await text(await backend.openVerified(digest, 10)), '0123456789');
    for (const s of ['a', 'b', 'c']) await backend.put(Readable.from([Buffer.from(s)]));
    const listed = [];
    for await (const b of backend.list()) listed.push(b.digest);
    assert.deepEqual(listed.sort(), [digest, sha('a'), sha('b'), sha('c')].sort());
    await backend.delete(digest);
    assert.equal(await backend.size(digest), null);
    await backend.checkWritable();
  });

  test('a corrupted object fails the verified read before its end', async () => {
    const { digest } = await backend.put(Readable.from([Buffer.from('trustworthy')]));
    objects.get(backend.keyOf(digest))!.body = Buffer.from('tampered!!!');
    await assert.rejects(text(await backend.openVerified(digest, 11)), (e: Error & { code?: string }) => e.code === 'MUSE_ERR_ARTIFACT_DIGEST_MISMATCH');
  });
});
