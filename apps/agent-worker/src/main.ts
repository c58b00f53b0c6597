/**
 * muse-agent-worker: takes step jobs of its roles from BullMQ, runs them
 * (model provider or shell), uploads outputs to the artifact store and
 * reports to the coordinator over the JetStream command stream.
 */
import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { AgentWorkerConfigSchema, museNames } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { buildProviderRouter, loadProvidersConfig } from '@muse/providers';
import { StepQueues, openRedis, readAgentHeartbeats } from '@muse/queues';
import { processScrubber, runService } from '@muse/telemetry';
import { parseRoles, resolveAgentId } from './agent-identity.js';
import { AgentStepExecutor } from './agent-step.executor.js';
import { createToolKit } from './tool-kit.js';
import { AgentWorkerModule } from './agent-worker.module.js';
import { RunBudgets } from './budget.js';
import { ModelCalls, Pricing } from './model-calls.js';
import { HttpRecordingReader } from './recording.reader.js';
import { ArtifactUploader } from './artifact.uploader.js';
import { HeartbeatService } from './heartbeat.service.js';
import { createResourceSampler } from './resource-sampler.js';
import { SecretStore } from './secret.store.js';
import { ProgressPublisher } from './progress.publisher.js';
import { ShellRunner } from './shell.runner.js';
import { probeSandbox } from './shell.sandbox.js';
import { ShellStepExecutor } from './shell-step.executor.js';
import { StepReportPublisher } from './step-report.publisher.js';
import { StepProcessor } from './step.processor.js';
import { StepWorkers } from './step-workers.service.js';
import { WorkerMetrics } from './worker.metrics.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Time kept back from the grace period for handing back, deregistering and closing, in ms. */
const DRAIN_RESERVE_MS = 1_000;

