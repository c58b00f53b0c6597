/**
 * Runs an `http` tool step: the job's rendered request through the HttpTool,
 * its `{status, headers, body, url}` the step's output (and, through the
 * step processor, its `response.json` artifact).
 */
import { MuseError, type HttpOutput, type StepJob } from '@muse/contracts';
import { SpanKind, withSpan } from '@muse/telemetry';
import { HTTP_OUTPUT_SCHEMA, HTTP_TOOL_VERSION, type HttpTool } from './http-tool.js';
import { isStepHandedBack } from './step.errors.js';

export class HttpStepExecutor {
  constructor(private readonly tool: Pick<HttpTool, 'fetch'>) {}

  async run(job: StepJob, signal: AbortSignal): Promise<HttpOutput> {
    if (job.request === undefined) throw new MuseError('MUSE_ERR_REQUEST_INVALID', `http step "${job.stepId}" has no request`);
    const request = job.request;
    return withSpan('muse.tool.http', { kind: SpanKind.CLIENT, attributes: { 'muse.tool': 'http', 'muse.step_id': job.stepId, 'http.request.method': request.method } }, async (span) => {
      try {
        const out = await this.tool.fetch(request, signal);
        span.setAttribute('http.response.status_code', out.status);
        return out;
      } catch (err) {
        if (signal.aborted) {
          if (isStepHandedBack(signal.reason)) throw signal.reason;
          if (signal.reason instanceof MuseError && signal.reason.code !== 'MUSE_ERR_STEP_TIMEOUT') throw signal.reason;
          throw new MuseError('MUSE_ERR_STEP_TIMEOUT', `http step "${job.stepId}" ran past ${job.timeoutMs} ms`, { details: { timeoutMs: job.timeoutMs }, cause: err });
        }
        throw err;
      }
    });
  }
}

/** An http step's output as its artifact: `response.json`, made by the http tool at its version, schema `muse.http-response/v1`. */
export function httpOutputArtifact(output: HttpOutput): { name: string; mediaType: string; bytes: Uint8Array; tool: string; toolVersion: string; schema: string } {
  return { name: 'response.json', mediaType: 'application/json', bytes: Buffer.from(JSON.stringify(output, null, 2), 'utf8'), tool: 'http', toolVersion: HTTP_TOOL_VERSION, schema: HTTP_OUTPUT_SCHEMA };
}
