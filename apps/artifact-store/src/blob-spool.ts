/**
 * The first half of every upload: the body streamed to a temp file on the
 * local disk, hashed as it goes, size-limited, fsynced. The digest (the
 * blob's name) is only known after the last byte, and neither S3 nor the
 * NATS Object Store can rename an object, so every backend stages here and
 * then moves the finished file into place (a rename for `local`, one upload
 * under the digest's name for the others). Memory stays bounded: one chunk
 * at a time.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { MuseError } from '@muse/contracts';
import type { PutHooks, PutResult } from './blob.backend.js';

export const TEMP_SUFFIX = '.part';

export interface SpooledBlob {
  /** The temp file holding the bytes; the caller moves or removes it. */
  path: string;
  digest: string;
  size: number;
}

export class BlobSpool {
  constructor(
    /** Folder of temp files; on the same filesystem as a local backend's blobs, so its rename is atomic. */
    readonly dir: string,
    /** Largest blob accepted, in bytes. */
    private readonly maxBytes: number,
    /** A temp file untouched this long belongs to a dead upload, in ms. */
    private readonly staleTempMs: number,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** A fresh temp file name. */
  tempPath(): string {
    return join(this.dir, `${randomUUID()}${TEMP_SUFFIX}`);
  }

  async spool(source: Readable | AsyncIterable<Uint8Array | string>, opts: { releaseChunks?: boolean | undefined } = {}): Promise<SpooledBlob> {
    const path = this.tempPath();
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(path, 'wx', 0o600);
    try {
      // destroyOnReturn: false — leaving the loop early must not destroy an
      // HTTP request, or the client gets a reset instead of our 413.
      const chunks = 'iterator' in source && typeof source.iterator === 'function' ? source.iterator({ destroyOnReturn: false }) : source;
      for await (const raw of chunks as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
        size += chunk.length;
        if (size > this.maxBytes) {
          throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `blob is larger than ${this.maxBytes} bytes`, { details: { limitBytes: this.maxBytes } });
        }
        hash.update(chunk);
        await writeAll(fh, chunk);
        if (opts.releaseChunks || chunk !== raw) releaseChunk(chunk);
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(path, { force: true });
      throw err;
    }
    await fh.close();
    return { path, digest: `sha256:${hash.digest('hex')}`, size };
  }

  /**
   * Removes temp files not written to for `olderThanMs`. Only old ones: on a
   * shared volume another replica's upload may be in flight right now.
   */
  async sweep(olderThanMs = this.staleTempMs, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const file = join(this.dir, name);
      const st = await stat(file).catch(() => null);
      if (!st || now - st.mtimeMs < olderThanMs) continue;
      await rm(file, { force: true });
      removed++;
    }
    return removed;
  }
}

/**
 * Frees a chunk's memory now instead of at the next GC, by detaching its
 * ArrayBuffer (the bytes are gone from every view of it). A Node body chunk is
 * a small JS object over 64 KiB of memory outside the heap: at disk speed a
 * stream makes them far faster than garbage collection notices, and tens of
 * MiB of dead chunks pile up between collections. Only a chunk that is its
 * whole ArrayBuffer is freed: a view into a shared or pooled one is left alone.
 */
export function releaseChunk(chunk: Uint8Array): void {
  const ab = chunk.buffer;
  if (!(ab instanceof ArrayBuffer) || ab.detached || ab.resizable || chunk.byteOffset !== 0 || chunk.byteLength !== ab.byteLength) return;
  try {
    ab.transfer(0);
  } catch {
    // Not detachable (e.g. held by a native API): the GC frees it.
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

/**
 * A backend that stages every upload in a spool, then stores the finished
 * file under its digest with one `upload` (the S3 and NATS Object Store
 * backends). Dedup, the digest hook and the temp file's removal live here,
 * once.
 */
export abstract class SpooledBackend {
  constructor(protected readonly spool: BlobSpool) {}

  async init(): Promise<number> {
    await this.spool.init();
    return this.spool.sweep();
  }

  sweepTemps(): Promise<number> {
    return this.spool.sweep();
  }

  /** The stored size of a blob, or null when it is not there. */
  abstract size(digest: string): Promise<number | null>;

  /** Stores the spooled file `path` (`size` bytes) under `digest`. */
  protected abstract upload(digest: string, path: string, size: number): Promise<void>;

  async put(source: Readable | AsyncIterable<Uint8Array | string>, hooks: PutHooks = {}): Promise<PutResult> {
    const tmp = await this.spool.spool(source, { releaseChunks: hooks.releaseChunks });
    try {
      await hooks.onDigest?.(tmp.digest);
      if ((await this.size(tmp.digest)) === tmp.size) return { digest: tmp.digest, size: tmp.size, dedup: true };
      await this.upload(tmp.digest, tmp.path, tmp.size);
      return { digest: tmp.digest, size: tmp.size, dedup: false };
    } finally {
      await rm(tmp.path, { force: true });
    }
  }
}
