/**
 * muse-observability: the live view of every run, agent and queue, served as
 * a JSON snapshot (`GET /v1/snapshot`), a web dashboard (`GET /`) and
 * Prometheus metrics (`GET /metrics`).
 */
import { museNames, ObservabilityConfigSchema } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { createRedis, StepQueues } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { createLiveSources } from './live-sources.js';
import { DEFAULT_LIVE_VIEW_OPTIONS } from './live-view.service.js';
import { ObservabilityModule } from './observability.module.js';

await runService({
  service: 'observability',
  configSchema: ObservabilityConfigSchema,
  port: (c) => c.OBSERVABILITY_PORT,
  setup: async (kit) => {
    const { config } = kit;
    const names = museNames(config.MUSE_NAMESPACE);

    const bus = await JetStreamBus.connect({ url: config.NATS_URL, names, name: 'muse-observability' });
    kit.onShutdown(() => bus.close());
    // The run stream may not exist yet when observability starts first; creating it is idempotent.
    await bus.ensureStreams();

    const redis = createRedis(config.REDIS_URL, { connectionName: 'muse-observability' });
    // Without a listener ioredis prints every failed reconnect to stderr; log it as JSON, once per 30 s.
    let lastRedisError = 0;
    redis.on('error', (err: Error) => {
      if (Date.now() - lastRedisError < 30_000) return;
      lastRedisError = Date.now();
      kit.logger.warn({ err }, 'redis connection error (ioredis keeps reconnecting)');
    });
    kit.onShutdown(async () => {
      // QUIT waits for a reply, which never comes while Redis is unreachable: then just drop the socket.
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    });
    // Registered after Redis, so it closes before it (closers run in reverse).
    const queues = new StepQueues(redis, names);
    kit.onShutdown(() => queues.close());

    kit.readiness.add('nats', () => bus.ping());
    kit.readiness.add('redis', async () => {
      await redis.ping();
    });

    return ObservabilityModule.forRoot({
      sources: createLiveSources({
        bus,
        redis,
        queues,
        names,
        onEventError: (err, stage) => kit.logger.warn({ err, stage }, 'run event feed'),
      }),
      options: { namespace: names.namespace, ...DEFAULT_LIVE_VIEW_OPTIONS },
    });
  },
});
