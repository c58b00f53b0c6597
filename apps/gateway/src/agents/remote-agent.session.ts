/**
 * One remote agent, as the gateway holds it: its identity, its connection
 * (absent while it is away), the BullMQ workers that take its roles' step jobs
 * for it, and its open assignments.
 *
 * An assignment is a step job held active by the gateway's worker for the
 * agent: BullMQ renews the job's lock while the assignment is open, whatever
 * the agent does. The gateway reports `started`, `completed` or `failed` to the
 * coordinator exactly as a local worker does (same message ids), uploads the
 * output to the artifact store, and completes the job only after the final
 * report is stored.
 *
 * Disconnect: the workers stop taking jobs, and the open assignments wait
 * `graceMs` for the agent to come back with the same `agentId` (they are sent
 * again); past that they fail as `MUSE_ERR_AGENT_DISCONNECTED` (retryable), so
 * the coordinator queues the next attempt for any agent of the role.
 *
 * Tenancy: a job of a project the agent's key does not cover goes back to
 * the queue untouched (delayed a little, `DelayedError`: no attempt counted),
 * for an agent of its own project or a local worker.
 */
import type { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import {
  ALL_PROJECTS,
  MuseError,
  StepJobSchema,
  queueRolesFor,
  toErrorBody,
  type AttemptSpend,
  type ErrorBody,
  type MuseNames,
  type RemoteAgentServerMessage,
  type RemoteAssignment,
  type StepJob,
  type StepProgress,
  type StepReport,
} from '@muse/contracts';
import type { BlobRef } from '@muse/messaging';
import { DelayedError, createStepWorker, type Job, type Processor, type Worker } from '@muse/queues';
import type { Logger } from '@muse/telemetry';
import { remoteFailure, remoteOutputArtifact, remoteStepOutput, type RemoteError, type RemoteOutput, type RemoteUsage } from './remote-agent.output.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RemoteAgentIdentity {
  agentId: string;
  /** `key:<id>` or `jwt:<sub>`: only the same credential may resume this agent. */
  principal: string;
  /** Whose jobs it is handed. */
  projects: readonly string[] | typeof ALL_PROJECTS;
  name: string;
  roles: string[];
  capabilities: string[];
  /** Assignments at once, per role. */
  concurrency: number;
  /** Where it connects from, as the gateway sees it. */
  address: string;
}

export interface AgentCounts {
  inFlight: number;
  completed: number;
  failed: number;
}

export interface RemoteAgentSessionDeps {
  /** A blocking Redis connection (BullMQ workers). */
  connection: Redis;
  names: MuseNames;
  reports: { publish(report: StepReport): Promise<unknown> };
  artifacts: { upload(bytes: Uint8Array, mediaType: string): Promise<BlobRef> };
  progress(p: StepProgress): void;
  /** Starts beating for the agent; the returned stop deregisters it. */
  beat(identity: RemoteAgentIdentity, counts: () => AgentCounts): { stop(): Promise<void> };
  /** How long open assignments wait for a reconnect, in ms. */
  graceMs: number;
  /** BullMQ lock of a job held for the agent (renewed by the worker while the assignment is open), in ms. */
  lockDurationMs: number;
  /** How long a job of another project is put back for before any worker may take it again, in ms. */
  foreignDelayMs: number;
  observer?: { finished(role: string, outcome: 'completed' | 'failed'): void };
  logger: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** @internal for tests: makes the BullMQ worker of one role. @default createStepWorker on `connection` */
  createWorker?: (role: string, processor: Processor<StepJob>, opts: { concurrency: number; lockDurationMs: number }) => Pick<Worker<StepJob>, 'on' | 'close'>;
  /** The session ended (grace over, or the gateway is closing): forget it. */
  onEnd(agentId: string): void;
}

type Result = { ok: true; output: RemoteOutput } | { ok: false; error: ErrorBody; spent?: AttemptSpend };

interface OpenAssignment {
  message: RemoteAssignment;
  job: StepJob;
  chunk: number;
  settle(r: Result): void;
  deadline: NodeJS.Timeout;
}

export function coversProject(projects: RemoteAgentIdentity['projects'], project: string): boolean {
  return projects === ALL_PROJECTS || projects.includes(project);
}

