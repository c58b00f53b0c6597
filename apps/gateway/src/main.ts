/**
 * muse-gateway: the REST API v1, the `/v1/stream` WebSocket and the OpenAPI
 * document. It validates and authorizes requests, publishes commands to
 * JetStream and reads the run read models from Redis; it never runs a step.
 */
import { GatewayConfigSchema, museNames } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { createRedis } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { GatewayModule } from './gateway.module.js';
import { configureHttp, fastifyOptions } from './http/configure-http.js';
import { StreamGateway } from './stream/stream.gateway.js';

await runService({
  service: 'gateway',
  configSchema: GatewayConfigSchema,
  port: (c) => c.GATEWAY_PORT,
  fastify: fastifyOptions,
  setup: async (kit) => {
    const config = kit.config;
    const names = museNames(config.MUSE_NAMESPACE);
    const bus = await JetStreamBus.connect({ url: config.NATS_URL, names, name: 'muse-gateway' });
    kit.onShutdown(() => bus.close());
    await bus.ensureStreams();
    // Requests must fail (503) within a few seconds when Redis is down rather
    // than wait for it forever, which createRedis's BullMQ-friendly default
    // would do: two reconnects per command, at most 1 s apart.
    const redis = createRedis(config.REDIS_URL, {
      maxRetriesPerRequest: 2,
      retryStrategy: (times: number) => Math.min(times * 100, 1_000),
      connectionName: 'muse-gateway',
    });
    // Without a listener ioredis prints every reconnect failure to stderr; readiness reports the outage.
    redis.on('error', (err: Error) => kit.logger.warn({ err: err.message }, 'redis connection error'));
    kit.onShutdown(async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    kit.readiness.add('nats', async () => {
      if (!bus.isConnected()) throw new Error('NATS connection closed');
      await bus.ping();
    });
    kit.readiness.add('redis', async () => {
      await redis.ping();
    });
    return GatewayModule.forRoot({ config, names, bus, redis });
  },
  configure: (app, kit) => {
    configureHttp(app, kit.config, kit.metrics);
    const stream = app.get(StreamGateway);
    stream.attach(app.getHttpServer());
    kit.onDrain(() => stream.closeAll());
  },
});
