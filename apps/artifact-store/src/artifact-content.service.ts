/**
 * How to answer `GET /v1/artifacts/{id}/content`: status, headers and which
 * bytes, decided by a plain function; the service then opens the stream.
 */
import type { Readable } from 'node:stream';
import { MuseError, type ArtifactMeta } from '@muse/contracts';
import type { BlobBackend } from './blob.backend.js';
import { parseByteRange } from './byte-range.parser.js';
import type { FileBody } from './file-sender.js';

export interface ContentRequest {
  range?: string;
  ifRange?: string;
  ifNoneMatch?: string;
}

export interface ContentPlan {
  status: 200 | 206 | 304 | 416;
  headers: Record<string, string>;
  /** Which bytes to send: the whole blob (verified), one range, or nothing. */
  body: { kind: 'whole' } | { kind: 'range'; start: number; end: number } | { kind: 'none' };
}

/** A strong ETag: the digest, quoted as RFC 9110 wants. */
export function etagOf(digest: string): string {
  return `"${digest}"`;
}

export function planContent(meta: ArtifactMeta, storedSize: number, req: ContentRequest): ContentPlan {
  if (storedSize !== meta.size) {
    throw new MuseError('MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', `blob ${meta.digest} has ${storedSize} bytes, expected ${meta.size}`);
  }
  const etag = etagOf(meta.digest);
  const base: Record<string, string> = {
    etag,
    'accept-ranges': 'bytes',
    // Content behind an id never changes.
    'cache-control': 'private, max-age=31536000, immutable',
  };
  if (req.ifNoneMatch !== undefined && matchesEtag(req.ifNoneMatch, etag)) {
    return { status: 304, headers: base, body: { kind: 'none' } };
  }
  const content = { ...base, 'content-type': meta.mediaType, 'x-content-type-options': 'nosniff' };
  // If-Range with another validator: the client's partial copy is outdated, send it all.
  const rangeHeader = req.ifRange !== undefined && req.ifRange.trim() !== etag ? undefined : req.range;
  const range = parseByteRange(rangeHeader, meta.size);
  switch (range.kind) {
    case 'all':
      return { status: 200, headers: { ...content, 'content-length': String(meta.size) }, body: { kind: 'whole' } };
    case 'unsatisfiable':
      return { status: 416, headers: { ...base, 'content-range': `bytes */${meta.size}` }, body: { kind: 'none' } };
    case 'range':
      return {
        status: 206,
        headers: {
          ...content,
          'content-length': String(range.end - range.start + 1),
          'content-range': `bytes ${range.start}-${range.end}/${meta.size}`,
        },
        body: { kind: 'range', start: range.start, end: range.end },
      };
  }
}

function matchesEtag(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export class ArtifactContentService {
  constructor(private readonly blobs: Pick<BlobBackend, 'size' | 'openRange' | 'openVerified' | 'openFile'>) {}

  /**
   * The plan and, unless it sends nothing, the bytes: a file to send with
   * sendFile when the backend keeps the blob as a local file, else a stream.
   */
  async open(meta: ArtifactMeta, req: ContentRequest): Promise<{ plan: ContentPlan; stream?: Readable; file?: FileBody }> {
    const size = await this.blobs.size(meta.digest);
    if (size === null) {
      throw new MuseError('MUSE_ERR_ARTIFACT_DIGEST_MISMATCH', `blob ${meta.digest} of artifact ${meta.id} is missing`);
    }
    const plan = planContent(meta, size, req);
    const body = plan.body;
    if (body.kind === 'none') return { plan };
    const handle = await this.blobs.openFile?.(meta.digest);
    if (handle) {
      return body.kind === 'whole'
        ? { plan, file: { handle, start: 0, end: meta.size - 1, verify: { digest: meta.digest, size: meta.size } } }
        : { plan, file: { handle, start: body.start, end: body.end } };
    }
    return body.kind === 'whole'
      ? { plan, stream: await this.blobs.openVerified(meta.digest, meta.size) }
      : { plan, stream: await this.blobs.openRange(meta.digest, body.start, body.end) };
  }
}
