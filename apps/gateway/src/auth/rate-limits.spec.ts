/** The per-address limit on failed authentications, against the real Redis (own namespace, removed after). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GatewayConfigSchema, MuseError, museNames } from '@muse/contracts';
import { RateLimits } from './rate-limits.service.js';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: false });
const names = museNames(`t-${randomBytes(4).toString('hex')}`);

after(async () => {
  const keys = await redis.keys(`${names.rateLimitPrefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

test('an address that failed authentication too often this minute is refused (429, Retry-After) before any credential work; others are not', async () => {
  const config = GatewayConfigSchema.parse({ MUSE_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '3' });
  const limits = new RateLimits(redis, names, config);
  for (let i = 0; i < 3; i++) {
    await limits.admitAddress('10.0.0.1');
    await limits.authFailed('10.0.0.1');
  }
  const refused = await limits.admitAddress('10.0.0.1').then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(refused instanceof MuseError, 'the fourth request from the flooding address is refused');
  assert.equal(refused.code, 'MUSE_ERR_RATE_LIMITED');
  assert.equal(refused.status, 429);
  const retry = (refused.details as { retryAfterSeconds: number }).retryAfterSeconds;
  assert.ok(retry >= 1 && retry <= 60, String(retry));
  // Another address, and successful requests in general, are not held back.
  await limits.admitAddress('10.0.0.2');
  await limits.authFailed('10.0.0.2');
  await limits.admitAddress('10.0.0.2');
});
