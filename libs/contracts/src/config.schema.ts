/**
 * Configuration of every service, parsed once from the environment at boot.
 * A bad value stops the process with a message that names the variable.
 */
import { z } from 'zod';
import { CAPABILITY_PATTERN, MAX_CAPABILITIES } from './workflow.schema.js';
import { API_KEY_PATTERN, PROJECT_NAME_PATTERN } from './auth.schema.js';
import { NAMESPACE_PATTERN } from './names.js';
import { parseDispatchTable, type DispatchTable } from './dispatch.schema.js';

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
const ms = (def: number) => z.coerce.number().int().min(1).default(def);

/** USD per million tokens, by model name (`MUSE_MODEL_PRICES`). */
export const ModelPricesSchema = z.record(z.string(), z.strictObject({ inputPerMTok: z.number().min(0), outputPerMTok: z.number().min(0) }));
export type ModelPrices = z.infer<typeof ModelPricesSchema>;

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
  /** The memory trim's period, in ms: one quiet period after startup (and MUSE_MEMORY_TRIM_AFTER_WORK_MS of them after work) and the service compacts its heap once; 0 = never. */
  MUSE_MEMORY_TRIM_PERIOD_MS: z.coerce.number().int().min(0).default(2_000),
  /**
   * How long a service stays quiet after work (not after startup) before it trims, in ms (whole periods, at least
   * one): a trim makes the next burst compile its code and fault its heap in again.
   */
  MUSE_MEMORY_TRIM_AFTER_WORK_MS: z.coerce.number().int().min(0).default(30_000),
  /** OTLP/HTTP endpoint for traces; unset means no export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** NATS user of this service (see `infra/nats/nats-server.conf`); unset = connect without credentials. */
  NATS_USER: z.string().min(1).optional(),
  /** Password of `NATS_USER`. */
  NATS_PASSWORD: z.string().min(1).optional(),
  /** NATS credentials file (JWT + nkey seed), instead of user and password. */
  NATS_CREDS_FILE: z.string().min(1).optional(),
  /** File holding this service's nkey seed (`SU…`), for a server that lists the user by its public nkey; ignored when NATS_CREDS_FILE is set. */
  NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  /** PEM file of the CA that signed the NATS server's certificate; setting any NATS_TLS_* turns TLS on. */
  NATS_TLS_CA: z.string().min(1).optional(),
  /** PEM client certificate, for servers that verify clients. */
  NATS_TLS_CERT: z.string().min(1).optional(),
  /** PEM key of `NATS_TLS_CERT`. */
  NATS_TLS_KEY: z.string().min(1).optional(),
} as const;

