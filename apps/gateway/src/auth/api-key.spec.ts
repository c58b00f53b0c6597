import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEY_PATTERN, type StoredApiKey } from '@muse/contracts';
import { apiKeyView, checkApiKey, generateApiKey, hashApiKey, parseApiKey } from './api-key.js';

const now = new Date('2026-11-21T12:00:00Z');
function stored(key: string, extra: Partial<StoredApiKey> = {}): StoredApiKey {
  return { id: parseApiKey(key)!.id, name: 'k', projects: ['a'], scopes: ['read'], hash: hashApiKey(key), createdAt: now.toISOString(), createdBy: 'test', ...extra };
}

test('generated keys have the documented format, a fresh id and secret each time, and parse back to their id', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const { id, key } = generateApiKey();
    assert.match(key, API_KEY_PATTERN);
    assert.ok(key.startsWith(`muse_${id}_`));
    assert.equal(parseApiKey(key)?.id, id);
    seen.add(key);
  }
  assert.equal(seen.size, 50);
  for (const bad of ['', 'muse_', 'muse_abc_def', `muse_ZZZZZZZZZZZZ_${'a'.repeat(43)}`, `muse_0123456789ab_${'a'.repeat(42)}`, `xmuse_0123456789ab_${'a'.repeat(43)}`]) {
    assert.equal(parseApiKey(bad), null, bad);
  }
});

test('the stored hash is SHA-256 of the key, never the key', () => {
  const { key } = generateApiKey();
  const s = stored(key);
  assert.match(s.hash, /^[0-9a-f]{64}$/);
  // The secret is everything after `muse_<id>_` (it may itself contain `_`).
  assert.ok(!JSON.stringify(s).includes(key.slice(`muse_${s.id}_`.length)));
  assert.ok(!JSON.stringify(apiKeyView(s)).includes(s.hash), 'views carry no hash');
  assert.equal(apiKeyView(s).prefix, `muse_${s.id}_`);
});

test('checkApiKey: the right key passes; a wrong secret, a missing record, a revoked or an expired key does not', () => {
  const { key } = generateApiKey();
  assert.equal(checkApiKey(stored(key), key, now), true);
  const wrong = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
  assert.equal(checkApiKey(stored(key), wrong, now), false);
  assert.equal(checkApiKey(null, key, now), false);
  assert.equal(checkApiKey(stored(key, { revokedAt: now.toISOString() }), key, now), false);
  assert.equal(checkApiKey(stored(key, { expiresAt: new Date(now.getTime() - 1).toISOString() }), key, now), false);
  assert.equal(checkApiKey(stored(key, { expiresAt: now.toISOString() }), key, now), false, 'expiry is exclusive');
  assert.equal(checkApiKey(stored(key, { expiresAt: new Date(now.getTime() + 1000).toISOString() }), key, now), true);
});
