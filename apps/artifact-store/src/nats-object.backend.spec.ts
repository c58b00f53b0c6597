/**
 * The NATS Object Store backend against the real NATS (NATS_URL, default
 * localhost), in a bucket of its own that is destroyed afterwards.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text, buffer } from 'node:stream/consumers';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { BlobSpool } from './blob-spool.js';
import { ByteWindow, NatsObjectBackend } from './nats-object.backend.js';

const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('NatsObjectBackend (real NATS)', () => {
  let nc: NatsConnection;
  let dir: string;
  let backend: NatsObjectBackend;
  const bucket = `t-spec-${randomBytes(4).toString('hex')}-artifacts`;

  before(async () => {
    nc = await connect({ servers: (process.env.NATS_URL ?? 'nats://127.0.0.1:4222').split(',') });
    dir = await mkdtemp(join(tmpdir(), 'muse-obj-spec-'));
    backend = await NatsObjectBackend.open(nc, { bucket, spool: new BlobSpool(join(dir, 'tmp'), 4 << 20, 600_000) });
    await backend.init();
  });
  after(async () => {
    await (await new Objm(nc).open(bucket)).destroy().catch(() => undefined);
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('stores a blob by digest, once, and reads it whole, verified, and by range (across chunks)', async () => {
    const bytes = randomBytes(300_000); // more than two 128 KiB chunks
    const a = await backend.put(Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]));
    assert.deepEqual(a, { digest: sha(bytes), size: bytes.length, dedup: false });
    assert.equal((await backend.put(Readable.from([bytes]))).dedup, true);
    assert.equal(await backend.size(a.digest), bytes.length);
    assert.ok((await buffer(await backend.openVerified(a.digest, bytes.length))).equals(bytes));
    assert.ok((await buffer(await backend.openRange(a.digest, 131_000, 140_000))).equals(bytes.subarray(131_000, 140_001)));
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('lists, deletes, and answers null for a missing blob', async () => {
    const { digest } = await backend.put(Readable.from([Buffer.from('to be deleted')]));
    const listed: string[] = [];
    for await (const b of backend.list()) listed.push(b.digest);
    assert.ok(listed.includes(digest));
    await backend.delete(digest);
    assert.equal(await backend.size(digest), null);
    await backend.delete(digest); // twice is fine
    assert.equal(await backend.size(sha('never stored')), null);
    await backend.checkWritable();
  });

  test('ByteWindow passes exactly the inclusive window', async () => {
    const out = await text(Readable.from([Buffer.from('0123'), Buffer.from('4567'), Buffer.from('89')]).pipe(new ByteWindow(3, 8)));
    assert.equal(out, '345678');
  });
});
