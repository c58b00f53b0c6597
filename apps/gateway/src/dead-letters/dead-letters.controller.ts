import { Controller, Get, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { DeadLetterSchema, type DeadLetter, type MuseNames } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { NAMES, REDIS } from '../gateway.tokens.js';

/** Steps of the caller's project that failed for good, newest first; `POST /v1/runs/{runId}/retry` re-drives one. */
@Controller('v1/dead-letters')
export class DeadLettersController {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
  ) {}

  @Get()
  @RequireScope('read')
  async list(@CurrentCaller() caller: Caller): Promise<{ items: DeadLetter[] }> {
    const all = await this.redis.hvals(this.names.deadLettersKey(caller.project));
    const items = all.flatMap((raw) => {
      const parsed = DeadLetterSchema.safeParse(JSON.parse(raw));
      return parsed.success ? [parsed.data] : [];
    });
    items.sort((a, b) => b.at.localeCompare(a.at));
    return { items };
  }
}
