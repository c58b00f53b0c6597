/** REST request bodies and response views of API v1. */
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { ArtifactRefSchema, RunEventSchema } from './events.schema.js';
import { RUN_STATUSES, STEP_STATUSES } from './status.js';
import { WorkflowDefinitionSchema, WorkflowRefSchema } from './workflow.schema.js';

export const RunInputSchema = z.record(z.string(), z.unknown());

/** A run's priority in the step queues: 1 (first) to 10 (last). @default 5 */
export const RunPrioritySchema = z.number().int().min(1).max(10);
export const DEFAULT_RUN_PRIORITY = 5;

export const SubmitRunBodySchema = z.union([
  z.strictObject({
    workflow: z.string().min(1),
    version: z.number().int().min(1).optional(),
    input: RunInputSchema.optional(),
    priority: RunPrioritySchema.optional(),
  }),
  z.strictObject({
    definition: WorkflowDefinitionSchema,
    input: RunInputSchema.optional(),
    priority: RunPrioritySchema.optional(),
  }),
]);
export type SubmitRunBody = z.infer<typeof SubmitRunBodySchema>;

export const CancelRunBodySchema = z.strictObject({
  reason: z.string().max(1000).optional(),
  /** Run the compensations of the steps that succeeded (in reverse completion order) before the run ends `cancelled`. @default false */
  compensate: z.boolean().optional(),
});

export const RunAcceptedSchema = z.object({ id: z.string(), status: z.enum(RUN_STATUSES) });

/** `POST /v1/runs/{id}/approvals/{stepId}`. */
export const ApprovalBodySchema = z.strictObject({ decision: z.enum(['approve', 'reject']), comment: z.string().max(10_000).optional() });
export const ApprovalAcceptedSchema = z.object({ id: z.string(), stepId: z.string(), decision: z.enum(['approve', 'reject']) });
/** A step that failed for good (retries exhausted, or a non-retryable error): re-drive it with `POST /v1/runs/{runId}/retry`. */
export const DeadLetterSchema = z.object({
  runId: z.string(),
  stepId: z.string(),
  index: z.number().int().optional(),
  workflow: z.object({ name: z.string(), version: z.number().int() }),
  attempts: z.number().int(),
  error: ErrorBodySchema,
  at: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;
export const DeadLetterListSchema = z.object({ items: z.array(DeadLetterSchema) });

/** `POST /v1/runs/{id}/rerun`: a new run of the same workflow version and input, linked to this one. */
export const RerunBodySchema = z.strictObject({ fromStep: z.string().min(1).max(64) });

/**
 * `POST /v1/runs/{id}/replay`: a new run of the same workflow version (or `version`, another version of the same
 * workflow, to see where a changed definition diverges) and input, its model calls served from the recording.
 */
export const ReplayBodySchema = z.strictObject({ version: z.number().int().min(1).optional() });
/** `POST /v1/runs/{id}/budget`: raise the run's limits; the steps waiting on its budget go on. */
export const BudgetRaiseBodySchema = z
  .strictObject({ addTokens: z.number().int().min(0).max(1e12).optional(), addCost: z.number().min(0).max(1e9).optional() })
  .refine((b) => (b.addTokens ?? 0) > 0 || (b.addCost ?? 0) > 0, { message: 'addTokens or addCost must be above 0' });

/** Tokens and cost (USD) spent by a run, and per step, agent and provider. */
const SpendFiguresSchema = z.object({ tokens: z.number().int(), cost: z.number() });
export const RunSpendSchema = SpendFiguresSchema.extend({
  /** The limits in force (the definition's plus raises), when the workflow has a budget. */
  limit: z.object({ maxTokens: z.number().optional(), maxCost: z.number().optional() }).optional(),
  byStep: z.record(z.string(), SpendFiguresSchema),
  byAgent: z.record(z.string(), SpendFiguresSchema),
  byProvider: z.record(z.string(), SpendFiguresSchema),
});
export type RunSpend = z.infer<typeof RunSpendSchema>;

/** `POST /v1/runs/{id}/pause`, `/resume`, `/retry`. */
export const RunControlBodySchema = z.strictObject({ reason: z.string().max(1000).optional() });

export const WorkflowRegisteredSchema = z.object({ name: z.string(), version: z.number().int() });

export const WorkflowVersionViewSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  digest: z.string(),
  createdAt: z.string(),
  definition: WorkflowDefinitionSchema,
});
export const WorkflowViewSchema = z.object({
  name: z.string(),
  latest: WorkflowVersionViewSchema,
  versions: z.array(z.object({ version: z.number().int(), digest: z.string(), createdAt: z.string() })),
});
export const WorkflowListSchema = z.object({
  items: z.array(z.object({ name: z.string(), latestVersion: z.number().int(), description: z.string().optional() })),
});

