/** BullMQ job payloads. */
import { z } from 'zod';

export const StepJobSchema = z.object({
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  role: z.string(),
  kind: z.enum(['agent', 'shell']),
  /** Rendered prompt (agent steps). */
  prompt: z.string().optional(),
  model: z.string().optional(),
  seed: z.number().int().optional(),
  /** Rendered command (shell steps). */
  command: z.string().optional(),
  timeoutMs: z.number().int(),
  traceparent: z.string().optional(),
});
export type StepJob = z.infer<typeof StepJobSchema>;

/** BullMQ forbids `:` in job ids; run ids and step ids never contain one. */
export function stepJobId(runId: string, stepId: string, attempt: number): string {
  return `${runId}.${stepId}.${attempt}`;
}
