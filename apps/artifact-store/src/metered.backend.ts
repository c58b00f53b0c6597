/** Times every blob backend call into `muse_artifact_backend_seconds`, by backend, operation and outcome. */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Histogram } from 'prom-client';
import type { BlobBackend, BlobInfo, PutHooks, PutResult } from './blob.backend.js';

export class MeteredBackend implements BlobBackend {
  readonly kind: BlobBackend['kind'];
  readonly openFile?: (digest: string) => Promise<FileHandle | undefined>;
  readonly putBytes?: (bytes: Uint8Array, hooks?: PutHooks) => Promise<PutResult>;

  constructor(
    private readonly inner: BlobBackend,
    private readonly seconds: Histogram<'backend' | 'op' | 'outcome'>,
  ) {
    this.kind = inner.kind;
    // Only where the inner backend has files: a reader tests for the method.
    if (inner.openFile) {
      const openFile = inner.openFile.bind(inner);
      this.openFile = (digest) => this.time('get', () => openFile(digest));
    }
    if (inner.putBytes) {
      const putBytes = inner.putBytes.bind(inner);
      this.putBytes = (bytes, hooks) => this.time('put', () => putBytes(bytes, hooks));
    }
  }

  private async time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.seconds.startTimer({ backend: this.kind, op });
    try {
      const v = await fn();
      end({ outcome: 'ok' });
      return v;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }

  init(): Promise<number> {
    return this.inner.init();
  }
  sweepTemps(): Promise<number> {
    return this.inner.sweepTemps();
  }
  put(source: Readable | AsyncIterable<Uint8Array | string>, hooks?: PutHooks): Promise<PutResult> {
    return this.time('put', () => this.inner.put(source, hooks));
  }
  size(digest: string): Promise<number | null> {
    return this.time('stat', () => this.inner.size(digest));
  }
  openRange(digest: string, start: number, end: number): Promise<Readable> {
    return this.time('get', () => this.inner.openRange(digest, start, end));
  }
  openVerified(digest: string, expectedSize: number): Promise<Readable> {
    return this.time('get', () => this.inner.openVerified(digest, expectedSize));
  }
  delete(digest: string): Promise<void> {
    return this.time('delete', () => this.inner.delete(digest));
  }
  list(): AsyncIterable<BlobInfo> {
    return this.inner.list();
  }
  checkWritable(): Promise<void> {
    return this.inner.checkWritable();
  }
}