export class RemoteAgentSession {
  private ws: WebSocket | undefined;
  private workers: Pick<Worker<StepJob>, 'on' | 'close'>[] = [];
  private readonly open = new Map<string, OpenAssignment>();
  private readonly counts: AgentCounts = { inFlight: 0, completed: 0, failed: 0 };
  private grace: NodeJS.Timeout | undefined;
  private heartbeat: { stop(): Promise<void> } | undefined;
  private ended = false;

  constructor(
    public identity: RemoteAgentIdentity,
    private readonly deps: RemoteAgentSessionDeps,
  ) {}

  get agentId(): string {
    return this.identity.agentId;
  }

  /** Over: its assignments were failed and it was deregistered; a reconnect with its id starts a new session. */
  get finished(): boolean {
    return this.ended;
  }

  get connected(): boolean {
    return this.ws !== undefined;
  }

  /** Assignment ids still open. */
  assignments(): string[] {
    return [...this.open.keys()];
  }

  /**
   * The agent is (back) on `ws`: welcome it, send its open assignments again and take jobs for its roles. A
   * connection already attached (the agent reconnected before the old one was seen to drop) is closed.
   */
  attach(ws: WebSocket, identity: RemoteAgentIdentity, heartbeatMs: number): void {
    if (this.ws && this.ws !== ws) this.ws.close(4000, 'replaced by a new connection of the same agent');
    if (this.grace) clearTimeout(this.grace);
    this.grace = undefined;
    const changed = identity.roles.join() !== this.identity.roles.join() || identity.concurrency !== this.identity.concurrency;
    const described = changed || identity.name !== this.identity.name || identity.capabilities.join() !== this.identity.capabilities.join();
    this.identity = identity;
    this.ws = ws;
    const resumed = this.assignments();
    this.send({ type: 'welcome', agentId: identity.agentId, projects: identity.projects === ALL_PROJECTS ? [ALL_PROJECTS] : [...identity.projects], heartbeatMs, graceMs: this.deps.graceMs, resumed });
    for (const a of this.open.values()) this.send(a.message);
    // The registry entry lives on across a reconnect (it was kept through the grace period); a new description replaces
    // it once the old one is removed, so the removal cannot land after the new entry.
    if (!this.heartbeat) this.heartbeat = this.deps.beat(identity, () => ({ ...this.counts }));
    else if (described) {
      const previous = this.heartbeat;
      this.heartbeat = undefined;
      void previous
        .stop()
        .catch(() => undefined)
        .then(() => {
          if (!this.ended && !this.heartbeat) this.heartbeat = this.deps.beat(this.identity, () => ({ ...this.counts }));
        });
    }
    if (changed || this.workers.length === 0) this.startWorkers();
    this.deps.logger.info({ agentId: identity.agentId, name: identity.name, roles: identity.roles, concurrency: identity.concurrency, resumed: resumed.length }, 'remote agent connected');
  }

  /** The connection dropped: stop taking jobs; the open assignments wait `graceMs` for the agent to come back. */
  detach(ws: WebSocket): void {
    if (this.ws !== ws || this.ended) return;
    this.ws = undefined;
    this.stopWorkers();
    this.deps.logger.warn({ agentId: this.agentId, open: this.open.size, graceMs: this.deps.graceMs }, 'remote agent disconnected; holding its assignments for the grace period');
    this.grace = setTimeout(() => {
      this.grace = undefined;
      void this.end(new MuseError('MUSE_ERR_AGENT_DISCONNECTED', `remote agent ${this.agentId} disconnected and did not come back within ${this.deps.graceMs} ms`));
    }, this.deps.graceMs);
    this.grace.unref();
  }