export const GatewayConfigSchema = z.object({
  ...CommonConfigShape,
  GATEWAY_PORT: port(3000),
  /** Largest accepted request body, in bytes. @default 1 MiB */
  MUSE_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** The project created at bootstrap; a request from a multi-project credential without `Muse-Project` goes here. */
  MUSE_DEFAULT_PROJECT: z.string().regex(PROJECT_NAME_PATTERN, 'lowercase letters, digits and dashes').default('default'),
  /** The first admin key (every project, every scope), stored (as a hash) at start; unset = one is generated on first start. */
  MUSE_BOOTSTRAP_API_KEY: z.string().regex(API_KEY_PATTERN, 'must look like muse_<12 hex>_<43+ base64url>').optional(),
  /** Where a generated bootstrap key is written (mode 0600). @default .muse/api-key (relative to the working directory) */
  MUSE_BOOTSTRAP_API_KEY_FILE: z.string().default('.muse/api-key'),
  /** JWT bearer tokens: JWKS URL (fetched and cached by jose); unset with no JWKS file = JWTs are refused. */
  MUSE_JWT_JWKS_URL: z.string().url().optional(),
  /** JWT bearer tokens: a local JWKS JSON file instead of a URL. */
  MUSE_JWT_JWKS_FILE: z.string().optional(),
  /** Required `iss` of JWTs; unset = not checked. */
  MUSE_JWT_ISSUER: z.string().optional(),
  /** Required `aud` of JWTs; unset = not checked. */
  MUSE_JWT_AUDIENCE: z.string().optional(),
  /** JWT claim naming the caller's project(s): a string or an array of strings. */
  MUSE_JWT_PROJECTS_CLAIM: z.string().default('muse_projects'),
  /** JWT claim with the scopes: a space-separated string (OAuth `scope`) or an array. */
  MUSE_JWT_SCOPES_CLAIM: z.string().default('scope'),
  /** Requests per second one credential may make (Redis-backed, shared by every gateway replica). */
  MUSE_RATE_LIMIT_KEY_PER_SEC: z.coerce.number().int().min(1).default(100),
  /** Requests per second one project may receive, over all its credentials. */
  MUSE_RATE_LIMIT_PROJECT_PER_SEC: z.coerce.number().int().min(1).default(500),
  /** Failed authentications (401) one client address may cause per minute; past it, its requests get 429 before any credential is checked. */
  MUSE_RATE_LIMIT_AUTH_FAILURES_PER_MIN: z.coerce.number().int().min(1).default(120),
  /** Deepest nesting of a JSON/YAML body (objects and arrays). */
  MUSE_MAX_JSON_DEPTH: z.coerce.number().int().min(2).default(32),
  /** Longest array in a JSON/YAML body. */
  MUSE_MAX_JSON_ARRAY: z.coerce.number().int().min(1).default(10_000),
  /** Where the gateway streams artifact content from. */
  MUSE_ARTIFACT_STORE_URL: z.string().url().default('http://127.0.0.1:3003'),
  /** An agent whose last heartbeat is older than this is not listed, in ms. */
  MUSE_AGENT_TTL_MS: ms(6_000),
  /** How long a disconnected remote agent's assignments wait for it to reconnect (same agentId) before they fail as MUSE_ERR_AGENT_DISCONNECTED (retryable), in ms. */
  MUSE_REMOTE_AGENT_GRACE_MS: ms(10_000),
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
  /**
   * How often the coordinator checks each open step's job (a durable delayed
   * job, not a timer), in ms: a job its worker lost, or one running past its
   * timeout by more than this, fails that attempt.
   */
  MUSE_STEP_WATCH_MS: ms(5_000),
  /**
   * The longest gap between two checks of a step job still waiting for a worker, in ms: a waiting job
   * cannot be lost, so its checks back off (one watch period, twice that, four times, … up to this; a value
   * at or below MUSE_STEP_WATCH_MS turns the back-off off) and a backlog of queued steps costs little. A
   * running job is checked every MUSE_STEP_WATCH_MS from the check that finds it running.
   */
  MUSE_STEP_WATCH_WAITING_MAX_MS: ms(60_000),
  /** A command a coordinator took but did not ack within this is redelivered to a replica, in ms (handlers signal progress while working). */
  MUSE_COMMAND_ACK_WAIT_MS: ms(5_000),
  /** Deepest nesting of sub-workflows (`workflow:` steps); a child of a top-level run is depth 1. */
  MUSE_MAX_WORKFLOW_DEPTH: z.coerce.number().int().min(1).max(100).default(5),
  /** How long a step's leases (`locks:`) live without renewal, in ms; the coordinator renews them at every watch of the step's live job. */
  MUSE_LEASE_TTL_MS: ms(60_000),
  /**
   * Dispatch strategy per role: comma-separated `role=strategy`, `*=strategy` for the rest; strategies `shared`
   * (the role's queue, pulled by every agent of the role), `round-robin`, `least-loaded`, `affinity` (the agent of the
   * run's latest step, else least-loaded). @default shared everywhere
   */
  MUSE_DISPATCH: z
    .string()
    .default('')
    .transform((v, ctx): DispatchTable => {
      try {
        return parseDispatchTable(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** An agent whose last heartbeat is older than this gets no targeted step (3 heartbeats of 2 s), in ms. */
  MUSE_AGENT_TTL_MS: ms(6_000),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

export const AgentWorkerConfigSchema = z.object({
  ...CommonConfigShape,
  AGENT_WORKER_PORT: port(3002),
  /** Comma-separated roles this worker serves. */
  MUSE_AGENT_ROLES: z.string().default('orchestrator,optimizer,reviewer,executor'),
  /** Comma-separated capabilities of this worker (e.g. `gpu,python`): it also takes the steps whose `requires` they cover. */
  MUSE_AGENT_CAPABILITIES: z
    .string()
    .default('')
    .transform((v) => [...new Set(v.split(',').map((t) => t.trim()).filter((t) => t !== ''))])
    .pipe(z.array(z.string().regex(CAPABILITY_PATTERN, 'capabilities use [a-z0-9-], up to 32')).max(MAX_CAPABILITIES)),
  /** Jobs taken at once, per role. */
  MUSE_AGENT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(4),
  /** Stable id of this worker; generated when unset. */
  MUSE_AGENT_ID: z.string().optional(),
  /** Where per-run shell workspaces live. */
  MUSE_WORKSPACE_DIR: z.string().default('.muse/workspaces'),
  /**
   * Cap on captured stdout and stderr of a shell step, each, in bytes. Both at the cap still fit one report under
   * NATS's default 1 MiB max_payload (as text; a larger report fails the step with MUSE_ERR_STEP_OUTPUT_TOO_LARGE).
   */
  MUSE_SHELL_OUTPUT_LIMIT_BYTES: z.coerce.number().int().min(1024).default(256 * 1024),
  /** Heartbeat period, in ms. */
  MUSE_HEARTBEAT_MS: ms(2_000),
  /**
   * How often an agent with a free slot looks for work to steal from other agents' own queues (an overloaded agent's
   * backlog, or the queue of an agent that went silent), in ms; 0 = never steal. @default 500
   */
  MUSE_STEAL_INTERVAL_MS: z.coerce.number().int().min(0).default(500),
  /** How long a step runs before the worker reports it `started`, in ms; a quicker step sends one final report. 0 = before it runs. */
  MUSE_STARTED_REPORT_DELAY_MS: z.coerce.number().int().min(0).default(100),
  /** Bytes of a step's artifacts its report may carry inside it (the store writes them at commit); 0 = upload every one first. */
  MUSE_INLINE_ARTIFACT_BYTES: z.coerce.number().int().min(0).max(512 * 1024).default(256 * 1024),
  /** An agent whose last heartbeat is older than this counts as gone: its own queue is adopted by the others, in ms. */
  MUSE_AGENT_TTL_MS: ms(6_000),
  /** BullMQ lock duration: a job whose worker stops renewing it for this long is stalled and handed to another worker, in ms. */
  MUSE_JOB_LOCK_MS: ms(10_000),
  /** Artificial latency of the deterministic provider, in ms (0 = none); useful for demos and tests. */
  MUSE_LOCAL_PROVIDER_DELAY_MS: z.coerce.number().int().min(0).default(0),
  /** Model providers and failover chains per role: a YAML/JSON file path, or the JSON itself; unset = the deterministic provider for every role. API keys are named by env variable, never written in it. */
  MUSE_PROVIDERS_CONFIG: z.string().min(1).optional(),
  /** Pricing table: JSON `{"<model>": {"inputPerMTok": n, "outputPerMTok": n}}` in USD per million tokens; wins over a provider's `price`. @default {} */
  MUSE_MODEL_PRICES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return {};
      try {
        return ModelPricesSchema.parse(JSON.parse(v));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'MUSE_MODEL_PRICES must be JSON: {"<model>": {"inputPerMTok": <USD>, "outputPerMTok": <USD>}}' });
        return z.NEVER;
      }
    }),
  /** Under a run budget: the most output tokens one call may produce (sent to the provider), and what it reserves beyond its prompt. @default 1024 */
  MUSE_BUDGET_MAX_OUTPUT_TOKENS: z.coerce.number().int().min(1).max(1_000_000).default(1024),
  /** Shortest gap between two live-progress messages (model token deltas) of one step attempt, in ms; 0 = no live progress. @default 100 */
  MUSE_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(100),
  /** Where the worker uploads step outputs. */
  MUSE_ARTIFACT_STORE_URL: z.string().url().default('http://127.0.0.1:3003'),
  /** Folder of secret files (`<dir>/<NAME>`), read at run time; `MUSE_SECRET_<NAME>` variables are the other source. */
  MUSE_SECRETS_DIR: z.string().min(1).optional(),
  /** Hosts http tools may reach, comma-separated: `api.example.com`, `*.example.com` (subdomains), `*` (any); empty = none (every http call is refused). */
  MUSE_HTTP_ALLOW_HOSTS: z.string().default(''),
  /** TEST ONLY: loopback ports http tools may reach despite the loopback rule, comma-separated (local test servers); empty in production. */
  MUSE_HTTP_ALLOW_LOOPBACK_PORTS: z.string().regex(/^(\s*\d{1,5}\s*(,\s*\d{1,5}\s*)*)?$/, 'a comma-separated list of port numbers').default(''),
  /** Limit on one http tool request, redirects included, in ms. @default 30_000 */
  MUSE_HTTP_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
  /** Largest http tool response body, in bytes; a larger one fails with MUSE_ERR_TOOL_OUTPUT_TOO_LARGE. @default 1 MiB */
  MUSE_HTTP_MAX_RESPONSE_BYTES: z.coerce.number().int().min(1).default(1024 * 1024),
  /** Shell step sandbox: `auto` = bubblewrap when it works here, else none (said at start-up); `bwrap` = required; `none` = off. */
  MUSE_SANDBOX: z.enum(['auto', 'bwrap', 'none']).default('auto'),
  /** CPU time limit of a shell step's processes (RLIMIT_CPU, each process), in seconds; 0 = none. @default 600 */
  MUSE_SANDBOX_CPU_SECONDS: z.coerce.number().int().min(0).default(600),
  /** Address-space limit of a shell step's processes (RLIMIT_AS, each process), in bytes; 0 = none. @default 4 GiB */
  MUSE_SANDBOX_MEMORY_BYTES: z.coerce.number().int().min(0).default(4 * 1024 * 1024 * 1024),
});
export type AgentWorkerConfig = z.infer<typeof AgentWorkerConfigSchema>;

export const ArtifactStoreConfigSchema = z.object({
  ...CommonConfigShape,
  ARTIFACT_STORE_PORT: port(3003),
  /** Root folder of the local filesystem backend. */
  MUSE_ARTIFACT_DIR: z.string().default('.muse/artifacts'),
  /** Largest accepted artifact, in bytes. @default 1 GiB */
  MUSE_ARTIFACT_MAX_BYTES: z.coerce.number().int().min(1).default(1024 * 1024 * 1024),
  /** Where blobs live: `local` (MUSE_ARTIFACT_DIR), `nats` (JetStream Object Store), `s3` (S3-compatible). @default local */
  MUSE_ARTIFACT_BACKEND: z.enum(['local', 'nats', 's3']).default('local'),
  /** Object Store bucket of the `nats` backend. @default `<MUSE_NAMESPACE>-artifacts` */
  MUSE_ARTIFACT_NATS_BUCKET: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
  /** Replicas of the Object Store bucket (3 on a 3-node NATS cluster). @default 1 */
  MUSE_ARTIFACT_NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** Bucket of the `s3` backend (required with it). Credentials come from the AWS SDK's usual chain (AWS_ACCESS_KEY_ID...). */
  MUSE_ARTIFACT_S3_BUCKET: z.string().min(1).optional(),
  /** Key prefix inside the bucket. @default `<MUSE_NAMESPACE>/` */
  MUSE_ARTIFACT_S3_PREFIX: z.string().optional(),
  /** Endpoint of an S3-compatible server (MinIO, Ceph...); unset = AWS. */
  MUSE_ARTIFACT_S3_ENDPOINT: z.string().url().optional(),
  /** Region of the bucket. @default us-east-1 */
  MUSE_ARTIFACT_S3_REGION: z.string().min(1).default('us-east-1'),
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers want. @default false */
  MUSE_ARTIFACT_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Artifacts are kept this many days unless the workflow's `retention.ttlDays` says otherwise; 0 = forever. @default 30 */
  MUSE_ARTIFACT_TTL_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /** How often expired artifacts are removed and unreferenced blobs collected, in ms. @default 600_000 */
  MUSE_ARTIFACT_GC_INTERVAL_MS: ms(600_000),
  /** An uploaded blob no artifact references yet is kept this long (its commit may still come), in ms. @default 3_600_000 */
  MUSE_ARTIFACT_GC_GRACE_MS: ms(3_600_000),
  /**
   * Blobs of 1 to this many bytes are kept in Redis beside their artifacts' metadata instead of on the backend: no
   * file, no fsync (step outputs and model-call recordings are mostly this small). 0 = every blob on the backend.
   * @default 2048
   */
  MUSE_ARTIFACT_REDIS_BLOB_BYTES: z.coerce.number().int().min(0).max(64 * 1024).default(2048),
  /** A temp file untouched this long belongs to a dead upload and is removed (at start and on each sweep), in ms. @default 600_000 */
  MUSE_ARTIFACT_STALE_TEMP_MS: ms(600_000),
});
export type ArtifactStoreConfig = z.infer<typeof ArtifactStoreConfigSchema>;

export const ObservabilityConfigSchema = z.object({
  ...CommonConfigShape,
  OBSERVABILITY_PORT: port(3004),
  /** An agent whose last heartbeat is older than this leaves the live view, in ms. */
  MUSE_AGENT_TTL_MS: ms(6_000),
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
  MUSE_AGENT_TTL_MS: ms(6_000),
  /** The pools file (TOML or YAML, `orchestration.scaling.<role>` tables); unset = the default policy for every role. */
  MUSE_SCALER_CONFIG: z.string().min(1).optional(),
  /** What acts on the pools' desired sizes: spawn local worker processes, set Kubernetes Deployment replicas, or only export metrics. @default local */
  MUSE_SCALER_DRIVER: z.enum(['local', 'kubernetes', 'external']).default('local'),
  /** The leader lease's TTL: a dead leader is replaced within this, in ms. @default 10_000 */
  MUSE_SCALER_LEASE_TTL_MS: ms(10_000),
  /** `local` driver: folder for the log file of each worker it starts; unset = their output is dropped. */
  MUSE_SCALER_WORKER_LOG_DIR: z.string().min(1).optional(),
  /** `kubernetes` driver: namespace of the pools' Deployments. @default default */
  MUSE_SCALER_K8S_NAMESPACE: z.string().min(1).default('default'),
  /** `kubernetes` driver: Deployment name of each pool, `{role}` replaced by the role. @default muse-agent-{role} */
  MUSE_SCALER_K8S_DEPLOYMENT: z.string().includes('{role}').default('muse-agent-{role}'),
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
