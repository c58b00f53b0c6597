import { z } from 'zod';

export const WORKFLOW_NAME_PATTERN = /^[a-z0-9-]+$/;
export const STEP_ID_PATTERN = /^[a-z0-9_-]+$/;
export const ROLE_PATTERN = /^[a-z][a-z0-9-]*$/;

/** The default agent roles (configurable per deployment). */
export const DEFAULT_ROLES = ['orchestrator', 'optimizer', 'reviewer', 'executor'] as const;
/** Tool steps run on this role unless the step names another. */
export const DEFAULT_TOOL_ROLE = 'executor';

export const TOOLS = ['shell'] as const;
export type ToolName = (typeof TOOLS)[number];

export const StepIdSchema = z.string().min(1).max(64).regex(STEP_ID_PATTERN, 'step ids use [a-z0-9_-]+');
export const RoleSchema = z.string().min(1).max(64).regex(ROLE_PATTERN, 'roles use [a-z][a-z0-9-]*');

/**
 * One step. An agent step has `agent` and `prompt`; a tool step has `tool`
 * and `command` (and runs on `executor` unless `agent` says otherwise).
 * Kept as one strict object with a refinement, rather than a union, so that
 * an error names the exact field instead of "no union member matched".
 */
export const StepSchema = z
  .strictObject({
    id: StepIdSchema,
    description: z.string().max(2000).optional(),
    agent: RoleSchema.optional(),
    prompt: z.string().min(1).max(100_000).optional(),
    /** Model name passed to the provider chain; the deterministic provider accepts any. @default "muse-local" */
    model: z.string().min(1).max(200).optional(),
    /** Seed for deterministic providers. @default 0 */
    seed: z.number().int().min(0).optional(),
    tool: z.enum(TOOLS).optional(),
    command: z.string().min(1).max(100_000).optional(),
    needs: z.array(StepIdSchema).max(1000).optional(),
    /** Start-to-close limit for one attempt, in ms. @default 300_000 */
    timeoutMs: z.number().int().min(1).max(7 * 24 * 3600_000).optional(),
    /** Attempts before the step fails for good (a lost worker or a retryable error counts). @default 3 */
    maxAttempts: z.number().int().min(1).max(100).optional(),
  })
  .superRefine((step, ctx) => {
    if (step.tool !== undefined) {
      if (step.command === undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: `tool step "${step.id}" needs a command` });
      if (step.prompt !== undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `tool step "${step.id}" takes a command, not a prompt` });
    } else {
      if (step.command !== undefined) ctx.addIssue({ code: 'custom', path: ['tool'], message: `step "${step.id}" has a command but no tool` });
      if (step.agent === undefined) ctx.addIssue({ code: 'custom', path: ['agent'], message: `step "${step.id}" needs an agent role (or a tool)` });
      if (step.prompt === undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: `agent step "${step.id}" needs a prompt` });
    }
  });
export type StepDefinition = z.infer<typeof StepSchema>;

export const WorkflowDefinitionSchema = z.strictObject({
  name: z.string().min(1).max(100).regex(WORKFLOW_NAME_PATTERN, 'workflow names use [a-z0-9-]+'),
  description: z.string().max(10_000).optional(),
  steps: z.array(StepSchema).min(1).max(5000),
  /** A template rendered when the run succeeds; without it the output is every step's output by id. */
  output: z.string().max(100_000).optional(),
});
export type WorkflowDefinition = z.infer<typeof WorkflowDefinitionSchema>;

export const WorkflowRefSchema = z.object({ name: z.string(), version: z.number().int().min(1) });
export type WorkflowRef = z.infer<typeof WorkflowRefSchema>;

export const StoredWorkflowSchema = z.object({
  project: z.string(),
  name: z.string(),
  version: z.number().int().min(1),
  digest: z.string(),
  definition: WorkflowDefinitionSchema,
  createdAt: z.string(),
});
export type StoredWorkflow = z.infer<typeof StoredWorkflowSchema>;

/** The role whose pool runs a step. */
export function stepRole(step: StepDefinition): string {
  return step.agent ?? DEFAULT_TOOL_ROLE;
}

/** Agent step output. */
export const AgentOutputSchema = z.object({
  text: z.string(),
  model: z.string(),
  usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }),
});
export type AgentOutput = z.infer<typeof AgentOutputSchema>;

/** Shell step output. */
export const ShellOutputSchema = z.object({
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean().optional(),
});
export type ShellOutput = z.infer<typeof ShellOutputSchema>;
