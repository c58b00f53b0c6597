/**
 * One attempt of one step, from job payload to stored report:
 *
 *   parse -> report `started` -> run (deadline `timeoutMs`) -> upload the
 *   output as a blob -> report `completed` or `failed` -> return
 *
 * The job completes only after the final report is stored in JetStream. A
 * crash anywhere before that leaves the job active; its lock lapses, BullMQ's
 * stalled-job check gives it to another worker, which runs it again. Reports
 * carry message ids, so the duplicates that re-run produces are dropped.
 */
import { StepJobSchema, toErrorBody, MuseError, type AgentOutput, type ShellOutput, type StepJob, type StepReport } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { BlobRef } from './artifact.uploader.js';
import { isStepHandedBack } from './step.errors.js';

export type StepKind = StepJob['kind'];

const MAX_TIMER_MS = 2 ** 31 - 1;
export type StepOutcome = 'completed' | 'failed';

export interface StepProcessorDeps {
  agentId: string;
  agent: { run(job: StepJob, signal: AbortSignal): Promise<AgentOutput> };
  shell: { run(job: StepJob, signal: AbortSignal): Promise<ShellOutput> };
  artifacts: { upload(bytes: Uint8Array, mediaType: string): Promise<BlobRef> };
  reports: { publish(report: StepReport): Promise<unknown> };
  /** Aborted (with a StepHandedBackError) when the worker gives its in-flight steps back. */
  handBack?: AbortSignal;
  observer?: StepObserver;
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  now?: () => Date;
}

export interface StepObserver {
  finished(e: { role: string; kind: StepKind; outcome: StepOutcome; durationMs: number }): void;
}

/** What a step's output becomes in the artifact store. */
export interface OutputArtifact {
  name: string;
  mediaType: string;
  bytes: Uint8Array;
}

export function outputArtifact(kind: StepKind, output: AgentOutput | ShellOutput): OutputArtifact {
  return kind === 'agent'
    ? { name: 'response.md', mediaType: 'text/markdown', bytes: Buffer.from((output as AgentOutput).text, 'utf8') }
    : { name: 'stdout.txt', mediaType: 'text/plain', bytes: Buffer.from((output as ShellOutput).stdout, 'utf8') };
}

export class StepProcessor {
  private readonly now: () => Date;

  constructor(private readonly deps: StepProcessorDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** @returns the outcome reported; throws when the payload is invalid, a report could not be stored, or the step was handed back. */
  async process(data: unknown): Promise<{ kind: StepKind; outcome: StepOutcome; report: StepReport }> {
    const job = StepJobSchema.parse(data);
    const started = Date.now();
    const base = {
      kind: 'step-report' as const,
      runId: job.runId,
      project: job.project,
      stepId: job.stepId,
      attempt: job.attempt,
      agentId: this.deps.agentId,
    };
    const log = { runId: job.runId, stepId: job.stepId, attempt: job.attempt, role: job.role, kind: job.kind };

    await this.deps.reports.publish({ ...base, outcome: 'started', at: this.now().toISOString() });
    this.deps.logger?.info(log, 'step started');

    let report: StepReport & { outcome: StepOutcome };
    try {
      const output = await this.execute(job);
      const artifact = outputArtifact(job.kind, output);
      const blob = await this.deps.artifacts.upload(artifact.bytes, artifact.mediaType);
      report = {
        ...base,
        outcome: 'completed',
        at: this.now().toISOString(),
        output,
        artifacts: [{ name: artifact.name, digest: blob.digest, size: blob.size, mediaType: artifact.mediaType }],
      };
    } catch (err) {
      if (isStepHandedBack(err)) {
        this.deps.logger?.warn(log, 'step handed back unfinished');
        throw err;
      }
      report = { ...base, outcome: 'failed', at: this.now().toISOString(), error: toErrorBody(err) };
    }

    await this.deps.reports.publish(report);
    const durationMs = Date.now() - started;
    this.deps.observer?.finished({ role: job.role, kind: job.kind, outcome: report.outcome, durationMs });
    // Codes and sizes only: prompts and outputs stay out of info logs.
    this.deps.logger?.info(
      { ...log, outcome: report.outcome, durationMs, ...(report.error ? { code: report.error.code } : {}) },
      `step ${report.outcome}`,
    );
    return { kind: job.kind, outcome: report.outcome, report };
  }

  /** Runs the step under its deadline (and the worker's hand-back signal). */
  private async execute(job: StepJob): Promise<AgentOutput | ShellOutput> {
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new MuseError('MUSE_ERR_STEP_TIMEOUT', `step ran past ${job.timeoutMs} ms`)),
      // setTimeout fires at once past 2^31-1 ms (~24.8 days).
      Math.min(job.timeoutMs, MAX_TIMER_MS),
    );
    const signal = this.deps.handBack ? AbortSignal.any([deadline.signal, this.deps.handBack]) : deadline.signal;
    try {
      return job.kind === 'agent' ? await this.deps.agent.run(job, signal) : await this.deps.shell.run(job, signal);
    } finally {
      clearTimeout(timer);
    }
  }
}
