/**
 * Canonical JSON and content digests. Two documents that mean the same thing
 * (same values, keys in any order, sent as JSON or as YAML) get the same
 * digest: registering a workflow twice, or replaying a submission with an
 * Idempotency-Key, compares meaning, not bytes.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; `undefined` members are dropped, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `sha256:<hex>` of the canonical JSON of `value`. */
export function contentDigest(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}
