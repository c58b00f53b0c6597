/**
 * muse-scaler (foundation): every `MUSE_SCALER_INTERVAL_MS` it sizes each
 * agent pool from its queue depth and live agents, and reports the decision
 * on `GET /v1/pools`, in metrics and in the log. Drivers that act on the
 * decision (local processes, Kubernetes) and leader leases come later.
 */
import { museNames, ScalerConfigSchema } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { openRedis, StepQueues } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { createScalerSources } from './scaler-sources.js';
import { ScalerModule } from './scaler.module.js';


await runService({
  service: 'scaler',
  configSchema: ScalerConfigSchema,
  port: (c) => c.SCALER_PORT,
  setup: async (kit) => {
    const { config } = kit;
    const names = museNames(config.MUSE_NAMESPACE);

    // Not read yet: connected for readiness now, for scaling events and leases later.
    await JetStreamBus.open(kit, { url: config.NATS_URL, names, name: 'muse-scaler' });

    const redis = openRedis(kit, config.REDIS_URL, { connectionName: 'muse-scaler' });
    // Registered after Redis, so it closes before it (closers run in reverse).
    const queues = new StepQueues(redis, names);
    kit.onShutdown(() => queues.close());


    return ScalerModule.forRoot({
      sources: createScalerSources({ redis, queues, names }),
      options: { intervalMs: config.MUSE_SCALER_INTERVAL_MS, agentTtlMs: config.MUSE_AGENT_TTL_MS, overrides: {} },
    });
  },
});
