/**
 * Uploads a step's output to the artifact store as a blob
 * (`PUT /internal/v1/blobs`). Only the blob: binding it to the run as a
 * versioned artifact is the coordinator's commit, under the run's fencing
 * token, once it accepts the step's report.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MuseError } from '@muse/contracts';
import { SpanKind, injectContext, withSpan } from '@muse/telemetry';
import { retry, type RetryOptions } from './backoff.js';

const BlobPutResponseSchema = z.object({ digest: z.string().regex(/^sha256:[0-9a-f]{64}$/), size: z.number().int().min(0) });
export type BlobRef = z.infer<typeof BlobPutResponseSchema>;

export interface ArtifactUploaderOptions {
  /** Per-request timeout, in ms. @default 30_000 */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** @internal for tests */
  fetch?: typeof fetch;
}

/** A 4xx answer will be the same next time: not worth a retry. */
class UploadRejectedError extends Error {}

export class ArtifactUploader {
  private readonly url: string;
  private readonly fetch: typeof fetch;

  constructor(
    baseUrl: string,
    private readonly opts: ArtifactUploaderOptions = {},
  ) {
    this.url = `${baseUrl.replace(/\/+$/, '')}/internal/v1/blobs`;
    this.fetch = opts.fetch ?? fetch;
  }

  async upload(bytes: Uint8Array, mediaType: string): Promise<BlobRef> {
    const expected = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    try {
      // A client span whose context goes to the store in the `traceparent` header (its blob PUT span is a child).
      return await withSpan('muse.artifact.upload', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'PUT', 'muse.artifact.size': bytes.length } }, () => retry(() => this.putOnce(bytes, mediaType, expected), {
        attempts: 4,
        baseDelayMs: 250,
        ...this.opts.retry,
        retryable: (err) => !(err instanceof UploadRejectedError),
      }));
    } catch (err) {
      throw new MuseError('MUSE_ERR_UNAVAILABLE', `could not upload the step output to the artifact store: ${(err as Error).message}`, {
        // A rejection (413, 400) will not change on a retry of the step either.
        retryable: !(err instanceof UploadRejectedError),
        cause: err,
      });
    }
  }

  private async putOnce(bytes: Uint8Array, mediaType: string, expected: string): Promise<BlobRef> {
    const res = await this.fetch(this.url, {
      method: 'PUT',
      headers: injectContext({ 'content-type': mediaType }),
      body: bytes,
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    if (res.status >= 400 && res.status < 500) throw new UploadRejectedError(`HTTP ${res.status}: ${text.slice(0, 500)}`);
    if (res.status !== 201 && res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 500)}`);
    const ref = BlobPutResponseSchema.parse(JSON.parse(text));
    // The store hashed what it received; a different digest means the bytes changed on the way.
    if (ref.digest !== expected || ref.size !== bytes.length) {
      throw new Error(`artifact store stored ${ref.digest} (${ref.size} bytes), expected ${expected} (${bytes.length} bytes)`);
    }
    return ref;
  }
}
