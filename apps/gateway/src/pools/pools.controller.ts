import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { PoolListSchema, type MuseNames, type PoolList } from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import { RequireScope } from '../auth/scope.decorator.js';
import { NAMES, REDIS } from '../gateway.tokens.js';

/**
 * Agent pools as the leader scaler last wrote them to Redis (`scalerPoolsKey`,
 * refreshed every `MUSE_SCALER_INTERVAL_MS`). Pools, like agents, serve every
 * project, so this lists them all. Before any scaler ran: an empty list.
 */
@Controller('v1/pools')
@RequireScope('read')
export class PoolsController {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  async list(): Promise<PoolList> {
    const raw = await this.redis.get(this.names.scalerPoolsKey);
    const empty: PoolList = { evaluatedAt: null, leader: null, driver: null, items: [] };
    if (!raw) return empty;
    const parsed = PoolListSchema.safeParse(safeJson(raw));
    if (!parsed.success) {
      this.logger.warn({ issues: parsed.error.issues.slice(0, 3) }, 'pool board in Redis does not parse');
      return empty;
    }
    return parsed.data;
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
