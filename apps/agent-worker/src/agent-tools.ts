/**
 * The tools an agent step's model may call, described for the model
 * (name, purpose, JSON Schema of the arguments) and run through the same
 * implementations as tool steps: `http` through the HttpTool (allowlist,
 * address rules, redirects re-checked), `shell` through the shell step
 * executor (workspace, sandbox, minimal environment; no secrets, no network).
 */
import { z } from 'zod';
import { HttpRequestSchema, MuseError, toErrorBody, type AgentToolName, type ErrorBody, type StepJob } from '@muse/contracts';
import type { ToolSpec } from '@muse/providers';
import { HTTP_TOOL_VERSION, type HttpTool } from './http-tool.js';
import type { ShellStepExecutor } from './shell-step.executor.js';

/** Version of the shell tool as the model sees it (its argument schema and result shape). */
export const SHELL_TOOL_VERSION = '1.0.0';

export const TOOL_SPECS: Record<AgentToolName, ToolSpec & { version: string }> = {
  http: {
    name: 'http',
    version: HTTP_TOOL_VERSION,
    description:
      'Make an HTTP GET or POST request to an allowed host. Returns {status, body, headers, url}. Hosts outside the allowlist and private, loopback, link-local or metadata addresses are refused.',
    parameters: {
      type: 'object',
      properties: {
        method: { type: 'string', enum: ['GET', 'POST'] },
        url: { type: 'string', description: 'Absolute http:// or https:// URL' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        body: { type: 'string', description: 'Request body (POST only)' },
      },
      required: ['method', 'url'],
      additionalProperties: false,
    },
  },
  shell: {
    name: 'shell',
    version: SHELL_TOOL_VERSION,
    description: "Run a shell command (/bin/sh -c) in the run's workspace, sandboxed, without network or secrets. Returns {exitCode, stdout, stderr}.",
    parameters: {
      type: 'object',
      properties: { command: { type: 'string', description: 'The command line' } },
      required: ['command'],
      additionalProperties: false,
    },
  },
};

/** What one call gave: the value stored as its artifact, and the text fed back to the model. */
export type ToolCallOutcome = { ok: true; result: unknown; content: string } | { ok: false; error: ErrorBody; content: string };

const ShellArgsSchema = z.strictObject({ command: z.string().min(1).max(100_000) });

export class AgentToolRunner {
  constructor(
    private readonly deps: {
      http?: Pick<HttpTool, 'fetch'>;
      shell?: Pick<ShellStepExecutor, 'run'>;
    },
  ) {}

  /**
   * Runs one call. A tool error (refused target, bad arguments, non-zero exit...) is an outcome, fed back to the
   * model; the step's own abort (timeout, cancel, hand-back) is thrown.
   */
  async call(job: StepJob, name: string, args: unknown, signal: AbortSignal): Promise<ToolCallOutcome> {
    try {
      const result = await this.run(job, name, args, signal);
      return { ok: true, result, content: JSON.stringify(modelView(result)) };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const error = toErrorBody(err);
      return { ok: false, error, content: JSON.stringify({ error: { code: error.code, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) } }) };
    }
  }

  private async run(job: StepJob, name: string, args: unknown, signal: AbortSignal): Promise<unknown> {
    if (!(job.tools ?? []).includes(name as AgentToolName)) {
      throw new MuseError('MUSE_ERR_TOOL_FORBIDDEN', `tool "${name}" is not one this step allows (${(job.tools ?? []).join(', ') || 'none'})`, { details: { tool: name, rule: 'step-tools', allowed: job.tools ?? [] } });
    }
    if (name === 'http') {
      if (!this.deps.http) throw new MuseError('MUSE_ERR_INTERNAL', 'this worker has no http tool');
      const req = parseArgs(HttpRequestSchema, args, 'http');
      return this.deps.http.fetch(req, signal);
    }
    if (!this.deps.shell) throw new MuseError('MUSE_ERR_INTERNAL', 'this worker has no shell tool');
    const { command } = parseArgs(ShellArgsSchema, args, 'shell');
    // The step's own job as a shell job: same run workspace and limits, none of a shell step's secrets or network.
    const { tools: _t, maxToolCalls: _m, prompt: _p, secrets: _s, network: _n, ...rest } = job;
    return this.deps.shell.run({ ...rest, kind: 'shell', command }, signal);
  }
}

function parseArgs<T>(schema: z.ZodType<T>, args: unknown, tool: string): T {
  const parsed = schema.safeParse(args);
  if (!parsed.success) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', `invalid arguments for tool "${tool}": ${parsed.error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`).join('; ')}`, {
      details: { tool, issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  return parsed.data;
}

/** An http result for the model: status and body first (what it needs), headers after. */
function modelView(result: unknown): unknown {
  if (result !== null && typeof result === 'object' && 'status' in result && 'body' in result) {
    const r = result as { status: unknown; body: unknown; headers?: unknown; url?: unknown };
    return { status: r.status, body: r.body, url: r.url, headers: r.headers };
  }
  return result;
}