await runService({
  service: 'agent-worker',
  configSchema: AgentWorkerConfigSchema,
  port: (c) => c.AGENT_WORKER_PORT,
  setup: async (kit) => {
    const c = kit.config;
    const log = kit.logger;
    const names = museNames(c.MUSE_NAMESPACE);
    const roles = parseRoles(c.MUSE_AGENT_ROLES);
    const agentId = resolveAgentId(c.MUSE_AGENT_ID);
    // Every series of this process says which agent it is (one value per process: bounded like `instance`).
    kit.metrics.registry.setDefaultLabels({ service: kit.service, agent: agentId });
    const metrics = new WorkerMetrics(kit.metrics);

    const redis = openRedis(kit, c.REDIS_URL, { connectionName: `muse-agent-worker-${agentId}` });
    const bus = await JetStreamBus.open(kit, { url: c.NATS_URL, names, name: `muse-agent-worker-${agentId}`, auth: natsAuthFromConfig(c) });

    // Every secret this worker can resolve is scrubbed from its outputs, prompts and logs from now on.
    const secrets = new SecretStore({ env: process.env, dir: c.MUSE_SECRETS_DIR, scrubber: processScrubber });
    const secretCount = secrets.loadAll();
    const sandbox = probeSandbox(c.MUSE_SANDBOX);
    if (sandbox.kind === 'none') log.warn({ sandbox: 'none', reason: sandbox.reason }, `shell steps run WITHOUT a sandbox: ${sandbox.reason}; they get only a minimal environment`);
    else log.info({ sandbox: 'bwrap', cpuSeconds: c.MUSE_SANDBOX_CPU_SECONDS, memoryBytes: c.MUSE_SANDBOX_MEMORY_BYTES, secretCount }, 'shell steps run in a bubblewrap sandbox');

    // Model providers: one failover chain per role, each provider behind its own circuit breaker. A bad file stops the worker here.
    const providersConfig = loadProvidersConfig(c.MUSE_PROVIDERS_CONFIG);
    metrics.setPrices(providersConfig.providers);
    const providers = buildProviderRouter(providersConfig, { env: process.env, localDelayMs: c.MUSE_LOCAL_PROVIDER_DELAY_MS, observer: metrics });
    log.info({ chains: providersConfig.chains }, 'model provider chains');

    const shell = new ShellRunner();
    // A hard exit (grace period over) must not leave step processes behind.
    process.on('exit', () => shell.killAll('SIGKILL'));
    const handBack = new AbortController();
    // Every model call: seeded, budgeted (Redis), served from its recording in a replay, recorded as llm-call.json.
    metrics.setModelPrices(c.MUSE_MODEL_PRICES);
    const calls = new ModelCalls({
      provider: providers,
      budgets: new RunBudgets(redis, names.runBudgetKey, metrics),
      recordings: new HttpRecordingReader(c.MUSE_ARTIFACT_STORE_URL),
      pricing: new Pricing(c.MUSE_MODEL_PRICES, Object.fromEntries(Object.entries(providersConfig.providers).map(([n, p]) => [n, p.price]))),
      scrubber: processScrubber,
      budgetMaxOutputTokens: c.MUSE_BUDGET_MAX_OUTPUT_TOKENS,
    });
    const shellSteps = new ShellStepExecutor(shell, {
      workspaceRoot: resolve(c.MUSE_WORKSPACE_DIR),
      outputLimitBytes: c.MUSE_SHELL_OUTPUT_LIMIT_BYTES,
      sandbox,
      limits: { cpuSeconds: c.MUSE_SANDBOX_CPU_SECONDS, memoryBytes: c.MUSE_SANDBOX_MEMORY_BYTES },
      secrets,
    });
    // http steps and the tools models may call: allowlisted hosts, SSRF rules on every hop (README "Security").
    const tools = createToolKit(c, shellSteps, processScrubber);
    if (tools.loopbackPorts.size > 0) log.warn({ ports: [...tools.loopbackPorts] }, 'MUSE_HTTP_ALLOW_LOOPBACK_PORTS is set: http tools may reach these loopback ports (for tests only)');
    log.info({ allowHosts: tools.allowlist.entries }, tools.allowlist.empty ? 'http tools may reach no host (MUSE_HTTP_ALLOW_HOSTS is empty)' : 'http tool host allowlist');
    const processor = new StepProcessor({
      agentId,
      agent: new AgentStepExecutor(
        providers,
        metrics,
        processScrubber,
        c.MUSE_PROGRESS_INTERVAL_MS > 0 ? new ProgressPublisher(bus, names, c.MUSE_PROGRESS_INTERVAL_MS, processScrubber) : undefined,
        calls,
        tools.loop,
      ),
      recordings: calls,
      toolResults: tools.loop,
      spend: calls,
      shell: shellSteps,
      http: tools.httpSteps,
      scrubber: processScrubber,
      artifacts: new ArtifactUploader(c.MUSE_ARTIFACT_STORE_URL),
      reports: new StepReportPublisher(bus, log),
      handBack: handBack.signal,
      startedReportDelayMs: c.MUSE_STARTED_REPORT_DELAY_MS,
      inlineArtifactBytes: c.MUSE_INLINE_ARTIFACT_BYTES,
      observer: metrics,
      logger: log,
    });
    // A run that ended (cancelled, failed) stops its steps running here (best effort: a missed notice only means the step finishes).
    bus.subscribe(names.runStopSubjectWildcard, (payload) => {
      const p = payload as { runId?: unknown; status?: unknown };
      if (typeof p.runId !== 'string') return;
      const stopped = processor.stopRun(p.runId, typeof p.status === 'string' ? p.status : undefined);
      if (stopped > 0) log.info({ runId: p.runId, stopped }, 'stopped the steps of an ended run');
    });
    const depthOf = new StepQueues(redis, names);
    kit.onShutdown(() => depthOf.close());
    const workers = new StepWorkers({
      connection: redis,
      names,
      roles,
      agentId,
      stealing: {
        intervalMs: c.MUSE_STEAL_INTERVAL_MS,
        agentTtlMs: c.MUSE_AGENT_TTL_MS,
        agentQueues: (roles) => depthOf.agentQueues(roles),
        forgetQueue: async (role, queue) => void (await depthOf.forgetAgentQueue(role, queue)),
        depth: (queue) => depthOf.depth(queue),
        heartbeats: async () => (await readAgentHeartbeats(redis, names)).heartbeats,
      },
      capabilities: c.MUSE_AGENT_CAPABILITIES,
      concurrency: c.MUSE_AGENT_CONCURRENCY,
      lockDurationMs: c.MUSE_JOB_LOCK_MS,
      processor,
      handBack,
      killShells: () => shell.killAll('SIGKILL'),
      metrics,
      logger: log,
    });
    const heartbeat = new HeartbeatService({
      redis,
      bus,
      names,
      identity: { agentId, roles, ...(c.MUSE_AGENT_CAPABILITIES.length ? { capabilities: c.MUSE_AGENT_CAPABILITIES } : {}), pid: process.pid, host: hostname(), concurrency: c.MUSE_AGENT_CONCURRENCY, startedAt: new Date().toISOString(), version: VERSION },
      counts: () => workers.snapshot(),
      resources: createResourceSampler(),
      intervalMs: c.MUSE_HEARTBEAT_MS,
      logger: log,
    });

    kit.onDrain(async () => {
      const handedBack = await workers.drain(Math.max(0, c.MUSE_SHUTDOWN_GRACE_MS - DRAIN_RESERVE_MS));
      await within(heartbeat.stop(), 2_000).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'deregistering'));
      log.info({ agentId, handedBack }, 'drained');
    });

    workers.start();
    heartbeat.start();
    log.info({ agentId, roles, workspaceDir: resolve(c.MUSE_WORKSPACE_DIR), version: VERSION }, 'agent worker ready');
    return AgentWorkerModule;
  },
});

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}
