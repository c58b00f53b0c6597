/**
 * Reads a recorded model call (`llm-call.json`) from the artifact store by
 * artifact id, for a replay: `GET /v1/artifacts/{id}/content` on the store
 * itself (the worker's `MUSE_ARTIFACT_STORE_URL`), checked against the
 * record schema.
 */
import { MuseError } from '@muse/contracts';
import { LlmCallRecordSchema, type LlmCallRecord } from '@muse/providers';
import { retry } from '@muse/messaging';
import type { RecordingReader } from './model-calls.js';

export class HttpRecordingReader implements RecordingReader {
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly fetchImpl: typeof fetch = fetch,
    /** Per-request timeout, in ms. @default 10_000 */
    private readonly timeoutMs = 10_000,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async read(artifactId: string): Promise<LlmCallRecord> {
    let missing = false;
    try {
      return await retry(
        async () => {
          const res = await this.fetchImpl(`${this.base}/v1/artifacts/${encodeURIComponent(artifactId)}/content`, { signal: AbortSignal.timeout(this.timeoutMs) });
          const text = await res.text();
          if (res.status === 404) {
            missing = true;
            throw new Error('not found');
          }
          if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 300)}`);
          return LlmCallRecordSchema.parse(JSON.parse(text));
        },
        { attempts: 3, baseDelayMs: 200, retryable: () => !missing },
      );
    } catch (err) {
      if (missing) throw new MuseError('MUSE_ERR_ARTIFACT_NOT_FOUND', `the recorded call ${artifactId} is gone (expired?)`, { details: { id: artifactId }, retryable: false });
      throw new MuseError('MUSE_ERR_UNAVAILABLE', `could not read the recorded call ${artifactId}: ${(err as Error).message}`, { cause: err });
    }
  }
}
