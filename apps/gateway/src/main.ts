/**
 * muse-gateway: the REST API v1, the `/v1/stream` WebSocket and the OpenAPI
 * document. It validates and authorizes requests, publishes commands to
 * JetStream and reads the run read models from Redis; it never runs a step.
 */
import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import type { FastifyInstance } from 'fastify';
import { GatewayConfigSchema, REMOTE_AGENT_PATH, museNames } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { openRedis, TrackedReads } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { GatewayModule } from './gateway.module.js';
import { configureHttp, fastifyOptions } from './http/configure-http.js';
import { StreamGateway } from './stream/stream.gateway.js';
import { RemoteAgentsGateway } from './agents/remote-agents.gateway.js';
import { AuditLog } from './auth/audit-log.service.js';
import { registerAuthHooks } from './auth/auth.hook.js';
import { Authenticator } from './auth/authenticator.service.js';
import { RateLimits } from './auth/rate-limits.service.js';
import { McpSessions } from './mcp/mcp-sessions.service.js';

await runService({
  service: 'gateway',
  configSchema: GatewayConfigSchema,
  port: (c) => c.GATEWAY_PORT,
  fastify: fastifyOptions,
  setup: async (kit) => {
    const config = kit.config;
    const names = museNames(config.MUSE_NAMESPACE);
    // Requests must fail (503) within a few seconds when Redis is down rather than wait for it.
    const redis = openRedis(kit, config.REDIS_URL, { connectionName: 'muse-gateway', mode: 'request' });
    // Every request reads its API key (and, with a Muse-Project header, the project), every submission its workflow:
    // kept until Redis says they changed.
    const tracked = TrackedReads.open(kit, config.REDIS_URL, { connectionName: 'muse-gateway-tracking', prefixes: [names.apiKeysKey, names.projectsKey, names.workflowKeyPrefix] });
    const bus = await JetStreamBus.open(kit, { url: config.NATS_URL, names, name: 'muse-gateway', auth: natsAuthFromConfig(config) });
    await bus.ensureAuditStream();
    return GatewayModule.forRoot({ config, names, bus, redis, tracked });
  },
  configure: (app, kit) => {
    configureHttp(app, kit.config, kit.metrics);
    // Before Nest registers its routes: every route gets authentication, rate limits and audit.
    registerAuthHooks(app.getHttpAdapter().getInstance() as unknown as FastifyInstance, app.get(Authenticator), app.get(RateLimits), app.get(AuditLog), kit.metrics);
    const stream = app.get(StreamGateway);
    stream.attach(app.getHttpServer());
    kit.onDrain(() => stream.closeAll());
    // Remote agents (`/v1/agents/connect`): on drain their open assignments fail as retryable while NATS is still up.
    const agents = app.get(RemoteAgentsGateway);
    stream.route(REMOTE_AGENT_PATH, (req, socket, head) => agents.onUpgrade(req, socket, head));
    agents.start();
    kit.onDrain(() => agents.closeAll());
    // Open MCP SSE streams would otherwise hold the HTTP server open until the grace period ends.
    const mcp = app.get(McpSessions);
    kit.onDrain(() => mcp.closeAll());
  },
});
