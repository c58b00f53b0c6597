/**
 * muse-observability: the live view of every run, agent and queue, served as
 * a JSON snapshot (`GET /v1/snapshot`), a web dashboard (`GET /`) fed live
 * over a WebSocket (`/v1/live`) and Prometheus metrics (`GET /metrics`).
 */
import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import { museNames, ObservabilityConfigSchema } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { openRedis, StepQueues } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { createLiveSources } from './live-sources.js';
import { LiveStreamGateway } from './live-stream.gateway.js';
import { DEFAULT_LIVE_VIEW_OPTIONS } from './live-view.service.js';
import { ObservabilityModule } from './observability.module.js';

await runService({
  service: 'observability',
  configSchema: ObservabilityConfigSchema,
  port: (c) => c.OBSERVABILITY_PORT,
  setup: async (kit) => {
    const { config } = kit;
    const names = museNames(config.MUSE_NAMESPACE);

    const bus = await JetStreamBus.open(kit, { url: config.NATS_URL, names, name: 'muse-observability', auth: natsAuthFromConfig(config) });

    const redis = openRedis(kit, config.REDIS_URL, { connectionName: 'muse-observability' });
    // Registered after Redis, so it closes before it (closers run in reverse).
    const queues = new StepQueues(redis, names);
    kit.onShutdown(() => queues.close());


    return ObservabilityModule.forRoot({
      sources: createLiveSources({
        bus,
        redis,
        queues,
        names,
        onEventError: (err, stage) => kit.logger.warn({ err, stage }, 'run event feed'),
      }),
      options: {
        namespace: names.namespace,
        ...DEFAULT_LIVE_VIEW_OPTIONS,
        pollIntervalMs: kit.config.MUSE_OBSERVABILITY_POLL_MS,
        seedRunsPerProject: kit.config.MUSE_OBSERVABILITY_SEED_RUNS,
        state: { agentTtlMs: kit.config.MUSE_AGENT_TTL_MS },
      },
    });
  },
  configure: (app, kit) => {
    const live = app.get(LiveStreamGateway);
    live.attach(app.getHttpServer());
    kit.onDrain(() => live.closeAll());
  },
});
