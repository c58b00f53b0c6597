/**
 * muse-scaler: every `MUSE_SCALER_INTERVAL_MS` the replica holding the leader
 * lease (Redis) sizes each agent pool with its policy (`MUSE_SCALER_CONFIG`),
 * tells the driver (`MUSE_SCALER_DRIVER`: local processes, Kubernetes
 * Deployments, or metrics only), publishes each change as `scaler.decision`
 * on JetStream and writes the pools to Redis for `GET /v1/pools`.
 */
import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import { museNames, ScalerConfigSchema } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { openRedis, StepQueues } from '@muse/queues';
import { runService } from '@muse/telemetry';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ExternalDriver } from './drivers/external.driver.js';
import { LocalDriver } from './drivers/local.driver.js';
import type { PoolDriver } from './drivers/pool-driver.js';
import { LeaderLease } from './leader-lease.js';
import { loadScalerConfig } from './scaler-config.js';
import { createScalerSources } from './scaler-sources.js';
import { ScalerModule } from './scaler.module.js';


await runService({
  service: 'scaler',
  configSchema: ScalerConfigSchema,
  port: (c) => c.SCALER_PORT,
  setup: async (kit) => {
    const { config } = kit;
    const names = museNames(config.MUSE_NAMESPACE);

    // Read first: a bad pools file stops the scaler before it connects to anything.
    const overrides = loadScalerConfig(config.MUSE_SCALER_CONFIG);

    const bus = await JetStreamBus.open(kit, { url: config.NATS_URL, names, name: 'muse-scaler', auth: natsAuthFromConfig(config) });

    const redis = openRedis(kit, config.REDIS_URL, { connectionName: 'muse-scaler' });
    // Registered after Redis, so it closes before it (closers run in reverse).
    const queues = new StepQueues(redis, names);
    kit.onShutdown(() => queues.close());
    await bus.ensureScalerStream();

    const sources = createScalerSources({ redis, queues, names, publishDecision: (ev) => bus.appendScalerDecision(ev) });
    const replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const lease = new LeaderLease(redis, { lease: names.scalerLeaderKey, term: names.scalerTermKey }, replicaId, config.MUSE_SCALER_LEASE_TTL_MS);
    let driver: PoolDriver;
    switch (config.MUSE_SCALER_DRIVER) {
      case 'kubernetes': {
        // Imported only when chosen: the Kubernetes client alone costs about 65 MB of memory.
        const { KubernetesDriver } = await import('./drivers/kubernetes.driver.js');
        driver = new KubernetesDriver({ namespace: config.MUSE_SCALER_K8S_NAMESPACE, deployment: config.MUSE_SCALER_K8S_DEPLOYMENT });
        break;
      }
      case 'external':
        driver = new ExternalDriver();
        break;
      default:
        driver = new LocalDriver({
          redis,
          workersKey: names.scalerWorkersKey,
          namespace: config.MUSE_NAMESPACE,
          env: process.env,
          ...(config.MUSE_SCALER_WORKER_LOG_DIR ? { logDir: config.MUSE_SCALER_WORKER_LOG_DIR } : {}),
          heartbeats: () => sources.readHeartbeats(),
          logger: kit.logger,
          // Leaves time for the lease release and the closers within the hard exit at the grace period.
          drainWaitMs: Math.max(1_000, config.MUSE_SHUTDOWN_GRACE_MS - 3_000),
        });
    }
    kit.logger.info({ replicaId, driver: driver.name, pools: overrides }, 'scaler configured');


    return ScalerModule.forRoot({
      sources,
      options: { intervalMs: config.MUSE_SCALER_INTERVAL_MS, agentTtlMs: config.MUSE_AGENT_TTL_MS, overrides },
      runtime: { lease, driver },
    });
  },
});
