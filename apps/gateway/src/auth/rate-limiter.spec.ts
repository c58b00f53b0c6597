import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { RateLimiterRedis, RateLimiterRes } from './rate-limiter.js';

const require = createRequire(import.meta.url);

test('the rate limiter classes loaded from their own modules are the ones the package root exports, without its other stores', () => {
  const loaded = Object.keys(require.cache).filter((f) => f.includes('/rate-limiter-flexible/'));
  assert.ok(loaded.some((f) => f.endsWith('/lib/RateLimiterRedis.js')));
  assert.deepEqual(loaded.filter((f) => /RateLimiter(Mongo|MySQL|Postgres|Dynamo|Memcache|Etcd|Prisma|Drizzle|Valkey)/.test(f)), []);
  const root = require('rate-limiter-flexible') as typeof import('rate-limiter-flexible');
  assert.equal(RateLimiterRedis, root.RateLimiterRedis);
  assert.equal(RateLimiterRes, root.RateLimiterRes);
});
