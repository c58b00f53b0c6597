/** BullMQ job payloads. */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const StepJobSchema = z.object({
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  role: z.string(),
  /** `workflow`: a sub-workflow step; the coordinator starts the child run itself (no queue). */
  kind: z.enum(['agent', 'shell', 'workflow']),
  /** The registered workflow a sub-workflow step runs, and the child's rendered input. */
  workflow: z.object({ name: z.string(), version: z.number().int().min(1).optional() }).optional(),
  input: z.record(z.string(), z.unknown()).optional(),
  /** Rendered prompt (agent steps). */
  prompt: z.string().optional(),
  model: z.string().optional(),
  seed: z.number().int().optional(),
  /** Rendered command (shell steps). */
  command: z.string().optional(),
  /** Names (never values) of the secrets the shell step gets. */
  secrets: z.array(z.string()).optional(),
  /** The shell step may use the network inside the sandbox. */
  network: z.boolean().optional(),
  timeoutMs: z.number().int(),
  traceparent: z.string().optional(),
  /** The element of a `forEach` step this job is for (its reports carry it back). */
  index: z.number().int().min(0).optional(),
});
export type StepJob = z.infer<typeof StepJobSchema>;

/**
 * BullMQ forbids `:` in job ids; run ids and step ids never contain one. A
 * `forEach` element's job is `<run>.<step>#<index>.<attempt>`: `#` is not
 * allowed in step ids, so it can never collide with another step's job.
 */
export function stepJobId(runId: string, stepId: string, attempt: number, index?: number): string {
  return index === undefined ? `${runId}.${stepId}.${attempt}` : `${runId}.${stepId}#${index}.${attempt}`;
}

/** The name a step's attempt goes by in artifact commits and message ids: `<step>` or `<step>#<index>`. */
export function stepKey(stepId: string, index?: number): string {
  return index === undefined ? stepId : `${stepId}#${index}`;
}

/**
 * The id of the child run a sub-workflow step's attempt starts: derived, so a coordinator that starts it again after
 * a crash names the same run (and the submission is a no-op). Run ids are `[a-z0-9_]`.
 */
export function childRunId(parentRunId: string, stepId: string, attempt: number): string {
  return `run_${createHash('sha256').update(`${parentRunId}/${stepId}/${attempt}`).digest('hex').slice(0, 26)}`;
}
