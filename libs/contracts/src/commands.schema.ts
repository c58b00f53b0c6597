/** Commands carried on the JetStream command stream to the coordinator. */
import { z } from 'zod';
import { ArtifactRefSchema, AttemptSpendSchema, ReplayOfSchema, RunParentSchema } from './events.schema.js';

/** A blob a producer uploaded, to be bound to a run as a named artifact. */
export const ArtifactUploadSchema = z.object({
  name: z.string(),
  digest: z.string(),
  size: z.number().int(),
  mediaType: z.string(),
  /** The tool that made it (`shell`, `model`...) and its version, for lineage. */
  tool: z.string().max(200).optional(),
  toolVersion: z.string().max(200).optional(),
  /** Name of the schema the content follows (e.g. `muse.agent-output/v1`). */
  schema: z.string().max(500).optional(),
  /**
   * The bytes themselves, base64, for a small artifact that was not uploaded first: the artifact store writes the
   * blob at commit (after checking `digest` and `size` against them).
   */
  content: z.string().base64().optional(),
});
export type ArtifactUpload = z.infer<typeof ArtifactUploadSchema>;
import { ErrorBodySchema } from './errors.js';
import { WorkflowDefinitionSchema, WorkflowRefSchema } from './workflow.schema.js';

export const RunSubmitCommandSchema = z.object({
  kind: z.literal('run-submit'),
  runId: z.string(),
  project: z.string(),
  workflow: WorkflowRefSchema,
  definition: WorkflowDefinitionSchema,
  input: z.record(z.string(), z.unknown()),
  idempotencyKey: z.string().optional(),
  /** 1 (first) to 10 (last) in the step queues. @default 5 */
  priority: z.number().int().min(1).max(10).optional(),
  /** A rerun: the run it comes from, the step it starts from, and the outputs it reuses (steps not at or after that step). */
  rerunOf: z.object({ runId: z.string(), fromStep: z.string(), outputs: z.record(z.string(), z.unknown()) }).optional(),
  /** A child run of a sub-workflow step (sent by the coordinator). */
  parent: RunParentSchema.optional(),
  /** A replay: its model calls are served from the recorded run's `llm-call.json` artifacts. */
  replayOf: ReplayOfSchema.optional(),
  submittedAt: z.string(),
  traceparent: z.string().optional(),
});
export type RunSubmitCommand = z.infer<typeof RunSubmitCommandSchema>;

export const RunCancelCommandSchema = z.object({
  kind: z.literal('run-cancel'),
  runId: z.string(),
  project: z.string(),
  reason: z.string().optional(),
  /** Compensate the succeeded steps first (the run then ends `cancelled`). */
  compensate: z.boolean().optional(),
});
export type RunCancelCommand = z.infer<typeof RunCancelCommandSchema>;

/** The run's `timeoutMs` has passed (sent by the coordinator's durable timer); a finished run ignores it. */
export const RunTimeoutCommandSchema = z.object({
  kind: z.literal('run-timeout'),
  runId: z.string(),
  project: z.string(),
  timeoutMs: z.number().int(),
});
export type RunTimeoutCommand = z.infer<typeof RunTimeoutCommandSchema>;

/** A person's decision on an approval gate (or the gate's own, on timeout). The first decision stored wins. */
export const ApprovalDecisionCommandSchema = z.object({
  kind: z.literal('approval-decision'),
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  decision: z.enum(['approve', 'reject']),
  comment: z.string().max(10_000).optional(),
  /** Who decided: the caller's principal, or `timeout`. */
  by: z.string(),
  at: z.string(),
});
export type ApprovalDecisionCommand = z.infer<typeof ApprovalDecisionCommandSchema>;

/** Pause, resume, or re-drive (retry) a run. */
export const RunControlCommandSchema = z.object({
  kind: z.literal('run-control'),
  runId: z.string(),
  project: z.string(),
  action: z.enum(['pause', 'resume', 'retry']),
  reason: z.string().optional(),
});
export type RunControlCommand = z.infer<typeof RunControlCommandSchema>;

