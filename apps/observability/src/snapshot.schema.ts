/**
 * `GET /v1/snapshot`: the live state the dashboard draws, as one JSON
 * document. Everything in it is bounded (recent lists have fixed caps), so a
 * dashboard can poll it every second whatever the size of the history.
 */
import { z } from 'zod';
import { AgentViewSchema, RUN_STATUSES, STEP_STATUSES, WorkflowRefSchema } from '@muse/contracts';

export const SnapshotStepSchema = z.object({
  id: z.string(),
  status: z.enum(STEP_STATUSES),
  attempts: z.number().int().min(0),
  /** The agent role that runs the step, once a `step.queued` named it. */
  role: z.string().optional(),
  agent: z.string().optional(),
  /** The ids this step needs (from the run's definition; absent for a run first seen mid-way): the dashboard draws the DAG from them. */
  needs: z.array(z.string()).optional(),
});
export type SnapshotStep = z.infer<typeof SnapshotStepSchema>;

export const SnapshotRunSchema = z.object({
  id: z.string(),
  project: z.string(),
  /** Null for a run first seen mid-way (its `run.created` is older than this process and the read model). */
  workflow: WorkflowRefSchema.nullable(),
  status: z.enum(RUN_STATUSES),
  createdAt: z.string().optional(),
  updatedAt: z.string(),
  seq: z.number().int().min(0),
  /** In definition order when known, otherwise in the order the steps were first seen. */
  steps: z.array(SnapshotStepSchema),
  /** Steps past the per-run cap, not listed. */
  stepsOmitted: z.number().int().min(1).optional(),
  /** Model tokens of the run's agent steps seen live (each `step.completed` output's `usage`, each failed attempt's `spent`). */
  tokens: z.object({ input: z.number().int().min(0), output: z.number().int().min(0) }).optional(),
});
export type SnapshotRun = z.infer<typeof SnapshotRunSchema>;

/** One run event, without its payload (outputs can be large). */
export const SnapshotEventSchema = z.object({
  id: z.string(),
  runId: z.string(),
  seq: z.number().int().min(1),
  type: z.string(),
  at: z.string(),
  stepId: z.string().optional(),
  attempt: z.number().int().optional(),
  role: z.string().optional(),
  agentId: z.string().optional(),
  /** The error code of `step.failed` / `run.failed`. */
  errorCode: z.string().optional(),
  /** `step.failed` only: no attempt left. */
  final: z.boolean().optional(),
});
export type SnapshotEvent = z.infer<typeof SnapshotEventSchema>;

export const QueueDepthSchema = z.object({
  waiting: z.number().int().min(0),
  active: z.number().int().min(0),
  delayed: z.number().int().min(0),
});
export type QueueDepth = z.infer<typeof QueueDepthSchema>;

export const SnapshotQueueSchema = QueueDepthSchema.extend({
  role: z.string(),
  /** When the depth was read; absent until the first poll of this role answered. */
  readAt: z.string().optional(),
});
export type SnapshotQueue = z.infer<typeof SnapshotQueueSchema>;

const count = z.number().int().min(0);

/**
 * Model tokens of the agent steps this process saw live, by model: each
 * `step.completed` output's `usage`, and each failed attempt's `spent` (`steps`
 * counts the completed ones). No price is known here, so there is no cost in
 * money.
 */
export const SnapshotSpendSchema = z.object({
  inputTokens: count,
  outputTokens: count,
  byModel: z.array(z.object({ model: z.string(), inputTokens: count, outputTokens: count, steps: count })),
});
export type SnapshotSpend = z.infer<typeof SnapshotSpendSchema>;

/**
 * Counters of what this process saw live since `since` (seeded runs are not
 * counted: a restart resets these, like the Prometheus counters).
 */
export const SnapshotTotalsSchema = z.object({
  since: z.string(),
  runsStarted: count,
  runsSucceeded: count,
  runsFailed: count,
  runsCancelled: count,
  stepsCompleted: count,
  /** Final failures only; a failed attempt that will be retried counts in `stepsRetried`. */
  stepsFailed: count,
  stepsRetried: count,
  eventsSeen: count,
  /** Redelivered or re-published events recognised by id or sequence and not counted again. */
  duplicatesIgnored: count,
});
export type SnapshotTotals = z.infer<typeof SnapshotTotalsSchema>;

export const SnapshotSchema = z.object({
  generatedAt: z.string(),
  namespace: z.string(),
  runs: z.object({
    /**
     * Runs per status over every run this process knows: the ones seeded from
     * the Redis read model at start plus the ones seen live since.
     */
    byStatus: z.record(z.enum(RUN_STATUSES), count),
    /** Runs not yet in a terminal status (pending, running, waiting). */
    active: count,
    /** The most recently updated runs, newest first. */
    recent: z.array(SnapshotRunSchema),
  }),
  /** The most recent events, newest first. */
  events: z.array(SnapshotEventSchema),
  /** Agents whose last heartbeat is fresh, by id. */
  agents: z.array(AgentViewSchema),
  /** Queue depth per role: the default roles, then any other role seen, by name. */
  queues: z.array(SnapshotQueueSchema),
  totals: SnapshotTotalsSchema,
  spend: SnapshotSpendSchema,
});
export type Snapshot = z.infer<typeof SnapshotSchema>;
