/**
 * Requests per second per credential and per project, counted in Redis by
 * rate-limiter-flexible (atomic Lua counters) so every gateway replica
 * shares one budget.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from './rate-limiter.js';
import { MuseError, type GatewayConfig, type MuseNames } from '@muse/contracts';
import type { Caller } from '../caller/caller.js';
import { GATEWAY_CONFIG, NAMES, REDIS } from '../gateway.tokens.js';

@Injectable()
export class RateLimits {
  private readonly perPrincipal: RateLimiterRedis;
  private readonly perProject: RateLimiterRedis;
  private readonly authFailures: RateLimiterRedis;
  private readonly authFailuresPerMin: number;

  constructor(@Inject(REDIS) private readonly redis: Redis, @Inject(NAMES) names: MuseNames, @Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    // duration is in seconds: a one-second fixed window.
    this.perPrincipal = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${names.rateLimitPrefix}:principal`, points: config.MUSE_RATE_LIMIT_KEY_PER_SEC, duration: 1 });
    this.perProject = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${names.rateLimitPrefix}:project`, points: config.MUSE_RATE_LIMIT_PROJECT_PER_SEC, duration: 1 });
    this.authFailuresPerMin = config.MUSE_RATE_LIMIT_AUTH_FAILURES_PER_MIN;
    this.authFailures = new RateLimiterRedis({ storeClient: redis, keyPrefix: `${names.rateLimitPrefix}:auth-failures`, points: this.authFailuresPerMin, duration: 60 });
  }

  /**
   * Refuses a client address that caused too many failed authentications this minute (a flood of bad or missing
   * credentials), before any credential work. One plain GET of the limiter's own counter rather than its
   * MULTI (GET + PTTL): with auto-pipelining it goes out in the same write as the credential lookup, and the
   * time left is asked only when refusing.
   */
  async admitAddress(ip: string): Promise<void> {
    const key = this.authFailures.getKey(ip);
    let consumed: string | null;
    try {
      consumed = await this.redis.get(key);
    } catch (err) {
      throw new MuseError('MUSE_ERR_UNAVAILABLE', 'The rate limiter cannot reach Redis', { cause: err });
    }
    if (consumed !== null && Number(consumed) >= this.authFailuresPerMin) {
      const msLeft = await this.redis.pttl(key).catch(() => 60_000);
      const retryAfterSeconds = Math.max(1, Math.ceil(msLeft / 1000));
      throw new MuseError('MUSE_ERR_RATE_LIMITED', `Too many failed authentications from this address; retry after ${retryAfterSeconds} s`, { details: { retryAfterSeconds } });
    }
  }

  /** Counts a failed authentication against the client address. */
  async authFailed(ip: string): Promise<void> {
    await this.authFailures.penalty(ip, 1).catch(() => undefined);
  }

  /** Counts one request; throws MUSE_ERR_RATE_LIMITED (429, `details.retryAfterSeconds`) when over either budget. */
  async consume(caller: Caller): Promise<void> {
    try {
      // Both counters at once (one write with auto-pipelining); a request over either budget counts against both.
      await Promise.all([this.perPrincipal.consume(caller.principal), this.perProject.consume(caller.project)]);
    } catch (err) {
      if (err instanceof RateLimiterRes) {
        const retryAfterSeconds = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        throw new MuseError('MUSE_ERR_RATE_LIMITED', `Too many requests; retry after ${retryAfterSeconds} s`, { details: { retryAfterSeconds } });
      }
      throw new MuseError('MUSE_ERR_UNAVAILABLE', 'The rate limiter cannot reach Redis', { cause: err });
    }
  }
}
