/**
 * The remote agent protocol: WebSocket `/v1/agents/connect` on the gateway,
 * JSON text frames. An agent running anywhere (a coding agent on a laptop, a
 * CI job) connects with an API key of scope `agent`, says `hello`, and is
 * handed the step jobs of its roles, one `assign` per attempt, which it ends
 * with `complete` or `fail`. `muse agent` is the reference client.
 */
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { CAPABILITY_PATTERN, MAX_CAPABILITIES, ROLE_PATTERN } from './workflow.schema.js';

/** Where the gateway serves remote agents. */
export const REMOTE_AGENT_PATH = '/v1/agents/connect';

/** Agent ids become Redis hash fields and log fields: short, printable, no spaces. */
export const REMOTE_AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Tokens an agent's model calls used, as the agent counts them. */
const RemoteUsageSchema = z.strictObject({ inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0) });

/** What a remote agent sends. */
export const RemoteAgentClientMessageSchema = z.discriminatedUnion('type', [
  /**
   * First frame, and the only one the gateway reads before `welcome`. `agentId` resumes: a reconnect with the id of
   * an agent of the same key that dropped less than the grace period ago gets its open assignments again.
   */
  z.strictObject({
    type: z.literal('hello'),
    agentId: z.string().regex(REMOTE_AGENT_ID_PATTERN).optional(),
    name: z.string().min(1).max(200),
    roles: z.array(z.string().regex(ROLE_PATTERN)).min(1).max(32),
    /** What the agent can do: it also takes the steps whose `requires` these cover. */
    capabilities: z.array(z.string().regex(CAPABILITY_PATTERN, 'capabilities use [a-z0-9-], up to 32')).max(MAX_CAPABILITIES).default([]),
    /** Assignments at once, per role. @default 1 */
    concurrency: z.number().int().min(1).max(64).default(1),
  }),
  /** Live output of an open assignment (forwarded to `/v1/stream` subscribers of the run; not stored). */
  z.strictObject({ type: z.literal('progress'), assignmentId: z.string(), text: z.string() }),
  /** The assignment succeeded. `text` is the answer (agent steps) or stdout (shell steps). */
  z.strictObject({
    type: z.literal('complete'),
    assignmentId: z.string(),
    output: z.strictObject({
      text: z.string(),
      exitCode: z.number().int().optional(),
      stderr: z.string().optional(),
      model: z.string().optional(),
      usage: RemoteUsageSchema.optional(),
    }),
  }),
  /**
   * The assignment failed; `retryable` (default true) lets the coordinator queue another attempt under the step's
   * policy. `usage`: what the agent's model calls spent before it failed, counted in the run's spend.
   */
  z.strictObject({
    type: z.literal('fail'),
    assignmentId: z.string(),
    error: z.strictObject({ code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/).optional(), message: z.string().max(10_000), retryable: z.boolean().optional(), details: z.unknown().optional() }),
    usage: RemoteUsageSchema.optional(),
  }),
  /** Keeps the connection (and so its assignments) alive; the gateway answers `heartbeat`. */
  z.strictObject({ type: z.literal('heartbeat') }),
]);
export type RemoteAgentClientMessage = z.infer<typeof RemoteAgentClientMessageSchema>;

/** One attempt of one step, as a remote agent gets it. */
export const RemoteAssignmentSchema = z.object({
  type: z.literal('assign'),
  /** The step job's id, `<run>.<step>.<attempt>` (or `<run>.<step>#<index>.<attempt>`). */
  assignmentId: z.string(),
  job: z.object({
    runId: z.string(),
    project: z.string(),
    stepId: z.string(),
    attempt: z.number().int().min(1),
    index: z.number().int().min(0).optional(),
    role: z.string(),
    kind: z.string(),
    /** Rendered prompt (agent steps). */
    prompt: z.string().optional(),
    /** Rendered command (shell steps). */
    command: z.string().optional(),
    model: z.string().optional(),
    seed: z.number().int().optional(),
    timeoutMs: z.number().int(),
  }),
  /** When the gateway gives up on it (`MUSE_ERR_STEP_TIMEOUT`), ISO time. */
  deadline: z.string(),
});
export type RemoteAssignment = z.infer<typeof RemoteAssignmentSchema>;

/** What the gateway sends. */
export const RemoteAgentServerMessageSchema = z.discriminatedUnion('type', [
  /** `resumed`: assignments still open from before a reconnect, sent again right after. */
  /** `projects`: whose steps this agent is handed (the key's projects; `["*"]` = every project). */
  z.object({ type: z.literal('welcome'), agentId: z.string(), projects: z.array(z.string()), heartbeatMs: z.number().int(), graceMs: z.number().int(), resumed: z.array(z.string()) }),
  RemoteAssignmentSchema,
  /** Stop working on it: the run ended, the deadline passed, or the gateway is shutting down. Its result is ignored. */
  z.object({ type: z.literal('cancel'), assignmentId: z.string(), reason: z.string() }),
  /** `complete`/`fail` was stored (the step report is in JetStream). */
  z.object({ type: z.literal('ack'), assignmentId: z.string() }),
  z.object({ type: z.literal('heartbeat') }),
  /** A frame the gateway could not use; the connection stays open (unless it was the `hello`). */
  z.object({ type: z.literal('error'), error: ErrorBodySchema, assignmentId: z.string().optional() }),
]);
export type RemoteAgentServerMessage = z.infer<typeof RemoteAgentServerMessageSchema>;
