import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, isAbsolute, relative } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { MuseError } from '@muse/contracts';
import { BlobStore, DigestVerifier } from './blob.store.js';

const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('BlobStore', () => {
  let dir: string;
  let store: BlobStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muse-blob-spec-'));
    store = new BlobStore(dir, { maxBytes: 1024 });
    await store.init();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('resolves a relative root to an absolute path', () => {
    const s = new BlobStore('some/relative/dir', { maxBytes: 1 });
    assert.ok(isAbsolute(s.root));
  });

  test('stores a blob under blobs/sha256/<2 hex>/<64 hex> with the right digest and size', async () => {
    const res = await store.put(Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    const digest = sha('hello world');
    assert.deepEqual(res, { digest, size: 11, dedup: false });
    const hex = digest.slice('sha256:'.length);
    const file = join(dir, 'blobs', 'sha256', hex.slice(0, 2), hex);
    assert.equal(store.pathOf(digest), file);
    assert.equal(await readFile(file, 'utf8'), 'hello world');
    assert.equal(await store.size(digest), 11);
  });

  test('leaves no temp file behind, after success or failure', async () => {
    await store.put(Readable.from([Buffer.from('x')]));
    await assert.rejects(store.put(Readable.from([Buffer.alloc(2000)])));
    const failing = new Readable({
      read() {
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(store.put(failing), /client went away/);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('stores the same content once', async () => {
    const a = await store.put(Readable.from([Buffer.from('same bytes')]));
    const b = await store.put(Readable.from([Buffer.from('same '), Buffer.from('bytes')]));
    assert.equal(a.dedup, false);
    assert.equal(b.dedup, true);
    assert.equal(a.digest, b.digest);
    const hex = a.digest.slice(7);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256', hex.slice(0, 2))), [hex]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('putBytes: bytes in memory stored like put (same path, read-only, marked, deduplicated, no temp left, size-limited)', async () => {
    const marked: string[] = [];
    const res = await store.putBytes(Buffer.from('in memory'), { onDigest: async (d) => void marked.push(d) });
    assert.deepEqual(res, { digest: sha('in memory'), size: 9, dedup: false });
    assert.deepEqual(marked, [sha('in memory')]);
    assert.equal(await readFile(store.pathOf(res.digest), 'utf8'), 'in memory');
    assert.equal((await stat(store.pathOf(res.digest))).mode & 0o777, 0o444);
    assert.equal((await store.putBytes(Buffer.from('in memory'))).dedup, true);
    assert.equal((await store.put(Readable.from([Buffer.from('in memory')]))).dedup, true, 'put and putBytes name a blob alike');
    await assert.rejects(store.putBytes(Buffer.alloc(1025)), (e: unknown) => e instanceof MuseError && e.code === 'MUSE_ERR_REQUEST_TOO_LARGE');
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    // A shard folder removed behind its back is made again.
    await rm(join(dir, 'blobs', 'sha256', res.digest.slice(7, 9)), { recursive: true, force: true });
    assert.equal((await store.putBytes(Buffer.from('in memory'))).dedup, false);
    assert.equal(await readFile(store.pathOf(res.digest), 'utf8'), 'in memory');
  });

  test('stores an empty blob', async () => {
    const res = await store.put(Readable.from([]));
    assert.deepEqual(res, { digest: sha(''), size: 0, dedup: false });
    assert.equal(await store.size(res.digest), 0);
  });

  test('accepts exactly maxBytes and rejects one more with MUSE_ERR_REQUEST_TOO_LARGE, without destroying the source', async () => {
    assert.equal((await store.put(Readable.from([Buffer.alloc(1024, 1)]))).size, 1024);
    const source = Readable.from([Buffer.alloc(1000, 2), Buffer.alloc(25, 2), Buffer.alloc(5000, 2)]);
    await assert.rejects(store.put(source), (err: unknown) => {
      assert.ok(err instanceof MuseError);
      assert.equal(err.code, 'MUSE_ERR_REQUEST_TOO_LARGE');
      assert.equal(err.status, 413);
      return true;
    });
    assert.equal(source.destroyed, false, 'the request stream is left for the caller to answer on');
    assert.equal(await store.size(sha(Buffer.alloc(1025, 2))), null);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('writes through a temp file and renames: the final file appears only complete', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow() {
      yield Buffer.from('first half, ');
      await gate;
      yield Buffer.from('second half');
    }
    const pending = store.put(slow());
    await new Promise((r) => setTimeout(r, 20));
    const temps = await readdir(join(dir, 'tmp'));
    assert.equal(temps.length, 1);
    assert.match(temps[0]!, /\.part$/);
    assert.equal(await store.size(sha('first half, second half')), null);
    release();
    const res = await pending;
    assert.equal(await readFile(store.pathOf(res.digest), 'utf8'), 'first half, second half');
    const mode = (await stat(store.pathOf(res.digest))).mode & 0o777;
    assert.equal(mode, 0o444);
  });

  test('init removes stale temp files and keeps fresh ones', async () => {
    const stale = join(dir, 'tmp', 'dead-upload.part');
    const fresh = join(dir, 'tmp', 'live-upload.part');
    await writeFile(stale, 'partial');
    await writeFile(fresh, 'partial');
    const old = new Date(Date.now() - 3600_000);
    await utimes(stale, old, old);
    const again = new BlobStore(dir, { maxBytes: 1024 });
    assert.equal(await again.init(), 1);
    assert.deepEqual(await readdir(join(dir, 'tmp')), ['live-upload.part']);
  });

  test('pathOf rejects anything but sha256:<64 hex>, so a digest cannot name a path outside the store', () => {
    for (const bad of ['sha256:../../etc/passwd', 'md5:abc', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`]) {
      assert.throws(() => store.pathOf(bad), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_REQUEST_INVALID');
    }
    const p = store.pathOf(`sha256:${'a'.repeat(64)}`);
    assert.ok(!relative(dir, p).startsWith('..'));
  });

  test('openRange reads inclusive byte ranges', async () => {
    const { digest } = await store.put(Readable.from([Buffer.from('0123456789')]));
    assert.equal(await text(await store.openRange(digest, 2, 5)), '2345');
    assert.equal(await text(await store.openRange(digest, 9, 9)), '9');
  });

  test('openVerified streams an intact blob and fails on a corrupted one before its last chunk', async () => {
    const { digest, size } = await store.put(Readable.from([Buffer.from('trustworthy content')]));
    assert.equal(await text(await store.openVerified(digest, size)), 'trustworthy content');

    const file = store.pathOf(digest);
    await chmod(file, 0o644);
    await writeFile(file, 'tampered  content!!');
    const received: Buffer[] = [];
    const s = await store.openVerified(digest, size);
    s.on('data', (c: Buffer) => received.push(c));
    await assert.rejects(new Promise((resolve, reject) => s.on('end', resolve).on('error', reject)), (err: unknown) => {
      return err instanceof MuseError && err.code === 'MUSE_ERR_ARTIFACT_DIGEST_MISMATCH';
    });
    assert.ok(Buffer.concat(received).length < size, 'the last chunk was held back');
  });

  test('checkWritable passes on a writable folder', async () => {
    await store.checkWritable();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });
});

describe('DigestVerifier', () => {
  test('holds back exactly one chunk until the end', async () => {
    const chunks = ['aa', 'bb', 'cc'].map((s) => Buffer.from(s));
    const v = new DigestVerifier(sha('aabbcc'), 6);
    const out: string[] = [];
    v.on('data', (c: Buffer) => out.push(c.toString()));
    v.write(chunks[0]);
    v.write(chunks[1]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(out, ['aa']);
    v.end(chunks[2]);
    await new Promise((r) => v.on('end', r));
    assert.deepEqual(out, ['aa', 'bb', 'cc']);
  });

  test('fails on a size mismatch even when the digest would match a prefix', async () => {
    const v = new DigestVerifier(sha('abc'), 4);
    v.on('data', () => undefined);
    v.end(Buffer.from('abc'));
    await assert.rejects(new Promise((resolve, reject) => v.on('end', resolve).on('error', reject)), /does not match/);
  });
});
