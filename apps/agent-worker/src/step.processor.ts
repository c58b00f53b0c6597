/**
 * One attempt of one step, from job payload to stored report:
 *
 *   parse -> report `started` -> run (deadline `timeoutMs`) -> upload the
 *   output as a blob -> report `completed` or `failed` -> return
 *
 * The job completes only after the final report is stored in JetStream. A
 * crash anywhere before that leaves the job active; its lock lapses and
 * BullMQ's stalled-job check fails it (a job never runs twice under one
 * attempt number); the coordinator's watch of the attempt sees that and queues
 * the next attempt under the step's retry policy. Reports carry message ids,
 * so a repeated publish is dropped.
 */
import { createHash } from 'node:crypto';
import { StepJobSchema, toErrorBody, MuseError, type AgentOutput, type AttemptSpend, type HttpOutput, type ShellOutput, type StepJob, type StepReport } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { BlobRef } from './artifact.uploader.js';
import { httpOutputArtifact } from './http-step.executor.js';
import { isStepHandedBack } from './step.errors.js';

export type StepKind = StepJob['kind'];

const MAX_TIMER_MS = 2 ** 31 - 1;
/** @see StepProcessorDeps.startedReportDelayMs */
export const DEFAULT_STARTED_REPORT_DELAY_MS = 100;
/** @see StepProcessorDeps.inlineArtifactBytes (the base64 of it stays well under NATS's 1 MiB payload limit) */
export const DEFAULT_INLINE_ARTIFACT_BYTES = 256 * 1024;
export type StepOutcome = 'completed' | 'failed';

export interface StepProcessorDeps {
  agentId: string;
  agent: { run(job: StepJob, signal: AbortSignal): Promise<AgentOutput> };
  shell: { run(job: StepJob, signal: AbortSignal): Promise<ShellOutput> };
  /** Runs `http` tool steps; unset = such a step fails (MUSE_ERR_INTERNAL). */
  http?: { run(job: StepJob, signal: AbortSignal): Promise<HttpOutput> };
  artifacts: { upload(bytes: Uint8Array, mediaType: string): Promise<BlobRef> };
  /** Publishes a report; `report` in the answer, when there is one, is the report stored (a completion too large to send becomes a failure). */
  reports: { publish(report: StepReport): Promise<{ report?: StepReport } | void> };
  /** Aborted (with a StepHandedBackError) when the worker gives its in-flight steps back. */
  handBack?: AbortSignal;
  /** The recorded model calls of a job (`llm-call.json`), taken once the step ran: uploaded with its output. */
  recordings?: { take(job: StepJob): (OutputArtifact & { schema?: string })[] };
  /** The results of the tool calls a job's model made (`tool-calls/NN-<tool>.json`), taken once the step ran: uploaded with its output. */
  toolResults?: { take(job: StepJob): (OutputArtifact & { schema?: string })[] };
  /** What a job's model calls spent, taken once the step ran: a failed attempt reports it (and counts its tokens). */
  spend?: { takeSpent(job: StepJob): AttemptSpend | undefined };
  observer?: StepObserver;
  /**
   * How long a step runs before its `started` report is sent, in ms (MUSE_STARTED_REPORT_DELAY_MS); 0 sends it before
   * the step runs. @default 100
   */
  startedReportDelayMs?: number;
  /**
   * How many bytes of artifacts a report may carry inside it (MUSE_INLINE_ARTIFACT_BYTES), written by the artifact
   * store at commit instead of uploaded first; 0 uploads every one. @default 262144
   */
  inlineArtifactBytes?: number;
  /** Removes secret values from outputs (hence artifacts) and error bodies before they leave the worker. */
  scrubber?: { scrubDeep<T>(value: T): T };
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  now?: () => Date;
}

export interface StepObserver {
  finished(e: { role: string; kind: StepKind; outcome: StepOutcome; durationMs: number; project: string }): void;
  /** Tokens a failed attempt's calls used (a completed agent step's are counted as it completes). */
  tokens?(provider: string, model: string, direction: 'input' | 'output', count: number, project: string): void;
}

