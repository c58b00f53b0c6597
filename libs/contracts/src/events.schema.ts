/**
 * The run event log. Each run has one JetStream subject; its messages, in
 * order, are the run. `seq` counts from 1 with no gaps; the coordinator
 * appends with an expected-last-subject-sequence so two writers can never
 * interleave.
 */
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { WorkflowDefinitionSchema, WorkflowRefSchema } from './workflow.schema.js';

/** Where a child run comes from: its parent run, the sub-workflow step and attempt, and its depth (1 for a child of a top-level run). */
export const RunParentSchema = z.object({ runId: z.string(), stepId: z.string(), attempt: z.number().int().min(1), depth: z.number().int().min(1) });
export type RunParent = z.infer<typeof RunParentSchema>;

export const ArtifactRefSchema = z.object({
  id: z.string(),
  name: z.string(),
  version: z.number().int(),
  digest: z.string(),
  size: z.number().int(),
  mediaType: z.string(),
});
export type ArtifactRef = z.infer<typeof ArtifactRefSchema>;

/** The run a replay re-executes and the artifact ids of its recorded model calls (`llm-call.json`), by step key. */
export const ReplayOfSchema = z.object({ runId: z.string(), recordings: z.record(z.string(), z.string()) });
export type ReplayOf = z.infer<typeof ReplayOfSchema>;

/**
 * What a failed attempt's model calls spent (replayed calls spend nothing): a completed attempt's spend is in its
 * output's `usage` and `cost`. `provider` and `model` answered the last call.
 */
export const AttemptSpendSchema = z.object({
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  cost: z.number().min(0).optional(),
  provider: z.string().optional(),
  model: z.string().optional(),
});
export type AttemptSpend = z.infer<typeof AttemptSpendSchema>;

/**
 * What an agent step's output says its calls spent: its usage and cost. Outputs without usage (shell, approvals) and
 * replayed calls spent nothing.
 */
export function outputSpend(output: unknown): AttemptSpend | undefined {
  const o = output as { usage?: { inputTokens?: unknown; outputTokens?: unknown }; cost?: unknown; provider?: unknown; model?: unknown; call?: { replayed?: unknown } } | null;
  if (!o || typeof o !== 'object' || !o.usage || o.call?.replayed === true) return undefined;
  return {
    inputTokens: Number(o.usage.inputTokens) || 0,
    outputTokens: Number(o.usage.outputTokens) || 0,
    ...(typeof o.cost === 'number' ? { cost: o.cost } : {}),
    ...(typeof o.provider === 'string' ? { provider: o.provider } : {}),
    ...(typeof o.model === 'string' ? { model: o.model } : {}),
  };
}

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
    /** 1 (first) to 10 (last) in the step queues. @default 5 */
    priority: z.number().int().min(1).max(10).optional(),
    /** This run reruns `runId` from `fromStep` (`POST /v1/runs/{id}/rerun`). */
    rerunOf: z.object({ runId: z.string(), fromStep: z.string() }).optional(),
    /** A child run: the run and step (attempt) that started it, and how deep it is nested (1 = a child of a top-level run). */
    parent: RunParentSchema.optional(),
    /** A replay (`POST /v1/runs/{id}/replay`): the recorded run, and its recorded calls by step key (`<step>` or `<step>#<index>`) → artifact id. */
    replayOf: ReplayOfSchema.optional(),
  }),
});
/**
 * A keyed concurrency limit holds the run (no `stepId`) or one step back: `key` is the evaluated CEL key. It goes on
 * (`concurrency.admitted`) once one of the key's `limit` slots is its, in order of arrival.
 */
export const ConcurrencyWaitingEventSchema = z.object({
  ...base,
  type: z.literal('concurrency.waiting'),
  data: z.object({ stepId: z.string().optional(), key: z.string(), limit: z.number().int().min(1) }),
});
export const ConcurrencyAdmittedEventSchema = z.object({
  ...base,
  type: z.literal('concurrency.admitted'),
  data: z.object({ stepId: z.string().optional() }),
});
/** A step with `locks` waits for its leases (all of them at once), and goes on once they are its (`lease.granted`, with the fencing token). */
export const LeaseWaitingEventSchema = z.object({
  ...base,
  type: z.literal('lease.waiting'),
  data: z.object({ stepId: z.string(), locks: z.array(z.string()) }),
});
export const LeaseGrantedEventSchema = z.object({
  ...base,
  type: z.literal('lease.granted'),
  data: z.object({ stepId: z.string(), token: z.number().int() }),
});
/** A step of a rerun that is not run again: its output comes from the run it reruns. */
export const StepReusedEventSchema = z.object({
  ...base,
  type: z.literal('step.reused'),
  data: z.object({ stepId: z.string(), fromRun: z.string(), output: z.unknown() }),
});
export const RunStartedEventSchema = z.object({ ...base, type: z.literal('run.started'), data: z.object({}) });
export const StepQueuedEventSchema = z.object({
  ...base,
  type: z.literal('step.queued'),
  data: z.object({
    stepId: z.string(),
    attempt: z.number().int().min(1),
    role: z.string(),
    jobId: z.string(),
    /** Backoff before this attempt may start, in ms (a delayed job); absent for none. */
    delayMs: z.number().int().min(0).optional(),
    /** The element of a `forEach` step this attempt is for. */
    index: z.number().int().min(0).optional(),
  }),
});
/**
 * The run failed (`error`) after steps with a `compensate` succeeded: their
 * compensations (`order`, step ids) run one at a time, as the pseudo steps
 * `<id>~undo`; then the run ends `failed` listing each outcome.
 */
