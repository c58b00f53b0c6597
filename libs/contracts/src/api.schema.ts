/** REST request bodies and response views of API v1. */
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { ArtifactRefSchema, RunEventSchema } from './events.schema.js';
import { RUN_STATUSES, STEP_STATUSES } from './status.js';
import { WorkflowDefinitionSchema, WorkflowRefSchema } from './workflow.schema.js';

export const RunInputSchema = z.record(z.string(), z.unknown());

export const SubmitRunBodySchema = z.union([
  z.strictObject({
    workflow: z.string().min(1),
    version: z.number().int().min(1).optional(),
    input: RunInputSchema.optional(),
  }),
  z.strictObject({
    definition: WorkflowDefinitionSchema,
    input: RunInputSchema.optional(),
  }),
]);
export type SubmitRunBody = z.infer<typeof SubmitRunBodySchema>;

export const CancelRunBodySchema = z.strictObject({ reason: z.string().max(1000).optional() });

export const RunAcceptedSchema = z.object({ id: z.string(), status: z.enum(RUN_STATUSES) });

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
  producer: z.object({ agentId: z.string() }),
  createdAt: z.string(),
});
export type ArtifactMeta = z.infer<typeof ArtifactMetaSchema>;
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
  startedAt: z.string(),
  lastSeenAt: z.string(),
  version: z.string(),
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

/** WebSocket `/v1/stream`: what the gateway sends. */
export const StreamServerMessageSchema = z.discriminatedUnion('type', [
  /** The subscription is live: replayed events (if any) follow, then live ones. */
  z.object({ type: z.literal('subscribed'), runId: z.string() }),
  z.object({ type: z.literal('event'), event: RunEventSchema }),
  z.object({ type: z.literal('pong') }),
  /** `runId` says which subscription the error is about, when it is about one. */
  z.object({ type: z.literal('error'), error: ErrorBodySchema, runId: z.string().optional() }),
]);
export type StreamServerMessage = z.infer<typeof StreamServerMessageSchema>;
