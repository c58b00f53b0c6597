/**
 * muse-gateway: the REST API v1, the `/v1/stream` WebSocket and the OpenAPI
 * document. It validates and authorizes requests, publishes commands to
 * JetStream and reads the run read models from Redis; it never runs a step.
 */
import type { FastifyInstance } from 'fastify';
import { GatewayConfigSchema, museNames } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { openRedis } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { GatewayModule } from './gateway.module.js';
import { configureHttp, fastifyOptions } from './http/configure-http.js';
import { StreamGateway } from './stream/stream.gateway.js';
import { AuditLog } from './auth/audit-log.service.js';
import { registerAuthHooks } from './auth/auth.hook.js';
import { Authenticator } from './auth/authenticator.service.js';
import { RateLimits } from './auth/rate-limits.service.js';

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
    const bus = await JetStreamBus.open(kit, { url: config.NATS_URL, names, name: 'muse-gateway', auth: natsAuthFromConfig(config) });
    await bus.ensureAuditStream();
    return GatewayModule.forRoot({ config, names, bus, redis });
  },
  configure: (app, kit) => {
    configureHttp(app, kit.config, kit.metrics);
    // Before Nest registers its routes: every route gets authentication, rate limits and audit.
    registerAuthHooks(app.getHttpAdapter().getInstance() as unknown as FastifyInstance, app.get(Authenticator), app.get(RateLimits), app.get(AuditLog), kit.metrics);
    const stream = app.get(StreamGateway);
    stream.attach(app.getHttpServer());
    kit.onDrain(() => stream.closeAll());
  },
});
