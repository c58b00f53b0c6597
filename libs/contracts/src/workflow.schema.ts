import { z } from 'zod';

export const WORKFLOW_NAME_PATTERN = /^[a-z0-9-]+$/;
export const STEP_ID_PATTERN = /^[a-z0-9_-]+$/;
export const ROLE_PATTERN = /^[a-z][a-z0-9-]*$/;
/** A lease a step takes before it runs: `<kind>:<path or glob>`, e.g. `repo:web/src/**`, `file:README.md`. */
export const LOCK_PATTERN = /^[a-z][a-z0-9-]*:[^\s:][^\s]{0,499}$/;
/** A capability tag of agents (`MUSE_AGENT_CAPABILITIES`, `muse agent --capability`) that a step may require. */
export const CAPABILITY_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** Most capabilities one step may require, and one agent may declare per role (an agent listens on a queue per subset). */
export const MAX_CAPABILITIES = 6;
/** A trigger subject: NATS tokens without wildcards. */
export const TRIGGER_SUBJECT_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** The default agent roles (configurable per deployment). */
export const DEFAULT_ROLES = ['orchestrator', 'optimizer', 'reviewer', 'executor'] as const;
/** Tool steps run on this role unless the step names another. */
export const DEFAULT_TOOL_ROLE = 'executor';

export const TOOLS = ['shell', 'http'] as const;
export type ToolName = (typeof TOOLS)[number];
/** Tools an agent step may let its model call (function calling), by the same names. */
export const AGENT_TOOLS = ['http', 'shell'] as const;
export type AgentToolName = (typeof AGENT_TOOLS)[number];
/** Tool calls one agent step attempt may make when the step names no `maxToolCalls`. */
export const DEFAULT_MAX_TOOL_CALLS = 8;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME_PATTERN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Headers the http tool sets itself (framing, routing): a step may not. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection']);

/**
 * The request of an `http` tool step. `url`, header values and `body` are
 * templates. Where the request may go is the worker's decision (its host
 * allowlist and address rules), not the workflow's.
 */
export const HttpRequestSchema = z
  .strictObject({
    method: z.enum(['GET', 'POST'], { message: 'request.method is GET or POST' }),
    /** An absolute `http://` or `https://` URL (a template; `{{ ... }}` may give all of it). */
    url: z
      .string()
      .min(1)
      .max(8_192)
      .refine((u) => /^https?:\/\//i.test(u) || u.startsWith('{{'), { message: 'request.url must start with http:// or https:// (or be a template giving such a URL)' }),
    /** Header names are checked in the refinement below, so that an error names the header (zod says only "Invalid key in record"). */
    headers: z.record(z.string().max(256), z.string().max(8_192)).optional(),
    /** Request body (a template); POST only. */
    body: z.string().max(1_000_000).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.body !== undefined && r.method !== 'POST') ctx.addIssue({ code: 'custom', path: ['body'], message: 'a GET request takes no body' });
    for (const [name, value] of Object.entries(r.headers ?? {})) {
      if (!HEADER_NAME_PATTERN.test(name)) ctx.addIssue({ code: 'custom', path: ['headers', name], message: 'header names are RFC 9110 tokens' });
      else if (RESERVED_HEADERS.has(name.toLowerCase())) ctx.addIssue({ code: 'custom', path: ['headers', name], message: 'this header is set by the http tool itself' });
      if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: ['headers', name], message: 'header values may not contain CR, LF or NUL' });
    }
  });
export type HttpRequestDefinition = z.infer<typeof HttpRequestSchema>;

export const StepIdSchema = z.string().min(1).max(64).regex(STEP_ID_PATTERN, 'step ids use [a-z0-9_-]+');
export const RoleSchema = z.string().min(1).max(64).regex(ROLE_PATTERN, 'roles use [a-z][a-z0-9-]*');

/**
 * Backoff between attempts of a step: the wait before attempt n+1 is
 * `min(maxMs, initialMs * factor^(n-1))`, then scaled by a random factor in
 * `[1 - jitter, 1]`. The coordinator enqueues the next attempt as a delayed
 * BullMQ job (durable in Redis), never as a timer in memory.
 */