export const RunCompensatingEventSchema = z.object({
  ...base,
  type: z.literal('run.compensating'),
  data: z.object({
    error: ErrorBodySchema,
    order: z.array(z.string()),
    /** How the run ends once compensated: `failed` (a step failed) or `cancelled` (a cancel with compensate). @default "failed" */
    end: z.enum(['failed', 'cancelled']).optional(),
  }),
});
/** An approval gate opened: the step (and the run) wait for a decision. */
export const StepWaitingEventSchema = z.object({
  ...base,
  type: z.literal('step.waiting'),
  data: z.object({ stepId: z.string(), timeoutMs: z.number().int().optional(), onTimeout: z.enum(['approve', 'reject']).optional() }),
});
/** The run was paused (no new step starts; those running finish) or resumed. */
export const RunPausedEventSchema = z.object({ ...base, type: z.literal('run.paused'), data: z.object({ reason: z.string().optional() }) });
export const RunResumedEventSchema = z.object({ ...base, type: z.literal('run.resumed'), data: z.object({}) });
/** A failed run re-driven from its failed steps: `steps` go back to pending; succeeded steps keep their outputs. */
export const RunRetriedEventSchema = z.object({ ...base, type: z.literal('run.retried'), data: z.object({ steps: z.array(z.string()) }) });
/** A `forEach` step's list was evaluated: one item per element, run `concurrency` at a time. */
export const StepExpandedEventSchema = z.object({
  ...base,
  type: z.literal('step.expanded'),
  data: z.object({ stepId: z.string(), items: z.array(z.unknown()) }),
});
/** The step will not run: its `when` was false, or every step it needs was skipped. */
export const StepSkippedEventSchema = z.object({
  ...base,
  type: z.literal('step.skipped'),
  data: z.object({ stepId: z.string(), reason: z.string() }),
});
export const StepStartedEventSchema = z.object({
  ...base,
  type: z.literal('step.started'),
  data: z.object({ stepId: z.string(), attempt: z.number().int().min(1), agentId: z.string(), startedAt: z.string(), index: z.number().int().min(0).optional() }),
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
    index: z.number().int().min(0).optional(),
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
    /** A `forEach` element; `final` then means the element (and so the step) failed for good. */
    index: z.number().int().min(0).optional(),
    /** What the attempt's model calls spent before it failed; counted in the run's spend. */
    spent: AttemptSpendSchema.optional(),
  }),
});
/**
 * A step (or a `forEach` element) found the run's budget exhausted and the workflow says `onBudgetExceeded: wait`:
 * it waits (the run shows `waiting`) until `budget.raised`, then runs again as its next attempt.
 */
export const BudgetWaitingEventSchema = z.object({
  ...base,
  type: z.literal('budget.waiting'),
  data: z.object({
    stepId: z.string(),
    attempt: z.number().int().min(1),
    index: z.number().int().min(0).optional(),
    error: ErrorBodySchema,
    /** The agent that found the budget exhausted, and what the attempt's earlier calls spent (a tool loop's). */
    agentId: z.string().optional(),
    spent: AttemptSpendSchema.optional(),
  }),
});
/** `POST /v1/runs/{id}/budget`: the run's limits grow by these; the steps waiting on the budget are queued again. */
export const BudgetRaisedEventSchema = z.object({
  ...base,
  type: z.literal('budget.raised'),
  data: z.object({ addTokens: z.number().int().min(0).optional(), addCost: z.number().min(0).optional() }),
});
export const RunCompletedEventSchema = z.object({
  ...base,
  type: z.literal('run.completed'),
  data: z.object({
    /** The run's output (the `output` template rendered, else every step's output by id); absent when `outputBytes` is set. */
    output: z.unknown().optional(),
    /**
     * Set instead of `output` when the output was too large for one run-log message: its size in bytes (JSON).
     * The output is what the run's steps gave (GET /v1/runs/{id} shows it); the log holds every one of them.
     */
    outputBytes: z.number().int().min(0).optional(),
  }),
});
export const RunFailedEventSchema = z.object({ ...base, type: z.literal('run.failed'), data: z.object({ error: ErrorBodySchema }) });
export const RunCancelledEventSchema = z.object({ ...base, type: z.literal('run.cancelled'), data: z.object({ reason: z.string().optional() }) });

export const RunEventSchema = z.discriminatedUnion('type', [
  RunCreatedEventSchema,
  RunStartedEventSchema,
  StepQueuedEventSchema,
  StepStartedEventSchema,
  StepCompletedEventSchema,
  StepFailedEventSchema,
  StepSkippedEventSchema,
  StepExpandedEventSchema,
  RunCompensatingEventSchema,
  StepWaitingEventSchema,
  RunPausedEventSchema,
  RunResumedEventSchema,
  RunRetriedEventSchema,
  StepReusedEventSchema,
  BudgetWaitingEventSchema,
  BudgetRaisedEventSchema,
  ConcurrencyWaitingEventSchema,
  ConcurrencyAdmittedEventSchema,
  LeaseWaitingEventSchema,
  LeaseGrantedEventSchema,
  RunCompletedEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
]);
export type RunEvent = z.infer<typeof RunEventSchema>;
export type RunEventType = RunEvent['type'];
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;
/** An event before the log gives it a place: what the engine decides to append. */
export type NewRunEvent = { [T in RunEventType]: { type: T; data: RunEventOf<T>['data'] } }[RunEventType];
