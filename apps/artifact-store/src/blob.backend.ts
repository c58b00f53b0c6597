/**
 * Where blobs live. Every backend stores immutable, content-addressed blobs
 * named by their sha256 digest; the artifact metadata (Redis) is the same
 * whichever backend holds the bytes. Selected by MUSE_ARTIFACT_BACKEND.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export type BlobBackendKind = 'local' | 'nats' | 's3';

export interface PutResult {
  digest: string;
  size: number;
  /** True when the blob was already stored and this upload was dropped. */
  dedup: boolean;
}

export interface PutHooks {
  /**
   * Called once the digest is known and before the store decides to reuse
   * a stored copy: the GC's pending-reference marker goes here, so that a
   * blob an upload counts on is never collected under it.
   */
  onDigest?(digest: string): Promise<void>;
  /**
   * The source's chunks are the store's to free (an HTTP request body, read by
   * nothing else): each is detached once hashed and written, so its memory goes
   * back at once rather than at the next full GC. Only a chunk that is the
   * whole of its ArrayBuffer is freed; a view into a shared one is left alone.
   * Never set it for buffers a caller may still read.
   */
  releaseChunks?: boolean;
}

export interface BlobInfo {
  digest: string;
  size: number;
  /** When the blob was stored, epoch ms. */
  storedAt: number;
}

export interface BlobBackend {
  readonly kind: BlobBackendKind;
  /** Prepares storage and removes temp files of dead uploads. @returns how many were removed */
  init(): Promise<number>;
  /** Removes temp files untouched for the configured time. @returns how many */
  sweepTemps(): Promise<number>;
  /**
   * Streams `source` in, hashing it; over the size limit it throws
   * MUSE_ERR_REQUEST_TOO_LARGE and leaves the source paused, not destroyed.
   * A reader never sees a partial blob: it appears whole or not at all.
   */
  put(source: Readable | AsyncIterable<Uint8Array | string>, hooks?: PutHooks): Promise<PutResult>;
  /** The blob's size, or null when it is not stored. */
  size(digest: string): Promise<number | null>;
  /** Bytes `start..end` (inclusive). */
  openRange(digest: string, start: number, end: number): Promise<Readable>;
  /** The whole blob, verified against digest and size as it streams (the last chunk is held back until it matches). */
  openVerified(digest: string, expectedSize: number): Promise<Readable>;
  /**
   * The blob's file opened for reading, when the backend keeps blobs as local
   * files (`local`): a reader then reads it into buffers of its own instead of
   * a stream's fresh chunks (see file-sender.ts). The caller closes it.
   * Undefined when this blob is not a file (redis-blob-tier.ts keeps small
   * ones in Redis): the caller then streams it.
   */
  openFile?(digest: string): Promise<FileHandle | undefined>;
  /**
   * Whether a blob of this size that arrives as bytes (`putBytes`) lives in Redis (redis-blob-tier.ts): a commit may
   * then write such a blob itself, in its own script (artifact-commit.script.ts). Absent = never.
   */
  keepsInRedis?(size: number): boolean;
  /** `put` of bytes already in memory, in fewer steps, where the backend has such a path (`local`); else `put` them. */
  putBytes?(bytes: Uint8Array, hooks?: PutHooks): Promise<PutResult>;
  /** Removes the blob; a missing blob is not an error. */
  delete(digest: string): Promise<void>;
  /** Every stored blob, for the garbage collector. */
  list(): AsyncIterable<BlobInfo>;
  /** Readiness: the backend takes a write. */
  checkWritable(): Promise<void>;
}
