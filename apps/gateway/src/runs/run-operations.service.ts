/**
 * Operations on a run in flight: approval decisions, pause, resume and
 * retry. Each is checked against the run's current view (for a clear 409
 * rather than a silent no-op) and then published as a command; the
 * coordinator folds it, and a command that no longer applies by then (a
 * decision on a gate already decided, a pause of a run that just finished)
 * changes nothing.
 */
import { CONCURRENCY_REASON_PREFIX, LEASE_REASON_PREFIX } from '@muse/engine';
import { Inject, Injectable } from '@nestjs/common';
import { compensatedStep, isTerminalRunStatus, MuseError, type Command, type RunStatus } from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import type { Caller } from '../caller/caller.js';
import { BUS } from '../gateway.tokens.js';
import { RunsService } from './runs.service.js';
import { publishCommand } from './publish-command.js';

export type RunControlAction = 'pause' | 'resume' | 'retry';

@Injectable()
export class RunOperationsService {
  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(RunsService) private readonly runs: RunsService,
  ) {}

  async decide(caller: Caller, runId: string, stepId: string, decision: 'approve' | 'reject', comment: string | undefined): Promise<{ id: string; stepId: string; decision: 'approve' | 'reject' }> {
    const view = await this.runs.get(caller, runId);
    const step = view.steps.find((s) => s.id === stepId);
    // A step waiting for a concurrency slot is `waiting` too, but no person decides it.
    if (!step || step.status !== 'waiting' || step.reason?.startsWith(CONCURRENCY_REASON_PREFIX) || step.reason?.startsWith(LEASE_REASON_PREFIX)) {
      throw new MuseError('MUSE_ERR_STEP_NOT_WAITING', step ? `Step "${stepId}" is ${step.status}${step.reason ? ` (${step.reason})` : ''}, not waiting for a decision` : `Run ${runId} has no step "${stepId}"`, {
        details: { id: runId, stepId, status: step?.status ?? null },
      });
    }
    // One message id per gate: of two racing decisions JetStream keeps the first (and the engine ignores a late one).
    await this.publish(
      { kind: 'approval-decision', runId, project: caller.project, stepId, decision, by: caller.principal, at: new Date().toISOString(), ...(comment !== undefined ? { comment } : {}) },
      `${runId}.${stepId}.approval`,
    );
    return { id: runId, stepId, decision };
  }

  async control(caller: Caller, runId: string, action: RunControlAction, reason: string | undefined): Promise<{ id: string; status: RunStatus }> {
    const view = await this.runs.get(caller, runId);
    if (action === 'retry') {
      if (view.status !== 'failed' || view.steps.some((s) => compensatedStep(s.id) !== undefined)) {
        throw new MuseError('MUSE_ERR_RUN_NOT_RETRYABLE', `Run ${runId} is ${view.status}${view.status === 'failed' ? ' and was compensated' : ''}: only a failed run that was not compensated can be retried`, {
          details: { id: runId, status: view.status },
        });
      }
    } else if (isTerminalRunStatus(view.status)) {
      throw new MuseError('MUSE_ERR_RUN_TERMINAL', `Run ${runId} has already finished (${view.status})`, { details: { id: runId, status: view.status } });
    }
    // No message id: each is idempotent at the coordinator, and a pause after a resume must not be dropped as a duplicate.
    await this.publish({ kind: 'run-control', runId, project: caller.project, action, ...(reason !== undefined ? { reason } : {}) });
    return { id: runId, status: view.status };
  }

  private publish(cmd: Command, msgId?: string): Promise<void> {
    return publishCommand(this.bus, cmd, msgId);
  }
}
