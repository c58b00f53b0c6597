/**
 * API keys as values: format, generation, hashing and checking. The secret
 * is 256 random bits, so a single SHA-256 is enough to store it (a slow
 * password hash protects low-entropy secrets; this one cannot be guessed).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { API_KEY_PATTERN, type ApiKeyView, type StoredApiKey } from '@muse/contracts';

export interface ParsedApiKey {
  id: string;
  key: string;
}

/** A new key: `muse_<12 hex id>_<43 base64url secret>`. */
export function generateApiKey(): ParsedApiKey {
  const id = randomBytes(6).toString('hex');
  return { id, key: `muse_${id}_${randomBytes(32).toString('base64url')}` };
}

/** The key id of a well-formed key, or null. */
export function parseApiKey(key: string): ParsedApiKey | null {
  const m = API_KEY_PATTERN.exec(key);
  return m ? { id: m[1]!, key } : null;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A hash no key has: what a missing key is compared against, so both paths do the same work. */
const NO_HASH = '0'.repeat(64);

/**
 * Whether `key` is `stored`'s key and usable at `now`. Constant time in the
 * secret (timingSafeEqual over equal-length hashes); a missing record is
 * compared against a dummy hash so it takes as long as a wrong secret.
 */
export function checkApiKey(stored: StoredApiKey | null, key: string, now: Date): boolean {
  const given = Buffer.from(hashApiKey(key), 'hex');
  const expected = Buffer.from(stored?.hash ?? NO_HASH, 'hex');
  const same = timingSafeEqual(given, expected);
  if (!stored || !same) return false;
  if (stored.revokedAt !== undefined) return false;
  if (stored.expiresAt !== undefined && Date.parse(stored.expiresAt) <= now.getTime()) return false;
  return true;
}

/** What listings show: everything but the hash; the prefix is what the user sees of the key. */
export function apiKeyView(k: StoredApiKey): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: `muse_${k.id}_`,
    projects: k.projects,
    scopes: k.scopes,
    createdAt: k.createdAt,
    createdBy: k.createdBy,
    ...(k.expiresAt !== undefined ? { expiresAt: k.expiresAt } : {}),
    ...(k.revokedAt !== undefined ? { revokedAt: k.revokedAt } : {}),
  };
}