export const BackoffSchema = z.strictObject({
  /** Wait before the 2nd attempt, in ms. @default 1000 */
  initialMs: z.number().int().min(0).max(24 * 3600_000).optional(),
  /** Multiplier per further attempt. @default 2 */
  factor: z.number().min(1).max(100).optional(),
  /** Longest wait, in ms. @default 60_000 */
  maxMs: z.number().int().min(0).max(7 * 24 * 3600_000).optional(),
  /** Fraction of the wait that is random (0 = none, 1 = anywhere from 0 to the wait). @default 0 */
  jitter: z.number().min(0).max(1).optional(),
});
export type Backoff = z.infer<typeof BackoffSchema>;

/** Retry policy of a step (or the workflow's default for its steps). */
export const RetryPolicySchema = z.strictObject({
  /** Attempts before the step fails for good; non-retryable errors never retry. @default MUSE_STEP_MAX_ATTEMPTS (3) */
  maxAttempts: z.number().int().min(1).max(100).optional(),
  backoff: BackoffSchema.optional(),
});
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/** `needs: [a, b]` (every one), or `needs: { any: [a, b] }` (a join that runs even when every branch was skipped). */
export const NeedsSchema = z.union([z.array(StepIdSchema).max(1000), z.strictObject({ any: z.array(StepIdSchema).min(1).max(1000) })]);
export type Needs = z.infer<typeof NeedsSchema>;

/** A CEL expression (validated by the engine at registration). */
const CelSchema = z.string().min(1).max(10_000);

/** A secret's name: what a step lists and the environment variable its shell command sees. */
export const SECRET_NAME_PATTERN = /^[A-Z][A-Z0-9_]*$/;

/**
 * What undoes a step (a Saga compensation): an agent step or a tool step of
 * its own, with its own timeout and retry policy. Its templates see what the
 * step saw, and the step's own output.
 */
export const CompensationSchema = z
  .strictObject({
    agent: RoleSchema.optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    model: z.string().min(1).max(200).optional(),
    seed: z.number().int().min(0).optional(),
    tool: z.enum(TOOLS).optional(),
    command: z.string().min(1).max(100_000).optional(),
    /** The request of an `http` compensation. */
    request: HttpRequestSchema.optional(),
    /** Start-to-close limit for one attempt, in ms. @default MUSE_STEP_TIMEOUT_MS */
    timeoutMs: z.number().int().min(1).max(7 * 24 * 3600_000).optional(),
    retry: RetryPolicySchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.tool === 'http') {
      if (c.request === undefined) ctx.addIssue({ code: 'custom', path: ['request'], message: 'an http compensation needs a request' });
      if (c.command !== undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: 'an http compensation takes a request, not a command' });
      if (c.prompt !== undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'a tool compensation takes a request, not a prompt' });
    } else if (c.tool !== undefined) {
      if (c.command === undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: 'a tool compensation needs a command' });
      if (c.request !== undefined) ctx.addIssue({ code: 'custom', path: ['request'], message: 'a shell compensation takes a command, not a request' });
      if (c.prompt !== undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'a tool compensation takes a command, not a prompt' });
    } else {
      if (c.command !== undefined) ctx.addIssue({ code: 'custom', path: ['tool'], message: 'a compensation with a command needs tool: shell' });
      if (c.request !== undefined) ctx.addIssue({ code: 'custom', path: ['tool'], message: 'a compensation with a request needs tool: http' });
      if (c.agent === undefined) ctx.addIssue({ code: 'custom', path: ['agent'], message: 'a compensation needs an agent role (or a tool)' });
      if (c.prompt === undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'an agent compensation needs a prompt' });
    }
  });
export type CompensationDefinition = z.infer<typeof CompensationSchema>;

/** The "role" of approval gates: no worker pool serves it, people do. */
export const APPROVAL_ROLE = 'approval';
/** The "role" of sub-workflow steps: no worker pool serves it, the coordinator starts a child run. */
export const WORKFLOW_ROLE = 'workflow';

/**
 * A limit on runs (or steps) at once per key: `key` is CEL over `input` (and `steps`, at step level) giving a
 * string; at most `limit` holders of one key in one project run at once, the rest wait in arrival order.
 * Keys are shared by every workflow of the project (one repository, one key, whichever workflow touches it).
 */
