import { Module } from '@nestjs/common';
import { CoordinatorConfigSchema, museNames } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { StepQueues, openRedis } from '@muse/queues';
import { RunLocks } from '@muse/locks';
import { runService } from '@muse/telemetry';
import { CommandHandler } from './command.handler.js';
import { CoordinatorController } from './coordinator.controller.js';
import { RunViewStore } from './run-view.store.js';

await runService({
  service: 'coordinator',
  configSchema: CoordinatorConfigSchema,
  port: (c) => c.COORDINATOR_PORT,
  setup: async (kit) => {
    const c = kit.config;
    const names = museNames(c.MUSE_NAMESPACE);
    const redis = openRedis(kit, c.REDIS_URL, { connectionName: 'muse-coordinator' });
    const bus = await JetStreamBus.open(kit, { url: c.NATS_URL, names, name: 'muse-coordinator' });
    const queues = new StepQueues(redis, names);
    const handler = new CommandHandler({
      bus,
      queues,
      locks: new RunLocks(redis, names, { ttlMs: c.MUSE_RUN_LOCK_TTL_MS }),
      views: new RunViewStore(redis, names),
      names,
      defaults: { maxAttempts: c.MUSE_STEP_MAX_ATTEMPTS, timeoutMs: c.MUSE_STEP_TIMEOUT_MS },
      logger: kit.logger,
      metrics: kit.metrics,
    });
    await bus.consumeCommands(names.coordinatorConsumer, (cmd, ctx) => handler.handle(cmd, ctx), {
      concurrency: c.COORDINATOR_CONCURRENCY,
      ackWaitMs: 10_000,
      onError: (err, cmd) => kit.logger.warn({ err, cmd: summarize(cmd) }, 'command failed; will be redelivered'),
    });
    kit.onDrain(() => bus.stopConsuming());
    kit.onShutdown(() => queues.close());

    @Module({ controllers: [CoordinatorController], providers: [{ provide: CommandHandler, useValue: handler }] })
    class CoordinatorModule {}
    return CoordinatorModule;
  },
});

function summarize(cmd: unknown): unknown {
  if (cmd && typeof cmd === 'object' && 'kind' in cmd && 'runId' in cmd) {
    const c = cmd as { kind: string; runId: string; stepId?: string; outcome?: string };
    return { kind: c.kind, runId: c.runId, stepId: c.stepId, outcome: c.outcome };
  }
  return cmd;
}
