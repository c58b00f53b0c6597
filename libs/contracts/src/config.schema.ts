/**
 * Configuration of every service, parsed once from the environment at boot.
 * A bad value stops the process with a message that names the variable.
 */
import { z } from 'zod';
import { NAMESPACE_PATTERN } from './names.js';

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
const ms = (def: number) => z.coerce.number().int().min(1).default(def);

/** Variables every service reads. */
export const CommonConfigShape = {
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  REDIS_URL: z.string().min(1).default('redis://127.0.0.1:6379'),
  MUSE_NAMESPACE: z.string().regex(NAMESPACE_PATTERN).default('muse'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Address the service's HTTP server binds to. */
  HOST: z.string().default('127.0.0.1'),
  /** Grace period for in-flight work on SIGTERM, in ms. */
  MUSE_SHUTDOWN_GRACE_MS: ms(10_000),
  /** OTLP/HTTP endpoint for traces; unset means no export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
} as const;

export const GatewayConfigSchema = z.object({
  ...CommonConfigShape,
  GATEWAY_PORT: port(3000),
  /** Largest accepted request body, in bytes. @default 1 MiB */
  MUSE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** Project used until API keys (and their projects) exist. */
  MUSE_DEFAULT_PROJECT: z.string().default('default'),
  /** Where the gateway streams artifact content from. */
  MUSE_ARTIFACT_STORE_URL: z.string().url().default('http://127.0.0.1:3003'),
  /** An agent whose last heartbeat is older than this is not listed, in ms. */
  MUSE_AGENT_TTL_MS: ms(10_000),
});
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export const CoordinatorConfigSchema = z.object({
  ...CommonConfigShape,
  COORDINATOR_PORT: port(3001),
  /** How many commands one replica handles at once. */
  COORDINATOR_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(64),
  /** TTL of the per-run lock, in ms; renewed while held. */
  MUSE_RUN_LOCK_TTL_MS: ms(15_000),
  /** Default attempts for a step. */
  MUSE_STEP_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(3),
  /** Default start-to-close timeout of a step attempt, in ms. */
  MUSE_STEP_TIMEOUT_MS: ms(300_000),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

export const AgentWorkerConfigSchema = z.object({
  ...CommonConfigShape,
  AGENT_WORKER_PORT: port(3002),
  /** Comma-separated roles this worker serves. */
  MUSE_AGENT_ROLES: z.string().default('orchestrator,optimizer,reviewer,executor'),
  /** Jobs taken at once, per role. */
  MUSE_AGENT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  /** Stable id of this worker; generated when unset. */
  MUSE_AGENT_ID: z.string().optional(),
  /** Where per-run shell workspaces live. */
  MUSE_WORKSPACE_DIR: z.string().default('.muse/workspaces'),
  /** Cap on captured stdout and stderr of a shell step, each, in bytes. */
  MUSE_SHELL_OUTPUT_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** Heartbeat period, in ms. */
  MUSE_HEARTBEAT_MS: ms(2_000),
  /** BullMQ lock duration: a job whose worker stops renewing it for this long is stalled and handed to another worker, in ms. */
  MUSE_JOB_LOCK_MS: ms(10_000),
  /** Artificial latency of the deterministic provider, in ms (0 = none); useful for demos and tests. */
  MUSE_LOCAL_PROVIDER_DELAY_MS: z.coerce.number().int().min(0).default(0),
  /** Where the worker uploads step outputs. */
  MUSE_ARTIFACT_STORE_URL: z.string().url().default('http://127.0.0.1:3003'),
});
export type AgentWorkerConfig = z.infer<typeof AgentWorkerConfigSchema>;

export const ArtifactStoreConfigSchema = z.object({
  ...CommonConfigShape,
  ARTIFACT_STORE_PORT: port(3003),
  /** Root folder of the local filesystem backend. */
  MUSE_ARTIFACT_DIR: z.string().default('.muse/artifacts'),
  /** Largest accepted artifact, in bytes. @default 1 GiB */
  MUSE_ARTIFACT_MAX_BYTES: z.coerce.number().int().min(1).default(1024 * 1024 * 1024),
});
export type ArtifactStoreConfig = z.infer<typeof ArtifactStoreConfigSchema>;

export const ObservabilityConfigSchema = z.object({
  ...CommonConfigShape,
  OBSERVABILITY_PORT: port(3004),
  /** An agent whose last heartbeat is older than this leaves the live view, in ms. */
  MUSE_AGENT_TTL_MS: ms(10_000),
  /** How often the agent list and queue depths are read, in ms. */
  MUSE_OBSERVABILITY_POLL_MS: ms(1_000),
  /** Runs per project read from the read model at start. */
  MUSE_OBSERVABILITY_SEED_RUNS: z.coerce.number().int().min(0).default(1_000),
});
export type ObservabilityConfig = z.infer<typeof ObservabilityConfigSchema>;

export const ScalerConfigSchema = z.object({
  ...CommonConfigShape,
  SCALER_PORT: port(3005),
  /** How often the scaler reads queue depths and agent heartbeats, in ms. */
  MUSE_SCALER_INTERVAL_MS: ms(5_000),
  /** An agent whose last heartbeat is older than this is not counted, in ms. */
  MUSE_AGENT_TTL_MS: ms(10_000),
});
export type ScalerConfig = z.infer<typeof ScalerConfigSchema>;

/** Every service's schema by app folder name: the launcher, compose checks and docs read this. */
export const SERVICE_CONFIG_SCHEMAS = {
  gateway: GatewayConfigSchema,
  coordinator: CoordinatorConfigSchema,
  'agent-worker': AgentWorkerConfigSchema,
  'artifact-store': ArtifactStoreConfigSchema,
  observability: ObservabilityConfigSchema,
  scaler: ScalerConfigSchema,
} as const;
export type ServiceName = keyof typeof SERVICE_CONFIG_SCHEMAS;
export const SERVICE_NAMES = Object.keys(SERVICE_CONFIG_SCHEMAS) as ServiceName[];
/** The variable holding each service's HTTP port. */
export const SERVICE_PORT_VARS: Record<ServiceName, string> = {
  gateway: 'GATEWAY_PORT',
  coordinator: 'COORDINATOR_PORT',
  'agent-worker': 'AGENT_WORKER_PORT',
  'artifact-store': 'ARTIFACT_STORE_PORT',
  observability: 'OBSERVABILITY_PORT',
  scaler: 'SCALER_PORT',
};

/** Parse `env` with `schema`, or throw one error naming every bad variable. */
export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const res = schema.safeParse(env);
  if (res.success) return res.data;
  const lines = res.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  throw new Error(`invalid configuration (MUSE_ERR_CONFIG_INVALID):\n${lines.join('\n')}`);
}