export const KeyedConcurrencySchema = z.strictObject({
  key: z.string().min(1).max(10_000),
  limit: z.number().int().min(1).max(10_000),
});
export type KeyedConcurrency = z.infer<typeof KeyedConcurrencySchema>;

/** The registered workflow a sub-workflow step runs as a child run: the latest version unless one is named. */
export const SubWorkflowRefSchema = z.strictObject({
  name: z.string().min(1).max(100).regex(WORKFLOW_NAME_PATTERN, 'workflow names use [a-z0-9-]+'),
  version: z.number().int().min(1).optional(),
});

/** The pseudo step id of a step's compensation: `~` is not allowed in step ids, so it never collides. */
export const COMPENSATION_SUFFIX = '~undo';
export function compensationId(stepId: string): string {
  return `${stepId}${COMPENSATION_SUFFIX}`;
}
/** The step a compensation id undoes, or undefined for an ordinary step id. */
export function compensatedStep(id: string): string | undefined {
  return id.endsWith(COMPENSATION_SUFFIX) ? id.slice(0, -COMPENSATION_SUFFIX.length) : undefined;
}

/**
 * One step. An agent step has `agent` and `prompt`; a tool step has `tool`
 * and `command` (and runs on `executor` unless `agent` says otherwise).
 * Kept as one strict object with a refinement, rather than a union, so that
 * an error names the exact field instead of "no union member matched".
 */
