/**
 * The MCP tools of Muse. Each is one or a few REST calls made with the
 * client's own credential; its input schema is built from the zod contracts
 * of the REST body it sends, so the JSON Schema a client sees and the
 * validation the gateway applies say the same thing.
 */
import { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import {
  ApprovalBodySchema,
  CancelRunBodySchema,
  RerunBodySchema,
  RunControlBodySchema,
  RunListQuerySchema,
  SubmitRunBodySchema,
  WORKFLOW_NAME_PATTERN,
  type ArtifactMeta,
} from '@muse/contracts';
import type { MuseApiClient } from './muse-api.client.js';
import { statusSummary } from './status-summary.js';
import { waitForRun, type RunProgress } from './wait-for-run.js';

export interface ToolContext {
  api: MuseApiClient;
  signal: AbortSignal;
  /** Present when the client asked for progress (`_meta.progressToken`). */
  progress?: (p: RunProgress) => Promise<void>;
}

export interface ToolOutput {
  structured: Record<string, unknown>;
  /** Shown to the client as a text block besides the JSON (an artifact's text). */
  text?: string;
}

export interface MuseTool {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  annotations: ToolAnnotations;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Keeps each tool's `run` typed by its own input schema. */
function tool<S extends z.ZodObject>(def: Omit<MuseTool, 'input' | 'run'> & { input: S; run(args: z.output<S>, ctx: ToolContext): Promise<ToolOutput> }): MuseTool {
  return def as unknown as MuseTool;
}

const out = (structured: unknown): ToolOutput => ({ structured: structured as Record<string, unknown> });
const id = (s: string) => encodeURIComponent(s);

const runId = z.string().min(1).max(64).describe('Run id (`run_` + 26 characters)');
const stepId = z.string().min(1).max(64).describe('Step id');
const artifactId = z.string().min(1).max(200).describe('Artifact id');

const byName = SubmitRunBodySchema.options[0].shape;
const inline = SubmitRunBodySchema.options[1].shape;

/** `Idempotency-Key`'s rule at the gateway: 1 to 255 visible ASCII characters. */
const IdempotencyKeySchema = z.string().regex(/^[\x20-\x7e]{1,255}$/);

const READ: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };
const WRITE: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

/** Media types read back as text. */
const TEXT_MEDIA = /^(text\/|application\/(json|x-ndjson|yaml|x-yaml|xml|javascript)\b)|\+(json|xml|yaml)\b/i;

/** `read_artifact` returns at most this many bytes per call. @default 1 MiB */
export const MAX_ARTIFACT_READ_BYTES = 1024 * 1024;

export const MUSE_TOOLS: readonly MuseTool[] = [
  tool({
    name: 'list_workflows',
    title: 'List workflows',
    description: 'Workflows registered in the project, with their latest version.',
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await api.request('GET', '/v1/workflows')),
  }),
  tool({
    name: 'describe_workflow',
    title: 'Describe a workflow',
    description: 'A workflow: its latest version in full (the definition: steps, needs, prompts, commands) and every version, or one given version.',
    input: z.strictObject({ name: z.string().regex(WORKFLOW_NAME_PATTERN).describe('Workflow name'), version: byName.version.describe('A version; default the latest') }),
    annotations: READ,
    run: async ({ name, version }, { api }) =>
      out(await api.request('GET', version === undefined ? `/v1/workflows/${id(name)}` : `/v1/workflows/${id(name)}/versions/${version}`)),
  }),
  tool({
    name: 'submit_run',
    title: 'Submit a run',
    description:
      'Start a run of a registered workflow (`workflow`, optional `version`) or of an inline `definition`, with `input`. Answers `{id, status}` once the run is durably accepted. The same `idempotencyKey` with the same request returns the same run instead of starting another. Needs the `write` scope.',
    input: z.strictObject({
      workflow: byName.workflow.optional().describe('Name of a registered workflow (or give `definition`)'),
      version: byName.version,
      definition: inline.definition.optional(),
      input: byName.input,
      priority: byName.priority,
      idempotencyKey: IdempotencyKeySchema.optional().describe('Makes a retried submission return the same run (kept 24 h)'),
    }),
    annotations: { ...WRITE, idempotentHint: false },
    run: async ({ idempotencyKey, ...body }, { api }) =>
      out(await api.request('POST', '/v1/runs', { body, headers: idempotencyKey !== undefined ? { 'idempotency-key': idempotencyKey } : {} })),
  }),
  tool({
    name: 'list_runs',
    title: 'List runs',
    description: 'Runs of the project, newest first, optionally by status or workflow; page with `cursor` (`nextCursor` of the previous page).',
    input: z.strictObject({ ...RunListQuerySchema.shape }),
    annotations: READ,
    run: async (q, { api }) => out(await api.request('GET', '/v1/runs', { query: q })),
  }),
  tool({
    name: 'get_run',
    title: 'Get a run',
    description: "A run's status, input, output or error, and every step with its status, attempts, output and error.",
    input: z.strictObject({ runId }),
    annotations: READ,
    run: async ({ runId: r }, { api }) => out(await api.request('GET', `/v1/runs/${id(r)}`)),
  }),
  tool({
    name: 'get_run_events',
    title: "Get a run's events",
    description: "A run's event log, in order (each event with its `seq`).",
    input: z.strictObject({ runId }),
    annotations: READ,
    run: async ({ runId: r }, { api }) => out(await api.request('GET', `/v1/runs/${id(r)}/events`)),
  }),
  tool({
    name: 'wait_for_run',
    title: 'Wait for a run',
    description:
      'Wait until the run finishes (succeeded, failed, cancelled) or, with `returnWhenWaiting` (default true), until it waits for an approval or is paused — at most `timeoutMs`. Sends a progress notification each time steps finish when the request carries a progress token. Answers `{run, finished, timedOut}`. Right after decide_approval or resume_run the run may still show `waiting` for a moment: wait with `returnWhenWaiting: false` then.',
    input: z.strictObject({
      runId,
      timeoutMs: z.number().int().min(0).max(600_000).default(30_000).describe('How long to wait, in ms (at most 10 minutes)'),
      returnWhenWaiting: z.boolean().default(true).describe('Also return when the run is `waiting` (an approval gate, or paused)'),
    }),
    annotations: READ,
    run: async ({ runId: r, timeoutMs, returnWhenWaiting }, { api, signal, progress }) =>
      out(await waitForRun(api, { runId: r, timeoutMs, returnWhenWaiting, signal, ...(progress ? { onProgress: progress } : {}) })),
  }),
  tool({
    name: 'list_run_artifacts',
    title: "List a run's artifacts",
    description: 'The artifacts (step outputs) of a run: id, name, version, digest, size, media type, producing step and attempt.',
    input: z.strictObject({ runId }),
    annotations: READ,
    run: async ({ runId: r }, { api }) => out(await api.request('GET', `/v1/runs/${id(r)}/artifacts`)),
  }),
  tool({
    name: 'read_artifact',
    title: 'Read an artifact',
    description: `An artifact's metadata and content: text for text and JSON media types (UTF-8), base64 otherwise; \`offset\` and \`maxBytes\` (at most ${MAX_ARTIFACT_READ_BYTES}) read a slice. Also readable as the resource muse://artifacts/{id}.`,
    input: z.strictObject({
      artifactId,
      offset: z.number().int().min(0).default(0).describe('First byte to read'),
      maxBytes: z.number().int().min(1).max(MAX_ARTIFACT_READ_BYTES).default(256 * 1024).describe('Most bytes to read'),
    }),
    annotations: READ,
    run: async ({ artifactId: a, offset, maxBytes }, { api }) => {
      const meta = await api.request<ArtifactMeta>('GET', `/v1/artifacts/${id(a)}`);
      const end = Math.min(meta.size, offset + maxBytes) - 1;
      const body = meta.size === 0 || offset >= meta.size ? { bytes: new Uint8Array() } : await api.artifactContent(a, { start: offset, end });
      const decoded = decodeContent(body.bytes, meta.mediaType);
      const structured = { artifact: meta, offset, length: body.bytes.length, truncated: offset + body.bytes.length < meta.size, ...decoded };
      return { structured, ...(decoded.encoding === 'utf8' ? { text: decoded.content } : {}) };
    },
  }),
  tool({
    name: 'decide_approval',
    title: 'Approve or reject a gate',
    description: 'Decide an approval step that is waiting: `approve` completes it, `reject` fails it for good. The first decision wins; the decision, the comment and who decided are kept in the event log. Needs the `write` scope.',
    input: z.strictObject({ runId, stepId, ...ApprovalBodySchema.shape }),
    annotations: WRITE,
    run: async ({ runId: r, stepId: s, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/approvals/${id(s)}`, { body })),
  }),
  tool({
    name: 'cancel_run',
    title: 'Cancel a run',
    description: 'Cancel a run (its running steps are stopped); `compensate: true` first runs the compensations of the succeeded steps. Needs the `write` scope.',
    input: z.strictObject({ runId, ...CancelRunBodySchema.shape }),
    annotations: { ...WRITE, destructiveHint: true, idempotentHint: true },
    run: async ({ runId: r, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/cancel`, { body })),
  }),
  tool({
    name: 'retry_run',
    title: 'Retry a failed run',
    description: 'Re-drive a failed run from its failed and cancelled steps; succeeded steps keep their outputs. Needs the `write` scope.',
    input: z.strictObject({ runId, ...RunControlBodySchema.shape }),
    annotations: WRITE,
    run: async ({ runId: r, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/retry`, { body })),
  }),
  tool({
    name: 'rerun_run',
    title: 'Rerun a run from a step',
    description: 'Start a new run of the same workflow version and input from `fromStep`, reusing the outputs of the steps before it. Needs the `write` scope.',
    input: z.strictObject({ runId, ...RerunBodySchema.shape }),
    annotations: WRITE,
    run: async ({ runId: r, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/rerun`, { body })),
  }),
  tool({
    name: 'pause_run',
    title: 'Pause a run',
    description: 'No new step of the run starts until it is resumed (running ones finish). Needs the `write` scope.',
    input: z.strictObject({ runId, ...RunControlBodySchema.shape }),
    annotations: { ...WRITE, idempotentHint: true },
    run: async ({ runId: r, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/pause`, { body })),
  }),
  tool({
    name: 'resume_run',
    title: 'Resume a run',
    description: 'Resume a paused run. Needs the `write` scope.',
    input: z.strictObject({ runId, ...RunControlBodySchema.shape }),
    annotations: { ...WRITE, idempotentHint: true },
    run: async ({ runId: r, ...body }, { api }) => out(await api.request('POST', `/v1/runs/${id(r)}/resume`, { body })),
  }),
  tool({
    name: 'list_dead_letters',
    title: 'List dead letters',
    description: 'Steps of the project that failed for good (retries exhausted or a non-retryable error), newest first; re-drive one with retry_run.',
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await api.request('GET', '/v1/dead-letters')),
  }),
  tool({
    name: 'list_agents',
    title: 'List agents',
    description: 'Live agent workers (shared by every project): roles, concurrency, jobs in flight, load, last heartbeat.',
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await api.request('GET', '/v1/agents')),
  }),
  tool({
    name: 'list_pools',
    title: 'List agent pools',
    description:
      'Agent pools per role as the leader scaler last evaluated them: bounds, policy, desired and live size, queue depth, last scaling decisions; `leader` is the scaler replica holding the leader lease.',
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await api.request('GET', '/v1/pools')),
  }),
  tool({
    name: 'list_leases',
    title: 'List leases',
    description: "Leases of the project's steps (`locks:`): who holds which (run, step, locks, since, expiry, fencing token) and who waits for which, in arrival order.",
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await api.request('GET', '/v1/leases')),
  }),
  tool({
    name: 'get_status',
    title: 'Orchestration status',
    description: 'The project at a glance: runs by status and the active ones, queue depth and pool size per role, live agents, the scaler leader, and the newest events of the most recently updated runs.',
    input: z.strictObject({}),
    annotations: READ,
    run: async (_a, { api }) => out(await statusSummary(api)),
  }),
];

function decodeContent(bytes: Uint8Array, mediaType: string): { encoding: 'utf8' | 'base64'; content: string } {
  if (TEXT_MEDIA.test(mediaType)) {
    try {
      return { encoding: 'utf8', content: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
    } catch {
      // a slice that cuts a character in two, or bytes that are not UTF-8: base64 below
    }
  }
  return { encoding: 'base64', content: Buffer.from(bytes).toString('base64') };
}

export { decodeContent };