export const StepViewSchema = z.object({
  id: z.string(),
  status: z.enum(STEP_STATUSES),
  attempts: z.number().int(),
  agent: z.string().optional(),
  output: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** Why a `waiting` step waits (an approval, or a keyed concurrency limit and its key). */
  reason: z.string().optional(),
  /** A sub-workflow step: the child run of its latest attempt. */
  childRunId: z.string().optional(),
  /** A step that requires capabilities: the queue its jobs wait in (`<role>+<tags>`). */
  queue: z.string().optional(),
});
export type StepView = z.infer<typeof StepViewSchema>;

export const RunViewSchema = z.object({
  id: z.string(),
  project: z.string(),
  workflow: WorkflowRefSchema,
  status: z.enum(RUN_STATUSES),
  input: RunInputSchema,
  output: z.unknown().optional(),
  error: ErrorBodySchema.optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Sequence number of the last event folded into this view. */
  seq: z.number().int(),
  /** Why a `waiting` run waits (paused, a keyed concurrency limit, an approval). */
  reason: z.string().optional(),
  /** A child run: the run and sub-workflow step that started it. */
  parent: z.object({ runId: z.string(), stepId: z.string() }).optional(),
  /** Model tokens and cost spent so far (agent steps that completed). */
  spend: RunSpendSchema.optional(),
  /** A replay: the recorded run, and the first step whose model request differed from the recording (`MUSE_ERR_REPLAY_DIVERGED`'s details). */
  replay: z.object({ of: z.string(), divergence: z.record(z.string(), z.unknown()).optional() }).optional(),
  steps: z.array(StepViewSchema),
});
export type RunView = z.infer<typeof RunViewSchema>;

export const RunListQuerySchema = z.strictObject({
  status: z.enum(RUN_STATUSES).optional(),
  workflow: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});
export const RunListSchema = z.object({
  items: z.array(RunViewSchema.omit({ steps: true, input: true, output: true })),
  nextCursor: z.string().optional(),
});

export const ArtifactMetaSchema = ArtifactRefSchema.extend({
  project: z.string(),
  runId: z.string(),
  stepId: z.string(),
  attempt: z.number().int(),
  producer: z.object({ agentId: z.string(), tool: z.string().optional(), toolVersion: z.string().optional() }),
  schema: z.string().optional(),
  createdAt: z.string(),
  /** When retention removes it; absent = kept forever. */
  expiresAt: z.string().optional(),
  /** Steps (of this run or, later, of child runs) that read it: filled by the artifact store's reads, derived from the run log. */
  consumers: z.array(z.object({ runId: z.string(), stepId: z.string(), attempt: z.number().int() })).optional(),
});
export type ArtifactMeta = z.infer<typeof ArtifactMetaSchema>;

/** `GET /v1/artifacts/{id}/lineage`: the artifact, what it was made from (upstream) and what was made from it (downstream). */
export const ArtifactLineageNodeSchema = z.object({
  runId: z.string(),
  stepId: z.string(),
  attempt: z.number().int(),
  artifacts: z.array(ArtifactMetaSchema),
  /** Steps this one read (its needs), by step id. */
  inputs: z.array(z.string()),
});
export const ArtifactLineageSchema = z.object({
  artifact: ArtifactMetaSchema,
  /** Producing steps the artifact depends on, transitively, nearest first. */
  upstream: z.array(ArtifactLineageNodeSchema),
  /** Consuming steps that depend on it, transitively, nearest first. */
  downstream: z.array(ArtifactLineageNodeSchema),
  /** Runs the walk crossed (the artifact's run; child runs once sub-workflows exist). */
  runs: z.array(z.string()),
});
export type ArtifactLineage = z.infer<typeof ArtifactLineageSchema>;
export const ArtifactListSchema = z.object({ items: z.array(ArtifactMetaSchema) });

export const AgentViewSchema = z.object({
  agentId: z.string(),
  roles: z.array(z.string()),
  pid: z.number().int(),
  host: z.string(),
  concurrency: z.number().int(),
  inFlight: z.number().int(),
  load: z.number(),
  completed: z.number().int(),
  failed: z.number().int(),
  /** completed / (completed + failed), 0..1; absent before the first finished step. */
  successRate: z.number().min(0).max(1).optional(),
  /** Mean time of the agent's finished step attempts, in ms. */
  avgStepMs: z.number().min(0).optional(),
  startedAt: z.string(),
  lastSeenAt: z.string(),
  version: z.string(),
  /** Connected over `/v1/agents/connect` (runs elsewhere; `pid` is 0, `host` is its address as the gateway saw it). */
  remote: z.boolean().optional(),
  capabilities: z.array(z.string()).optional(),
});
export const AgentListSchema = z.object({ items: z.array(AgentViewSchema) });