/** What a step's output becomes in the artifact store. */
export interface OutputArtifact {
  name: string;
  mediaType: string;
  bytes: Uint8Array;
  /** Producer, for lineage: the tool (`model` with the model as its version, or `shell`). */
  tool: string;
  toolVersion?: string;
  /** Name of the schema the content follows (e.g. `muse.http-response/v1`). */
  schema?: string;
}

export function outputArtifact(kind: StepKind, output: AgentOutput | ShellOutput | HttpOutput): OutputArtifact {
  if (kind === 'http') return httpOutputArtifact(output as HttpOutput);
  return kind === 'agent'
    ? { name: 'response.md', mediaType: 'text/markdown', bytes: Buffer.from((output as AgentOutput).text, 'utf8'), tool: 'model', toolVersion: (output as AgentOutput).model }
    : { name: 'stdout.txt', mediaType: 'text/plain', bytes: Buffer.from((output as ShellOutput).stdout, 'utf8'), tool: 'shell' };
}

export class StepProcessor {
  private readonly now: () => Date;
  /** Steps running now, by run: a run-stop notice aborts them. */
  private readonly running = new Map<string, Set<AbortController>>();

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
      ...(job.index !== undefined ? { index: job.index } : {}),
    };
    const log = { runId: job.runId, stepId: job.stepId, attempt: job.attempt, role: job.role, kind: job.kind };

    // `started` goes out once the step has run for `startedReportDelayMs`: a step that finishes sooner sends one final
    // report carrying `startedAt`, and the coordinator folds one command where it would fold two.
    const startedAt = this.now().toISOString();
    const delay = this.deps.startedReportDelayMs ?? DEFAULT_STARTED_REPORT_DELAY_MS;
    let startedSent: Promise<unknown> | undefined;
    const sendStarted = (): Promise<unknown> => (startedSent ??= this.deps.reports.publish({ ...base, outcome: 'started', at: startedAt }));
    let startedTimer: NodeJS.Timeout | undefined;
    if (delay <= 0) await sendStarted();
    else {
      startedTimer = setTimeout(() => void sendStarted().catch(() => undefined), delay);
      startedTimer.unref();
    }
    this.deps.logger?.info(log, 'step started');

    let report: StepReport & { outcome: StepOutcome };
    /** The step's recorded model calls (`llm-call.json`), uploaded beside its output. */
    let recorded: (OutputArtifact & { schema?: string })[] = [];
    let spent: AttemptSpend | undefined;
    /** The executor returned: an agent step's executor has counted its calls' tokens in the metrics then. */
    let executed = false;
    try {
      const output = this.scrub(
        await this.execute(job).finally(() => {
          recorded = [...(this.deps.recordings?.take(job) ?? []), ...(this.deps.toolResults?.take(job) ?? [])];
          spent = this.deps.spend?.takeSpent(job);
        }),
      );
      executed = true;
      const artifacts = await this.storeAll([outputArtifact(job.kind, output), ...recorded]);
      report = { ...base, outcome: 'completed', at: this.now().toISOString(), output, artifacts };
    } catch (err) {
      if (isStepHandedBack(err)) {
        clearTimeout(startedTimer);
        this.deps.logger?.warn(log, 'step handed back unfinished');
        throw err;
      }
      if (spent && !executed) this.countTokens(spent, job.project);
      report = { ...base, outcome: 'failed', at: this.now().toISOString(), error: this.scrub(toErrorBody(err)), ...(spent ? { spent } : {}) };
    }

    clearTimeout(startedTimer);
    // A `started` already on its way is stored first (a failed publish of it is retried here, before the final one).
    if (startedSent) await startedSent.catch(() => this.deps.reports.publish({ ...base, outcome: 'started', at: startedAt }));
    else report = { ...report, startedAt };
    const stored = (await this.deps.reports.publish(report))?.report;
    if (stored && stored.outcome !== 'started') report = { ...stored, outcome: stored.outcome };
    const durationMs = Date.now() - started;
    this.deps.observer?.finished({ role: job.role, kind: job.kind, outcome: report.outcome, durationMs, project: job.project });
    // Codes and sizes only: prompts and outputs stay out of info logs.
    this.deps.logger?.info(
      { ...log, outcome: report.outcome, durationMs, ...(report.error ? { code: report.error.code } : {}) },
      `step ${report.outcome}`,
    );
    return { kind: job.kind, outcome: report.outcome, report };
  }

  /**
   * The step's artifacts for its report, in order. Small ones travel inside the report (`content`, base64) while
   * they fit `inlineArtifactBytes` all together, and the artifact store writes them when the coordinator commits
   * the report; the rest are uploaded first, side by side.
   */
  private storeAll(list: (OutputArtifact & { schema?: string })[]): Promise<NonNullable<StepReport['artifacts']>> {
    let room = this.deps.inlineArtifactBytes ?? DEFAULT_INLINE_ARTIFACT_BYTES;
    return Promise.all(
      list.map(async (a) => {
        const inline = a.bytes.length <= room;
        if (inline) room -= a.bytes.length;
        const blob = inline
          ? { digest: `sha256:${createHash('sha256').update(a.bytes).digest('hex')}`, size: a.bytes.length, content: Buffer.from(a.bytes).toString('base64') }
          : await this.deps.artifacts.upload(a.bytes, a.mediaType);
        return { name: a.name, ...blob, mediaType: a.mediaType, tool: a.tool, ...(a.toolVersion !== undefined ? { toolVersion: a.toolVersion } : {}), ...(a.schema !== undefined ? { schema: a.schema } : {}) };
      }),
    );
  }

  /**
   * A failed attempt's calls were charged to the budget: its report's `spent` puts them in the run's spend, and this
   * in the token metrics (an executor that threw counted none; one that returned, before an upload failed, did).
   */
  private countTokens(spent: AttemptSpend, project: string): void {
    const provider = spent.provider ?? 'unknown';
    const model = spent.model ?? 'unknown';
    this.deps.observer?.tokens?.(provider, model, 'input', spent.inputTokens, project);
    this.deps.observer?.tokens?.(provider, model, 'output', spent.outputTokens, project);
  }

  private scrub<T>(value: T): T {
    return this.deps.scrubber ? this.deps.scrubber.scrubDeep(value) : value;
  }

  /**
   * The run ended (cancelled, failed, compensating): stop its steps running
   * here. Each then reports a failure the coordinator ignores as stale.
   * @returns how many were stopped
   */
  stopRun(runId: string, status = 'cancelled'): number {
    const set = this.running.get(runId);
    if (!set) return 0;
    for (const c of set) c.abort(new MuseError('MUSE_ERR_RUN_CANCELLED', `run ${runId} is ${status}; step stopped`));
    return set.size;
  }

  /** Runs the step under its deadline (and the worker's hand-back signal, and the run's stop notice). */
  private async execute(job: StepJob): Promise<AgentOutput | ShellOutput | HttpOutput> {
    const stop = new AbortController();
    let set = this.running.get(job.runId);
    if (!set) this.running.set(job.runId, (set = new Set()));
    set.add(stop);
    try {
      return await this.executeUnder(job, stop.signal);
    } finally {
      set.delete(stop);
      if (set.size === 0) this.running.delete(job.runId);
    }
  }

  private async executeUnder(job: StepJob, stopped: AbortSignal): Promise<AgentOutput | ShellOutput | HttpOutput> {
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new MuseError('MUSE_ERR_STEP_TIMEOUT', `step ran past ${job.timeoutMs} ms`)),
      // setTimeout fires at once past 2^31-1 ms (~24.8 days).
      Math.min(job.timeoutMs, MAX_TIMER_MS),
    );
    const signal = AbortSignal.any([deadline.signal, stopped, ...(this.deps.handBack ? [this.deps.handBack] : [])]);
    try {
      if (job.kind === 'http') {
        if (!this.deps.http) throw new MuseError('MUSE_ERR_INTERNAL', `this worker cannot run http step "${job.stepId}"`);
        return await this.deps.http.run(job, signal);
      }
      return job.kind === 'agent' ? await this.deps.agent.run(job, signal) : await this.deps.shell.run(job, signal);
    } finally {
      clearTimeout(timer);
    }
  }
}
