/** BullMQ job payloads. */
import { createHash, hash } from 'node:crypto';
import { z } from 'zod';

export const StepJobSchema = z.object({
  runId: z.string(),
  project: z.string(),
  stepId: z.string(),
  attempt: z.number().int().min(1),
  role: z.string(),
  /** `workflow`: a sub-workflow step; the coordinator starts the child run itself (no queue). */
  kind: z.enum(['agent', 'shell', 'http', 'workflow']),
  /** The registered workflow a sub-workflow step runs, and the child's rendered input. */
  workflow: z.object({ name: z.string(), version: z.number().int().min(1).optional() }).optional(),
  input: z.record(z.string(), z.unknown()).optional(),
  /** Rendered prompt (agent steps). */
  prompt: z.string().optional(),
  model: z.string().optional(),
  /** A seed the step pins; unset = the worker derives one from run, step (element) and attempt (`deriveSeed`). */
  seed: z.number().int().optional(),
  /** Sampling parameters (agent steps). @default 0 and 1 */
  temperature: z.number().optional(),
  topP: z.number().optional(),
  /** sha256 of the step's prompt template as defined, and the workflow version: recorded with the call. */
  promptTemplateHash: z.string().optional(),
  definitionVersion: z.number().int().optional(),
  /** A replay: the recorded run, and the artifact id of this step's (element's) recorded call, if it had one. */
  replay: z.object({ runId: z.string(), recording: z.string().optional() }).optional(),
  /** The run's spending limits as they stand when the job is queued (definition plus `POST /budget` raises). */
  budget: z.object({ maxTokens: z.number().optional(), maxCost: z.number().optional(), onBudgetExceeded: z.enum(['fail', 'wait']).optional() }).optional(),
  /** Rendered command (shell steps). */
  command: z.string().optional(),
  /** Rendered request (http steps). */
  request: z
    .object({ method: z.enum(['GET', 'POST']), url: z.string(), headers: z.record(z.string(), z.string()).optional(), body: z.string().optional() })
    .optional(),
  /** Tools the model may call (agent steps), and how many calls one attempt may make. */
  tools: z.array(z.enum(['http', 'shell'])).optional(),
  maxToolCalls: z.number().int().min(1).optional(),
  /** Names (never values) of the secrets the shell step gets. */
  secrets: z.array(z.string()).optional(),
  /** The shell step may use the network inside the sandbox. */
  network: z.boolean().optional(),
  timeoutMs: z.number().int(),
  /** Capabilities the agent must have: the job is in the queue `<role>+<tags>` (see queueRole). */
  requires: z.array(z.string()).optional(),
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

/** Hashes of the prompt templates seen lately: every job of a step carries its template's, and a workflow runs again and again. */
const templateHashes = new Map<string, string>();
/** How many template hashes are kept; past it they are all forgotten (contracts use no cache library, and an eviction by age would cost more than it saves). */
const TEMPLATE_HASHES_MAX = 1024;

/** sha256 (hex) of a step's prompt template as defined: recorded with every call, so a changed prompt shows. */
export function promptTemplateHash(template: string): string {
  let digest = templateHashes.get(template);
  if (digest === undefined) {
    digest = hash('sha256', template, 'hex');
    if (templateHashes.size >= TEMPLATE_HASHES_MAX) templateHashes.clear();
    templateHashes.set(template, digest);
  }
  return digest;
}

/**
 * The seed of one call when the step pins none: derived from the run, the step (element) and the attempt, so a
 * retry samples afresh while a replay of the same attempt gets the same seed. A non-negative 31-bit integer.
 */
export function deriveSeed(runId: string, stepId: string, attempt: number, index?: number): number {
  return createHash('sha256').update(`${runId}/${stepKey(stepId, index)}/${attempt}`).digest().readUInt32BE(0) & 0x7fffffff;
}