/** WebSocket `/v1/stream`: what a client sends. */
export const StreamClientMessageSchema = z.discriminatedUnion('op', [
  /** `runId: "*"` subscribes to every run. `fromSeq` replays from that sequence number first. */
  z.strictObject({ op: z.literal('subscribe'), runId: z.string().min(1), fromSeq: z.number().int().min(0).optional() }),
  z.strictObject({ op: z.literal('unsubscribe'), runId: z.string().min(1) }),
  z.strictObject({ op: z.literal('ping') }),
]);
export type StreamClientMessage = z.infer<typeof StreamClientMessageSchema>;

/** `GET /v1/runs/{id}/events`: every event so far, ordered by `seq`. */
export const RunEventListSchema = z.object({ items: z.array(RunEventSchema) });

/** Live progress of one step attempt, published by the worker on `stepProgressSubject(runId)` and forwarded by the gateway's stream. */
export const StepProgressSchema = z.object({
  project: z.string(),
  runId: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  /** 1, 2, ... per attempt, so a client can spot a lost message (core NATS is at-most-once). */
  chunk: z.number().int().min(1),
  /** Text produced since the previous chunk. */
  text: z.string(),
  /** The provider streaming it. */
  provider: z.string().optional(),
});
export type StepProgress = z.infer<typeof StepProgressSchema>;

/** WebSocket `/v1/stream`: what the gateway sends. */
export const StreamServerMessageSchema = z.discriminatedUnion('type', [
  /** The subscription is live: replayed events (if any) follow, then live ones. */
  z.object({ type: z.literal('subscribed'), runId: z.string() }),
  z.object({ type: z.literal('event'), event: RunEventSchema }),
  z.object({ type: z.literal('pong') }),
  /**
   * Live output of a running step (model token deltas, sent every MUSE_PROGRESS_INTERVAL_MS at most): ephemeral, not in the
   * run log, no seq of the log; `chunk` counts from 1 per attempt, and an attempt's texts concatenated are its output so far.
   */
  z.object({ type: z.literal('progress'), progress: StepProgressSchema }),
  /** `runId` says which subscription the error is about, when it is about one. */
  z.object({ type: z.literal('error'), error: ErrorBodySchema, runId: z.string().optional() }),
]);
export type StreamServerMessage = z.infer<typeof StreamServerMessageSchema>;

/** `POST /v1/schedules`: start runs of a registered workflow on a cron. */
export const CreateScheduleBodySchema = z.strictObject({
  workflow: z.string().min(1).max(100),
  /** Pin a version; without it each firing runs the latest. */
  version: z.number().int().min(1).optional(),
  /** A cron pattern (5 fields, or 6 with seconds first), e.g. `0 3 * * *`. */
  cron: z.string().min(1).max(200),
  /** IANA time zone the pattern is read in. @default "UTC" */
  timezone: z.string().min(1).max(100).default('UTC'),
  input: z.record(z.string(), z.unknown()).default({}),
  priority: z.number().int().min(1).max(10).optional(),
});
export type CreateScheduleBody = z.infer<typeof CreateScheduleBodySchema>;

export const ScheduleSchema = z.object({
  id: z.string(),
  project: z.string(),
  workflow: z.string(),
  version: z.number().int().optional(),
  cron: z.string(),
  timezone: z.string(),
  input: z.record(z.string(), z.unknown()),
  priority: z.number().int().optional(),
  createdAt: z.string(),
  createdBy: z.string(),
  /** When it fires next (ISO-8601), as BullMQ's job scheduler has it. */
  nextRunAt: z.string().optional(),
});
export type Schedule = z.infer<typeof ScheduleSchema>;
export const ScheduleListSchema = z.object({ items: z.array(ScheduleSchema) });
export const ScheduleDeletedSchema = z.object({ id: z.string(), deleted: z.literal(true) });

/** `GET /v1/leases`: who holds which leases in the project, and who waits for which, in order. */
export const LeaseListSchema = z.object({
  holders: z.array(z.object({ runId: z.string(), stepId: z.string(), locks: z.array(z.string()), since: z.string(), expiresAt: z.string(), token: z.number().int() })),
  waiters: z.array(z.object({ runId: z.string(), stepId: z.string(), locks: z.array(z.string()), since: z.string() })),
});
export type LeaseList = z.infer<typeof LeaseListSchema>;
