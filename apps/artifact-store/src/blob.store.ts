/**
 * Content-addressed blobs on the local filesystem.
 *
 * A blob lives at `<root>/blobs/sha256/<2 hex>/<64 hex>` and never changes.
 * A write goes to a temp file under `<root>/tmp` (same filesystem, so the
 * final rename is atomic), is hashed as it streams, fsynced, then renamed into
 * place; a reader therefore sees a whole blob or none. The same bytes uploaded
 * twice are stored once: the second temp file is dropped.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, chmod, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MuseError } from '@muse/contracts';

/** `sha256:` and 64 lower-case hex digits: the only digest form Muse writes or accepts. */
export const DIGEST_PATTERN = /^sha256:([0-9a-f]{64})$/;

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}

export interface PutResult {
  digest: string;
  size: number;
  /** True when the blob was already stored and this upload was dropped. */
  dedup: boolean;
}

export interface BlobStoreOptions {
  /** Largest blob accepted, in bytes. */
  maxBytes: number;
  /** A temp file untouched for this long belongs to a dead upload, in ms. @default 600_000 */
  staleTempMs?: number;
}

const TEMP_SUFFIX = '.part';

export class BlobStore {
  /** Absolute root folder. */
  readonly root: string;
  private readonly tmpDir: string;
  private readonly blobsDir: string;
  private readonly maxBytes: number;
  private readonly staleTempMs: number;

  constructor(root: string, opts: BlobStoreOptions) {
    this.root = resolve(root);
    this.tmpDir = join(this.root, 'tmp');
    this.blobsDir = join(this.root, 'blobs', 'sha256');
    this.maxBytes = opts.maxBytes;
    this.staleTempMs = opts.staleTempMs ?? 600_000;
  }

  /** Creates the folders and removes temp files left by uploads that died. @returns how many were removed */
  async init(): Promise<number> {
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.blobsDir, { recursive: true });
    return this.sweepTemps();
  }

  /**
   * Removes temp files not written to for `staleTempMs`. Only old ones: on a
   * shared volume another replica's upload may be in flight right now.
   */
  async sweepTemps(olderThanMs = this.staleTempMs, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const file = join(this.tmpDir, name);
      const st = await stat(file).catch(() => null);
      if (!st || now - st.mtimeMs < olderThanMs) continue;
      await rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Streams `source` into the store. Over `maxBytes`, reading stops (the
   * source is left paused, not destroyed, so the caller can still answer on
   * the same connection) and MUSE_ERR_REQUEST_TOO_LARGE is thrown.
   */
  async put(source: Readable | AsyncIterable<Uint8Array | string>): Promise<PutResult> {
    const tmp = join(this.tmpDir, `${randomUUID()}${TEMP_SUFFIX}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      // destroyOnReturn: false — leaving the loop early must not destroy an
      // HTTP request, or the client gets a reset instead of our 413.
      const chunks = 'iterator' in source && typeof source.iterator === 'function'
        ? source.iterator({ destroyOnReturn: false })
        : source;
      for await (const raw of chunks as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
        size += chunk.length;
        if (size > this.maxBytes) {
          throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `blob is larger than ${this.maxBytes} bytes`, {
            details: { limitBytes: this.maxBytes },
          });
        }
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();

    const digest = `sha256:${hash.digest('hex')}`;
    const final = this.pathOf(digest);
    if (await exists(final)) {
      await rm(tmp, { force: true });
      return { digest, size, dedup: true };
    }
    await mkdir(dirname(final), { recursive: true });
    await chmod(tmp, 0o444); // immutable by intent: a blob is named by its content
    // Two concurrent uploads of the same bytes may both get here; rename
    // replaces atomically with identical content, so either winner is right.
    await rename(tmp, final);
    await fsyncDir(dirname(final));
    return { digest, size, dedup: false };
  }

  /** Where the blob with `digest` lives (whether or not it exists). */
  pathOf(digest: string): string {
    const m = DIGEST_PATTERN.exec(digest);
    if (!m) throw new MuseError('MUSE_ERR_REQUEST_INVALID', `not a sha256 digest: ${digest}`);
    const hex = m[1]!;
    return join(this.blobsDir, hex.slice(0, 2), hex);
  }

  /** The blob's size, or null when it is not stored. */
  async size(digest: string): Promise<number | null> {
    const st = await stat(this.pathOf(digest)).catch(() => null);
    return st?.isFile() ? st.size : null;
  }

  /** Bytes `start..end` (inclusive) of a blob, as a stream. */
  openRange(digest: string, start: number, end: number): Readable {
    return createReadStream(this.pathOf(digest), { start, end });
  }

  /**
   * The whole blob, checked against its digest and size as it streams. The
   * last chunk is held back until the check passes: on a mismatch the stream
   * errors before the end, so a client never gets a corrupt body that looks
   * complete (its Content-Length is not met).
   */
  openVerified(digest: string, expectedSize: number): Readable {
    return createReadStream(this.pathOf(digest)).pipe(new DigestVerifier(digest, expectedSize));
  }

  /** Readiness: the data folder takes a write. */
  async checkWritable(): Promise<void> {
    const probe = join(this.tmpDir, `.probe-${process.pid}-${randomUUID()}`);
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
      cb(new MuseError('MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', undefined, {
        details: { expected: this.digest, actual, expectedSize: this.expectedSize, size: this.size },
      }));
      return;
    }
    cb(null, this.held);
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
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
