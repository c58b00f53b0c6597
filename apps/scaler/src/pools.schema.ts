/** `GET /v1/pools`: each agent pool, what it should be and why. */
import { z } from 'zod';
import { DIRECTIONS } from './scaling.policy.js';

const count = z.number().int().min(0);

export const PoolDecisionSchema = z.object({
  at: z.string(),
  from: count,
  to: count,
  direction: z.enum(DIRECTIONS),
  reason: z.string(),
});
export type PoolDecision = z.infer<typeof PoolDecisionSchema>;

export const PoolViewSchema = z.object({
  role: z.string(),
  min: count,
  max: count,
  /** What the pool should have; drivers (a later issue) reconcile `actual` towards it. */
  desired: count,
  /** Agents serving the role with a fresh heartbeat. */
  actual: count,
  /** Of `actual`, agents with a job in flight. */
  busy: count,
  queue: z.object({ waiting: count, active: count, delayed: count }),
  /** The last change of `desired` (or, before any, the start of watching the pool). */
  lastDecision: PoolDecisionSchema,
  /** The latest evaluation, change or not: why the pool is where it is. */
  lastCheck: z.object({ at: z.string(), need: count, reason: z.string() }),
});
export type PoolView = z.infer<typeof PoolViewSchema>;

export const PoolListSchema = z.object({
  /** When the pools were last evaluated; null before the first evaluation. */
  evaluatedAt: z.string().nullable(),
  items: z.array(PoolViewSchema),
});
export type PoolList = z.infer<typeof PoolListSchema>;
