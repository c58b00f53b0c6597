/**
 * Publishes a step report to the command stream, retrying with backoff. The
 * message id makes a retry (or a re-run of the whole job after a crash) a
 * no-op within JetStream's duplicate window.
 */
import { StepReportSchema, stepKey, type Command, type StepReport } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import { retry, type RetryOptions } from './backoff.js';

/**
 * `started` carries the agent id: after a stalled job moves to another
 * worker, that worker's start is news. `completed` and `failed` do not: the
 * first final report of an attempt wins, whoever sends it.
 */
export function reportMsgId(r: StepReport): string {
  const base = `${r.runId}.${stepKey(r.stepId, r.index)}.${r.attempt}.${r.outcome}`;
  return r.outcome === 'started' ? `${base}.${r.agentId}` : base;
}

export interface CommandPublisher {
  publishCommand(cmd: Command, msgId?: string): Promise<{ seq: number; duplicate: boolean }>;
}

export class StepReportPublisher {
  constructor(
    private readonly bus: CommandPublisher,
    private readonly logger?: Pick<Logger, 'warn'>,
    private readonly retryOptions: RetryOptions = {},
  ) {}

  /** Resolves once JetStream stored the report; throws when every try failed. */
  async publish(report: StepReport): Promise<{ seq: number; duplicate: boolean }> {
    const cmd = StepReportSchema.parse(report);
    const msgId = reportMsgId(cmd);
    return retry(() => this.bus.publishCommand(cmd, msgId), {
      attempts: 6,
      baseDelayMs: 250,
      maxDelayMs: 4_000,
      onRetry: (err, attempt, delayMs) =>
        this.logger?.warn({ err: (err as Error).message, msgId, attempt, delayMs }, 'step report not stored; retrying'),
      ...this.retryOptions,
    });
  }
}
