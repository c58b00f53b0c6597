/**
 * Agent pools (issue 6): what `GET /v1/pools` answers, on the scaler and on
 * the gateway alike (the leader scaler writes the list to Redis), and the
 * `scaler.decision` event every change of a pool's desired size publishes on
 * JetStream.
 */
import { z } from 'zod';

const count = z.number().int().min(0);

export const SCALING_DIRECTIONS = ['up', 'down', 'hold'] as const;
export const POOL_POLICY_KINDS = ['queueDepth', 'resource', 'throughput'] as const;
export const SCALER_DRIVERS = ['local', 'kubernetes', 'external'] as const;

export const PoolPolicyViewSchema = z.object({
  kind: z.enum(POOL_POLICY_KINDS),
  min: count,
  max: count,
  scaleUpThreshold: count,
  scaleDownThreshold: count,
  cooldownMs: count,
  idleTimeoutMs: count,
  cpu: z.number(),
  memory: z.number(),
  targetPerMinute: z.number(),
});

export const PoolDecisionSchema = z.object({
  at: z.string(),
  from: count,
  to: count,
  direction: z.enum(SCALING_DIRECTIONS),
  reason: z.string(),
});
export type PoolDecision = z.infer<typeof PoolDecisionSchema>;

export const PoolViewSchema = z.object({
  role: z.string(),
  min: count,
  max: count,
  policy: PoolPolicyViewSchema,
  /** What the pool should have; the driver reconciles `actual` towards it. */
  desired: count,
  /** Agents serving the role with a fresh heartbeat. */
  actual: count,
  /** What the driver reports running for the pool (its processes, the Deployment's replicas); null for `external`. */
  driverActual: count.nullable(),
  /** Of `actual`, agents with a job in flight. */
  busy: count,
  queue: z.object({ waiting: count, active: count, delayed: count }),
  /** The last change of `desired` (or, before any, the start of watching the pool). */
  lastDecision: PoolDecisionSchema,
  /** The last changes of `desired`, newest first (at most 10). */
  decisions: z.array(PoolDecisionSchema),
  /** The latest evaluation, change or not: why the pool is where it is. */
  lastCheck: z.object({ at: z.string(), need: count, reason: z.string() }),
});
export type PoolView = z.infer<typeof PoolViewSchema>;

export const PoolListSchema = z.object({
  /** When the pools were last evaluated; null before the first evaluation. */
  evaluatedAt: z.string().nullable(),
  /** The scaler replica that evaluated them (the lease holder); null before any. */
  leader: z.string().nullable(),
  driver: z.enum(SCALER_DRIVERS).nullable(),
  items: z.array(PoolViewSchema),
});
export type PoolList = z.infer<typeof PoolListSchema>;

/** `scaler.decision`: one change of a pool's desired size, with the numbers behind it. */
export const ScalerDecisionEventSchema = z.object({
  type: z.literal('scaler.decision'),
  role: z.string(),
  from: count,
  to: count,
  direction: z.enum(SCALING_DIRECTIONS),
  reason: z.string(),
  /** Before the min/max clamp: what the signal asks for. */
  need: count,
  policy: z.enum(POOL_POLICY_KINDS),
  /** The inputs: queue depth, agents, busy agents, and CPU, memory and completion rate when known. */
  numbers: z.object({
    waiting: count,
    active: count,
    delayed: count,
    agents: count,
    busy: count,
    cpu: z.number().optional(),
    memory: z.number().optional(),
    completedPerMinute: z.number().optional(),
  }),
  /** The replica that decided, and its leadership term (a Redis counter): a newer term wins. */
  leader: z.string(),
  term: z.number().int(),
  at: z.string(),
});
export type ScalerDecisionEvent = z.infer<typeof ScalerDecisionEventSchema>;