export const StepSchema = z
  .strictObject({
    id: StepIdSchema,
    description: z.string().max(2000).optional(),
    agent: RoleSchema.optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    /** Model name passed to the provider chain; the deterministic provider accepts any. @default "muse-local" */
    model: z.string().min(1).max(200).optional(),
    /** Sampling seed, pinned; unset = derived from run, step (element) and attempt, and recorded with the call. */
    seed: z.number().int().min(0).optional(),
    /** Sampling temperature passed to every provider and recorded with the call. @default 0 */
    temperature: z.number().min(0).max(2).optional(),
    /** Nucleus sampling passed to every provider and recorded with the call. @default 1 */
    topP: z.number().gt(0).max(1).optional(),
    tool: z.enum(TOOLS, { message: `tool is one of: ${TOOLS.join(', ')}` }).optional(),
    command: z.string().min(1).max(100_000).optional(),
    /** The request of an `http` tool step. */
    request: HttpRequestSchema.optional(),
    /** Tools the agent step's model may call (function calling); each call's result is fed back and stored as an artifact. */
    tools: z.array(z.enum(AGENT_TOOLS, { message: `agent tools are: ${AGENT_TOOLS.join(', ')}` })).min(1).max(AGENT_TOOLS.length).optional(),
    /** Tool calls one attempt may make; one more fails the step (MUSE_ERR_TOOL_CALLS_EXCEEDED). @default 8 */
    maxToolCalls: z.number().int().min(1).max(100).optional(),
    needs: NeedsSchema.optional(),
    /** Start-to-close limit for one attempt, in ms. @default 300_000 */
    timeoutMs: z.number().int().min(1).max(7 * 24 * 3600_000).optional(),
    /** Attempts before the step fails for good (a lost worker or a retryable error counts). @default 3 */
    maxAttempts: z.number().int().min(1).max(100).optional(),
    /** Retry policy; `retry.maxAttempts` wins over `maxAttempts`. @default the workflow's `retry` */
    retry: RetryPolicySchema.optional(),
    /** CEL over `input` and `steps`; false marks the step `skipped`. */
    when: CelSchema.optional(),
    /** When the step fails for good, the run goes on (steps that need it still run). @default false */
    continueOnFailure: z.boolean().optional(),
    /** CEL giving a list: the step runs once per element (`item`, `index` in its templates); its output is the list of outputs, in order. */
    forEach: CelSchema.optional(),
    /** A number: elements of a `forEach` running at once (default 10). `{key, limit}`: at most `limit` steps with that key run at once, across runs. */
    concurrency: z.union([z.number().int().min(1).max(1000), KeyedConcurrencySchema]).optional(),
    /**
     * Leases taken (all or none) before the step is queued and held until it ends: `<kind>:<path or glob>`. Two
     * leases of one kind conflict when their paths can overlap; the step waits, in order, until none is held.
     */
    locks: z.array(z.string().regex(LOCK_PATTERN, 'a lock is <kind>:<path or glob>, e.g. repo:web/src/** or file:README.md')).min(1).max(64).optional(),
    /**
     * Capabilities the agent must have (specialization): the step goes to the queue `<role>+<tags>` that only
     * agents declaring all of them take; with none live, the step waits, and its view says why.
     */
    requires: z.array(z.string().regex(CAPABILITY_PATTERN, 'capabilities use [a-z0-9-], up to 32')).min(1).max(MAX_CAPABILITIES).optional(),
    /** Runs a registered workflow as a child run; its output is the step's output. */
    workflow: SubWorkflowRefSchema.optional(),
    /** The child run's input (with `workflow`): string values are templates; one whole `{{ path }}` passes the value as it is. */
    input: z.record(z.string(), z.unknown()).optional(),
    /** `approval`: a gate that waits for `POST /v1/runs/{id}/approvals/{stepId}` (no agent, prompt, tool or command). */
    type: z.enum(['approval']).optional(),
    /** What an approval gate decides by itself once its `timeoutMs` passed. @default "reject" */
    onTimeout: z.enum(['approve', 'reject']).optional(),
    /** Undoes the step when the run fails after it succeeded (compensations run in reverse completion order). */
    compensate: CompensationSchema.optional(),
    /** Names of secrets a shell step gets as environment variables; the worker resolves them, values never enter the run. */
    secrets: z.array(z.string().max(128).regex(SECRET_NAME_PATTERN, 'secret names use [A-Z][A-Z0-9_]*')).max(64).optional(),
    /** Whether a sandboxed shell step may use the network. @default false */
    network: z.boolean().optional(),
  })
  .superRefine((step, ctx) => {
    if (typeof step.concurrency === 'number' && step.forEach === undefined) {
      ctx.addIssue({ code: 'custom', path: ['concurrency'], message: `step "${step.id}": concurrency applies to a forEach step` });
    }
    if (step.onTimeout !== undefined && (step.type !== 'approval' || step.timeoutMs === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['onTimeout'], message: `step "${step.id}": onTimeout applies to an approval step with a timeoutMs` });
    }
    if (step.input !== undefined && step.workflow === undefined) {
      ctx.addIssue({ code: 'custom', path: ['input'], message: `step "${step.id}": input applies to a sub-workflow step (workflow)` });
    }
    if (step.workflow !== undefined) {
      for (const f of ['type', 'agent', 'prompt', 'tool', 'command', 'request', 'tools', 'maxToolCalls', 'forEach', 'secrets', 'network', 'model', 'seed', 'temperature', 'topP', 'onTimeout'] as const) {
        if (step[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `sub-workflow step "${step.id}" takes no ${f}` });
      }
    } else if (step.type === 'approval') {
      for (const f of ['agent', 'prompt', 'tool', 'command', 'request', 'tools', 'maxToolCalls', 'forEach', 'compensate', 'retry', 'maxAttempts', 'secrets', 'network', 'model', 'seed', 'locks'] as const) {
        if (step[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `approval step "${step.id}" takes no ${f}` });
      }
    } else if (step.tool === 'http') {
      if (step.request === undefined) ctx.addIssue({ code: 'custom', path: ['request'], message: `http step "${step.id}" needs a request ({method, url, headers?, body?})` });
      for (const f of ['command', 'prompt', 'secrets', 'network', 'tools', 'maxToolCalls', 'model', 'seed'] as const) {
        if (step[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `http step "${step.id}" takes no ${f}` });
      }
    } else if (step.tool !== undefined) {
      if (step.command === undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: `tool step "${step.id}" needs a command` });
      if (step.prompt !== undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `tool step "${step.id}" takes a command, not a prompt` });
      for (const f of ['request', 'tools', 'maxToolCalls'] as const) {
        if (step[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `shell step "${step.id}" takes no ${f}` });
      }
    } else {
      if (step.command !== undefined) ctx.addIssue({ code: 'custom', path: ['tool'], message: `step "${step.id}" has a command but no tool` });
      if (step.request !== undefined) ctx.addIssue({ code: 'custom', path: ['tool'], message: `step "${step.id}" has a request but no tool: http` });
      if (step.maxToolCalls !== undefined && step.tools === undefined) ctx.addIssue({ code: 'custom', path: ['maxToolCalls'], message: `step "${step.id}": maxToolCalls applies to an agent step with tools` });
      if (step.secrets !== undefined) ctx.addIssue({ code: 'custom', path: ['secrets'], message: `step "${step.id}": only tool steps take secrets` });
      if (step.network !== undefined) ctx.addIssue({ code: 'custom', path: ['network'], message: `step "${step.id}": only tool steps take network` });
      if (step.agent === undefined) ctx.addIssue({ code: 'custom', path: ['agent'], message: `step "${step.id}" needs an agent role (or a tool)` });
      if (step.prompt === undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `agent step "${step.id}" needs a prompt` });
    }
  });
