/**
 * What a remote agent's `complete` and `fail` become: the step's output (the
 * same shape a local worker reports, so templates such as
 * `steps.<id>.output.text` read the same), its artifact, and the error body.
 * Pure functions: unit-tested without a server.
 */
import { ERROR_CATALOGUE, MuseError, type AgentOutput, type ErrorBody, type MuseErrorCode, type RemoteAgentClientMessage, type ShellOutput, type StepJob } from '@muse/contracts';

export type RemoteOutput = Extract<RemoteAgentClientMessage, { type: 'complete' }>['output'];
export type RemoteError = Extract<RemoteAgentClientMessage, { type: 'fail' }>['error'];
export type RemoteUsage = NonNullable<Extract<RemoteAgentClientMessage, { type: 'fail' }>['usage']>;

/** The model a remote agent step reports when the agent names none: the step's, else this. */
export const REMOTE_MODEL = 'remote';

/**
 * Agent steps: `{text, model, usage}` (plus `exitCode` when the agent sent one); every other kind is run like a
 * shell step: `{exitCode, stdout, stderr}`.
 */
export function remoteStepOutput(job: Pick<StepJob, 'kind' | 'model'>, out: RemoteOutput): AgentOutput | ShellOutput {
  if (job.kind === 'agent') {
    return {
      text: out.text,
      model: out.model ?? job.model ?? REMOTE_MODEL,
      usage: out.usage ?? { inputTokens: 0, outputTokens: 0 },
      ...(out.exitCode !== undefined ? { exitCode: out.exitCode } : {}),
    } as AgentOutput;
  }
  return { exitCode: out.exitCode ?? 0, stdout: out.text, stderr: out.stderr ?? '' };
}

/** The step's output artifact; the producer's tool is `remote-agent`, its version the agent's name. */
export function remoteOutputArtifact(job: Pick<StepJob, 'kind'>, out: RemoteOutput, agentName: string): { name: string; mediaType: string; bytes: Uint8Array; tool: string; toolVersion: string } {
  return job.kind === 'agent'
    ? { name: 'response.md', mediaType: 'text/markdown', bytes: Buffer.from(out.text, 'utf8'), tool: 'remote-agent', toolVersion: agentName }
    : { name: 'stdout.txt', mediaType: 'text/plain', bytes: Buffer.from(out.text, 'utf8'), tool: 'remote-agent', toolVersion: agentName };
}

/**
 * A `fail` as the step's error: a catalogue code is kept (with the agent's retryability, else the catalogue's);
 * anything else becomes `MUSE_ERR_AGENT_FAILED` with the agent's code in `details.agentCode`.
 */
export function remoteFailure(err: RemoteError): ErrorBody {
  const known = err.code !== undefined && err.code in ERROR_CATALOGUE ? (err.code as MuseErrorCode) : undefined;
  const code = known ?? 'MUSE_ERR_AGENT_FAILED';
  const details = known ? err.details : { ...(err.code !== undefined ? { agentCode: err.code } : {}), ...(err.details !== undefined ? { agent: err.details } : {}) };
  return new MuseError(code, err.message || ERROR_CATALOGUE[code].message, {
    ...(err.retryable !== undefined ? { retryable: err.retryable } : {}),
    ...(details !== undefined && !(typeof details === 'object' && details !== null && Object.keys(details).length === 0) ? { details } : {}),
  }).toWire();
}
