/**
 * Publishes a step report to the command stream, retrying with backoff. The
 * message id makes a retry (or a re-run of the whole job after a crash) a
 * no-op within JetStream's duplicate window.
 */
import { MuseError, StepReportSchema, outputSpend, stepKey, type Command, type StepReport } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import { retry, type RetryOptions } from './backoff.js';
import { CommandTooLargeError } from './errors.js';

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

  /**
   * Resolves once JetStream stored the report (`report`: the one stored); throws when every try failed. A completion
   * too large for one message of the command stream becomes a failed report (`sendStepReport`).
   */
  async publish(report: StepReport): Promise<{ seq: number; duplicate: boolean; report: StepReport }> {
    return sendStepReport(StepReportSchema.parse(report), (r) => this.send(r), (err, r) =>
      this.logger?.warn({ msgId: reportMsgId(r), bytes: err.bytes, limitBytes: err.limitBytes }, 'step output too large to report; the attempt fails'),
    );
  }

  private send(cmd: StepReport): Promise<{ seq: number; duplicate: boolean }> {
    const msgId = reportMsgId(cmd);
    return retry(() => this.bus.publishCommand(cmd, msgId), {
      attempts: 6,
      baseDelayMs: 250,
      maxDelayMs: 4_000,
      // A report too large now is as large on every try.
      retryable: (err) => !(err instanceof CommandTooLargeError),
      onRetry: (err, attempt, delayMs) =>
        this.logger?.warn({ err: (err as Error).message, msgId, attempt, delayMs }, 'step report not stored; retrying'),
      ...this.retryOptions,
    });
  }
}

/**
 * Sends a step report with `send`. A completion too large for one message of the command stream can never reach the
 * coordinator, however often it is sent: the attempt fails instead, for good, with MUSE_ERR_STEP_OUTPUT_TOO_LARGE
 * (`details`: `bytes`, `limitBytes`), sent in its place. For the workers' reports and a child run's report to its parent.
 * @returns what `send` returned for the report stored, and that report
 */
export async function sendStepReport<T>(
  report: StepReport,
  send: (r: StepReport) => Promise<T>,
  onTooLarge?: (err: CommandTooLargeError, report: StepReport) => void,
): Promise<T & { report: StepReport }> {
  try {
    return { ...(await send(report)), report };
  } catch (err) {
    if (!(err instanceof CommandTooLargeError) || report.outcome !== 'completed') throw err;
    const { output, artifacts: _artifacts, ...rest } = report;
    // The attempt's model calls were charged to the budget: the run's spend counts them though the output is lost.
    const spent = outputSpend(output);
    const failed: StepReport = {
      ...rest,
      ...(spent ? { spent } : {}),
      outcome: 'failed',
      error: new MuseError('MUSE_ERR_STEP_OUTPUT_TOO_LARGE', `the step's output makes a report of ${err.bytes} bytes, over the ${err.limitBytes}-byte limit of one message (the NATS server's max_payload)`, {
        details: { bytes: err.bytes, limitBytes: err.limitBytes },
      }).toWire(),
    };
    onTooLarge?.(err, report);
    return { ...(await send(failed)), report: failed };
  }
}
