import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { Redis } from 'ioredis';
import type { GatewayConfig, MuseNames } from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import type { TrackedReads } from '@muse/queues';
import { AgentsController } from './agents/agents.controller.js';
import { RemoteAgentsGateway } from './agents/remote-agents.gateway.js';
import { PoolsController } from './pools/pools.controller.js';
import { ArtifactsController } from './artifacts/artifacts.controller.js';
import { ArtifactsService } from './artifacts/artifacts.service.js';
import { ApiKeysController } from './auth/api-keys.controller.js';
import { ApiKeyStore } from './auth/api-key-store.service.js';
import { AuditController } from './auth/audit.controller.js';
import { AuditLog } from './auth/audit-log.service.js';
import { Authenticator } from './auth/authenticator.service.js';
import { ProjectsController } from './auth/projects.controller.js';
import { RateLimits } from './auth/rate-limits.service.js';
import { CallerGuard } from './caller/caller.guard.js';
import { AGENT_REGISTRY, BUS, GATEWAY_CONFIG, NAMES, REDIS, TRACKED_READS } from './gateway.tokens.js';
import { readAgentHeartbeats } from '@muse/queues';
import { MuseExceptionFilter } from './http/muse-exception.filter.js';
import { OpenApiController } from './openapi/openapi.controller.js';
import { RunStore } from './runs/run-store.service.js';
import { RunsController } from './runs/runs.controller.js';
import { RunOperationsController } from './runs/run-operations.controller.js';
import { RunOperationsService } from './runs/run-operations.service.js';
import { ReplayController } from './runs/replay.controller.js';
import { ReplayService } from './runs/replay.service.js';
import { DeadLettersController } from './dead-letters/dead-letters.controller.js';
import { RunsService } from './runs/runs.service.js';
import { StreamGateway } from './stream/stream.gateway.js';
import { WorkflowRegistry } from './workflows/workflow-registry.service.js';
import { WorkflowsController } from './workflows/workflows.controller.js';
import { McpController } from './mcp/mcp.controller.js';
import { McpSessions } from './mcp/mcp-sessions.service.js';
import { ProfilingController } from './profiling/profiling.controller.js';
import { ProfilingService } from './profiling/profiling.service.js';
import { SchedulesController } from './schedules/schedules.controller.js';
import { LeasesController } from './leases/leases.controller.js';
import { SchedulesService } from './schedules/schedules.service.js';
import { TriggersService } from './schedules/triggers.service.js';

export interface GatewayResources {
  config: GatewayConfig;
  names: MuseNames;
  bus: JetStreamBus;
  redis: Redis;
  tracked: TrackedReads;
}

/** Every controller of the gateway; the OpenAPI spec test reads their routes from here. */
export const GATEWAY_CONTROLLERS = [WorkflowsController, RunsController, RunOperationsController, DeadLettersController, ArtifactsController, AgentsController, PoolsController, OpenApiController, ProjectsController, ApiKeysController, AuditController, McpController, ProfilingController, SchedulesController, LeasesController, ReplayController] as const;

@Module({})
export class GatewayModule {
  static forRoot(res: GatewayResources): DynamicModule {
    return {
      module: GatewayModule,
      controllers: [...GATEWAY_CONTROLLERS],
      providers: [
        { provide: GATEWAY_CONFIG, useValue: res.config },
        { provide: NAMES, useValue: res.names },
        { provide: BUS, useValue: res.bus },
        { provide: REDIS, useValue: res.redis },
        { provide: TRACKED_READS, useValue: res.tracked },
        { provide: AGENT_REGISTRY, useValue: { read: () => readAgentHeartbeats(res.redis, res.names), ttlMs: res.config.MUSE_AGENT_TTL_MS } },
        { provide: APP_GUARD, useClass: CallerGuard },
        { provide: APP_FILTER, useClass: MuseExceptionFilter },
        WorkflowRegistry,
        RunStore,
        RunsService,
        RunOperationsService,
        ReplayService,
        ArtifactsService,
        StreamGateway,
        RemoteAgentsGateway,
        ApiKeyStore,
        Authenticator,
        RateLimits,
        AuditLog,
        McpSessions,
        ProfilingService,
        SchedulesService,
        TriggersService,
      ],
    };
  }
}
