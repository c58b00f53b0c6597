/**
 * Submitting and cancelling runs. A run is accepted only once JetStream has
 * stored its command: the 202 is a promise that the run will happen.
 */
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Counter } from 'prom-client';
import {
  MuseError,
  isTerminalRunStatus,
  stepNeeds,
  type Command,
  type RunEvent,
  type RunStatus,
  type RunView,
  type WorkflowDefinition,
  type WorkflowRef,
} from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import { MuseMetrics, SpanKind, contextFromTraceparent, traceparentOf, withSpan } from '@muse/telemetry';
import { topologicalOrder } from '@muse/engine';
import type { Caller } from '../caller/caller.js';
import { AGENT_REGISTRY, BUS, type AgentRegistryReader } from '../gateway.tokens.js';
import { explainUnservedSteps } from './unserved-steps.js';
import { WorkflowRegistry } from '../workflows/workflow-registry.service.js';
import { assertSameRequest, bodyDigest, idempotencyMsgId, type IdempotencyRecord } from './idempotency.js';
import { newRunId } from './run-id.js';
import { RunStore, type RunListFilter, type RunSummary } from './run-store.service.js';
import { checkRunInput, initialRunView, parseSubmitBody, submitCommand, type NewRun, type SubmitRequest } from './submit-run.js';
import { publishCommand } from './publish-command.js';

export interface Submission {
  body: unknown;
  idempotencyKey?: string;
  traceparent?: string;
}

export interface Accepted {
  id: string;
  status: RunStatus;
}

