/**
 * `Idempotency-Key` on `POST /v1/runs`. The key (per project) maps to
 * `{runId, bodyDigest}` in Redis for 24 h; the command carries a message id
 * derived from the key, so JetStream drops a second publish of the same
 * submission within its duplicate window.
 */
import { z } from 'zod';
import { MuseError } from '@muse/contracts';
import { contentDigest, sha256Hex } from '../common/canonical-json.js';

/** How long a key is remembered, in seconds. @default 24 h */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

export const IdempotencyRecordSchema = z.object({ runId: z.string(), bodyDigest: z.string() });
export type IdempotencyRecord = z.infer<typeof IdempotencyRecordSchema>;

const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** The header's key, or undefined when absent; visible ASCII, 1 to 255 characters. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (!KEY_PATTERN.test(value)) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
      details: { issues: [{ path: 'Idempotency-Key', field: 'Idempotency-Key', message: 'invalid header value' }] },
    });
  }
  return value;
}

/** JetStream message id for a keyed submission: `idem.<project>.<sha256(key) hex>`. */
export function idempotencyMsgId(project: string, key: string): string {
  return `idem.${project}.${sha256Hex(key)}`;
}

/**
 * Digest of a submission body, by meaning: the same JSON with keys in another
 * order, or the same document sent as YAML, is the same request.
 */
export function bodyDigest(body: unknown): string {
  return contentDigest(body ?? null);
}

/** A replay must carry the body the key was first used with; anything else is a conflict. */
export function assertSameRequest(record: IdempotencyRecord, digest: string, key: string): void {
  if (record.bodyDigest !== digest) {
    throw new MuseError('MUSE_ERR_IDEMPOTENCY_CONFLICT', `Idempotency-Key "${key}" was used with a different request body`, {
      details: { runId: record.runId },
    });
  }
}
