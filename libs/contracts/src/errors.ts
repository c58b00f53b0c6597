/**
 * The one catalogue of Muse error codes. A code is stable once published:
 * users grep for it, alert on it and branch on it. The wire shape
 * `{code, message, retryable, details}` is the same in REST bodies, events
 * and job failures.
 */
import { z } from 'zod';

export const ERROR_CATALOGUE = {
  MUSE_ERR_REQUEST_INVALID: { status: 400, retryable: false, message: 'The request body or parameters are invalid' },
  MUSE_ERR_REQUEST_MALFORMED_JSON: { status: 400, retryable: false, message: 'The request body is not valid JSON' },
  MUSE_ERR_REQUEST_MALFORMED_YAML: { status: 400, retryable: false, message: 'The request body is not valid YAML' },
  MUSE_ERR_REQUEST_MEDIA_TYPE: { status: 415, retryable: false, message: 'Unsupported Content-Type' },
  MUSE_ERR_REQUEST_TOO_LARGE: { status: 413, retryable: false, message: 'The request body is larger than the limit' },
  MUSE_ERR_ROUTE_NOT_FOUND: { status: 404, retryable: false, message: 'No such route' },
  MUSE_ERR_WORKFLOW_INVALID: { status: 400, retryable: false, message: 'The workflow definition is invalid' },
  MUSE_ERR_WORKFLOW_NOT_FOUND: { status: 404, retryable: false, message: 'No such workflow or version' },
  MUSE_ERR_RUN_NOT_FOUND: { status: 404, retryable: false, message: 'No such run' },
  MUSE_ERR_RUN_TERMINAL: { status: 409, retryable: false, message: 'The run has already finished' },
  MUSE_ERR_RUN_INPUT_INVALID: { status: 400, retryable: false, message: 'The run input does not fit the workflow' },
  MUSE_ERR_IDEMPOTENCY_CONFLICT: { status: 409, retryable: false, message: 'The idempotency key was used for another request' },
  MUSE_ERR_ARTIFACT_NOT_FOUND: { status: 404, retryable: false, message: 'No such artifact' },
  MUSE_ERR_ARTIFACT_STALE_TOKEN: { status: 409, retryable: false, message: 'The fencing token is older than the newest seen for this run' },
  MUSE_ERR_ARTIFACT_DIGEST_MISMATCH: { status: 500, retryable: true, message: 'The stored blob does not match its digest' },
  MUSE_ERR_ARTIFACT_VERSION_CONFLICT: { status: 412, retryable: false, message: 'If-Match names another version than the latest of this artifact name' },
  MUSE_ERR_ARTIFACT_BLOB_COLLECTING: { status: 503, retryable: true, message: 'The blob was or is being garbage-collected (or its upload is older than the GC grace period); upload it again' },
  MUSE_ERR_STEP_EXIT_NONZERO: { status: 422, retryable: true, message: 'The shell command exited with a non-zero status' },
  MUSE_ERR_STEP_TIMEOUT: { status: 504, retryable: true, message: 'The step ran past its timeout' },
  MUSE_ERR_STEP_TEMPLATE: { status: 422, retryable: false, message: 'A template could not be rendered' },
  MUSE_ERR_STEP_PROVIDER: { status: 502, retryable: true, message: 'The model provider failed' },
  MUSE_ERR_PROVIDER_REJECTED: { status: 502, retryable: false, message: 'The model provider rejected the request (bad request, credentials or model); retrying will not help' },
  MUSE_ERR_PROVIDER_RATE_LIMITED: { status: 429, retryable: true, message: 'The model provider is rate-limiting; details.retryAfterMs says when to retry' },
  MUSE_ERR_PROVIDER_TIMEOUT: { status: 504, retryable: true, message: 'The model provider did not answer within its timeout' },
  MUSE_ERR_PROVIDER_CIRCUIT_OPEN: { status: 503, retryable: true, message: 'The model provider is skipped: its circuit breaker is open' },
  MUSE_ERR_PROVIDERS_CONFIG_INVALID: { status: 500, retryable: false, message: 'The model providers configuration is missing, unreadable or invalid' },
  MUSE_ERR_STEP_SECRET_MISSING: { status: 422, retryable: false, message: 'A secret the step names is not configured on the worker' },
  MUSE_ERR_TOOL_FORBIDDEN: { status: 403, retryable: false, message: 'The tool may not reach this target (host not allowed, or a blocked address); details name the address and the rule' },
  MUSE_ERR_TOOL_HTTP_FAILED: { status: 502, retryable: true, message: 'The HTTP request of an http tool failed (DNS, connection, timeout, too many redirects)' },
  MUSE_ERR_TOOL_OUTPUT_TOO_LARGE: { status: 413, retryable: false, message: 'The tool output is larger than the limit' },
  MUSE_ERR_TOOL_CALLS_EXCEEDED: { status: 422, retryable: false, message: 'The model asked for more tool calls than the step allows (maxToolCalls)' },
  MUSE_ERR_SANDBOX_UNAVAILABLE: { status: 500, retryable: false, message: 'The shell sandbox is required but does not work on this host' },
  MUSE_ERR_STEP_LOST: { status: 500, retryable: true, message: 'The step was lost by its worker' },
  MUSE_ERR_AGENT_FAILED: { status: 422, retryable: true, message: 'The remote agent reported that the step failed' },
  MUSE_ERR_AGENT_DISCONNECTED: { status: 503, retryable: true, message: 'The remote agent running the step disconnected and did not come back within the grace period' },
  MUSE_ERR_SCHEDULE_NOT_FOUND: { status: 404, retryable: false, message: 'No such schedule' },
  MUSE_ERR_WORKFLOW_DEPTH: { status: 422, retryable: false, message: 'Sub-workflows are nested deeper than allowed' },
  MUSE_ERR_CHILD_RUN_FAILED: { status: 422, retryable: false, message: 'The child run of a sub-workflow step did not succeed' },
  MUSE_ERR_STEP_CONDITION: { status: 422, retryable: false, message: 'A when or forEach expression could not be evaluated' },
  MUSE_ERR_APPROVAL_REJECTED: { status: 409, retryable: false, message: 'The approval gate was rejected' },
  MUSE_ERR_STEP_NOT_WAITING: { status: 409, retryable: false, message: 'The step is not waiting for a decision' },
  MUSE_ERR_BUDGET_EXCEEDED: { status: 429, retryable: false, message: "The run's token or cost budget is exhausted; raise it with POST /v1/runs/{id}/budget" },
  MUSE_ERR_REPLAY_DIVERGED: { status: 409, retryable: false, message: 'A replayed model call differs from the recording (details: stepId, expectedHash, actualHash, differing fields)' },
  MUSE_ERR_RUN_NOT_REPLAYABLE: { status: 409, retryable: false, message: 'Only a finished run can be replayed' },
  MUSE_ERR_RUN_NOT_RETRYABLE: { status: 409, retryable: false, message: 'Only a failed run that was not compensated can be retried' },
  MUSE_ERR_RUN_TIMEOUT: { status: 504, retryable: false, message: 'The run ran past its timeout' },
  MUSE_ERR_STEP_OUTPUT_TOO_LARGE: { status: 413, retryable: false, message: "The step's output is too large for its report, one message of the command stream (the NATS server's max_payload); details: bytes, limitBytes" },
  MUSE_ERR_RUN_INPUT_TOO_LARGE: { status: 413, retryable: false, message: "A sub-workflow step's child run cannot be submitted: its input and definition are larger than one message of the command stream (the NATS server's max_payload); details: bytes, limitBytes" },
  MUSE_ERR_EVENT_TOO_LARGE: { status: 413, retryable: false, message: "An event of the run is larger than one message of the run log may be (the NATS server's max_payload); details: event, bytes, limitBytes" },
  MUSE_ERR_RUN_CANCELLED: { status: 409, retryable: false, message: 'The run was cancelled' },
  MUSE_ERR_CONFIG_INVALID: { status: 500, retryable: false, message: 'The configuration is invalid' },
  MUSE_ERR_UNAVAILABLE: { status: 503, retryable: true, message: 'A dependency is unavailable; try again' },
  MUSE_ERR_AUTH_REQUIRED: { status: 401, retryable: false, message: 'A valid credential is required' },
  MUSE_ERR_AUTH_FORBIDDEN: { status: 403, retryable: false, message: 'The credential lacks the scope this route needs' },
  MUSE_ERR_PROJECT_NOT_FOUND: { status: 404, retryable: false, message: 'No such project' },
  MUSE_ERR_PROJECT_REQUIRED: { status: 400, retryable: false, message: 'The credential spans several projects; name one in the Muse-Project header' },
  MUSE_ERR_PROJECT_EXISTS: { status: 409, retryable: false, message: 'A project with this name exists' },
  MUSE_ERR_API_KEY_NOT_FOUND: { status: 404, retryable: false, message: 'No such API key' },
  MUSE_ERR_MCP_SESSION_NOT_FOUND: { status: 404, retryable: false, message: 'No such MCP session (ended, expired, or opened by another credential): initialize a new one' },
  MUSE_ERR_PROFILING_SESSION_NOT_FOUND: { status: 404, retryable: false, message: 'No such profiling session (unknown, already stopped, or started at another gateway replica)' },
  MUSE_ERR_RATE_LIMITED: { status: 429, retryable: true, message: 'Too many requests; retry after the time in Retry-After' },
  MUSE_ERR_REQUEST_TOO_COMPLEX: { status: 400, retryable: false, message: 'The request body is nested too deeply or has too long an array' },
  MUSE_ERR_SCALER_CONFIG_INVALID: { status: 500, retryable: false, message: 'The scaler configuration file is missing, unreadable or invalid' },
  MUSE_ERR_SCALER_DRIVER: { status: 502, retryable: true, message: 'The scaler driver could not resize a pool' },
  MUSE_ERR_INTERNAL: { status: 500, retryable: true, message: 'Internal error' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type MuseErrorCode = keyof typeof ERROR_CATALOGUE;
export const MUSE_ERROR_CODES = Object.keys(ERROR_CATALOGUE) as MuseErrorCode[];

export const ErrorBodySchema = z.object({
  code: z.string(),
  message: z.string(),
  retryable: z.boolean(),
  details: z.unknown().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** The REST error envelope: `{"error": {...}}`. */
export const ErrorEnvelopeSchema = z.object({ error: ErrorBodySchema });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;

export class MuseError extends Error {
  readonly code: MuseErrorCode;
  readonly retryable: boolean;
  readonly status: number;
  readonly details: unknown;

  constructor(code: MuseErrorCode, message?: string, opts: { details?: unknown; retryable?: boolean; cause?: unknown } = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(message ?? entry.message, { cause: opts.cause });
    this.name = 'MuseError';
    this.code = code;
    this.status = entry.status;
    this.retryable = opts.retryable ?? entry.retryable;
    this.details = opts.details;
  }

  toWire(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.details !== undefined) body.details = this.details;
    return body;
  }

  static fromWire(body: ErrorBody): MuseError {
    const code = (body.code in ERROR_CATALOGUE ? body.code : 'MUSE_ERR_INTERNAL') as MuseErrorCode;
    return new MuseError(code, body.message, { details: body.details, retryable: body.retryable });
  }
}

export function isMuseError(err: unknown): err is MuseError {
  return err instanceof MuseError;
}

/** Any thrown value as the wire shape; unknown errors become MUSE_ERR_INTERNAL. */
export function toErrorBody(err: unknown): ErrorBody {
  if (isMuseError(err)) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'MUSE_ERR_INTERNAL', message, retryable: true };
}

/** One issue found in a definition or body: where, and what is wrong. */
export interface ValidationIssue {
  /** Dotted path into the document, e.g. `steps.2.needs`. */
  path: string;
  /** The step the issue belongs to, when it belongs to one. */
  stepId?: string;
  /** The field of that step (or of the document) that is wrong. */
  field?: string;
  message: string;
}

/** zod issues as Muse validation issues, naming the step id where the path goes through `steps[i]`. */
export function zodIssues(error: z.ZodError, doc?: unknown): ValidationIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String);
    const out: ValidationIssue = { path: path.join('.'), message: issue.message };
    if (issue.code === 'unrecognized_keys') {
      out.message = `unknown field(s): ${issue.keys.join(', ')}`;
      out.field = issue.keys[0];
    }
    if (path[0] === 'steps' && path.length >= 2) {
      const steps = (doc as { steps?: Array<{ id?: unknown }> } | undefined)?.steps;
      const step = Array.isArray(steps) ? steps[Number(path[1])] : undefined;
      if (step && typeof step.id === 'string') out.stepId = step.id;
      if (path.length >= 3 && out.field === undefined) out.field = path[2];
    } else if (path.length >= 1 && out.field === undefined) {
      out.field = path[0];
    }
    return out;
  });
}