export type StepDefinition = z.infer<typeof StepSchema>;

/**
 * A run's spending limits. Each model call reserves its estimate before it runs and settles to its usage after, so
 * concurrent agents of one run overshoot a limit by at most one call's reservation. On exhaustion the step fails
 * (`MUSE_ERR_BUDGET_EXCEEDED`, not retried) or, with `onBudgetExceeded: wait`, waits for `POST /v1/runs/{id}/budget`.
 */
export const BudgetSchema = z.strictObject({
  maxTokens: z.number().int().min(1).optional(),
  /** In USD, priced by MUSE_MODEL_PRICES (or the provider's `price`). */
  maxCost: z.number().positive().optional(),
  /** @default "fail" */
  onBudgetExceeded: z.enum(['fail', 'wait']).optional(),
});
export type Budget = z.infer<typeof BudgetSchema>;

export const WorkflowDefinitionSchema = z.strictObject({
  name: z.string().min(1).max(100).regex(WORKFLOW_NAME_PATTERN, 'workflow names use [a-z0-9-]+'),
  description: z.string().max(10_000).optional(),
  steps: z.array(StepSchema).min(1).max(5000),
  /** A template rendered when the run succeeds; without it the output is every step's output by id. */
  output: z.string().max(100_000).optional(),
  /** Default retry policy of every step. */
  retry: RetryPolicySchema.optional(),
  /** Limit on the whole run, from its start, in ms; past it the run fails with MUSE_ERR_RUN_TIMEOUT. */
  timeoutMs: z.number().int().min(1).max(90 * 24 * 3600_000).optional(),
  /** How long the run's artifacts are kept; then the artifact store expires them and GC frees unreferenced blobs. @default MUSE_ARTIFACT_TTL_DAYS */
  retention: z.strictObject({ ttlDays: z.number().int().min(1).max(36_500) }).optional(),
  /** At most `limit` runs with the same key (CEL over `input`) at once in the project; the others wait, in order. */
  concurrency: KeyedConcurrencySchema.optional(),
  /** Starts a run for each message on `<namespace>.trigger.<project>.<subject>` (the message, JSON, is the input). */
  on: z.strictObject({ subject: z.string().min(1).max(200).regex(TRIGGER_SUBJECT_PATTERN, 'trigger subjects are dot-separated tokens of [A-Za-z0-9_-], no wildcards') }).optional(),
  /** Limits on the model tokens and cost (USD) the whole run may spend; see BudgetSchema. */
  budget: BudgetSchema.optional(),
});
export type WorkflowDefinition = z.infer<typeof WorkflowDefinitionSchema>;

export const WorkflowRefSchema = z.object({ name: z.string(), version: z.number().int().min(1) });
export type WorkflowRef = z.infer<typeof WorkflowRefSchema>;

export const StoredWorkflowSchema = z.object({
  project: z.string(),
  name: z.string(),
  version: z.number().int().min(1),
  digest: z.string(),
  definition: WorkflowDefinitionSchema,
  createdAt: z.string(),
});
export type StoredWorkflow = z.infer<typeof StoredWorkflowSchema>;

/** The ids a step needs, whichever form `needs` takes. */
export function stepNeeds(step: Pick<StepDefinition, 'needs'>): string[] {
  const n = step.needs;
  if (n === undefined) return [];
  return Array.isArray(n) ? n : n.any;
}

