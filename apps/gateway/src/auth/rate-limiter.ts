/**
 * The two rate-limiter-flexible classes the gateway uses, loaded from their own modules: the package root loads
 * every store it supports (Mongo, MySQL, PostgreSQL, DynamoDB, Memcache, etcd, Prisma, Drizzle, Valkey, ...), 36
 * modules and ~1.4 MB of heap, where these need 9 modules and ~0.2 MB. They are the classes the root exports
 * (`rate-limiter.spec.ts` checks it, so an upgrade that moves them fails a test), typed by the package's own types.
 */
import { createRequire } from 'node:module';
import type * as Rlf from 'rate-limiter-flexible';

const require = createRequire(import.meta.url);

export const RateLimiterRedis = require('rate-limiter-flexible/lib/RateLimiterRedis.js') as typeof Rlf.RateLimiterRedis;
export type RateLimiterRedis = Rlf.RateLimiterRedis;

export const RateLimiterRes = require('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof Rlf.RateLimiterRes;
export type RateLimiterRes = Rlf.RateLimiterRes;