/** A keyed concurrency slot is the run's (no `stepId`) or the step's: it may go on. Sent by the coordinator that granted it. */
export const ConcurrencyGrantCommandSchema = z.object({
  kind: z.literal('concurrency-grant'),
  runId: z.string(),
  project: z.string(),
  stepId: z.string().optional(),
});
export type ConcurrencyGrantCommand = z.infer<typeof ConcurrencyGrantCommandSchema>;

/** A step's leases are now its (fencing token `token`): it may be queued. Sent by the coordinator that granted them. */
export const LeaseGrantCommandSchema = z.object({
  kind: z.literal('lease-grant'),
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  token: z.number().int(),
});
export type LeaseGrantCommand = z.infer<typeof LeaseGrantCommandSchema>;

/** `POST /v1/runs/{id}/budget`: raise a run's token and cost limits; steps waiting on the budget go on. */
export const RunBudgetCommandSchema = z.object({
  kind: z.literal('run-budget'),
  runId: z.string(),
  project: z.string(),
  addTokens: z.number().int().min(0).optional(),
  addCost: z.number().min(0).optional(),
});
export type RunBudgetCommand = z.infer<typeof RunBudgetCommandSchema>;

/** What an agent worker reports about one attempt of one step. */
export const StepReportSchema = z.object({
  kind: z.literal('step-report'),
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  agentId: z.string(),
  outcome: z.enum(['started', 'completed', 'failed']),
  /** The element of a `forEach` step, when the job was for one. */
  index: z.number().int().min(0).optional(),
  at: z.string(),
  /**
   * When the attempt started, on a final report whose `started` report was never sent (a step that finished within
   * the worker's MUSE_STARTED_REPORT_DELAY_MS): the engine records `step.started` at this time before the outcome.
   */
  startedAt: z.string().optional(),
  output: z.unknown().optional(),
  /** Blobs the worker uploaded; the coordinator commits them under the run's fencing token. */
  artifacts: z.array(ArtifactUploadSchema).optional(),
  error: ErrorBodySchema.optional(),
  /** On a failed report: what the attempt's model calls spent (the budget was charged for them already). */
  spent: AttemptSpendSchema.optional(),
});
export type StepReport = z.infer<typeof StepReportSchema>;

export const CommandSchema = z.discriminatedUnion('kind', [RunSubmitCommandSchema, RunCancelCommandSchema, RunTimeoutCommandSchema, ApprovalDecisionCommandSchema, RunControlCommandSchema, ConcurrencyGrantCommandSchema, LeaseGrantCommandSchema, RunBudgetCommandSchema, StepReportSchema]);
export type Command = z.infer<typeof CommandSchema>;

/** Request to the artifact store to bind uploaded blobs to a run, fenced by the run's token. */
export const ArtifactCommitRequestSchema = z.object({
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int(),
  agentId: z.string(),
  fencingToken: z.number().int(),
  artifacts: z.array(
    ArtifactUploadSchema.extend({
      /** Optimistic concurrency: commit only while the name's latest version is this one (0 = the name is new); else MUSE_ERR_ARTIFACT_VERSION_CONFLICT. */
      ifMatch: z.number().int().min(0).optional(),
    }),
  ),
  /**
   * What makes a retried commit a replay: `attempt` (default) — one artifact per (run, step, attempt, name), as a
   * redelivered step report must; `content` — per (run, step, attempt, name, digest), so one attempt may write new
   * versions of a name (named writes over HTTP) while a retry of the same bytes still returns the first answer.
   */
  replay: z.enum(['attempt', 'content']).optional(),
  /** How long the artifacts are kept, in seconds (the workflow's `retention.ttlDays`); unset = the store's MUSE_ARTIFACT_TTL_DAYS. 0 = forever. */
  ttlSeconds: z.number().int().min(0).optional(),
});
export type ArtifactCommitRequest = z.infer<typeof ArtifactCommitRequestSchema>;
export const ArtifactCommitResponseSchema = z.union([
  z.object({ ok: z.literal(true), artifacts: z.array(ArtifactRefSchema) }),
  z.object({ ok: z.literal(false), error: ErrorBodySchema }),
]);
export type ArtifactCommitResponse = z.infer<typeof ArtifactCommitResponseSchema>;
