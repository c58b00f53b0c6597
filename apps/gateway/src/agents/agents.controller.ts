import { Controller, Get, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { GatewayConfig, MuseNames } from '@muse/contracts';
import { readAgentHeartbeats } from '@muse/queues';
import { LOGGER, type Logger } from '@muse/telemetry';
import { RequireScope } from '../auth/scope.decorator.js';
import { GATEWAY_CONFIG, NAMES, REDIS } from '../gateway.tokens.js';
import { toAgentViews } from './agent-view.js';

/** Agents are shared by every project (the pool serves them all), so this lists them all. */
@Controller('v1/agents')
@RequireScope('read')
export class AgentsController {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get()
  async list() {
    const { heartbeats, invalid } = await readAgentHeartbeats(this.redis, this.names);
    if (invalid.length > 0) this.logger.warn({ agents: invalid }, 'agent heartbeats that do not parse');
    return { items: toAgentViews(heartbeats, Date.now(), this.config.MUSE_AGENT_TTL_MS) };
  }
}
