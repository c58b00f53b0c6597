import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MuseError } from '@muse/contracts';
import { BlobSpool, releaseChunk } from './blob-spool.js';
import { sendFile, type FileBody, type SendFileOptions, type SendOutcome } from './file-sender.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A server whose one route sends `file` with sendFile; `outcome` settles with what sendFile did. */
async function serve(body: () => Promise<FileBody>, opts: SendFileOptions = {}) {
  let settle!: (v: { outcome?: SendOutcome; err?: unknown }) => void;
  const outcome = new Promise<{ outcome?: SendOutcome; err?: unknown }>((r) => (settle = r));
  const server: Server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    void body().then(async (b) => {
      res.writeHead(200, { 'content-length': String(b.end - b.start + 1) });
      await sendFile(res, b, opts).then(
        (o) => settle({ outcome: o }),
        (err: unknown) => settle({ err }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { server, url, outcome };
}

/** The body as received, and whether it arrived whole (a destroyed response ends it early). */
function fetchRaw(url: string): Promise<{ bytes: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ bytes: Buffer.concat(parts), complete: res.complete }));
      res.on('error', () => resolve({ bytes: Buffer.concat(parts), complete: false }));
    }).on('error', reject);
  });
}

describe('sendFile', () => {
  let dir: string;
  const bytes = randomBytes(100_003);
  let path: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muse-file-sender-spec-'));
    path = join(dir, 'blob');
    await writeFile(path, bytes);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('sends a whole file, verified, through a ring smaller than the file', async () => {
    const s = await serve(async () => ({ handle: await open(path, 'r'), start: 0, end: bytes.length - 1, verify: { digest: sha(bytes), size: bytes.length } }), {
      chunkBytes: 4096,
      buffers: 2,
    });
    try {
      const got = await fetchRaw(s.url);
      assert.ok(got.complete);
      assert.ok(got.bytes.equals(bytes));
      assert.deepEqual(await s.outcome, { outcome: 'sent' });
    } finally {
      s.server.close();
    }
  });

  test('sends an inclusive byte range', async () => {
    const s = await serve(async () => ({ handle: await open(path, 'r'), start: 5_000, end: 70_000 }), { chunkBytes: 1000 });
    try {
      const got = await fetchRaw(s.url);
      assert.ok(got.bytes.equals(bytes.subarray(5_000, 70_001)));
      assert.deepEqual(await s.outcome, { outcome: 'sent' });
    } finally {
      s.server.close();
    }
  });

  test('an empty file is verified too', async () => {
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    const s = await serve(async () => ({ handle: await open(empty, 'r'), start: 0, end: -1, verify: { digest: sha(Buffer.alloc(0)), size: 0 } }));
    try {
      const got = await fetchRaw(s.url);
      assert.deepEqual([got.complete, got.bytes.length], [true, 0]);
      assert.deepEqual(await s.outcome, { outcome: 'sent' });
    } finally {
      s.server.close();
    }
  });

  test('a file that fails verification ends the response before its last chunk', async () => {
    const tampered = join(dir, 'tampered');
    const copy = Buffer.from(bytes);
    copy[copy.length - 1] ^= 0xff;
    await writeFile(tampered, copy);
    const s = await serve(async () => ({ handle: await open(tampered, 'r'), start: 0, end: bytes.length - 1, verify: { digest: sha(bytes), size: bytes.length } }), {
      chunkBytes: 8192,
    });
    try {
      const got = await fetchRaw(s.url);
      assert.equal(got.complete, false);
      assert.ok(got.bytes.length < bytes.length, 'the last chunk was held back');
      assert.ok(got.bytes.equals(bytes.subarray(0, got.bytes.length)));
      const { err } = await s.outcome;
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', String(err));
    } finally {
      s.server.close();
    }
  });

  test('a file shorter than its range fails the same way', async () => {
    const s = await serve(async () => ({ handle: await open(path, 'r'), start: 0, end: bytes.length + 9, verify: { digest: sha(bytes), size: bytes.length + 10 } }), {
      chunkBytes: 65536,
    });
    try {
      const got = await fetchRaw(s.url);
      assert.equal(got.complete, false);
      const { err } = await s.outcome;
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', String(err));
    } finally {
      s.server.close();
    }
  });

  test('a client that goes away mid-send ends it quietly and the file is closed', async () => {
    const big = join(dir, 'big');
    await writeFile(big, Buffer.alloc(64 * 1024 * 1024));
    let handle!: Awaited<ReturnType<typeof open>>;
    const s = await serve(async () => (handle = await open(big, 'r')) && { handle, start: 0, end: 64 * 1024 * 1024 - 1 });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = get(s.url, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
        req.on('close', resolve);
        setTimeout(() => reject(new Error('no data')), 5000).unref();
      });
      assert.deepEqual(await s.outcome, { outcome: 'client-closed' });
      await assert.rejects(handle.stat(), (err: NodeJS.ErrnoException) => err.code === 'EBADF', 'the file handle is closed');
    } finally {
      s.server.close();
    }
  });
});

describe('releaseChunk', () => {
  test('detaches a buffer that is the whole of its ArrayBuffer, and leaves views into shared ones alone', () => {
    const whole = Buffer.allocUnsafeSlow(65536).fill(1);
    releaseChunk(whole);
    assert.equal(whole.buffer.detached, true);
    assert.equal(whole.length, 0);

    const shared = Buffer.alloc(100, 2);
    const view = shared.subarray(10, 20);
    releaseChunk(view);
    assert.equal(shared.buffer.detached, false);
    assert.equal(view.length, 10);

    const pooled = Buffer.from('small'); // a slice of Node's shared pool
    releaseChunk(pooled);
    assert.equal(pooled.toString(), 'small');
  });

  test('the spool frees the chunks it was given only when told they are its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muse-spool-release-spec-'));
    try {
      const spool = new BlobSpool(dir, 1 << 20, 60_000);
      await spool.init();
      const kept = [Buffer.alloc(5000, 3), Buffer.alloc(5000, 4)];
      const a = await spool.spool(Readable.from(kept));
      assert.deepEqual(
        kept.map((b) => b.length),
        [5000, 5000],
      );
      const given = [Buffer.alloc(5000, 3), Buffer.alloc(5000, 4)];
      const b = await spool.spool(Readable.from(given), { releaseChunks: true });
      assert.deepEqual(
        given.map((c) => c.buffer.detached),
        [true, true],
      );
      assert.equal(a.digest, b.digest, 'the same bytes were hashed and written');
      assert.equal(b.size, 10_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
