/**
 * The `local` backend: content-addressed blobs on the local filesystem (the
 * default).
 *
 * A blob lives at `<root>/blobs/sha256/<2 hex>/<64 hex>` and never changes.
 * A write goes to a temp file under `<root>/tmp` (same filesystem, so the
 * final rename is atomic), is hashed as it streams, fsynced, then renamed into
 * place and the folder fsynced; a reader therefore sees a whole blob or none,
 * and a crash at any point leaves the old state or the new one (plus a temp
 * file that the sweep at start removes). The same bytes uploaded twice are
 * stored once: the second temp file is dropped.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, chmod, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MuseError } from '@muse/contracts';
import type { BlobBackend, BlobInfo, PutHooks, PutResult } from './blob.backend.js';
import { BlobSpool } from './blob-spool.js';

export type { PutResult } from './blob.backend.js';

/** `sha256:` and 64 lower-case hex digits: the only digest form Muse writes or accepts. */
export const DIGEST_PATTERN = /^sha256:([0-9a-f]{64})$/;

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

/** The 64 hex digits of a digest, or MUSE_ERR_REQUEST_INVALID: a digest names files and objects, so it is checked before any use. */
export function digestHex(digest: string): string {
  const m = DIGEST_PATTERN.exec(digest);
  if (!m) throw new MuseError('MUSE_ERR_REQUEST_INVALID', `not a sha256 digest: ${digest}`);
  return m[1]!;
}

export interface BlobStoreOptions {
  /** Largest blob accepted, in bytes. */
  maxBytes: number;
  /** A temp file untouched for this long belongs to a dead upload, in ms. @default 600_000 */
  staleTempMs?: number;
}

export class BlobStore implements BlobBackend {
  readonly kind = 'local' as const;
  /** Absolute root folder. */
  readonly root: string;
  readonly spool: BlobSpool;
  private readonly blobsDir: string;
  private readonly maxBytes: number;
  /** Shard folders known to exist (made by this process, or found). */
  private readonly shards = new Set<string>();

  constructor(root: string, opts: BlobStoreOptions) {
    this.root = resolve(root);
    this.spool = new BlobSpool(join(this.root, 'tmp'), opts.maxBytes, opts.staleTempMs ?? 600_000);
    this.blobsDir = join(this.root, 'blobs', 'sha256');
    this.maxBytes = opts.maxBytes;
  }

  /** Creates the folders and removes temp files left by uploads that died. @returns how many were removed */
  async init(): Promise<number> {
    await this.spool.init();
    await mkdir(this.blobsDir, { recursive: true });
    return this.sweepTemps();
  }

  sweepTemps(olderThanMs?: number, now?: number): Promise<number> {
    return this.spool.sweep(olderThanMs, now);
  }

  async put(source: Readable | AsyncIterable<Uint8Array | string>, hooks: PutHooks = {}): Promise<PutResult> {
    const tmp = await this.spool.spool(source, { releaseChunks: hooks.releaseChunks });
    try {
      await hooks.onDigest?.(tmp.digest);
      const final = this.pathOf(tmp.digest);
      if (await exists(final)) return { digest: tmp.digest, size: tmp.size, dedup: true };
      await mkdir(dirname(final), { recursive: true });
      await chmod(tmp.path, 0o444); // immutable by intent: a blob is named by its content
      // Two concurrent uploads of the same bytes may both get here; rename
      // replaces atomically with identical content, so either winner is right.
      await rename(tmp.path, final);
      await fsyncDir(dirname(final));
      return { digest: tmp.digest, size: tmp.size, dedup: false };
    } finally {
      await rm(tmp.path, { force: true });
    }
  }

  /**
   * `put` for bytes already in memory (a small artifact that came inside a commit request): the same guarantees
   * (temp file, fsync, rename, folder fsync; GC's mark once the digest is known) in fewer file operations — one
   * write, the file created read-only, shard folders made once per process.
   */
  async putBytes(bytes: Uint8Array, hooks: PutHooks = {}): Promise<PutResult> {
    if (bytes.length > this.maxBytes) {
      throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `blob is larger than ${this.maxBytes} bytes`, { details: { limitBytes: this.maxBytes } });
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await hooks.onDigest?.(digest);
    const final = this.pathOf(digest);
    if (await exists(final)) return { digest, size: bytes.length, dedup: true };
    const shard = dirname(final);
    if (!this.shards.has(shard)) {
      await mkdir(shard, { recursive: true });
      this.shards.add(shard);
    }
    const tmp = this.spool.tempPath();
    const fh = await open(tmp, 'wx', 0o444);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
        // The shard folder went away after this process made it (someone cleaned the volume): make it again.
        if (err.code !== 'ENOENT') throw err;
        await mkdir(shard, { recursive: true });
        await rename(tmp, final);
      });
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(shard);
    return { digest, size: bytes.length, dedup: false };
  }

  /** Where the blob with `digest` lives (whether or not it exists). */
  pathOf(digest: string): string {
    const hex = digestHex(digest);
    return join(this.blobsDir, hex.slice(0, 2), hex);
  }

  async size(digest: string): Promise<number | null> {
    const st = await stat(this.pathOf(digest)).catch(() => null);
    return st?.isFile() ? st.size : null;
  }

  async openRange(digest: string, start: number, end: number): Promise<Readable> {
    return createReadStream(this.pathOf(digest), { start, end });
  }

  /**
   * The whole blob, checked against its digest and size as it streams. The
   * last chunk is held back until the check passes: on a mismatch the stream
   * errors before the end, so a client never gets a corrupt body that looks
   * complete (its Content-Length is not met).
   */
  async openVerified(digest: string, expectedSize: number): Promise<Readable> {
    return createReadStream(this.pathOf(digest)).pipe(new DigestVerifier(digest, expectedSize));
  }

  openFile(digest: string): Promise<FileHandle> {
    return open(this.pathOf(digest), 'r');
  }

  async delete(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const shard of await readdir(this.blobsDir).catch(() => [] as string[])) {
      for (const hex of await readdir(join(this.blobsDir, shard)).catch(() => [] as string[])) {
        const digest = `sha256:${hex}`;
        if (!isDigest(digest)) continue;
        const st = await stat(join(this.blobsDir, shard, hex)).catch(() => null);
        if (st?.isFile()) yield { digest, size: st.size, storedAt: st.mtimeMs };
      }
    }
  }

  /** Readiness: the data folder takes a write. */
  async checkWritable(): Promise<void> {
    const probe = join(this.spool.dir, `.probe-${process.pid}-${randomUUID()}`);
    const fh = await open(probe, 'w');
    try {
      await fh.write('ok');
    } finally {
      await fh.close();
      await rm(probe, { force: true });
    }
  }
}

/** Passes bytes through, holding back the latest chunk until the digest and size are verified. */
export class DigestVerifier extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | undefined;
  private size = 0;

  constructor(
    private readonly digest: string,
    private readonly expectedSize: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    const prev = this.held;
    this.held = chunk;
    cb(null, prev);
  }

  override _flush(cb: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== this.digest || this.size !== this.expectedSize) {
      cb(
        new MuseError('MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', undefined, {
          details: { expected: this.digest, actual, expectedSize: this.expectedSize, size: this.size },
        }),
      );
      return;
    }
    cb(null, this.held);
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Makes a rename durable: the directory entry is on disk once this returns. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await fh.close();
  }
}