@Injectable()
export class RunsService {
  private readonly submitted: Counter;

  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(RunStore) private readonly store: RunStore,
    @Inject(WorkflowRegistry) private readonly registry: WorkflowRegistry,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Optional() @Inject(AGENT_REGISTRY) private readonly agents?: AgentRegistryReader,
  ) {
    this.submitted = metrics.counter('muse_gateway_runs_submitted_total', 'Runs accepted (JetStream acked), replays not counted, by project', ['project']);
  }

  async submit(caller: Caller, sub: Submission): Promise<Accepted> {
    const request = parseSubmitBody(sub.body);
    const key = sub.idempotencyKey;
    const digest = bodyDigest(sub.body);
    if (key !== undefined) {
      const seen = await this.store.getIdempotency(caller.project, key);
      if (seen) return this.replay(caller, sub, request, seen, digest, key);
    }
    const { ref, definition } = await this.resolve(caller.project, request);
    checkRunInput(definition, request.input);
    const runId = newRunId();
    if (key !== undefined) {
      const claimed = await this.store.claimIdempotency(caller.project, key, { runId, bodyDigest: digest });
      if (!claimed) {
        // Another request with the same key got there between our read and our claim.
        const seen = await this.store.getIdempotency(caller.project, key);
        if (!seen) throw new MuseError('MUSE_ERR_UNAVAILABLE', 'The idempotency key is being claimed; retry');
        return this.replay(caller, sub, request, seen, digest, key);
      }
    }
    await this.accept({ runId, project: caller.project, workflow: ref, definition, input: request.input, at: new Date().toISOString(), ...extras(sub), ...(request.priority !== undefined ? { priority: request.priority } : {}) });
    this.submitted.inc({ project: caller.project });
    return { id: runId, status: 'pending' };
  }

  /**
   * A key seen before. Same body: the same run, answered as the first time.
   * If that first request never got as far as writing the run (its publish
   * failed, or it is still in flight), finish its work now under the same
   * run id and message id: JetStream keeps only one of the two publishes.
   */
  private async replay(caller: Caller, sub: Submission, request: SubmitRequest, seen: IdempotencyRecord, digest: string, key: string): Promise<Accepted> {
    assertSameRequest(seen, digest, key);
    if (!(await this.store.exists(seen.runId))) {
      const { ref, definition } = await this.resolve(caller.project, request);
      checkRunInput(definition, request.input);
      await this.accept({ runId: seen.runId, project: caller.project, workflow: ref, definition, input: request.input, at: new Date().toISOString(), ...extras(sub), ...(request.priority !== undefined ? { priority: request.priority } : {}) });
    }
    return { id: seen.runId, status: 'pending' };
  }

  /** Publishes the submission, waits for JetStream's ack, then writes the first view. */
  private async accept(run: NewRun): Promise<void> {
    const msgId = run.idempotencyKey !== undefined ? idempotencyMsgId(run.project, run.idempotencyKey) : run.runId;
    // The root of the run's trace (or a child of the caller's `traceparent`); the command stores its context with the run.
    const attributes = { 'muse.run_id': run.runId, 'muse.project': run.project, 'muse.workflow': run.workflow.name };
    await withSpan('muse.run.submit', { kind: SpanKind.SERVER, parent: contextFromTraceparent(run.traceparent), attributes }, async () => {
      const traceparent = traceparentOf() ?? run.traceparent;
      await this.publish(submitCommand({ ...run, ...(traceparent !== undefined ? { traceparent } : {}) }), msgId);
      await this.store.writeInitial(initialRunView(run));
    });
  }

  /** The workflow version a run is pinned to; an inline definition is registered like any other. */
  private async resolve(project: string, request: SubmitRequest): Promise<{ ref: WorkflowRef; definition: WorkflowDefinition }> {
    if (request.kind === 'inline') {
      const reg = await this.registry.register(project, request.definition);
      return { ref: { name: reg.name, version: reg.version }, definition: request.definition };
    }
    const stored = await this.registry.resolve(project, request.workflow, request.version);
    return { ref: { name: stored.name, version: stored.version }, definition: stored.definition };
  }

  /**
   * A new run of the same workflow version and input, linked to `runId`: the
   * steps before `fromStep` (not it, nor any step that needs it, directly or
   * not) are not run again; their outputs are reused.
   */
  async rerun(caller: Caller, runId: string, fromStep: string): Promise<Accepted> {
    const view = await this.get(caller, runId);
    const stored = await this.registry.resolve(caller.project, view.workflow.name, view.workflow.version);
    const definition = stored.definition;
    if (!definition.steps.some((s) => s.id === fromStep)) {
      const message = `run ${runId} (workflow ${view.workflow.name} v${view.workflow.version}) has no step "${fromStep}"`;
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `The rerun is invalid: ${message}`, { details: { issues: [{ path: 'fromStep', field: 'fromStep', message }] } });
    }
    const again = new Set([fromStep]);
    for (const id of topologicalOrder(definition)) {
      const def = definition.steps.find((s) => s.id === id)!;
      if (stepNeeds(def).some((n) => again.has(n))) again.add(id);
    }
    const outputs: Record<string, unknown> = {};
    for (const s of view.steps) {
      if (!again.has(s.id) && s.status === 'succeeded' && definition.steps.some((d) => d.id === s.id)) outputs[s.id] = s.output ?? null;
    }
    const newId = newRunId();
    await this.accept({ runId: newId, project: caller.project, workflow: view.workflow, definition, input: view.input, at: new Date().toISOString(), rerunOf: { runId, fromStep, outputs } });
    this.submitted.inc({ project: caller.project });
    return { id: newId, status: 'pending' };
  }

  /** Accepts a run built elsewhere (a replay): published, its initial view written, counted. */
  async acceptBuilt(run: NewRun): Promise<Accepted> {
    await this.accept(run);
    this.submitted.inc({ project: run.project });
    return { id: run.runId, status: 'pending' };
  }

  async get(caller: Caller, runId: string): Promise<RunView> {
    const view = await this.store.find(caller.project, runId);
    if (!view) throw runNotFound(runId);
    // A step that requires capabilities no live agent has says so (it waits in its queue for such an agent).
    if (this.agents && view.steps.some((s) => s.status === 'queued' && s.queue !== undefined)) {
      return explainUnservedSteps(view, (await this.agents.read()).heartbeats, Date.now(), this.agents.ttlMs);
    }
    return view;
  }

  list(caller: Caller, filter: RunListFilter): Promise<{ items: RunSummary[]; nextCursor?: string }> {
    return this.store.list(caller.project, filter);
  }

  async events(caller: Caller, runId: string): Promise<RunEvent[]> {
    await this.get(caller, runId);
    const { events } = await this.bus.readRunEvents(runId);
    return events;
  }

  /** Asks the coordinator to cancel; the answer carries the status the run has now. */
  async cancel(caller: Caller, runId: string, reason: string | undefined, compensate?: boolean): Promise<Accepted> {
    const view = await this.get(caller, runId);
    if (isTerminalRunStatus(view.status)) {
      throw new MuseError('MUSE_ERR_RUN_TERMINAL', `Run ${runId} has already ${view.status === 'succeeded' ? 'succeeded' : view.status === 'failed' ? 'failed' : 'been cancelled'}`, {
        details: { id: runId, status: view.status },
      });
    }
    // No message id: a cancel is idempotent at the coordinator, and a retried
    // cancel must not be dropped as a duplicate of one that came too early.
    await this.publish({ kind: 'run-cancel', runId, project: caller.project, ...(reason !== undefined ? { reason } : {}), ...(compensate ? { compensate: true } : {}) });
    return { id: runId, status: view.status };
  }

  private publish(cmd: Command, msgId?: string): Promise<void> {
    return publishCommand(this.bus, cmd, msgId);
  }
}

export function runNotFound(runId: string): MuseError {
  return new MuseError('MUSE_ERR_RUN_NOT_FOUND', `No run "${runId}"`, { details: { id: runId } });
}

function extras(sub: Submission): { idempotencyKey?: string; traceparent?: string } {
  return {
    ...(sub.idempotencyKey !== undefined ? { idempotencyKey: sub.idempotencyKey } : {}),
    ...(sub.traceparent !== undefined ? { traceparent: sub.traceparent } : {}),
  };
}