/** The `{key, limit}` of a step with a keyed concurrency limit, else undefined (a number is a forEach cap). */
export function keyedConcurrency(step: Pick<StepDefinition, 'concurrency'>): KeyedConcurrency | undefined {
  return typeof step.concurrency === 'object' ? step.concurrency : undefined;
}

/**
 * The queue a job of `role` goes to: the role itself, or `<role>+<tag>+<tag>` (tags sorted, once each) for a step
 * that requires capabilities. An agent of that role listens on the queue of every subset of its capabilities.
 */
export function queueRole(role: string, requires?: readonly string[]): string {
  if (!requires?.length) return role;
  return [role, ...[...new Set(requires)].sort()].join('+');
}

/** Every queue an agent of `role` with `capabilities` takes jobs from: the role's own, and one per subset of them. */
export function queueRolesFor(role: string, capabilities: readonly string[] = []): string[] {
  const tags = [...new Set(capabilities)].sort().slice(0, MAX_CAPABILITIES);
  const out: string[] = [];
  for (let mask = 0; mask < 1 << tags.length; mask++) out.push(queueRole(role, tags.filter((_t, i) => mask & (1 << i))));
  return out;
}

/** The role and required capabilities of a queue role (`reviewer+gpu` -> reviewer, [gpu]). */
export function parseQueueRole(q: string): { role: string; requires: string[] } {
  const [role, ...requires] = q.split('+');
  return { role: role!, requires };
}

/** True for `needs: { any: [...] }`. */
export function needsAny(step: Pick<StepDefinition, 'needs'>): boolean {
  return step.needs !== undefined && !Array.isArray(step.needs);
}

/** The role whose pool runs a step. */
export function stepRole(step: StepDefinition): string {
  if (step.type === 'approval') return APPROVAL_ROLE;
  if (step.workflow !== undefined) return WORKFLOW_ROLE;
  return step.agent ?? DEFAULT_TOOL_ROLE;
}

/** One tool call an agent step's model made: what it asked for, how it went, and the artifact holding the result. */
export const ToolCallRecordSchema = z.object({
  /** The provider's call id. */
  id: z.string(),
  tool: z.string(),
  /** The arguments the model gave, as the model gave them. */
  arguments: z.unknown(),
  /** `ok`, or the catalogue code of the error fed back to the model. */
  outcome: z.string(),
  /** Name of the artifact holding the result (e.g. `tool-calls/01-http.json`). */
  artifact: z.string(),
});
export type ToolCallRecord = z.infer<typeof ToolCallRecordSchema>;

/** Agent step output. */
export const AgentOutputSchema = z.object({
  text: z.string(),
  model: z.string(),
  usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }),
  /** The provider that answered (a name from the providers configuration). */
  provider: z.string().optional(),
  /** Providers of the role's failover chain tried and given up on first, in order; absent = the first answered. */
  fallbacks: z.array(z.object({ provider: z.string(), code: z.string(), message: z.string() })).optional(),
  /** The tool calls the model made, in order (agent steps with `tools`); each result is an artifact. */
  toolCalls: z.array(ToolCallRecordSchema).optional(),
  /** What the call cost in USD (MUSE_MODEL_PRICES, else the provider's price); absent = unpriced. */
  cost: z.number().min(0).optional(),
  /** The recorded call (`llm-call.json`): its request hash and the sampling parameters it ran with. */
  call: z.object({ requestHash: z.string(), seed: z.number().int(), temperature: z.number(), topP: z.number(), replayed: z.boolean().optional() }).optional(),
});
export type AgentOutput = z.infer<typeof AgentOutputSchema>;

/** Http step output (and an http tool call's result). `body` is the response as UTF-8 text. */
export const HttpOutputSchema = z.object({
  status: z.number().int(),
  headers: z.record(z.string(), z.string()),
  body: z.string(),
  /** The URL that answered, after redirects. */
  url: z.string(),
});
export type HttpOutput = z.infer<typeof HttpOutputSchema>;

/** Shell step output. */
export const ShellOutputSchema = z.object({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean().optional(),
});
export type ShellOutput = z.infer<typeof ShellOutputSchema>;
