/**
 * The run event log. Each run has one JetStream subject; its messages, in
 * order, are the run. `seq` counts from 1 with no gaps; the coordinator
 * appends with an expected-last-subject-sequence so two writers can never
 * interleave.
 */
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { WorkflowDefinitionSchema, WorkflowRefSchema } from './workflow.schema.js';

export const ArtifactRefSchema = z.object({
  id: z.string(),
  name: z.string(),
  version: z.number().int(),
  digest: z.string(),
  size: z.number().int(),
  mediaType: z.string(),
});
export type ArtifactRef = z.infer<typeof ArtifactRefSchema>;

const base = {
  /** Unique event id (also the JetStream message id, for dedupe). */
  id: z.string(),
  runId: z.string(),
  project: z.string(),
  /** Position in the run's log, from 1, without gaps. */
  seq: z.number().int().min(1),
  /** ISO-8601 time the event was appended. */
  at: z.string(),
};

export const RunCreatedEventSchema = z.object({
  ...base,
  type: z.literal('run.created'),
  data: z.object({
    workflow: WorkflowRefSchema,
    definition: WorkflowDefinitionSchema,
    input: z.record(z.string(), z.unknown()),
    idempotencyKey: z.string().optional(),
    traceparent: z.string().optional(),
  }),
});
export const RunStartedEventSchema = z.object({ ...base, type: z.literal('run.started'), data: z.object({}) });
export const StepQueuedEventSchema = z.object({
  ...base,
  type: z.literal('step.queued'),
  data: z.object({ stepId: z.string(), attempt: z.number().int().min(1), role: z.string(), jobId: z.string() }),
});
export const StepStartedEventSchema = z.object({
  ...base,
  type: z.literal('step.started'),
  data: z.object({ stepId: z.string(), attempt: z.number().int().min(1), agentId: z.string(), startedAt: z.string() }),
});
export const StepCompletedEventSchema = z.object({
  ...base,
  type: z.literal('step.completed'),
  data: z.object({
    stepId: z.string(),
    attempt: z.number().int().min(1),
    agentId: z.string(),
    output: z.unknown(),
    artifacts: z.array(ArtifactRefSchema),
    finishedAt: z.string(),
  }),
});
export const StepFailedEventSchema = z.object({
  ...base,
  type: z.literal('step.failed'),
  data: z.object({
    stepId: z.string(),
    attempt: z.number().int().min(1),
    agentId: z.string().optional(),
    error: ErrorBodySchema,
    /** True when no attempt is left: the step is failed for good. */
    final: z.boolean(),
    finishedAt: z.string(),
  }),
});
export const RunCompletedEventSchema = z.object({ ...base, type: z.literal('run.completed'), data: z.object({ output: z.unknown() }) });
export const RunFailedEventSchema = z.object({ ...base, type: z.literal('run.failed'), data: z.object({ error: ErrorBodySchema }) });
export const RunCancelledEventSchema = z.object({ ...base, type: z.literal('run.cancelled'), data: z.object({ reason: z.string().optional() }) });

export const RunEventSchema = z.discriminatedUnion('type', [
  RunCreatedEventSchema,
  RunStartedEventSchema,
  StepQueuedEventSchema,
  StepStartedEventSchema,
  StepCompletedEventSchema,
  StepFailedEventSchema,
  RunCompletedEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
]);
export type RunEvent = z.infer<typeof RunEventSchema>;
export type RunEventType = RunEvent['type'];
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;
/** An event before the log gives it a place: what the engine decides to append. */
export type NewRunEvent = { [T in RunEventType]: { type: T; data: RunEventOf<T>['data'] } }[RunEventType];
