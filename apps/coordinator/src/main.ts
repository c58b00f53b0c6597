import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import { Module } from '@nestjs/common';
import { CoordinatorConfigSchema, museNames } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { AgentDispatcher, StepQueues, StepWatchList, openRedis, resolveWorkflow } from '@muse/queues';
import { ArtifactRepository, CommitPolicyReader } from '@muse/artifacts';
import { LeaseTable, RunLocks } from '@muse/locks';
import { runService } from '@muse/telemetry';
import { CommandHandler, RunNotStartedError } from './command.handler.js';
import { CoordinatorController } from './coordinator.controller.js';
import { RunViewStore } from './run-view.store.js';
import { StepTimers, type WatchStep } from './step-timers.js';
import { DeadLetters } from './dead-letters.js';
import { ConcurrencyGates } from './concurrency-gates.js';
import { InlineArtifactCommits } from './inline-artifact-commits.js';

await runService({
  service: 'coordinator',
  configSchema: CoordinatorConfigSchema,
  port: (c) => c.COORDINATOR_PORT,
  setup: async (kit) => {
    const c = kit.config;
    const names = museNames(c.MUSE_NAMESPACE);
    // BullMQ's connection for the timers (a Worker, whose blocking connection is a copy of it), and one for the rest,
    // whose commands issued in one tick go out as one write: the coordinator's own state (locks, views, leases, gates,
    // dispatch), which under load halved its socket writes, and the step queues' adds, which then go out with the
    // watches and view of their fold (the DAG row: 2.15 -> 1.13-1.24 coordinator writes a step).
    const redis = openRedis(kit, c.REDIS_URL, { connectionName: 'muse-coordinator' });
    const state = openRedis(kit, c.REDIS_URL, { connectionName: 'muse-coordinator-state', autoPipelining: true, readinessName: 'redis-state' });
    const bus = await JetStreamBus.open(kit, { url: c.NATS_URL, names, name: 'muse-coordinator', auth: natsAuthFromConfig(c) });
    const queues = new StepQueues(state, names);
    queues.useDispatcher(new AgentDispatcher(state, names, c.MUSE_DISPATCH, { agentTtlMs: c.MUSE_AGENT_TTL_MS }, (q) => queues.depth(q)));
    const leases = new LeaseTable(state, names, c.MUSE_LEASE_TTL_MS);
    const timers = new StepTimers({
      connection: redis,
      names,
      queues,
      publish: (cmd, msgId) => bus.publishCommand(cmd, msgId),
      watchMs: c.MUSE_STEP_WATCH_MS,
      waitingMaxMs: c.MUSE_STEP_WATCH_WAITING_MAX_MS,
      leases,
      logger: kit.logger,
      // On the state connection: a step's watch goes out in the same write as its fold's view and lock commands.
      // A dead replica's claimed watches are looked at by another once the claim runs out.
      watches: new StepWatchList<WatchStep>(state, names, {
        claimMs: Math.max(2_000, c.MUSE_STEP_WATCH_MS),
        tickMs: Math.min(1_000, Math.max(50, Math.floor(c.MUSE_STEP_WATCH_MS / 4))),
        logger: kit.logger,
      }),
    });
    const handler = new CommandHandler({
      bus,
      queues,
      locks: new RunLocks(state, names, { ttlMs: c.MUSE_RUN_LOCK_TTL_MS }),
      views: new RunViewStore(state, names),
      names,
      defaults: { maxAttempts: c.MUSE_STEP_MAX_ATTEMPTS, timeoutMs: c.MUSE_STEP_TIMEOUT_MS },
      logger: kit.logger,
      metrics: kit.metrics,
      timers,
      deadLetters: new DeadLetters(state, names),
      progressMs: Math.max(500, Math.floor(c.MUSE_COMMAND_ACK_WAIT_MS / 3)),
      gates: new ConcurrencyGates(state, names),
      workflows: (project, name, version) => resolveWorkflow(state, names, project, name, version),
      maxWorkflowDepth: c.MUSE_MAX_WORKFLOW_DEPTH,
      leases,
      // On the state connection, beside the run locks whose fencing tokens the commits carry.
      inlineCommits: new InlineArtifactCommits({ repo: new ArtifactRepository(state, names), policy: new CommitPolicyReader(state, names), metrics: kit.metrics }),
    });
    // Message latency: from JetStream storing a command to a coordinator taking it (first deliveries only).
    const latency = kit.metrics.histogram('muse_message_latency_seconds', 'Time from JetStream storing a command to a coordinator starting to handle it (first delivery)', ['kind']);
    await bus.consumeCommands(names.coordinatorConsumer, (cmd, ctx) => {
      if (ctx.deliveryCount === 1 && ctx.publishedAtMs !== undefined) latency.observe({ kind: cmd.kind }, Math.max(0, Date.now() - ctx.publishedAtMs) / 1000);
      return handler.handle(cmd, ctx);
    }, {
      concurrency: c.COORDINATOR_CONCURRENCY,
      ackWaitMs: c.MUSE_COMMAND_ACK_WAIT_MS,
      // A command that came before its run's submission was handled is expected now and then (see RunNotStartedError).
      onError: (err, cmd) => kit.logger[err instanceof RunNotStartedError ? 'debug' : 'warn']({ err, cmd: summarize(cmd) }, 'command failed; will be redelivered'),
    });
    // Another replica takes over a dead one's timers after about twice this.
    timers.start({ concurrency: 16, lockMs: Math.max(2_000, c.MUSE_STEP_WATCH_MS) });
    kit.onDrain(() => bus.stopConsuming());
    kit.onShutdown(() => timers.close());
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
