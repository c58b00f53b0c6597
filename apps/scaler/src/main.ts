/**
 * muse-scaler (foundation): every `MUSE_SCALER_INTERVAL_MS` it sizes each
 * agent pool from its queue depth and live agents, and reports the decision
 * on `GET /v1/pools`, in metrics and in the log. Drivers that act on the
 * decision (local processes, Kubernetes) and leader leases come later.
 */
import { museNames, ScalerConfigSchema } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { createRedis, StepQueues } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { createScalerSources } from './scaler-sources.js';
import { ScalerModule } from './scaler.module.js';

/** Same freshness rule as the gateway's agent list (`MUSE_AGENT_TTL_MS`, not yet in the scaler's config), in ms. */
const AGENT_TTL_MS = 10_000;

await runService({
  service: 'scaler',
  configSchema: ScalerConfigSchema,
  port: (c) => c.SCALER_PORT,
  setup: async (kit) => {
    const { config } = kit;
    const names = museNames(config.MUSE_NAMESPACE);

    // Not read yet: held for readiness now, and for scaling events and leases later.
    const bus = await JetStreamBus.connect({ url: config.NATS_URL, names, name: 'muse-scaler' });
    kit.onShutdown(() => bus.close());

    const redis = createRedis(config.REDIS_URL, { connectionName: 'muse-scaler' });
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

    return ScalerModule.forRoot({
      sources: createScalerSources({ redis, queues, names }),
      options: { intervalMs: config.MUSE_SCALER_INTERVAL_MS, agentTtlMs: AGENT_TTL_MS, overrides: {} },
    });
  },
});