  /**
   * Fails every open assignment with `reason` (its reports are stored before this resolves), stops taking jobs,
   * deregisters the agent and closes its connection.
   */
  async end(reason: MuseError, closeCode = 1001): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.grace) clearTimeout(this.grace);
    const workers = this.workers;
    this.workers = [];
    for (const [id, a] of this.open) {
      this.send({ type: 'cancel', assignmentId: id, reason: reason.message });
      a.settle({ ok: false, error: reason.toWire() });
    }
    // Closing waits for the processors, which publish the failure reports.
    await Promise.all(workers.map((w) => w.close().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'closing a remote agent worker'))));
    await this.heartbeat?.stop().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'deregistering a remote agent'));
    this.ws?.close(closeCode, reason.message.slice(0, 120));
    this.ws = undefined;
    this.deps.onEnd(this.agentId);
    this.deps.logger.info({ agentId: this.agentId, code: reason.code }, 'remote agent session ended');
  }

  /** The run ended: its assignments here stop (the coordinator ignores their late reports). @returns how many */
  stopRun(runId: string, status: string): number {
    let n = 0;
    for (const [id, a] of this.open) {
      if (a.job.runId !== runId) continue;
      const err = new MuseError('MUSE_ERR_RUN_CANCELLED', `run ${runId} is ${status}; step stopped`);
      this.send({ type: 'cancel', assignmentId: id, reason: err.message });
      a.settle({ ok: false, error: err.toWire() });
      n++;
    }
    return n;
  }

  progress(assignmentId: string, text: string): boolean {
    const a = this.open.get(assignmentId);
    if (!a) return false;
    if (text.length > 0) {
      const j = a.job;
      this.deps.progress({ project: j.project, runId: j.runId, stepId: j.stepId, attempt: j.attempt, chunk: ++a.chunk, text });
    }
    return true;
  }

  complete(assignmentId: string, output: RemoteOutput): boolean {
    const a = this.open.get(assignmentId);
    if (!a) return false;
    a.settle({ ok: true, output });
    return true;
  }

  /** @param usage what the agent's model calls spent before it failed (agent steps: counted in the run's spend) */
  fail(assignmentId: string, error: RemoteError, usage?: RemoteUsage): boolean {
    const a = this.open.get(assignmentId);
    if (!a) return false;
    a.settle({ ok: false, error: remoteFailure(error), ...(usage !== undefined && a.job.kind === 'agent' ? { spent: usage } : {}) });
    return true;
  }

  send(msg: RemoteAgentServerMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private startWorkers(): void {
    this.stopWorkers();
    for (const role of this.identity.roles) {
      const opts = { concurrency: this.identity.concurrency, lockDurationMs: this.deps.lockDurationMs };
      const processor: Processor<StepJob> = (job, token) => this.process(role, job, token);
      // The role's own queue, and one per subset of the declared capabilities (steps that require them).
      for (const queue of queueRolesFor(role, this.identity.capabilities)) {
        const worker = this.deps.createWorker ? this.deps.createWorker(queue, processor, opts) : createStepWorker(this.deps.connection, this.deps.names, queue, processor, opts);
        worker.on('failed', (job, err) => this.deps.logger.error({ agentId: this.agentId, role, queue, jobId: job?.id, err: err.message }, 'remote step job failed (no final report stored)'));
        worker.on('error', (err) => this.deps.logger.warn({ agentId: this.agentId, role, queue, err: err.message }, 'remote agent worker error'));
        this.workers.push(worker);
      }
    }
  }

  /** Stops taking jobs; the jobs held now stay held (their locks renewed) until their assignments settle. */
  private stopWorkers(): void {
    const workers = this.workers;
    this.workers = [];
    for (const w of workers) void w.close().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'closing a remote agent worker'));
  }

  private async process(role: string, job: Pick<Job<StepJob>, 'id' | 'data' | 'moveToDelayed'>, token: string | undefined): Promise<{ outcome: 'completed' | 'failed' }> {
    const data = StepJobSchema.parse(job.data);
    if (!coversProject(this.identity.projects, data.project)) {
      // Not this agent's tenant: back to the queue untouched (a DelayedError counts no attempt and fails nothing).
      await job.moveToDelayed(Date.now() + this.deps.foreignDelayMs, token);
      throw new DelayedError();
    }
    const id = job.id ?? `${data.runId}.${data.stepId}.${data.attempt}`;
    const base = {
      kind: 'step-report' as const,
      runId: data.runId,
      project: data.project,
      stepId: data.stepId,
      attempt: data.attempt,
      agentId: this.agentId,
      ...(data.index !== undefined ? { index: data.index } : {}),
    };
    // What the assignment protocol cannot carry (an http step's request, an agent step's tools) fails clearly and
    // for good, rather than reaching an agent that would run something else.
    const unsupported = data.kind === 'http' ? 'http steps' : data.tools?.length ? 'agent steps with tools' : undefined;
    if (unsupported !== undefined) {
      await this.deps.reports.publish({
        ...base,
        outcome: 'failed',
        at: new Date().toISOString(),
        error: { code: 'MUSE_ERR_AGENT_FAILED', message: `remote agents do not run ${unsupported}; serve role "${role}" with a local agent worker for them`, retryable: false, details: { kind: data.kind } },
      });
      return { outcome: 'failed' };
    }
    await this.deps.reports.publish({ ...base, outcome: 'started', at: new Date().toISOString() });
    this.counts.inFlight++;
    const log = { agentId: this.agentId, runId: data.runId, stepId: data.stepId, attempt: data.attempt, role };
    try {
      const result = await this.assign(id, role, data);
      let report: StepReport;
      if (result.ok) {
        try {
          const output = remoteStepOutput(data, result.output);
          const artifact = remoteOutputArtifact(data, result.output, this.identity.name);
          const blob = await this.deps.artifacts.upload(artifact.bytes, artifact.mediaType);
          report = {
            ...base,
            outcome: 'completed',
            at: new Date().toISOString(),
            output,
            artifacts: [{ name: artifact.name, digest: blob.digest, size: blob.size, mediaType: artifact.mediaType, tool: artifact.tool, toolVersion: artifact.toolVersion }],
          };
        } catch (err) {
          report = { ...base, outcome: 'failed', at: new Date().toISOString(), error: toErrorBody(err) };
        }
      } else {
        report = { ...base, outcome: 'failed', at: new Date().toISOString(), error: result.error, ...(result.spent ? { spent: result.spent } : {}) };
      }
      await this.deps.reports.publish(report);
      const outcome = report.outcome === 'completed' ? 'completed' : 'failed';
      if (outcome === 'completed') this.counts.completed++;
      else this.counts.failed++;
      this.deps.observer?.finished(role, outcome);
      this.send({ type: 'ack', assignmentId: id });
      this.deps.logger.info({ ...log, outcome, ...(report.error ? { code: report.error.code } : {}) }, `remote step ${outcome}`);
      return { outcome };
    } finally {
      this.counts.inFlight--;
    }
  }

  /** Hands the job to the agent (now, or when it comes back) and waits for its answer, the deadline or the end. */
  private assign(id: string, role: string, job: StepJob): Promise<Result> {
    return new Promise<Result>((resolve) => {
      const timeoutMs = Math.min(job.timeoutMs, MAX_TIMER_MS);
      const message: RemoteAssignment = {
        type: 'assign',
        assignmentId: id,
        job: {
          runId: job.runId,
          project: job.project,
          stepId: job.stepId,
          attempt: job.attempt,
          ...(job.index !== undefined ? { index: job.index } : {}),
          role,
          kind: job.kind,
          ...(job.prompt !== undefined ? { prompt: job.prompt } : {}),
          ...(job.command !== undefined ? { command: job.command } : {}),
          ...(job.model !== undefined ? { model: job.model } : {}),
          ...(job.seed !== undefined ? { seed: job.seed } : {}),
          timeoutMs: job.timeoutMs,
        },
        deadline: new Date(Date.now() + timeoutMs).toISOString(),
      };
      const a: OpenAssignment = {
        message,
        job,
        chunk: 0,
        settle: (r) => {
          if (this.open.get(id) !== a) return;
          this.open.delete(id);
          clearTimeout(a.deadline);
          resolve(r);
        },
        deadline: setTimeout(() => {
          const err = new MuseError('MUSE_ERR_STEP_TIMEOUT', `step ran past ${job.timeoutMs} ms`);
          this.send({ type: 'cancel', assignmentId: id, reason: err.message });
          a.settle({ ok: false, error: err.toWire() });
        }, timeoutMs),
      };
      this.open.set(id, a);
      if (this.ended) {
        a.settle({ ok: false, error: new MuseError('MUSE_ERR_AGENT_DISCONNECTED', `remote agent ${this.agentId} is gone`).toWire() });
        return;
      }
      this.send(message);
    });
  }
}
