/**
 * The rules of `POST /v1/runs`, as plain functions: what a submission body
 * may be, whether its input fits the workflow, and what the gateway writes
 * and publishes for it.
 */
import { z } from 'zod';
import { missingInputs } from '@muse/engine';
import {
  MuseError,
  SubmitRunBodySchema,
  zodIssues,
  type RunSubmitCommand,
  type RunView,
  type ValidationIssue,
  type WorkflowDefinition,
  type WorkflowRef,
} from '@muse/contracts';
import { requireValidWorkflow } from '../workflows/workflow-definition.js';

type Input = Record<string, unknown>;

export type SubmitRequest = (
  | { kind: 'registered'; workflow: string; version?: number; input: Input }
  | { kind: 'inline'; definition: WorkflowDefinition; input: Input }
) & { priority?: number };

const [RegisteredBodySchema, InlineBodySchema] = SubmitRunBodySchema.options;
/** The inline variant with the definition left to the engine, whose issues name step and field. */
const InlineShellSchema = InlineBodySchema.extend({ definition: z.unknown() });

/**
 * Parses a submission. The union is split by hand on `definition` so that an
 * error names the field at fault rather than "no union member matched", and
 * an inline definition gets the same checks (and error code) as registration.
 */
export function parseSubmitBody(raw: unknown): SubmitRequest {
  const inline = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'definition' in raw;
  if (inline) {
    const shell = InlineShellSchema.safeParse(raw);
    if (!shell.success) throw invalidBody(shell.error, raw);
    const definition = requireValidWorkflow(shell.data.definition, 'definition.');
    return { kind: 'inline', definition, input: shell.data.input ?? {}, ...(shell.data.priority !== undefined ? { priority: shell.data.priority } : {}) };
  }
  const body = RegisteredBodySchema.safeParse(raw);
  if (!body.success) throw invalidBody(body.error, raw);
  return {
    kind: 'registered',
    workflow: body.data.workflow,
    ...(body.data.version !== undefined ? { version: body.data.version } : {}),
    input: body.data.input ?? {},
    ...(body.data.priority !== undefined ? { priority: body.data.priority } : {}),
  };
}

function invalidBody(error: z.ZodError, raw: unknown): MuseError {
  const issues = raw === undefined ? [{ path: '', message: 'a JSON (or YAML) body is required' }] : zodIssues(error, raw);
  return new MuseError('MUSE_ERR_REQUEST_INVALID', `The run submission is invalid: ${describe(issues[0])}`, { details: { issues } });
}

function describe(issue: ValidationIssue | undefined): string {
  if (!issue) return 'unknown issue';
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

/**
 * Every `{{ input.x }}` the workflow's templates read must be in the input:
 * the engine refuses to render a missing path, so a run without it would
 * fail at its first step; refusing it here tells the caller at once.
 */
export function checkRunInput(definition: WorkflowDefinition, input: Input): void {
  const issues = missingInputs(definition, input);
  if (issues.length > 0) {
    throw new MuseError('MUSE_ERR_RUN_INPUT_INVALID', `The run input lacks ${issues.map((i) => i.path).join(', ')}`, { details: { issues } });
  }
}

export interface NewRun {
  runId: string;
  project: string;
  workflow: WorkflowRef;
  definition: WorkflowDefinition;
  input: Input;
  /** ISO-8601 time of submission. */
  at: string;
  idempotencyKey?: string;
  traceparent?: string;
  priority?: number;
  rerunOf?: { runId: string; fromStep: string; outputs: Record<string, unknown> };
  replayOf?: { runId: string; recordings: Record<string, string> };
}

export function submitCommand(run: NewRun): RunSubmitCommand {
  return {
    kind: 'run-submit',
    runId: run.runId,
    project: run.project,
    workflow: run.workflow,
    definition: run.definition,
    input: run.input,
    submittedAt: run.at,
    ...(run.idempotencyKey !== undefined ? { idempotencyKey: run.idempotencyKey } : {}),
    ...(run.traceparent !== undefined ? { traceparent: run.traceparent } : {}),
    ...(run.priority !== undefined ? { priority: run.priority } : {}),
    ...(run.rerunOf !== undefined ? { rerunOf: run.rerunOf } : {}),
    ...(run.replayOf !== undefined ? { replayOf: run.replayOf } : {}),
  };
}

/** The read model the gateway writes once JetStream acked (SET NX: the coordinator's, with a higher seq, wins). */
export function initialRunView(run: NewRun): RunView {
  return {
    id: run.runId,
    project: run.project,
    workflow: run.workflow,
    status: 'pending',
    input: run.input,
    createdAt: run.at,
    updatedAt: run.at,
    seq: 0,
    steps: run.definition.steps.map((s) => ({ id: s.id, status: 'pending', attempts: 0 })),
  };
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A W3C `traceparent` header worth carrying into the run, or undefined. */
export function traceparentOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && TRACEPARENT.test(value.trim()) ? value.trim() : undefined;
}
