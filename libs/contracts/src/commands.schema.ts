/** Commands carried on the JetStream command stream to the coordinator. */
import { z } from 'zod';
import { ArtifactRefSchema } from './events.schema.js';
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
  submittedAt: z.string(),
  traceparent: z.string().optional(),
});
export type RunSubmitCommand = z.infer<typeof RunSubmitCommandSchema>;

export const RunCancelCommandSchema = z.object({
  kind: z.literal('run-cancel'),
  runId: z.string(),
  project: z.string(),
  reason: z.string().optional(),
});
export type RunCancelCommand = z.infer<typeof RunCancelCommandSchema>;

/** What an agent worker reports about one attempt of one step. */
export const StepReportSchema = z.object({
  kind: z.literal('step-report'),
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  agentId: z.string(),
  outcome: z.enum(['started', 'completed', 'failed']),
  at: z.string(),
  output: z.unknown().optional(),
  /** Blobs the worker uploaded; the coordinator commits them under the run's fencing token. */
  artifacts: z
    .array(z.object({ name: z.string(), digest: z.string(), size: z.number().int(), mediaType: z.string() }))
    .optional(),
  error: ErrorBodySchema.optional(),
});
export type StepReport = z.infer<typeof StepReportSchema>;

export const CommandSchema = z.discriminatedUnion('kind', [RunSubmitCommandSchema, RunCancelCommandSchema, StepReportSchema]);
export type Command = z.infer<typeof CommandSchema>;

/** Request to the artifact store to bind uploaded blobs to a run, fenced by the run's token. */
export const ArtifactCommitRequestSchema = z.object({
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int(),
  agentId: z.string(),
  fencingToken: z.number().int(),
  artifacts: z.array(z.object({ name: z.string(), digest: z.string(), size: z.number().int(), mediaType: z.string() })),
});
export type ArtifactCommitRequest = z.infer<typeof ArtifactCommitRequestSchema>;
export const ArtifactCommitResponseSchema = z.union([
  z.object({ ok: z.literal(true), artifacts: z.array(ArtifactRefSchema) }),
  z.object({ ok: z.literal(false), error: ErrorBodySchema }),
]);
export type ArtifactCommitResponse = z.infer<typeof ArtifactCommitResponseSchema>;
